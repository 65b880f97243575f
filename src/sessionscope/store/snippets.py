"""The matching snippet of a content search (session.list `query`): for each session of a page,
a bounded window of its first matching message around the first match, with the matched spans.

Two statements per page, whatever its size: the first matching message of each session (by the
search index), then a bounded prefix of those messages' text. The spans are offsets into the
window's text, so the dashboard renders them as text nodes around <mark>: no markup is sent."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope.store.database import Database
from sessionscope.store.schema import messages

# How much of a matching message is read to find the match: a message can hold megabytes.
SCAN_CHARS = 20_000
# Characters of context either side of the first match.
CONTEXT_CHARS = 60


def _first_matches_sql(db: Database) -> Any:
    """session id -> the id of its first message matching the query, for a page's sessions."""
    if db.is_sqlite:
        return text(
            "SELECT m.session_id, min(m.id) FROM message_search JOIN messages m ON m.id = message_search.rowid "
            "WHERE message_search MATCH :match AND m.session_id IN :ids GROUP BY m.session_id"
        ).bindparams(bindparam("ids", expanding=True))
    # PostgreSQL indexes in the background: messages still queued (search_backlog) are read too,
    # as the list's own match does, so a session listed for the query has its snippet.
    return text(
        "SELECT session_id, min(id) FROM ("
        "SELECT session_id, message_id AS id FROM message_search WHERE session_id IN :ids "
        "AND document @@ plainto_tsquery('simple', :match) "
        "UNION ALL SELECT m.session_id, m.id FROM search_backlog AS q JOIN messages AS m "
        "ON m.session_id = q.session_id AND m.seq BETWEEN q.first_seq AND q.last_seq "
        "WHERE q.session_id IN :ids "
        f"AND to_tsvector('simple', left(m.content, {SCAN_CHARS})) @@ plainto_tsquery('simple', :match)"
        ") AS found GROUP BY session_id"
    ).bindparams(bindparam("ids", expanding=True))


def _window(content: str, terms: Sequence[str]) -> dict[str, Any]:
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)
    first = pattern.search(content)
    start = max(0, first.start() - CONTEXT_CHARS) if first else 0
    end = min(len(content), (first.end() if first else 0) + CONTEXT_CHARS)
    cut = " ".join(content[start:end].split())  # one line: newlines and runs of spaces closed up
    prefix = "…" if start > 0 else ""
    body = prefix + cut + ("…" if end < len(content) else "")
    spans = [[m.start(), m.end()] for m in pattern.finditer(body)]
    return {"text": body, "highlights": spans}


async def for_page(db: Database, conn: AsyncConnection, session_ids: Sequence[int], query: str,
                   match: str) -> dict[int, dict[str, Any]]:
    """`match`: the query as the search index takes it (SQLite: quoted FTS5 phrases)."""
    terms = [t for t in query.split() if t]
    if not session_ids or not terms:
        return {}
    params = {"ids": list(session_ids), "match": match if db.is_sqlite else query}
    firsts = dict((await conn.execute(_first_matches_sql(db), params)).all())
    if not firsts:
        return {}
    rows = (await conn.execute(
        select(messages.c.id, func.substr(messages.c.content, 1, SCAN_CHARS)).where(messages.c.id.in_(firsts.values()))
    )).all()
    content = {int(mid): body or "" for mid, body in rows}
    return {int(sid): _window(content.get(int(mid), ""), terms) for sid, mid in firsts.items()}
