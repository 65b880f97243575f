"""Client wire-format items: append with a raw copy, read the live items back, pop the newest.

Framework adapters (the OpenAI Agents SDK session) store each item both as one of our
messages (so the dashboard, search, compaction and counters see it) and verbatim in
`message_raw`, so the adapter reads back exactly what it added. The live boundary is the
same as `session.history`: after a compaction the summary plus the kept items, after a
reset nothing. Unlike `session.history`, which is ready to send to a model and so never gives a
tool result without its call, `limit` here keeps exactly the newest N entries, as the
adapters' own stores (the Agents SDK's SQLiteSession) do.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope.clock import now_ms
from sessionscope.errors import Conflict
from sessionscope.store import live_pages, search_index, wire
from sessionscope.store import sessions as session_store
from sessionscope.store.appends import OUTPUT_ROLES, PREVIEW_CHARS
from sessionscope.store.conversation import SUMMARY_PREFIX
from sessionscope.store.database import Database
from sessionscope.store.schema import compactions, message_raw, messages
from sessionscope.store.scope import Scope

# IN-lists stay below every driver's bound-parameter limit.
ID_CHUNK = 500


async def _raws(conn: AsyncConnection, session_id: int, conversation: int, ids: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start:start + ID_CHUNK]
        result = await conn.execute(
            select(message_raw.c.msg_id, message_raw.c.raw)
            .where(message_raw.c.session_id == session_id, message_raw.c.conversation == conversation,
                   message_raw.c.msg_id.in_(chunk))
        )
        found.update({msg_id: json.loads(raw) for msg_id, raw in result})
    return found


def _item(row: Row, live_from: int, raw: Any) -> dict[str, Any]:
    item = wire.message_item(row, live_from)
    item["raw"] = raw
    return item


async def live_items(
    db: Database, scope: Scope, key: str, *, tenant: str | None = None, limit: int | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The live messages with their raw copies (None where a message has none), oldest first, in
    pages of at most READ_PAGE_BYTES (`has_more`, `next_cursor`).

    `limit` keeps exactly the newest N entries, counting the compaction summary as the oldest
    entry; the summary comes on the first page only.
    """
    tenant = scope.resolve(tenant)
    async with db.read() as conn:
        row = await session_store.find(conn, tenant, key)
        from_seq = int(row.live_from_seq)
        room_for_summary = True
        if limit is not None:
            newest = (await conn.execute(
                select(messages.c.seq).where(messages.c.session_id == row.id, messages.c.seq >= row.live_from_seq)
                .order_by(messages.c.seq.desc()).limit(limit)
            )).scalars().all()
            room_for_summary = len(newest) < limit
            if newest:
                from_seq = int(newest[-1])
        page, next_cursor = await live_pages.read_page(conn, row, read="session.items", cursor=cursor,
                                                       from_seq=from_seq, with_raw=True)
        summary = None
        if row.active_compaction_id is not None and room_for_summary and cursor is None:
            summary = (await conn.execute(
                select(compactions.c.summary).where(compactions.c.id == row.active_compaction_id)
            )).scalar()
    live_from = int(row.live_from_seq)
    # The summary is worded as session.history presents it, so every reader shows the same text.
    text = SUMMARY_PREFIX + summary if summary else None
    items = [_item(m, live_from, json.loads(m.raw) if m.raw is not None else None) for m in page]
    return {"summary": text, "items": items, "has_more": next_cursor is not None, "next_cursor": next_cursor}


async def pop(db: Database, scope: Scope, key: str, *, tenant: str | None = None) -> dict[str, Any] | None:
    """Remove the newest live message (and its raw copy) and return it; None when nothing is live.

    The message is deleted, not hidden: the Agents SDK pops to retract an item it added. It is the
    session's newest item, so its seq is given back (sequences stay gapless), and the counters
    drop by exactly what the append added.
    """
    tenant = scope.resolve(tenant)
    async with db.write() as conn:
        row = await session_store.find(conn, tenant, key, lock=True)
        newest = (await conn.execute(
            select(messages).where(messages.c.session_id == row.id, messages.c.seq >= row.live_from_seq)
            .order_by(messages.c.seq.desc()).limit(1)
        )).first()
        if newest is None:
            return None
        if int(newest.seq) != int(row.next_seq) - 1:
            # Only a compaction can sit after the newest live message; removing the message under
            # it would leave a hole in the session's sequence and change what it summarised.
            raise Conflict("the newest live message precedes a compaction; append or restore first")
        raw = (await _raws(conn, int(row.id), int(newest.conversation), [newest.msg_id])).get(newest.msg_id)
        item = _item(newest, int(row.live_from_seq), raw)
        await conn.execute(delete(message_raw).where(
            message_raw.c.session_id == row.id, message_raw.c.conversation == newest.conversation,
            message_raw.c.msg_id == newest.msg_id))
        await search_index.before_deleting_messages(db, conn, int(row.id), int(newest.id))
        await conn.execute(delete(messages).where(messages.c.id == newest.id))
        tokens = int(newest.tokens)
        output = newest.role in OUTPUT_ROLES
        calls = len(json.loads(newest.tool_calls)) if newest.tool_calls else 0
        previous = (await conn.execute(
            select(messages.c.content, messages.c.tool_name).where(messages.c.session_id == row.id)
            .order_by(messages.c.seq.desc()).limit(1)
        )).first()
        preview = (previous.content or previous.tool_name or "")[:PREVIEW_CHARS] if previous else None
        await session_store.bump(
            conn, row.id,
            {
                "next_seq": -1, "message_count": -1, "live_messages": -1, "live_tokens": -tokens,
                "tool_calls": -calls, "error_count": -1 if newest.is_error else 0,
                "msg_output_tokens": -tokens if output else 0, "msg_input_tokens": 0 if output else -tokens,
            },
            preview=preview, updated_at=now_ms(),
        )
    return item
