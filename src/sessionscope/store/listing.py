"""session.list: filters, search, sorts and keyset paging, each served by an index.

The plain list (no `search`, no `query`) runs statements compiled once per shape of its filters,
page and total in one statement, on the driver (store.prepared).

Search (a substring of key, agent, channel or label) takes the first of three paths that
applies, and each returns exactly the first matches in sort order:
- walk the sort index for the first SCAN_BUDGET rows and test each, stopping at the page's last
  match; a common term fills the page there, in a few milliseconds (and a term whose page lies
  a little past the budget walks on, see _walk); for the default list (a tenant, newest first)
  the walk and the count of its matches read the index entries alone (ix_sessions_search_walk,
  migration 0013), rows only for the page;
- a rare term: fetch its few matches by id from the trigram index (SQLite: a term shorter than a
  trigram scans the index's own copy of the text instead), then filter and sort them;
- otherwise (many matches, all late in the sort order) walk the sort index testing each row
  against the trigram matches.

Query (message content, by search_words' rule) finds the sessions holding the words from the
index (on SQLite its rowids name their session), then sorts those, or walks the sort index
testing each session (_query_page).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Float,
    Select,
    and_,
    bindparam,
    case,
    column,
    exists,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope import search_words
from sessionscope.errors import InvalidParams
from sessionscope.keys import folded_term
from sessionscope.store import search_index, snippets, wire
from sessionscope.store.database import Database
from sessionscope.store.prepared import Prepared, fetch, prepare
from sessionscope.store.schema import SORT_COLUMNS, facets, sessions
from sessionscope.store.scope import Scope

# Counting beyond this many matches would mean scanning; the total is then reported as "N+".
SEARCH_TOTAL_CAP = 10_000
# Entries of the sort index walked, testing each row, before a search falls back to the trigram
# index; up to WALK_ON times as many when the first SCAN_BUDGET held matches but not a page.
SCAN_BUDGET = 5_000
WALK_ON = 4
# A term with at most this many trigram matches is "rare": its matches are fetched by id.
RARE_MATCHES = 20_000
# Rows walked to count the matches of a common term.
COUNT_SCAN = 10_000
# A query held by at most this many sessions is "rare": they are all found, then sorted.
QUERY_SESSIONS = 5_000
_FTS = table("session_search", column("rowid"))
# What a walk of the sort index tests each session on besides the filters: the columns that
# SQLite's ix_sessions_search_walk holds (migration 0013), so it reads no sessions row.
_WALKED = (sessions.c.id, sessions.c.folded_identity, sessions.c.folded_label)
# session.list's `archived`: hide archived sessions (the default), show only them, or both.
ARCHIVED_FILTERS = ("exclude", "only", "include")


# The sort columns whose values are text; the others are numbers (times are epoch integers).
_TEXT_SORTS = frozenset({"key", "agent", "channel"})
_MAX_ID = 2**63 - 1


def _query_tag(*parts: Any) -> str:
    """What a cursor is bound to: the sort, the order and every filter of the call that made it."""
    return hashlib.blake2s(json.dumps(parts).encode(), digest_size=8).hexdigest()


def _encode_cursor(tag: str, value: Any, row_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([tag, value, row_id]).encode()).decode().rstrip("=")


def _sort_value_fits(sort: str, value: Any) -> bool:
    if sort in _TEXT_SORTS:
        return isinstance(value, str) and len(value) <= 1024
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return (-_MAX_ID <= value <= _MAX_ID) if isinstance(value, int) else math.isfinite(value)


def _decode_cursor(cursor: str, tag: str, sort: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        made_for, value, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise InvalidParams("cursor", "is not a cursor returned by session.list") from None
    if made_for != tag:
        raise InvalidParams("cursor", "was made for another sort, order or filter; list again without it")
    if isinstance(row_id, bool) or not isinstance(row_id, int) or not 0 <= row_id <= _MAX_ID \
            or not _sort_value_fits(sort, value):
        raise InvalidParams("cursor", "is not a cursor returned by session.list")
    return value, row_id


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _haystack(cols: Any) -> Any:
    """The case-folded text `search` looks in (keys.folded_identity): the same on both databases."""
    # Literal SQL, not binds: PostgreSQL's trigram index is on this very expression (migration 0009).
    return cols.folded_identity.op("||")(literal_column("' '")).op("||")(
        func.coalesce(cols.folded_label, literal_column("''")))


def _substring_test(cols: Any, term: str) -> Any:
    """The search predicate evaluated row by row (% and _ literal), on case-folded text with the
    case-folded term (keys.folded_term), so no database's own notion of case takes part."""
    return _haystack(cols).like(_like_pattern(folded_term(term)), escape="\\")


def _trigram_match(term: str) -> Any:
    """SQLite: the condition on session_search that finds the sessions whose text may hold
    `term`, a superset that the callers test with _substring_test.

    A term of three or more characters needs each of its trigrams: the index keeps no positions
    (detail=none, migration 0013), a third of the size and two to four times faster to read from
    a cold cache. A shorter one has no trigram; LIKE (with ESCAPE, so SQLite itself evaluates it)
    then scans FTS5's compact copy of the text, several times faster than testing every
    sessions row."""
    term = folded_term(term)
    if len(term) >= 3:
        trigrams = dict.fromkeys(term[i:i + 3] for i in range(len(term) - 2))
        return text("session_search MATCH :trigrams").bindparams(
            trigrams=" AND ".join('"' + t.replace('"', '""') + '"' for t in trigrams))
    return text("session_search.text LIKE :pattern ESCAPE '\\'").bindparams(pattern=_like_pattern(term))


def _trigram_ilike(term: str) -> Any:
    """PostgreSQL: the search predicate as a pg_trgm-indexed LIKE over the same folded text."""
    return _haystack(sessions.c).like(_like_pattern(folded_term(term)), escape="\\")


def _query_clause(db: Database, cols: Any, words: Sequence[str], queued: Sequence[int]) -> Any:
    """Full-text search over message content (search_words' rule): sessions with at least one
    message holding every word."""
    if db.is_sqlite:
        ids = text(
            f"SELECT {search_index.sqlite_session_of('rowid')} AS session_id FROM message_search "
            "WHERE message_search MATCH :match"
        ).bindparams(match=search_index.sqlite_match(list(words)))
        return cols.id.in_(ids.columns(literal_column("session_id")))
    return cols.id.in_(search_index.postgresql_matching(list(words), queued))


@dataclass(frozen=True)
class _Filters:
    """The WHERE of one list call, buildable over `sessions` or over a subquery of it."""

    db: Database
    scope: Scope
    tenant: str | None
    agent: str | None
    channel: str | None
    query: str | None
    sort: str
    descending: bool
    cursor: tuple[Any, int] | None
    archived: str = "exclude"
    has_errors: bool = False
    words: tuple[str, ...] = ()  # the query's words (search_words)
    queued: tuple[int, ...] = ()  # PostgreSQL: sessions matched by messages not yet indexed
    dense: bool = False  # PostgreSQL: many indexed rows hold the words (search_index.postgresql_dense)

    def tenants(self) -> list[str] | None:
        """The tenants this call may read (None: every tenant)."""
        if self.tenant is not None:
            return [self.tenant]
        return None if self.scope.tenants is None else sorted(self.scope.tenants)

    def indexed(self, cols: Any, *, page: bool = True) -> list[Any]:
        """The conditions on the sort indexes' own columns (tenant, agent, channel, the cursor):
        a walk of a sort index tests them without reading a row."""
        conds = [self.scope.filter(cols.tenant, self.tenant)]
        if self.agent is not None:
            conds.append(cols.agent == self.agent)
        if self.channel is not None:
            conds.append(cols.channel == self.channel)
        if page and self.cursor is not None:
            value, row_id = self.cursor
            key = tuple_(cols[self.sort], cols.id)
            conds.append(key < tuple_(value, row_id) if self.descending else key > tuple_(value, row_id))
        return conds

    def where(self, cols: Any, *, page: bool = True) -> list[Any]:
        conds = self.indexed(cols, page=page)
        # "exclude" is a residual test on the sort index's walk (archived rows are few); "only"
        # matches the partial index ix_sessions_archived, whose WHERE is this same condition.
        if self.archived == "exclude":
            conds.append(cols.archived_at.is_(None))
        elif self.archived == "only":
            conds.append(cols.archived_at.isnot(None))
        if self.has_errors:
            conds.append(cols.error_count > 0)
        if self.query:
            conds.append(_query_clause(self.db, cols, self.words, self.queued))
        return conds

    def ordered(self, cols: Any) -> list[Any]:
        by = [cols[self.sort], cols.id]
        return [c.desc() for c in by] if self.descending else [c.asc() for c in by]


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
    archived: str = "exclude",
    has_errors: bool = False,
) -> dict[str, Any]:
    if sort not in SORT_COLUMNS:
        raise InvalidParams("sort", f"must be one of {', '.join(SORT_COLUMNS)}")
    if archived not in ARCHIVED_FILTERS:
        raise InvalidParams("archived", f"must be one of {', '.join(ARCHIVED_FILTERS)}")
    tag = _query_tag(sort, order, tenant, agent, channel, search, query, archived, has_errors)
    filters = _Filters(db, scope, tenant, agent, channel, query.strip() if query else None, sort,
                       order == "desc", _decode_cursor(cursor, tag, sort) if cursor else None, archived,
                       has_errors, tuple(search_words.words(query)) if query else ())
    if not search and not filters.query:
        return await _plain_list(filters, tag, limit)
    if filters.query and not filters.words:
        if filters.tenant is not None:
            scope.check(filters.tenant)
        # Nothing to look for (only punctuation): no message holds "every word" of nothing.
        return {"sessions": [], "total": 0, "total_capped": False, "next_cursor": None}
    if filters.query and db.is_sqlite:
        # Whatever appends queued since the indexer's last pass (usually nothing or one batch).
        await search_index.drain(db)
    async with db.read() as conn:
        if (search or filters.query) and not db.is_sqlite:
            # asyncpg prepares statements, and after five runs PostgreSQL may switch to a generic
            # plan, made without knowing the pattern: for a rare term's trigram ILIKE that plan
            # took 240 ms where the planned-for-the-value one took 40.
            await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        queued: dict[int, int] = {}
        if filters.query and not db.is_sqlite:
            queued = await search_index.queued_matches(conn, list(filters.words), filters.tenants())
            # Judged once: the sessions holding the words and the page's snippets follow it.
            dense = await search_index.postgresql_dense(conn, list(filters.words))
            filters = dataclasses.replace(filters, queued=tuple(sorted(queued)), dense=dense)
        if search:
            found, total, capped = await _search_page(conn, filters, search, limit)
        else:
            found, total, capped = await _query_page(conn, filters, limit)
        more = len(found) > limit
        found = found[:limit]
        snippet = await snippets.for_page(db, conn, [r.id for r in found], list(filters.words),
                                          queued, filters.dense) if filters.query else {}
    next_cursor = _encode_cursor(tag, getattr(found[-1], sort), found[-1].id) if more and found else None
    return {
        "sessions": [wire.session_row(r) | {"snippet": snippet.get(r.id)} for r in found],
        "total": total,
        "total_capped": capped,
        "next_cursor": next_cursor,
    }


def _facet_total_stmt(tenant_clause: Any, agent: Any, channel: Any, archived: str) -> Select[Any]:
    conds = [tenant_clause]
    if agent is not None:
        conds.append(facets.c.agent == agent)
    if channel is not None:
        conds.append(facets.c.channel == channel)
    counted = {"include": facets.c.sessions, "only": facets.c.archived,
               "exclude": facets.c.sessions - facets.c.archived}[archived]
    return select(func.coalesce(func.sum(counted), 0)).where(*conds)


# ---- the plain list: no `search`, no `query` ------------------------------------------------------

@dataclass(frozen=True)
class _PlainShape:
    """What the plain list's SQL depends on, values aside: its statements are built and compiled
    once for each shape (store.prepared) and the page and its total read in one trip."""

    sort: str
    descending: bool
    tenants: int | None  # how many tenants are bound (one named, or the scope's); None: every tenant
    agent: bool
    channel: bool
    archived: str
    has_errors: bool
    cursor: str | None  # None: the first page; else how the cursor's sort value is bound (_cursor_kind)


# What a row of the list carries: wire.session_row's columns (the sort columns among them).
_LISTED = [sessions.c[name] for name in wire.SESSION_ROW_COLUMNS]


def _tenant_binds(col: Any, count: int | None) -> list[Any]:
    if count is None:
        return []
    binds: list[Any] = [bindparam(f"tenant_{i}") for i in range(count)]
    return [col == binds[0]] if count == 1 else [col.in_(binds)]


@functools.lru_cache(maxsize=512)
def _plain_statements(db: Database, shape: _PlainShape) -> tuple[Prepared, Prepared]:
    """The page (`limit` rows) and its total: exact from the facet counters, or with
    `has_errors`, which no counter holds, counted up to the cap. The page carries the total as
    a column (computed once), so one statement answers; the total alone is for an empty page."""
    cols = sessions.c
    # Binds where _Filters takes values: the same WHERE, with the values bound per call.
    agent: Any = bindparam("agent") if shape.agent else None
    channel: Any = bindparam("channel") if shape.channel else None
    after_type = Float() if shape.cursor == "float" else cols[shape.sort].type
    after: Any = (bindparam("after", type_=after_type), bindparam("after_id", type_=cols.id.type))
    # The tenants are bound apart (_tenant_binds), so the filters' own scope is every tenant.
    f = _Filters(db, Scope.everything(), None, agent, channel, None, shape.sort, shape.descending,
                 after if shape.cursor else None, shape.archived, shape.has_errors)
    tenant = _tenant_binds(cols.tenant, shape.tenants)
    if shape.has_errors:
        total = _bounded_count_stmt([*tenant, *f.where(cols, page=False)])
    else:
        total = _facet_total_stmt(and_(*_tenant_binds(facets.c.tenant, shape.tenants)), agent, channel,
                                  shape.archived)
    page = (select(*_LISTED, total.scalar_subquery().label("page_total")).where(*tenant, *f.where(cols))
            .order_by(*f.ordered(cols)).limit(bindparam("limit")))
    return prepare(db, page), prepare(db, total)


def _read_plain(dbapi: Any, page: Prepared, total: Prepared, values: dict[str, Any]) -> tuple[list[Any], int]:
    """On the driver connection, in one snapshot: the page's rows and its total."""
    cursor = dbapi.cursor()
    try:
        rows = fetch(cursor, page.sql, page.bind(values))
        if rows:
            return rows, int(rows[0].page_total or 0)
        cursor.execute(total.sql, total.bind(values))
        return rows, int(cursor.fetchone()[0] or 0)
    finally:
        cursor.close()


def _cursor_kind(cursor: tuple[Any, int] | None) -> str | None:
    # A cursor's value is the sort column's own; but _sort_value_fits lets a number sort take a
    # float, which PostgreSQL must be sent as one (not bound as the integer column's type).
    if cursor is None:
        return None
    return "float" if isinstance(cursor[0], float) else "column"


async def _plain_list(f: _Filters, tag: str, limit: int) -> dict[str, Any]:
    if f.tenant is not None:
        f.scope.check(f.tenant)
        tenants: list[str] | None = [f.tenant]
    else:
        tenants = None if f.scope.tenants is None else sorted(f.scope.tenants)
    shape = _PlainShape(f.sort, f.descending, None if tenants is None else len(tenants), f.agent is not None,
                        f.channel is not None, f.archived, f.has_errors, _cursor_kind(f.cursor))
    page, total = _plain_statements(f.db, shape)
    values: dict[str, Any] = {"agent": f.agent, "channel": f.channel, "limit": limit + 1}
    if f.cursor is not None:
        values["after"], values["after_id"] = f.cursor
    values.update((f"tenant_{i}", t) for i, t in enumerate(tenants or ()))
    found, count = await f.db.read_on_driver(_read_plain, page, total, values)
    more = len(found) > limit
    found = found[:limit]
    rows = []
    for r in found:
        row = wire.session_row(r)
        row["snippet"] = None
        rows.append(row)
    capped = f.has_errors and count > SEARCH_TOTAL_CAP
    return {
        "sessions": rows,
        "total": min(count, SEARCH_TOTAL_CAP) if f.has_errors else count,
        "total_capped": capped,
        "next_cursor": _encode_cursor(tag, getattr(found[-1], f.sort), found[-1].id) if more and found else None,
    }


async def _search_page(conn: AsyncConnection, f: _Filters, term: str, limit: int
                       ) -> tuple[Sequence[Any], int, bool]:
    cols = sessions.c
    # 1. A common term: the first rows in sort order hold a full page.
    found = await _walk(conn, f, lambda cols: _substring_test(cols, term), limit,
                        lambda head: _head_test(head, term))
    if len(found) > limit:
        # Count within a bounded walk too: past it, the total is a lower bound ("N+"). The walk
        # follows the sort order, not storage order: an unordered LIMIT reached whatever rows the
        # planner scanned first (PostgreSQL: the heap's oldest), so a term common in the newest
        # sessions counted "0+" beside a full page. In sort order the first SCAN_BUDGET (<=
        # COUNT_SCAN) rows, which held the first page, are inside the walk.
        walked, total = (await conn.execute(_count_in_walk(f, term))).one()
        # A later page may lie past the walk; the limit + 1 matches just fetched exist whatever.
        total = max(int(total or 0), len(found))
        return found, min(total, SEARCH_TOTAL_CAP), walked >= COUNT_SCAN or total > SEARCH_TOTAL_CAP
    if not f.db.is_sqlite:
        # 3. PostgreSQL: pg_trgm and the planner decide.
        predicate = _trigram_ilike(term)
        stmt = select(sessions).where(*f.where(cols), predicate).order_by(*f.ordered(cols)).limit(limit + 1)
        found = (await conn.execute(stmt)).all()
        total, capped = await _bounded_count(conn, [*f.where(cols, page=False), predicate])
        return found, total, capped
    fts_ids = select(_FTS.c.rowid).where(_trigram_match(term))
    ids = (await conn.execute(fts_ids.limit(RARE_MATCHES + 1))).scalars().all()
    if len(ids) > RARE_MATCHES:
        # 2b. Many matches, none early in the sort order: walk the sort index testing membership.
        matched = and_(cols.id.in_(fts_ids), _substring_test(cols, term))
        stmt = select(sessions).where(*f.where(cols), matched).order_by(*f.ordered(cols)).limit(limit + 1)
        found = (await conn.execute(stmt)).all()
        total, capped = await _bounded_count(conn, [*f.where(cols, page=False), matched])
        return found, total, capped
    # 2a. A rare term: load its few candidates by id, then test, filter and sort just those.
    return (*await _page_among(conn, f, ids, limit, lambda c: _substring_test(c, term)), False)


async def _page_among(conn: AsyncConnection, f: _Filters, ids: Sequence[int], limit: int,
                      test: Callable[[Any], Any] | None = None) -> tuple[Sequence[Any], int]:
    """The page, and the exact total, among the sessions `ids` (at most RARE_MATCHES) that pass
    `test` if given: loaded by id (passed as one JSON parameter), then filtered and sorted. The
    LIMIT keeps SQLite from flattening the subquery back into a walk of a tenant or sort index."""
    cols = sessions.c
    if f.db.is_sqlite:
        listed: Any = select(literal_column("value")).select_from(func.json_each(json.dumps(list(ids))))
    else:
        listed = list(ids)
    few = select(sessions).where(cols.id.in_(listed)).limit(RARE_MATCHES + 1).subquery()
    tested = [] if test is None else [test(few.c)]
    stmt = select(few).where(*f.where(few.c), *tested).order_by(*f.ordered(few.c)).limit(limit + 1)
    found = (await conn.execute(stmt)).all()
    count = select(func.count()).select_from(select(few.c.id).where(*f.where(few.c, page=False), *tested)
                                              .subquery())
    return found, int((await conn.execute(count)).scalar() or 0)


# ---- `query`: the sessions holding the words, found from the index ------------------------------

# SQLite: the first QUERY_SESSIONS sessions holding the words, in id order, by one seek per
# session: the first match at or past the next session's first rowid (search_index.sqlite_rowid).
_SESSIONS_WITH_WORDS = text(
    "WITH RECURSIVE hit(sid) AS ("
    f"SELECT (SELECT rowid / {search_index.SESSION_SPAN} FROM message_search WHERE message_search MATCH :match "
    "ORDER BY rowid LIMIT 1) "
    f"UNION ALL SELECT (SELECT rowid / {search_index.SESSION_SPAN} FROM message_search "
    f"WHERE message_search MATCH :match AND rowid >= (hit.sid + 1) * {search_index.SESSION_SPAN} "
    "ORDER BY rowid LIMIT 1) FROM hit WHERE hit.sid IS NOT NULL LIMIT :cap"
    ") SELECT sid FROM hit WHERE sid IS NOT NULL")


def _holds_words(f: _Filters) -> Callable[[Any], Any]:
    """A row test for _walk: the session has a message holding every word. SQLite: a seek into
    its rowid range. PostgreSQL: a probe of its index rows, or one of the sessions matched by
    messages not indexed yet."""
    if f.db.is_sqlite:
        span = search_index.SESSION_SPAN
        match = search_index.sqlite_match(list(f.words))

        def seek(cols: Any) -> Any:
            rowid: Any = literal_column("message_search.rowid")
            return exists(select(literal_column("1")).select_from(table("message_search")).where(
                text("message_search MATCH :words").bindparams(words=match),
                rowid.between(cols.id * span, cols.id * span + (span - 1))))
        return seek
    indexed = table("message_search", column("session_id"))
    query = search_index.pg_tsquery(list(f.words))

    def probe(cols: Any) -> Any:
        held = exists(select(literal_column("1")).select_from(indexed).where(
            indexed.c.session_id == cols.id,
            text("message_search.document @@ CAST(:words AS tsquery)").bindparams(words=query)))
        return or_(held, cols.id.in_(list(f.queued))) if f.queued else held
    return probe


async def _query_page(conn: AsyncConnection, f: _Filters, limit: int) -> tuple[Sequence[Any], int, bool]:
    """`query`: exactly the first matches in sort order, by the first of three paths that
    applies. Few sessions hold the words (at most QUERY_SESSIONS, however many messages): find
    them all (SQLite: one seek per session into the index's rowids; PostgreSQL:
    search_index.postgresql_sessions_with_words), then filter and sort them (exact total). Many
    do: walk the sort index testing each session, stopping at the page's last match; the total
    is then a lower bound. Else (many, none early in the sort order): the membership test."""
    if f.db.is_sqlite:
        params = {"match": search_index.sqlite_match(list(f.words)), "cap": QUERY_SESSIONS + 1}
        ids = list((await conn.execute(_SESSIONS_WITH_WORDS, params)).scalars().all())
    else:
        ids = await search_index.postgresql_sessions_with_words(conn, list(f.words), QUERY_SESSIONS + 1, f.dense)
        ids = sorted(set(ids) | set(f.queued))
    unqueried = dataclasses.replace(f, query=None)
    if len(ids) <= QUERY_SESSIONS:
        found, total = await _page_among(conn, unqueried, ids, limit)
        return found, total, False
    found = await _walk(conn, unqueried, _holds_words(f), limit)
    if len(found) > limit:
        # At least the first QUERY_SESSIONS sessions that pass the filters match.
        _, among = await _page_among(conn, unqueried, ids, 0)
        return found, max(among, len(found)), True
    cols = sessions.c
    stmt = select(sessions).where(*f.where(cols)).order_by(*f.ordered(cols)).limit(limit + 1)
    found = (await conn.execute(stmt)).all()
    total, capped = await _bounded_count(conn, f.where(cols, page=False))
    return found, total, capped


async def _walk(conn: AsyncConnection, f: _Filters, test: Callable[[Any], Any], limit: int,
                entry_test: Callable[[Any], Any] | None = None) -> Sequence[Any]:
    """Up to limit + 1 matches from the first SCAN_BUDGET entries of the sort index, each row
    tested (`test(columns)`: the search term, or a query's words) as the walk reaches it: the walk stops at the page's last match, a few rows in for a
    common term. When the budget held some matches but not a page, the walk goes on as far as
    their density says the page needs, up to WALK_ON budgets in all (a term in one session of
    a hundred, say, whose page lies just past the budget: the trigram index would have had
    every tenant's matches read to sort them); with none it ends for the trigram index."""
    cols = sessions.c
    found: list[Any] = []
    walked, budget, after = 0, SCAN_BUDGET, None
    upto: tuple[Any, int] | None
    while True:
        upto = await _nth_key(conn, f, walked + budget)
        conds = f.where(cols)
        if after is not None:
            conds.append(_beyond(f, cols, after))
        stmt = _walk_step(f, conds, upto, test, entry_test, budget, limit + 1 - len(found))
        found += list((await conn.execute(stmt)).all())
        walked += budget
        if len(found) > limit or upto is None or not found:
            return found
        needed = (limit + 1 - len(found)) * walked / len(found)
        if walked + needed > SCAN_BUDGET * WALK_ON:
            return found
        budget, after = math.ceil(needed * 1.25), upto


def _walk_step(f: _Filters, conds: list[Any], upto: tuple[Any, int] | None, test: Callable[[Any], Any],
               entry_test: Callable[[Any], Any] | None, budget: int, wanted: int) -> Select[Any]:
    """The first `wanted` rows passing `test` among the first `budget` of `conds` (the last of
    them at `upto`), in sort order, the walk stopping at the last match. SQLite: the walk up to
    `upto` on the sort index. PostgreSQL, given that range, would rather read all of it through
    a bitmap and sort it (30-40 ms, or intersect it with the trigram index); a walk under a
    LIMIT of `budget` keeps it on the sort index, whose order the outer query keeps.

    `entry_test` (search) tests an entry of ix_sessions_search_walk (migration 0013) on its
    text, PostgreSQL's search_head: then the walk reads index entries, rows only for matches."""
    cols = sessions.c
    if f.db.is_sqlite:
        within = [] if upto is None else [~_beyond(f, cols, upto)]
        if entry_test is None:
            stmt = select(sessions).where(*conds, *within, test(cols))
            return stmt.order_by(*f.ordered(cols)).limit(wanted)
        # The matches' ids first, from what the walk tests alone (ix_sessions_search_walk holds
        # it for the default list), then just their rows.
        ids = select(cols.id).where(*conds, *within, test(cols))
        matched = cols.id.in_(ids.order_by(*f.ordered(cols)).limit(wanted))
        return select(sessions).where(matched).order_by(*f.ordered(cols))
    if entry_test is None:
        walk = select(sessions).where(*conds).order_by(*f.ordered(cols)).limit(budget).subquery()
        return select(walk).where(test(walk.c)).order_by(*f.ordered(walk.c)).limit(wanted)
    entries = _walked(f, conds).limit(budget).subquery()
    # One OR over both sides: no condition on sessions alone that its trigram index could serve.
    matches = or_(entry_test(entries.c.head), and_(entries.c.head.is_(None), test(cols)))
    return (select(sessions).join(entries, entries.c.id == cols.id).where(matches)
            .order_by(*f.ordered(entries.c)).limit(wanted))


def _walked(f: _Filters, conds: list[Any]) -> Select[Any]:
    """PostgreSQL: the entries of ix_sessions_search_walk (migration 0013) under `conds`, in sort
    order, with search_head, the folded text when short enough for an index entry (else null:
    the row holds it)."""
    cols = sessions.c
    head: Any = literal_column("sessions.search_head").label("head")
    return select(cols.id, cols[f.sort], head).where(*conds).order_by(*f.ordered(cols))


def _head_test(head: Any, term: str) -> Any:
    return head.like(_like_pattern(folded_term(term)), escape="\\")


def _count_in_walk(f: _Filters, term: str) -> Select[int, Any]:
    """The entries (up to COUNT_SCAN) of the sort order and the matches among them, tested on
    the walk index's entries (a row is read only where PostgreSQL's search_head is null)."""
    cols = sessions.c
    if f.db.is_sqlite:
        sample = (select(*_WALKED).where(*f.where(cols, page=False)).order_by(*f.ordered(cols))
                  .limit(COUNT_SCAN).subquery())
        return select(func.count(), func.sum(case((_substring_test(sample.c, term), 1), else_=0))).select_from(sample)
    sample = _walked(f, f.where(cols, page=False)).limit(COUNT_SCAN).subquery()
    in_row = select(func.count()).where(cols.id == sample.c.id, _substring_test(cols, term)).scalar_subquery()
    hits = func.sum(case((_head_test(sample.c.head, term), 1), (sample.c.head.is_(None), in_row), else_=0))
    return select(func.count(), hits).select_from(sample)


def _beyond(f: _Filters, cols: Any, key: tuple[Any, int]) -> Any:
    """Rows after `key` in the sort order."""
    at = tuple_(cols[f.sort], cols.id)
    return at < tuple_(*key) if f.descending else at > tuple_(*key)


async def _nth_key(conn: AsyncConnection, f: _Filters, n: int) -> tuple[Any, int] | None:
    """The sort key of the n-th entry of the sort index under the indexed filters (an index-only
    walk, archived sessions counted too), or None when it holds fewer."""
    cols = sessions.c
    stmt = select(cols[f.sort], cols.id).where(*f.indexed(cols)).order_by(*f.ordered(cols)).offset(n - 1).limit(1)
    row = (await conn.execute(stmt)).first()
    return None if row is None else (row[0], row[1])


async def _bounded_count(conn: AsyncConnection, where: Sequence[Any]) -> tuple[int, bool]:
    """Count matches up to SEARCH_TOTAL_CAP; past it the total is reported as capped."""
    count = int((await conn.execute(_bounded_count_stmt(where))).scalar() or 0)
    return min(count, SEARCH_TOTAL_CAP), count > SEARCH_TOTAL_CAP


def _bounded_count_stmt(where: Sequence[Any]) -> Select[Any]:
    bounded = select(sessions.c.id).where(and_(*where)).limit(SEARCH_TOTAL_CAP + 1).subquery()
    return select(func.count()).select_from(bounded)
