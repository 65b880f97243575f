"""Executions: what each agent run cost and how its context was assembled."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import func, select

from sessionscope import jsontext
from sessionscope.clock import now_ms, parse_client_time
from sessionscope.pricing import cost_usd
from sessionscope.store import sessions as session_store
from sessionscope.store import wire
from sessionscope.store.database import Database
from sessionscope.store.schema import executions, resets
from sessionscope.store.scope import Scope

DEFAULT_CONTEXT_WINDOW = 128_000


def prepare_execution(execution: dict[str, Any]) -> dict[str, Any]:
    usage = execution.get("usage") or {}
    inp = int(usage.get("input_tokens") or 0)
    out = int(usage.get("output_tokens") or 0)
    cread = int(usage.get("cache_read_tokens") or 0)
    cwrite = int(usage.get("cache_write_tokens") or 0)
    cwrite_1h = min(cwrite, int(usage.get("cache_write_1h_tokens") or 0))
    cost = execution.get("cost_usd")
    if cost is None:
        cost = cost_usd(execution.get("model"), execution.get("provider"), inp, out, cread, cwrite, cwrite_1h)
    started = execution.get("started_at")
    return {
        "exec_id": execution.get("id") or uuid.uuid4().hex,
        "started_at": parse_client_time(started, "started_at", started if isinstance(started, int) and started else now_ms()),
        "duration_ms": float(execution.get("duration_ms") or 0.0),
        "model_ms": None if execution.get("model_ms") is None else float(execution["model_ms"]),
        "model": execution.get("model"),
        "provider": execution.get("provider"),
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_tokens": cread,
        "cache_write_tokens": cwrite,
        "cache_write_1h_tokens": cwrite_1h,
        "reasoning_tokens": int(usage.get("reasoning_tokens") or 0),
        "cost_usd": cost,
        "budget": jsontext.compact(execution["budget"]) if execution.get("budget") else None,
        "layers": jsontext.compact(execution.get("layers") or []),
    }


async def insert_execution(conn: Any, db: Database, row: Any, prepared: dict[str, Any]) -> bool:
    """Store one execution and roll its usage into the session counters; False if already stored."""
    result = await conn.execute(db.insert_ignore(executions).values(session_id=row.id, **prepared))
    if not result.rowcount:
        return False
    await session_store.bump(
        conn, row.id,
        {
            "executions": 1,
            "exec_input_tokens": prepared["input_tokens"],
            "exec_output_tokens": prepared["output_tokens"],
            "cache_read_tokens": prepared["cache_read_tokens"],
            "cache_write_tokens": prepared["cache_write_tokens"],
            "cost_usd": prepared["cost_usd"] or 0.0,
        },
    )
    return True


async def record(
    db: Database, scope: Scope, key: str, execution: dict[str, Any], *, tenant: str | None = None
) -> dict[str, Any]:
    tenant = scope.resolve(tenant)
    prepared = prepare_execution(execution)
    async with db.write() as conn:
        row = await session_store.find(conn, tenant, key, lock=True)
        await insert_execution(conn, db, row, prepared)
    cost = prepared["cost_usd"]
    return {"id": prepared["exec_id"], "cost_usd": None if cost is None else round(cost, 8)}


def estimated_budget(live_tokens: int, *, since_reset: bool = False) -> dict[str, Any]:
    """`since_reset`: executions exist, but all ran before the last reset, so none describes
    the live context."""
    return {"window": DEFAULT_CONTEXT_WINDOW, "system": 0, "tools": 0, "context": 0,
            "messages": live_tokens, "estimated": True, "since_reset": since_reset}


async def context(
    db: Database, scope: Scope, key: str, *, tenant: str | None = None, limit: int = 20
) -> dict[str, Any]:
    """Budget from the latest execution (the context as the agent last saw it) plus recent runs."""
    tenant = scope.resolve(tenant)
    async with db.read() as conn:
        row = await session_store.find(conn, tenant, key)
        recent = (await conn.execute(
            select(executions).where(executions.c.session_id == row.id)
            .order_by(executions.c.started_at.desc(), executions.c.id.desc()).limit(limit)
        )).all()
        last_reset = (await conn.execute(
            select(func.max(resets.c.ts)).where(resets.c.session_id == row.id))).scalar()
    runs = [wire.execution(r) for r in recent]
    # A budget recorded before the last reset describes a conversation that is no longer live.
    current = [r for r in recent if last_reset is None or r.started_at >= last_reset]
    budget = next((dict(json.loads(r.budget), estimated=False) for r in current if r.budget), None)
    return {
        "budget": budget or estimated_budget(int(row.live_tokens), since_reset=bool(recent) and not current),
        "live_tokens": int(row.live_tokens),
        "executions": runs,
    }


async def metrics(db: Database, scope: Scope, key: str, *, tenant: str | None = None) -> dict[str, Any]:
    """Read from the session's counters only, so the cost is the same for any session length."""
    session = await session_store.get(db, scope, key, tenant)
    return {
        name: session[name]
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "tool_calls",
                     "compactions", "resets", "executions", "cost_usd", "message_count", "total_tokens",
                     "context_tokens")
    } | {
        "cache_hit_rate": wire.cache_hit_rate(
            session["input_tokens"], session["cache_read_tokens"], session["cache_write_tokens"]
        )
    }
