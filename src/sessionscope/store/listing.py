"""session.list: filters, search, sorts and keyset paging, each served by an index.

Search (a substring of key, agent, channel or label) takes one of two paths, and both return
exactly the first matches in sort order:
- walk the sort index for the first SCAN_BUDGET rows and test each; a common term fills the
  page there, in a few milliseconds;
- otherwise the term is rare, so fetch its few matches from the trigram index and sort those.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, column, func, literal_column, or_, select, table, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope.errors import InvalidParams
from sessionscope.store import rows
from sessionscope.store.database import Database
from sessionscope.store.schema import SORT_COLUMNS, facets, messages, sessions
from sessionscope.store.scope import Scope

# Counting beyond this many matches would mean scanning; the total is then reported as "N+".
SEARCH_TOTAL_CAP = 10_000
# Rows of the sort order tested directly before a search falls back to the trigram index.
SCAN_BUDGET = 5_000
_FTS = table("session_search", column("rowid"))


def _encode_cursor(value: Any, row_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([value, row_id]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(row_id, int) or isinstance(value, (dict, list)):
            raise TypeError
        return value, row_id
    except (ValueError, TypeError, json.JSONDecodeError):
        raise InvalidParams("cursor", "is not a cursor returned by session.list") from None


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _substring_test(cols: Any, term: str) -> Any:
    """The search predicate evaluated row by row (case-insensitive, % and _ literal)."""
    pattern = _like_pattern(term.lower())
    fields = (cols.key, cols.agent, cols.channel, func.coalesce(cols.label, ""))
    return or_(*(func.lower(f).like(pattern, escape="\\") for f in fields))


def _trigram_phrase(term: str) -> str | None:
    """An FTS5 trigram phrase for the term; None when it is shorter than one trigram."""
    if len(term.encode()) < 3:
        return None
    return '"' + term.replace('"', '""') + '"'


def _indexed_search(db: Database, term: str) -> Any:
    """The search predicate as an index lookup: trigram FTS5 on SQLite, pg_trgm on PostgreSQL."""
    if db.is_sqlite:
        phrase = _trigram_phrase(term)
        if phrase is None:
            return _substring_test(sessions.c, term)
        ids = select(_FTS.c.rowid).where(text("session_search MATCH :phrase").bindparams(phrase=phrase))
        return sessions.c.id.in_(ids)
    haystack = (sessions.c.key + " " + sessions.c.agent + " " + sessions.c.channel + " "
                + func.coalesce(sessions.c.label, ""))
    return haystack.ilike(_like_pattern(term), escape="\\")


def _query_clause(db: Database, query: str) -> Any:
    """Full-text search over message content: sessions with at least one matching message."""
    if db.is_sqlite:
        terms = [t for t in query.split() if t]
        match = " ".join('"' + t.replace('"', '""') + '"' for t in terms)
        ids = text(
            "SELECT m.session_id FROM message_search JOIN messages m ON m.id = message_search.rowid "
            "WHERE message_search MATCH :match"
        ).bindparams(match=match)
        return sessions.c.id.in_(ids.columns(literal_column("session_id")))
    matching = select(messages.c.session_id).where(
        func.to_tsvector(literal_column("'simple'"), messages.c.content).op("@@")(
            func.plainto_tsquery(literal_column("'simple'"), query)
        )
    )
    return sessions.c.id.in_(matching)


async def list_sessions(
    db: Database,
    scope: Scope,
    *,
    tenant: str | None = None,
    agent: str | None = None,
    channel: str | None = None,
    search: str | None = None,
    query: str | None = None,
    sort: str = "updated_at",
    order: str = "desc",
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    if sort not in SORT_COLUMNS:
        raise InvalidParams("sort", f"must be one of {', '.join(SORT_COLUMNS)}")
    where = [scope.filter(sessions.c.tenant, tenant)]
    if agent is not None:
        where.append(sessions.c.agent == agent)
    if channel is not None:
        where.append(sessions.c.channel == channel)
    if query and query.strip():
        where.append(_query_clause(db, query))
    sort_col = sessions.c[sort]
    descending = order == "desc"
    page_where = list(where)
    if cursor:
        value, row_id = _decode_cursor(cursor)
        key = tuple_(sort_col, sessions.c.id)
        page_where.append(key < tuple_(value, row_id) if descending else key > tuple_(value, row_id))

    def ordered(cols: Any) -> list[Any]:
        by = [cols[sort], cols.id]
        return [c.desc() for c in by] if descending else [c.asc() for c in by]

    async with db.read() as conn:
        found: Sequence[Any] = []
        if search:
            # Path 1: test the first SCAN_BUDGET rows of the sort order.
            prefix = select(sessions).where(and_(*page_where)).order_by(*ordered(sessions.c)).limit(SCAN_BUDGET)
            sub = prefix.subquery()
            found = (await conn.execute(
                select(sub).where(_substring_test(sub.c, search)).order_by(*ordered(sub.c)).limit(limit + 1)
            )).all()
        if not search or len(found) <= limit:
            # Path 2 (no search, or a rare term): the full predicate through the indexes.
            full = [*page_where, _indexed_search(db, search)] if search else page_where
            stmt = select(sessions).where(and_(*full)).order_by(*ordered(sessions.c)).limit(limit + 1)
            found = (await conn.execute(stmt)).all()
        if search or query:
            total, capped = await _bounded_count(db, conn, where, search)
        else:
            total, capped = await _facet_total(conn, scope, tenant, agent, channel), False
    more = len(found) > limit
    found = found[:limit]
    next_cursor = _encode_cursor(getattr(found[-1], sort), found[-1].id) if more and found else None
    return {
        "sessions": [rows.session_row(r) for r in found],
        "total": total,
        "total_capped": capped,
        "next_cursor": next_cursor,
    }


async def _facet_total(conn: AsyncConnection, scope: Scope, tenant: str | None, agent: str | None,
                       channel: str | None) -> int:
    """Exact, from the per-(tenant, agent, channel) counters: never a scan of sessions."""
    conds = [scope.filter(facets.c.tenant, tenant)]
    if agent is not None:
        conds.append(facets.c.agent == agent)
    if channel is not None:
        conds.append(facets.c.channel == channel)
    total = (await conn.execute(select(func.coalesce(func.sum(facets.c.sessions), 0)).where(*conds))).scalar()
    return int(total or 0)


async def _bounded_count(db: Database, conn: AsyncConnection, where: Sequence[Any], search: str | None
                         ) -> tuple[int, bool]:
    """Count matches up to SEARCH_TOTAL_CAP, driven from the search index when there is one."""
    phrase = _trigram_phrase(search) if (search and db.is_sqlite) else None
    if phrase is not None:
        # Walk the trigram matches and probe sessions by primary key: stops at the cap.
        matches = (select(sessions.c.id)
                   .select_from(_FTS.join(sessions, sessions.c.id == _FTS.c.rowid))
                   .where(text("session_search MATCH :phrase").bindparams(phrase=phrase), *where))
    else:
        conds = [*where, _indexed_search(db, search)] if search else list(where)
        matches = select(sessions.c.id).where(and_(*conds))
    bounded = matches.limit(SEARCH_TOTAL_CAP + 1).subquery()
    count = int((await conn.execute(select(func.count()).select_from(bounded))).scalar() or 0)
    return min(count, SEARCH_TOTAL_CAP), count > SEARCH_TOTAL_CAP
