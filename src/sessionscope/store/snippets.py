"""The matching snippet of a content search (session.list `query`): for each session of a page,
a bounded window of its first matching message around the first match, with the matched spans.

Two statements per page, whatever its size: the first matching message of each session (by the
search index), then a bounded prefix of those messages' text. The spans are offsets into the
window's text, so the dashboard renders them as text nodes around <mark>: no markup is sent."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope import search_words
from sessionscope.store import search_index
from sessionscope.store.database import Database
from sessionscope.store.schema import messages

# How much of a matching message is read to find the match: a message can hold megabytes.
SCAN_CHARS = 20_000
# Characters of context either side of the first match.
CONTEXT_CHARS = 60


def _first_matches_sql(db: Database, dense: bool) -> Any:
    """For a page's sessions, the first indexed message holding every word: SQLite, session id ->
    the seq of it (a seek into each session's rowid range, search_index.sqlite_rowid);
    PostgreSQL, session id -> its message id: for a dense query, each session's first index rows
    in order (ix_message_search_session, on (session_id, message_id)); for a sparse one, from
    the GIN index's few matches."""
    if db.is_sqlite:
        span = search_index.SESSION_SPAN
        return text(
            f"SELECT page.value, (SELECT rowid % {span} FROM message_search WHERE message_search MATCH :match "
            f"AND rowid BETWEEN page.value * {span} AND page.value * {span} + {span - 1} ORDER BY rowid LIMIT 1) "
            "AS seq FROM json_each(:ids) AS page"
        )
    if dense:
        return text(
            "SELECT page.sid, (SELECT message_id FROM message_search WHERE session_id = page.sid "
            "AND document @@ CAST(:match AS tsquery) ORDER BY session_id, message_id LIMIT 1) "
            "FROM unnest(CAST(:ids AS bigint[])) AS page(sid)")
    return text(
        "SELECT session_id, min(message_id) FROM message_search WHERE session_id = ANY(CAST(:ids AS bigint[])) "
        "AND document @@ CAST(:match AS tsquery) GROUP BY session_id")


def _window(content: str, words: Sequence[str]) -> dict[str, Any]:
    found = search_words.spans(content, words)
    start = max(0, found[0][0] - CONTEXT_CHARS) if found else 0
    end = min(len(content), (found[0][1] if found else 0) + CONTEXT_CHARS)
    cut = " ".join(content[start:end].split())  # one line: newlines and runs of spaces closed up
    prefix = "…" if start > 0 else ""
    body = prefix + cut + ("…" if end < len(content) else "")
    return {"text": body, "highlights": [list(span) for span in search_words.spans(body, words)]}


async def for_page(db: Database, conn: AsyncConnection, session_ids: Sequence[int], words: Sequence[str],
                   queued: dict[int, int], dense: bool) -> dict[int, dict[str, Any]]:
    """`words`: the query's (search_words); PostgreSQL: `queued`, session id -> its first
    matching message among those not yet indexed, which the list's own match read too, and
    `dense`, as the list judged the words (search_index.postgresql_dense)."""
    if not session_ids or not words:
        return {}
    if db.is_sqlite:
        params: dict[str, Any] = {"ids": json.dumps(list(session_ids)), "match": search_index.sqlite_match(list(words))}
        seqs = {sid: seq for sid, seq in (await conn.execute(_first_matches_sql(db, True), params)).all()
                if seq is not None}
        # An OR of (session_id, seq) pairs, each an index probe: SQLite scans the table for a
        # row-value IN list.
        which: Any = or_(*(and_(messages.c.session_id == sid, messages.c.seq == seq) for sid, seq in seqs.items()))
        found = bool(seqs)
    else:
        params = {"ids": list(session_ids), "match": search_index.pg_tsquery(list(words))}
        firsts = {sid: mid for sid, mid in (await conn.execute(_first_matches_sql(db, dense), params)).all()
                  if mid is not None}
        for session_id in set(session_ids) & queued.keys():
            firsts[session_id] = min(queued[session_id], firsts.get(session_id, queued[session_id]))
        which = messages.c.id.in_(list(firsts.values()))
        found = bool(firsts)
    if not found:
        return {}
    rows = (await conn.execute(
        select(messages.c.session_id, func.substr(messages.c.content, 1, SCAN_CHARS)).where(which))).all()
    return {int(sid): _window(body or "", words) for sid, body in rows}
