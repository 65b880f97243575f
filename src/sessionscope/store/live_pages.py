"""Reading the live context in pages of bounded size (session.history and session.items).

A live context can grow to hundreds of megabytes; one answer that size ties up the server and the
reader. Past READ_PAGE_BYTES a read answers with `has_more` and a `next_cursor`, and the client
follows the cursors (the SDK and the Agents SDK adapter do), so a reader still gets the whole
context, never a silently cut one.

A cursor is opaque to clients and bound to its read: the method and format, the session, and the
live boundary when the first page was read. A reset or a compaction between two pages moves the
boundary, and a cursor from before it gets -32602 (read again from the start) instead of a mix
of two contexts.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Row, and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope.errors import InvalidParams
from sessionscope.store.schema import message_raw, messages

# What one page may hold, counted as stored text (content, tool calls, raw copies): well above
# any usual context, far below what strains a server or a browser.
READ_PAGE_BYTES = 4 * 1024 * 1024
# Rows fetched per query while a page fills.
ROW_CHUNK = 256


def encode_cursor(read: str, key: str, live_from: int, after_seq: int) -> str:
    raw = json.dumps([read, key, live_from, after_seq], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, read: str, key: str, live_from: int) -> int:
    """The seq after which the page starts; -32602 for a cursor of another read or a stale one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        got_read, got_key, got_live_from, after_seq = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (got_live_from, after_seq)):
            raise TypeError
    except (ValueError, TypeError):
        raise InvalidParams("cursor", "is not a cursor returned by this method") from None
    if (got_read, got_key) != (read, key):
        raise InvalidParams("cursor", "belongs to another read (method, format or session)")
    if got_live_from != live_from:
        raise InvalidParams("cursor", "is stale: the session was reset or compacted since; read from the start")
    return int(after_seq)


def stored_size(row: Row) -> int:
    """A message's stored text, the measure of a page (its raw copy counts when read with it)."""
    raw = row._mapping.get("raw")
    return len(row.content or "") + len(row.tool_calls or "") + (len(raw) if raw else 0) + 64


async def read_page(
    conn: AsyncConnection,
    session: Row,
    *,
    read: str,
    cursor: str | None,
    from_seq: int,
    with_raw: bool = False,
    keep_turns: bool = False,
    budget: int | None = None,
    size: Callable[[Row], int] = stored_size,
) -> tuple[list[Row], str | None]:
    """The live messages from `from_seq` (or after the cursor's seq), oldest first, up to `budget`,
    and the cursor of the next page (None on the last one). A page holds at least one message.

    `keep_turns`: a page never ends just before a tool result, so a call and its results stay on
    one page (session.history shapes tool results with their call)."""
    budget = READ_PAGE_BYTES if budget is None else budget
    live_from = int(session.live_from_seq)
    after = decode_cursor(cursor, read, session.key, live_from) if cursor else from_seq - 1
    after = max(after, live_from - 1)  # never before the live boundary, whatever the cursor says
    columns: list[Any] = [messages]
    source: Any = messages
    if with_raw:
        columns.append(message_raw.c.raw)
        source = messages.outerjoin(message_raw, and_(message_raw.c.session_id == messages.c.session_id,
                                                       message_raw.c.conversation == messages.c.conversation,
                                                       message_raw.c.msg_id == messages.c.msg_id))
    rows: list[Row] = []
    used = 0
    while True:
        chunk = (await conn.execute(
            select(*columns).select_from(source)
            .where(messages.c.session_id == session.id, messages.c.seq > after)
            .order_by(messages.c.seq).limit(ROW_CHUNK)
        )).all()
        for row in chunk:
            cost = size(row)
            if rows and used + cost > budget and not (keep_turns and row.role == "tool"):
                return rows, encode_cursor(read, session.key, live_from, int(rows[-1].seq))
            rows.append(row)
            used += cost
        if len(chunk) < ROW_CHUNK:
            return rows, None
        after = int(chunk[-1].seq)
