"""Compactions in the store: a snapshot of the live context to summarise, the atomic commit of a
compaction item, the list and restore.

The store never summarises: compaction/service.py takes the snapshot, summarises (an LLM call
may take many seconds) outside any transaction, and commits; the commit re-checks that the
live boundary did not move meanwhile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, select, update

from sessionscope.clock import now_ms
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


@dataclass(frozen=True)
class Snapshot:
    """The live context of a session at one moment, for a summariser to work on outside any
    transaction. `live` is the kept messages in seq order (dicts, as the summarisers take them);
    `summary` is the active compaction's summary, seq and tokens when there is one."""

    tenant: str
    key: str
    agent: str
    live_from_seq: int
    active_compaction_id: int | None
    live_tokens: int
    live: list[dict[str, Any]]
    summary: tuple[str, int, int] | None


async def snapshot(db: Database, scope: Scope, key: str, *, tenant: str | None = None) -> Snapshot:
    tenant = scope.resolve(tenant)
    async with db.read() as conn:
        row = await session_store.find(conn, tenant, key)
        active, live_rows = await live_context(conn, row)
    summary = None if active is None else (active.summary, int(active.seq), int(active.summary_tokens))
    return Snapshot(tenant, key, row.agent, int(row.live_from_seq), row.active_compaction_id, int(row.live_tokens),
                    [_as_dict(m) for m in live_rows], summary)


async def commit(db: Database, snap: Snapshot, *, first_kept_seq: int, summarized: int, summary: str, summarizer: str, instructions: str | None,
                 reason: str) -> dict[str, Any]:
    """Commit a compaction of `snap`: messages before `first_kept_seq` leave the live context;
    those from it on stay, and so does everything appended since the snapshot (the cut is by seq). Raises Conflict when a reset, compaction or restore moved the live boundary meanwhile.
    Returns the compaction item and the live tokens after it."""
    summary_tokens = count_tokens(summary) + MESSAGE_OVERHEAD_TOKENS
    async with db.write() as conn:
        current = await session_store.find(conn, snap.tenant, snap.key, lock=True)
        if (int(current.live_from_seq) != snap.live_from_seq
                or current.active_compaction_id != snap.active_compaction_id):
            raise Conflict("the session changed while it was being compacted (reset, compaction or restore); "
                           "try again")
        kept_count, kept_tokens = (await conn.execute(
            select(func.count(), func.coalesce(func.sum(messages.c.tokens), 0))
            .where(messages.c.session_id == current.id, messages.c.seq >= first_kept_seq)
        )).one()
        tokens_after = summary_tokens + int(kept_tokens)
        seq = int(current.next_seq)
        boundary = first_kept_seq
        inserted = await conn.execute(compactions.insert().values(
            session_id=current.id, seq=seq, item_id=f"compaction-{seq}", ts=now_ms(), summary=summary,
            messages_compacted=summarized, tokens_before=int(current.live_tokens), tokens_after=tokens_after,
            first_kept_seq=boundary, summarizer=summarizer, instructions=instructions, reason=reason,
            restored=False, prev_live_from_seq=int(current.live_from_seq),
            prev_compaction_id=current.active_compaction_id, summary_tokens=summary_tokens,
        ))
        compaction_id = inserted_id(inserted)
        await session_store.bump(
            conn, current.id, {"compactions": 1, "next_seq": 1},
            live_from_seq=boundary, active_compaction_id=compaction_id, live_tokens=tokens_after,
            live_messages=int(kept_count),
        )
        item = (await conn.execute(select(compactions).where(compactions.c.id == compaction_id))).one()
    return {"compaction": wire.compaction_item(item), "tokens_before": int(item.tokens_before),
            "tokens_after": tokens_after}


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
