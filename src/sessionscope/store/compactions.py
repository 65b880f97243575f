"""Compaction in the store: snapshot the live context, summarise outside the lock, commit atomically.

The summariser may call an LLM for many seconds, so it runs between a read and a write
transaction; the write re-checks that the live boundary did not move meanwhile.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, func, select, update

from sessionscope.clock import now_ms
from sessionscope.compaction import (
    CompactionSettings,
    choose_cut,
    needs_auto_compaction,
    summarize_async,
    summary_message,
)
from sessionscope.errors import Conflict, InvalidParams
from sessionscope.store import sessions as session_store
from sessionscope.store import wire
from sessionscope.store.conversation import live_context
from sessionscope.store.database import Database, inserted_id
from sessionscope.store.schema import compactions, messages, resets, sessions
from sessionscope.store.scope import Scope
from sessionscope.tokenizer import MESSAGE_OVERHEAD_TOKENS, count_tokens


def _as_dict(m: Row) -> dict[str, Any]:
    return {
        "seq": int(m.seq), "id": m.msg_id, "role": m.role, "content": m.content,
        "tool_calls": json.loads(m.tool_calls) if m.tool_calls else None,
        "tool_call_id": m.tool_call_id, "tool_name": m.tool_name, "is_error": bool(m.is_error),
        "timestamp": m.ts, "tokens": int(m.tokens),
    }


async def compact(
    db: Database,
    scope: Scope,
    key: str,
    settings: CompactionSettings,
    *,
    tenant: str | None = None,
    instructions: str | None = None,
    keep_recent_tokens: int | None = None,
    reason: str = "manual",
) -> dict[str, Any]:
    tenant = scope.resolve(tenant)
    keep = settings.auto.keep_recent_tokens if keep_recent_tokens is None else keep_recent_tokens
    async with db.read() as conn:
        row = await session_store.find(conn, tenant, key)
        active, live_rows = await live_context(conn, row)
    live = [_as_dict(m) for m in live_rows]
    if active is not None:
        live.insert(0, summary_message(active.summary, int(active.seq), int(active.summary_tokens)))
    tokens_before = int(row.live_tokens)
    cut = choose_cut(live, keep)
    has_summary = active is not None
    if cut <= (1 if has_summary else 0):
        return {
            "compaction": None,
            "compacted": False,
            "message": "nothing to compact: the live context is already within keep_recent_tokens "
                       f"({tokens_before} tokens live, keeping {keep})",
            "tokens_before": tokens_before,
            "tokens_after": tokens_before,
        }
    result = await summarize_async(live[:cut], instructions, settings.summarizer)
    summary_tokens = count_tokens(result.summary) + MESSAGE_OVERHEAD_TOKENS
    kept = live[cut:]
    last_live_seq = int(live[-1]["seq"])
    # With nothing kept, the boundary sits right after the last summarised message.
    boundary = int(kept[0]["seq"]) if kept else last_live_seq + 1
    tokens_after = summary_tokens + sum(int(m["tokens"]) for m in kept)
    compacted_count = cut - (1 if has_summary else 0)

    async with db.write() as conn:
        current = await session_store.find(conn, tenant, key, lock=True)
        if (int(current.live_from_seq) != int(row.live_from_seq)
                or current.active_compaction_id != row.active_compaction_id):
            raise Conflict("the session changed while it was being compacted (reset, compaction or restore); "
                           "try again")
        # Messages appended while the summariser ran stay live and count toward tokens_after.
        newer_count, newer_tokens = (await conn.execute(
            select(func.count(), func.coalesce(func.sum(messages.c.tokens), 0))
            .where(messages.c.session_id == current.id, messages.c.seq > last_live_seq)
        )).one()
        tokens_after += int(newer_tokens)
        seq = int(current.next_seq)
        inserted = await conn.execute(compactions.insert().values(
            session_id=current.id, seq=seq, item_id=f"compaction-{seq}", ts=now_ms(), summary=result.summary,
            messages_compacted=compacted_count, tokens_before=int(current.live_tokens), tokens_after=tokens_after,
            first_kept_seq=boundary, summarizer=result.summarizer, instructions=instructions, reason=reason,
            restored=False, prev_live_from_seq=int(current.live_from_seq),
            prev_compaction_id=current.active_compaction_id, summary_tokens=summary_tokens,
        ))
        compaction_id = inserted_id(inserted)
        await session_store.bump(
            conn, current.id, {"compactions": 1, "next_seq": 1},
            live_from_seq=boundary, active_compaction_id=compaction_id, live_tokens=tokens_after,
            live_messages=len(kept) + int(newer_count),
        )
        item = (await conn.execute(select(compactions).where(compactions.c.id == compaction_id))).one()
    return {
        "compaction": wire.compaction_item(item),
        "compacted": True,
        "tokens_before": int(item.tokens_before),
        "tokens_after": tokens_after,
        "summarizer": result.summarizer,
        "fallback_reason": result.fallback_reason,
    }


async def list_compactions(db: Database, scope: Scope, key: str, *, tenant: str | None = None) -> dict[str, Any]:
    tenant = scope.resolve(tenant)
    async with db.read() as conn:
        row = await session_store.find(conn, tenant, key)
        found = (await conn.execute(
            select(compactions).where(compactions.c.session_id == row.id).order_by(compactions.c.seq)
        )).all()
    return {"compactions": [wire.compaction_item(c) | {"active": c.id == row.active_compaction_id}
                            for c in found]}


async def restore(db: Database, scope: Scope, key: str, seq: int, *, tenant: str | None = None) -> dict[str, Any]:
    """Undo the active compaction: its messages become live again; the item stays, marked restored."""
    tenant = scope.resolve(tenant)
    async with db.write() as conn:
        row = await session_store.find(conn, tenant, key, lock=True)
        item = (await conn.execute(
            select(compactions).where(compactions.c.session_id == row.id, compactions.c.seq == seq)
        )).first()
        if item is None:
            raise InvalidParams("seq", f"no compaction with seq {seq} in this session")
        if item.restored:
            raise Conflict(f"compaction {seq} is already restored")
        if item.id != row.active_compaction_id:
            raise Conflict(f"compaction {seq} is not the active one; restore the later compaction first")
        later_reset = (await conn.execute(
            select(resets.c.seq).where(resets.c.session_id == row.id, resets.c.seq > seq).limit(1)
        )).first()
        if later_reset is not None:
            raise Conflict("the session was reset after this compaction; there is nothing to restore")
        previous = None
        if item.prev_compaction_id is not None:
            previous = (await conn.execute(
                select(compactions).where(compactions.c.id == item.prev_compaction_id)
            )).first()
        live_from = int(item.prev_live_from_seq)
        totals = (await conn.execute(
            select(func.count(), func.coalesce(func.sum(messages.c.tokens), 0))
            .where(messages.c.session_id == row.id, messages.c.seq >= live_from)
        )).one()
        live_tokens = int(totals[1]) + (int(previous.summary_tokens) if previous is not None else 0)
        await conn.execute(update(compactions).where(compactions.c.id == item.id).values(restored=True))
        await conn.execute(update(sessions).where(sessions.c.id == row.id).values(
            live_from_seq=live_from, active_compaction_id=item.prev_compaction_id,
            live_tokens=live_tokens, live_messages=int(totals[0]),
        ))
    return {"restored": seq, "live_tokens": live_tokens}


async def auto_compact(db: Database, scope: Scope, key: str, settings: CompactionSettings,
                       *, tenant: str | None = None) -> dict[str, Any] | None:
    """Compact when the live context passed the agent's threshold; None when it did not.

    Compaction never appends, so it cannot push the context over the threshold again; and a
    pass that finds nothing to compact is not retried, so no request can loop.
    """
    policy = settings.auto
    if policy.context_window is None:
        return None
    async with db.read() as conn:
        row = await session_store.find(conn, scope.resolve(tenant), key)
    if not needs_auto_compaction(int(row.live_tokens), policy):
        return None
    return await compact(db, scope, key, settings, tenant=tenant, keep_recent_tokens=policy.keep_recent_tokens,
                         reason="auto-threshold")
