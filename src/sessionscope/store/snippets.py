"""The matching snippet of a content search (session.list `query`): for each session of a page,
a bounded window of its first matching message around the first match, with the matched spans.

Two statements per page, whatever its size: the first matching message of each session (by the
search index), then a bounded prefix of those messages' text. The spans are offsets into the
window's text, so the dashboard renders them as text nodes around <mark>: no markup is sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope import search_words
from sessionscope.store import search_index
from sessionscope.store.database import Database
from sessionscope.store.schema import messages

# How much of a matching message is read to find the match: a message can hold megabytes.
SCAN_CHARS = 20_000
# Characters of context either side of the first match.
CONTEXT_CHARS = 60


def _first_matches_sql(db: Database) -> Any:
    """session id -> the id of its first indexed message holding every word, for a page's sessions."""
    if db.is_sqlite:
        return text(
            "SELECT m.session_id, min(m.id) FROM message_search JOIN messages m ON m.id = message_search.rowid "
            "WHERE message_search MATCH :match AND m.session_id IN :ids GROUP BY m.session_id"
        ).bindparams(bindparam("ids", expanding=True))
    return text(
        "SELECT session_id, min(message_id) FROM message_search WHERE session_id IN :ids "
        "AND document @@ CAST(:match AS tsquery) GROUP BY session_id"
    ).bindparams(bindparam("ids", expanding=True))


def _window(content: str, words: Sequence[str]) -> dict[str, Any]:
    found = search_words.spans(content, words)
    start = max(0, found[0][0] - CONTEXT_CHARS) if found else 0
    end = min(len(content), (found[0][1] if found else 0) + CONTEXT_CHARS)
    cut = " ".join(content[start:end].split())  # one line: newlines and runs of spaces closed up
    prefix = "…" if start > 0 else ""
    body = prefix + cut + ("…" if end < len(content) else "")
    return {"text": body, "highlights": [list(span) for span in search_words.spans(body, words)]}


async def for_page(db: Database, conn: AsyncConnection, session_ids: Sequence[int], words: Sequence[str],
                   queued: dict[int, int]) -> dict[int, dict[str, Any]]:
    """`words`: the query's (search_words); `queued` (PostgreSQL): session id -> its first
    matching message among those not yet indexed, which the list's own match read too."""
    if not session_ids or not words:
        return {}
    match = search_index.sqlite_match(list(words)) if db.is_sqlite else search_index.pg_tsquery(list(words))
    firsts = dict((await conn.execute(_first_matches_sql(db), {"ids": list(session_ids), "match": match})).all())
    for session_id in set(session_ids) & queued.keys():
        firsts[session_id] = min(queued[session_id], firsts.get(session_id, queued[session_id]))
    if not firsts:
        return {}
    rows = (await conn.execute(
        select(messages.c.id, func.substr(messages.c.content, 1, SCAN_CHARS)).where(messages.c.id.in_(firsts.values()))
    )).all()
    content = {int(mid): body or "" for mid, body in rows}
    return {int(sid): _window(content.get(int(mid), ""), words) for sid, mid in firsts.items()}
