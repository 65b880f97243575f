"""Reading a conversation: paged status items and the live context (history)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope.errors import NotFound
from sessionscope.store import live_pages, prepared, wire
from sessionscope.store import sessions as session_store
from sessionscope.store.database import Database
from sessionscope.store.schema import EVENT_KIND, compactions, messages, resets, sessions
from sessionscope.store.scope import Scope


async def status(
    db: Database,
    scope: Scope,
    key: str,
    *,
    tenant: str | None = None,
    limit: int = 100,
    before_seq: int | None = None,
) -> dict[str, Any]:
    """The session and one page of items, newest page first, each page in seq order.

    Compaction markers are placed just before their first kept message, so the messages they
    summarised sit above them; each marker belongs to exactly one page.
    """
    tenant = scope.resolve(tenant)
    found = await db.read_on_driver(_read_status_page, _status_sql(db), tenant, key, limit, before_seq)
    if found is None:
        raise NotFound(key)
    row, merged, has_more, page_compactions, reset_seq = found

    live_from = int(row.live_from_seq)
    # `merged` is newest first: reversed, it is the page in seq order, where markers slot in.
    items = [wire.message_item(r, live_from, reset_seq=reset_seq) if kind == "m" else wire.reset_item(r)
             for _, kind, r in reversed(merged)]
    if page_compactions:
        positioned = [(float(item["seq"]), item["seq"], item) for item in items]
        positioned += [(int(c.first_kept_seq) - 0.5, int(c.seq), wire.compaction_item(c)) for c in page_compactions]
        positioned.sort(key=lambda p: (p[0], p[1]))
        items = [p[2] for p in positioned]
    session = wire.session_row(row)
    return {
        "session": session,
        "items": items,
        "has_more": has_more,
        "usage": {
            "input_tokens": session["input_tokens"],
            "output_tokens": session["output_tokens"],
            "cache_read_tokens": session["cache_read_tokens"],
            "cache_write_tokens": session["cache_write_tokens"],
            "cache_hit_rate": wire.cache_hit_rate(
                session["input_tokens"], session["cache_read_tokens"], session["cache_write_tokens"]
            ),
        },
    }


@dataclass(frozen=True)
class _StatusSQL:
    """session.status's statements in the driver's own parameter style: the page is read in one
    trip to the driver (SQLite's thread), with no statement built or compiled per call, so the
    read costs about what its SQL does (bench/core.py prints both)."""

    session: str
    messages: str
    resets: str
    compactions: str
    compactions_upto: str


@functools.lru_cache(maxsize=4)
def _status_sql(db: Database) -> _StatusSQL:
    a, b, c = db.placeholders(3).split(", ")
    named = prepared.columns
    compactions_sql = f"SELECT {named(compactions)} FROM compactions WHERE session_id = {a} AND first_kept_seq > {b}"
    # The last reset before the live boundary comes with the session row: one statement fewer,
    # which on PostgreSQL is one round trip fewer.
    last_reset = ("(SELECT MAX(r.seq) FROM resets r WHERE r.session_id = sessions.id "
                  "AND r.seq < sessions.live_from_seq) AS last_reset_seq")
    return _StatusSQL(
        session=f"SELECT {named(sessions)}, {last_reset} FROM sessions WHERE tenant = {a} AND key = {b}",
        messages=f"SELECT {named(messages)} FROM messages WHERE session_id = {a} AND seq < {b} "
                 f"ORDER BY seq DESC LIMIT {c}",
        resets=f"SELECT {named(resets)} FROM resets WHERE session_id = {a} AND seq < {b} "
               f"ORDER BY seq DESC LIMIT {c}",
        compactions=compactions_sql,
        compactions_upto=f"{compactions_sql} AND first_kept_seq <= {c}",
    )


def _read_status_page(dbapi: Any, sql: _StatusSQL, tenant: str, key: str, limit: int,
                      before_seq: int | None) -> tuple[Any, list[tuple[int, str, Any]], bool, list[Any], int] | None:
    """On the driver connection: the session row, its page of messages and resets (newest
    first, cut to `limit`), whether older items exist, the compaction markers that belong to the
    page and the last reset before the live boundary. None when the session does not exist.

    The row's counters say whether the session has any resets or compactions at all (store.check
    verifies them against the tables); most have neither, and skip those statements."""
    cursor = dbapi.cursor()
    try:
        found = prepared.fetch(cursor, sql.session, (tenant, key))
        if not found:
            return None
        row = found[0]
        upper = before_seq if before_seq is not None else int(row.next_seq)
        page_messages = prepared.fetch(cursor, sql.messages, (row.id, upper, limit + 1))
        page_resets = prepared.fetch(cursor, sql.resets, (row.id, upper, limit + 1)) if row.resets else []
        merged = sorted([(int(r.seq), "m", r) for r in page_messages] + [(int(r.seq), "r", r) for r in page_resets],
                        key=lambda m: m[0], reverse=True)
        has_more = len(merged) > limit
        merged = merged[:limit]
        lower = merged[-1][0] if has_more and merged else 0
        page_compactions: list[Any] = []
        if row.compactions:
            page_compactions = (prepared.fetch(cursor, sql.compactions, (row.id, lower)) if before_seq is None
                                else prepared.fetch(cursor, sql.compactions_upto, (row.id, lower, before_seq)))
        return row, merged, has_more, page_compactions, int(row.last_reset_seq or 0)
    finally:
        cursor.close()


async def live_context(conn: AsyncConnection, row: Row) -> tuple[Row | None, list[Row]]:
    """The active compaction (if any) and the live messages, in seq order."""
    active = None
    if row.active_compaction_id is not None:
        active = (await conn.execute(
            select(compactions).where(compactions.c.id == row.active_compaction_id)
        )).first()
    live = (await conn.execute(
        select(messages).where(messages.c.session_id == row.id, messages.c.seq >= row.live_from_seq)
        .order_by(messages.c.seq)
    )).all()
    return active, list(live)


SUMMARY_PREFIX = "Summary of the earlier conversation (compacted):\n\n"
# Event messages are source records kept for the record (web searches, aborted-turn markers,
# unknown record types), not context: history leaves them out.
# A compaction whose kept messages carry the context themselves (Codex's replacement_history
# holds the summary): history shows those messages and not the summary a second time.
CONTEXT_IN_KEPT_MESSAGES = "replacement_history"


def _without_orphans(live: list[Row]) -> list[Row]:
    """Drop events, and tool results whose call is not in the live context (never expected)."""
    seen_calls: set[str] = set()
    kept = []
    for m in live:
        if m.kind == EVENT_KIND:
            continue
        if m.role == "assistant" and m.tool_calls:
            seen_calls.update(call.get("id") for call in json.loads(m.tool_calls))
        if m.role == "tool" and m.tool_call_id not in seen_calls:
            continue
        kept.append(m)
    return kept


def to_openai(summary: str | None, live: list[Row]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if summary:
        out.append({"role": "system", "content": SUMMARY_PREFIX + summary})
    for m in live:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
            continue
        msg: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.role == "assistant" and m.tool_calls:
            msg["tool_calls"] = [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in json.loads(m.tool_calls)
            ]
        out.append(msg)
    return out


def _parse_arguments(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        return {"_raw": arguments}


def to_anthropic(summary: str | None, live: list[Row]) -> tuple[str, list[dict[str, Any]]]:
    """Anthropic's Messages shape: system text apart, tool results as user content blocks."""
    system_parts = [SUMMARY_PREFIX + summary] if summary else []
    out: list[dict[str, Any]] = []
    for m in live:
        if m.role == "system":
            system_parts.append(m.content)
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content,
                     "is_error": bool(m.is_error)}
            if out and out[-1]["role"] == "user" and out[-1]["content"][-1]["type"] == "tool_result":
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        blocks: list[dict[str, Any]] = []
        if m.role == "assistant" and m.reasoning:
            # Anthropic's place for reasoning: a thinking block ahead of the text (no signature
            # is kept, so a replay to the API must drop it or resend with thinking disabled).
            blocks.append({"type": "thinking", "thinking": m.reasoning})
        if m.content:
            blocks.append({"type": "text", "text": m.content})
        for image in json.loads(m.attachments) if m.attachments else ():
            if image.get("data"):
                blocks.append({"type": "image", "source": {"type": "base64", "media_type": image["mime_type"],
                                                           "data": image["data"]}})
        for c in json.loads(m.tool_calls) if m.tool_calls else ():
            blocks.append({"type": "tool_use", "id": c["id"], "name": c["name"],
                           "input": _parse_arguments(c["arguments"])})
        out.append({"role": m.role, "content": blocks or [{"type": "text", "text": ""}]})
    return "\n\n".join(system_parts), out


async def history(
    db: Database, scope: Scope, key: str, *, tenant: str | None = None, format: str = "openai",
    cursor: str | None = None,
) -> dict[str, Any]:
    """The live context, in pages of at most READ_PAGE_BYTES (`has_more`, `next_cursor`); the
    summary comes on the first page, and a page never separates a tool call from its results."""
    tenant = scope.resolve(tenant)
    async with db.read() as conn:
        row = await session_store.find(conn, tenant, key)
        active = None
        if row.active_compaction_id is not None and cursor is None:
            active = (await conn.execute(
                select(compactions).where(compactions.c.id == row.active_compaction_id)
            )).first()
        live, next_cursor = await live_pages.read_page(
            conn, row, read=f"session.history:{format}", cursor=cursor, from_seq=int(row.live_from_seq),
            keep_turns=True)
    summary = active.summary if active is not None and active.reason != CONTEXT_IN_KEPT_MESSAGES else None
    live = _without_orphans(live)
    paging = {"has_more": next_cursor is not None, "next_cursor": next_cursor}
    if format == "anthropic":
        system, msgs = to_anthropic(summary, live)
        return {"messages": msgs, "system": system, "format": format, **paging}
    return {"messages": to_openai(summary, live), "format": format, **paging}
