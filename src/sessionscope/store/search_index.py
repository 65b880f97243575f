"""Message search, indexed off the append path.

An append only queues its seq range in `search_backlog`, in its own transaction. `index_queued`
turns queued ranges into search rows: FTS5 rows on SQLite, one GIN-indexed tsvector per message
in `message_search` on PostgreSQL. A running server indexes in the background (store work that
overlaps the next request's parsing instead of lengthening every append), and CLI writers drain
the queue before they exit. A search never misses a committed message: on SQLite it drains the
queue first, on PostgreSQL it also scans the ranges still queued (`postgresql_matching`).

Both databases index the words of one rule, sessionscope.search_words (Python's case folding),
so a query finds the same messages on each: SQLite's FTS5 table holds each message's words split
by the `ascii` tokenizer (which changes nothing), PostgreSQL's `message_search` holds them as
lexemes (array_to_tsvector), queried as quoted lexemes. Neither database's parser sees the text.

No message can stop the queue. On PostgreSQL a message's distinct words are stored in chunks of
at most CHUNK_BYTES, one `message_search` row each, so no tsvector can pass PostgreSQL's 1 MB
limit whatever the text (a query matches a message when all its words fall in one chunk, which
for any message under CHUNK_BYTES of distinct words is always). A range that still fails to index
is set aside in `search_failed` (logged; the metric `sessionscope_search_ranges_set_aside` and
`sessionscope check` report it) and the queue moves on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import TextualSelect, literal_column, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope import search_words
from sessionscope.clock import now_ms
from sessionscope.store.database import Database

log = logging.getLogger("sessionscope.search")
T = TypeVar("T")

RANGES_PER_PASS = 200
# A quarter of PostgreSQL's 1 MB tsvector limit, leaving room for its per-lexeme overhead.
CHUNK_BYTES = 256 * 1024
# Message text read into the indexer at once (PostgreSQL), so a pass stays bounded in memory.
READ_BYTES = 8 * 1024 * 1024
# Past this much text, words are found on a thread, not on the event loop.
THREAD_BYTES = 64 * 1024
MAX_ERROR_CHARS = 500


def sqlite_match(words: list[str]) -> str:
    """SQLite: the FTS5 query for messages holding every word (each a quoted one-word phrase)."""
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def pg_tsquery(words: list[str]) -> str:
    """PostgreSQL: the tsquery for messages holding every word, as quoted lexemes, which the
    tsquery input takes as they are (no parser, no dictionary)."""
    return " & ".join("'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in words)


def _pg_chunks(words: list[str]) -> list[str]:
    """A message's words as the documents of its `message_search` rows, each at most CHUNK_BYTES
    (the words of one document are joined by spaces, which no word holds)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for word in words:
        length = len(word.encode()) + 1
        if current and size + length > CHUNK_BYTES:
            chunks.append(" ".join(current))
            current, size = [], 0
        current.append(word)
        size += length
    chunks.append(" ".join(current))
    return chunks


# ---- SQLite: one writer at a time, so a pass simply takes the oldest ranges ---------------------

_SQLITE_OLDEST = "SELECT id, session_id, first_seq, last_seq FROM search_backlog ORDER BY id LIMIT ?"
# SQLite numbers a message's index row by its session and seq (session_id * 2^32 + seq), not by
# its id: a match names its session with no join to `messages`, and the matches of one session
# are one rowid range, which FTS5 seeks into. (Session ids stay below 2^31, seqs below 2^32.)
SESSION_SPAN = 2**32


def sqlite_rowid(session_id: str, seq: str) -> str:
    """SQL: the index rowid of the message of `session_id` and `seq` (column names)."""
    return f"({session_id} * {SESSION_SPAN} + {seq})"


def rowid_of(session_id: int, seq: int) -> int:
    """The index rowid of a message (sqlite_rowid, in Python)."""
    return session_id * SESSION_SPAN + seq


def sqlite_session_of(rowid: str) -> str:
    """SQL: the session id an index rowid names."""
    return f"({rowid} / {SESSION_SPAN})"


# search_document: search_words.document, registered on every SQLite connection (store.database).
# OR REPLACE: a message can be in two queued ranges (a popped seq appended again), and indexing
# it twice must neither fail nor index it twice.
SQLITE_INDEX = (f"INSERT OR REPLACE INTO message_search(rowid, words) SELECT {sqlite_rowid('session_id', 'seq')}, "
                "search_document(content) FROM messages WHERE session_id = ? AND seq BETWEEN ? AND ?")
# The words given (search_words.document of the message's content, found beforehand).
SQLITE_INDEX_WORDS = "INSERT OR REPLACE INTO message_search(rowid, words) VALUES (?, ?)"
_SQLITE_DONE = "DELETE FROM search_backlog WHERE id = ?"
_SET_ASIDE = ("INSERT INTO search_failed (session_id, first_seq, last_seq, error, failed_at) "
              "VALUES ({})")

# ---- PostgreSQL: several server processes share the queue -----------------------------------------

# The oldest queued ranges no other indexer holds; deleted now, kept if the pass rolls back.
_CLAIM = ("DELETE FROM search_backlog WHERE id IN (SELECT id FROM search_backlog ORDER BY id LIMIT $1 "
          "FOR UPDATE SKIP LOCKED) RETURNING session_id, first_seq, last_seq")
# KEY SHARE does not conflict with an append's row lock, but it does with the FOR UPDATE of a pop
# or a delete, so neither can remove messages between this read and the commit. SKIP LOCKED: a
# session busy that way is indexed on a later pass, and an indexer never waits in a lock cycle.
_HOLD = "SELECT id FROM sessions WHERE id = ANY($1::bigint[]) ORDER BY id FOR KEY SHARE SKIP LOCKED"
_EXISTING = "SELECT id FROM sessions WHERE id = ANY($1::bigint[])"
# The messages of the queued ranges (id, session, text size); their text is read by id, in parts.
_QUEUED_MESSAGES = (
    "SELECT m.id, m.session_id, octet_length(m.content) "
    "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS queued(session_id, first_seq, last_seq) "
    # LATERAL: one probe of (session_id, seq) per range, whatever the statistics say.
    "CROSS JOIN LATERAL (SELECT id, session_id, content FROM messages WHERE session_id = queued.session_id "
    "AND seq BETWEEN queued.first_seq AND queued.last_seq) AS m"
)
_CONTENT = "SELECT id, session_id, content FROM messages WHERE id = ANY($1::bigint[])"
_INDEX = (
    "INSERT INTO message_search (message_id, chunk, session_id, document) "
    "SELECT m, c, s, array_to_tsvector(string_to_array(d, ' ')) "
    "FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::text[]) AS t(m, c, s, d) "
    "ON CONFLICT (message_id, chunk) DO NOTHING"
)
_REQUEUE = ("INSERT INTO search_backlog (session_id, first_seq, last_seq) "
            "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])")


def queue_statement(db: Database) -> str:
    """The INSERT an append runs, with (session_id, first_seq, last_seq), to queue its messages."""
    return f"INSERT INTO search_backlog (session_id, first_seq, last_seq) VALUES ({db.placeholders(3)})"


_wakeups: weakref.WeakKeyDictionary[Database, asyncio.Event] = weakref.WeakKeyDictionary()


def wakeup(db: Database) -> asyncio.Event:
    """Set by SQLite appends, so the indexer starts on their ranges within milliseconds rather
    than at its next idle poll."""
    event = _wakeups.get(db)
    if event is None:
        event = _wakeups[db] = asyncio.Event()
    return event


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]


def _index_sqlite_ranges(dbapi: Any, ranges: list[tuple[int, int, int, int]]) -> int:
    import sqlite3

    cursor = dbapi.cursor()
    try:
        for range_id, session_id, first_seq, last_seq in ranges:
            cursor.execute("SAVEPOINT search_range")
            try:
                cursor.execute(SQLITE_INDEX, (session_id, first_seq, last_seq))
            except sqlite3.Error as error:
                cursor.execute("ROLLBACK TO search_range")
                _log_set_aside(session_id, first_seq, last_seq, error)
                cursor.execute(_SET_ASIDE.format("?, ?, ?, ?, ?"),
                               (session_id, first_seq, last_seq, _error_text(error), now_ms()))
            cursor.execute("RELEASE search_range")
            cursor.execute(_SQLITE_DONE, (range_id,))
    finally:
        cursor.close()
    return len(ranges)


def _log_set_aside(session_id: int, first_seq: int, last_seq: int, error: BaseException) -> None:
    log.error("search index: set aside session %s seqs %s..%s, which failed to index: %s",
              session_id, first_seq, last_seq, _error_text(error))


def _index_oldest_sqlite(dbapi: Any, limit: int) -> int:
    ranges = dbapi.execute(_SQLITE_OLDEST, (limit,)).fetchall()
    return _index_sqlite_ranges(dbapi, ranges)


def _columns(ranges: list[tuple[int, int, int]]) -> tuple[list[int], list[int], list[int]]:
    return [r[0] for r in ranges], [r[1] for r in ranges], [r[2] for r in ranges]


async def _read_parts(conn: AsyncConnection, listed: list[Any]) -> AsyncIterator[list[tuple[int, int, str]]]:
    """The messages `listed` as (id, session_id, text size), read as (id, session_id, content) in
    parts of at most READ_BYTES of text (or one message, if larger): a pass over a backlog of
    large messages never holds it all at once."""
    part: list[int] = []
    size = 0
    for message_id, _session_id, length in listed:
        if part and size + (length or 0) > READ_BYTES:
            yield [tuple(r) for r in (await conn.exec_driver_sql(_CONTENT, (part,))).all()]
            part, size = [], 0
        part.append(message_id)
        size += length or 0
    if part:
        yield [tuple(r) for r in (await conn.exec_driver_sql(_CONTENT, (part,))).all()]


async def _off_loop(fn: Callable[[list[tuple[int, int, str]]], T], part: list[tuple[int, int, str]]) -> T:
    """Finding words is Python work, about a microsecond a word: past THREAD_BYTES of text it runs
    on a thread, so other requests are served meanwhile."""
    if sum(len(content) for _, _, content in part) > THREAD_BYTES:
        return await asyncio.to_thread(fn, part)
    return fn(part)


def _index_rows(part: list[tuple[int, int, str]]) -> tuple[list[int], list[int], list[int], list[str]]:
    ids: list[int] = []
    chunks: list[int] = []
    session_ids: list[int] = []
    documents: list[str] = []
    for message_id, session_id, content in part:
        for n, document in enumerate(_pg_chunks(search_words.words(content))):
            ids.append(message_id)
            chunks.append(n)
            session_ids.append(session_id)
            documents.append(document)
    return ids, chunks, session_ids, documents


async def _index_pg_ranges(conn: AsyncConnection, ranges: list[tuple[int, int, int]]) -> None:
    listed = (await conn.exec_driver_sql(_QUEUED_MESSAGES, _columns(ranges))).all()
    async for part in _read_parts(conn, list(listed)):
        await conn.exec_driver_sql(_INDEX, await _off_loop(_index_rows, part))


async def _index_postgresql(conn: AsyncConnection, ready: list[tuple[int, int, int]]) -> None:
    """Index the ranges together; if that fails, range by range, setting aside those that fail
    alone, so that no range can keep the rest of the queue from being indexed."""
    try:
        async with conn.begin_nested():
            await _index_pg_ranges(conn, ready)
        return
    except DBAPIError:
        pass
    for one in ready:
        try:
            async with conn.begin_nested():
                await _index_pg_ranges(conn, [one])
        except DBAPIError as error:
            _log_set_aside(*one, error.orig or error)
            await conn.exec_driver_sql(_SET_ASIDE.format("$1, $2, $3, $4, $5"),
                                       (*one, _error_text(error.orig or error), now_ms()))


async def _index_oldest_postgresql(db: Database, limit: int) -> int:
    async with db.write() as conn:
        claimed = [tuple(r) for r in (await conn.exec_driver_sql(_CLAIM, (limit,))).all()]
        if not claimed:
            return 0
        ids = sorted({r[0] for r in claimed})
        held = {r[0] for r in (await conn.exec_driver_sql(_HOLD, (ids,))).all()}
        ready = [r for r in claimed if r[0] in held]
        if ready:
            await _index_postgresql(conn, ready)
        later: list[tuple[int, int, int]] = []
        busy_ids = [i for i in ids if i not in held]
        if busy_ids:
            busy = {r[0] for r in (await conn.exec_driver_sql(_EXISTING, (busy_ids,))).all()}
            later = [r for r in claimed if r[0] in busy]
            if later:
                await conn.exec_driver_sql(_REQUEUE, _columns(later))
    return len(claimed) - len(later)


async def index_queued(db: Database, limit: int = RANGES_PER_PASS) -> int:
    """Index up to `limit` queued ranges in one transaction; returns how many left the queue for
    good (0 when it is empty). On PostgreSQL, ranges of sessions deleted since are dropped, and
    those of a session a pop or delete holds right now go back to the queue."""
    if db.is_sqlite:
        return await db.write_on_driver(_index_oldest_sqlite, limit)
    return await _index_oldest_postgresql(db, limit)


async def drain(db: Database) -> int:
    """Index everything queued; returns the number of ranges."""
    total = 0
    while count := await index_queued(db):
        total += count
    return total


async def queued(db: Database) -> int:
    """Ranges waiting to be indexed."""
    async with db.read() as conn:
        return int((await conn.exec_driver_sql("SELECT count(*) FROM search_backlog")).scalar_one())


async def set_aside(db: Database) -> int:
    """Ranges that failed to index and were set aside (the search does not find their messages)."""
    async with db.read() as conn:
        return int((await conn.exec_driver_sql("SELECT count(*) FROM search_failed")).scalar_one())


def postgresql_matching(words: list[str], queued: Iterable[int]) -> TextualSelect:
    """PostgreSQL: the ids of sessions with an indexed message holding every word, plus `queued`
    (queued_matches: those matched by messages the indexer has not reached yet), so a search
    never lags the appends."""
    return text(
        "SELECT session_id FROM message_search WHERE document @@ CAST(:query AS tsquery) "
        "UNION ALL SELECT unnest(CAST(:queued AS bigint[]))"
    ).bindparams(query=pg_tsquery(words), queued=sorted(set(queued))).columns(literal_column("session_id"))


# PostgreSQL: the first sessions (in id order) with an indexed message holding every word. For
# a dense query (at least DENSE_FRACTION of the indexed rows hold the words, by the planner's
# estimate from the tsvector statistics), one probe of the session index per session: a few
# hundred rows past the last session found at most, read in index order. For a sparse one, the
# GIN index's matches. Each GIN match costs a heap page (the session id is in the row, about
# 11 us each from the page cache: 220 ms for 20,000); the probe stops at the first match.
DENSE_FRACTION = 0.005
_PG_ESTIMATE = ("EXPLAIN (FORMAT JSON) SELECT 1 FROM message_search WHERE document @@ CAST($1 AS tsquery)")
_PG_INDEXED = "SELECT reltuples FROM pg_class WHERE oid = 'message_search'::regclass"
_PG_DENSE = (
    "WITH RECURSIVE hit(sid) AS ("
    "(SELECT session_id FROM message_search WHERE document @@ CAST($1 AS tsquery) ORDER BY session_id LIMIT 1) "
    "UNION ALL SELECT (SELECT session_id FROM message_search WHERE document @@ CAST($1 AS tsquery) "
    "AND session_id > hit.sid ORDER BY session_id LIMIT 1) FROM hit WHERE hit.sid IS NOT NULL"
    ") SELECT sid FROM hit WHERE sid IS NOT NULL LIMIT $2")
_PG_SPARSE = ("SELECT session_id FROM message_search WHERE document @@ CAST($1 AS tsquery) "
              "GROUP BY session_id ORDER BY session_id LIMIT $2")


def _estimated_rows(plan: Any) -> float:
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


async def postgresql_dense(conn: AsyncConnection, words: list[str]) -> bool:
    """PostgreSQL: whether many indexed rows hold every word, by the planner's estimate. A dense
    query is answered by walking the session index, a sparse one from the GIN index."""
    plan = (await conn.exec_driver_sql(_PG_ESTIMATE, (pg_tsquery(words),))).scalar_one()
    indexed = float((await conn.exec_driver_sql(_PG_INDEXED)).scalar_one() or 0)
    if indexed <= 0:  # never analyzed: no statistics to judge by; the GIN path costs what it finds
        return DENSE_FRACTION == 0
    return _estimated_rows(plan) >= DENSE_FRACTION * indexed


async def postgresql_sessions_with_words(conn: AsyncConnection, words: list[str], limit: int,
                                         dense: bool) -> list[int]:
    """PostgreSQL: up to `limit` sessions, lowest ids first, with an indexed message holding
    every word; `dense` as postgresql_dense judged the words."""
    query = pg_tsquery(words)
    if not dense:
        return [int(r[0]) for r in (await conn.exec_driver_sql(_PG_SPARSE, (query, limit))).all()]
    # The probes must walk the session index: a bitmap would build every match's again.
    await conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
    try:
        return [int(r[0]) for r in (await conn.exec_driver_sql(_PG_DENSE, (query, limit))).all()]
    finally:
        await conn.exec_driver_sql("SET LOCAL enable_bitmapscan = on")


def _first_holding(wanted: frozenset[str]) -> Callable[[list[tuple[int, int, str]]], dict[int, int]]:
    def first(part: list[tuple[int, int, str]]) -> dict[int, int]:
        found: dict[int, int] = {}
        for message_id, session_id, content in part:
            if message_id < found.get(session_id, message_id + 1) and wanted <= set(search_words.words(content)):
                found[session_id] = message_id
        return found
    return first


async def queued_matches(conn: AsyncConnection, words: list[str], tenants: list[str] | None,
                         session_ids: list[int] | None = None) -> dict[int, int]:
    """PostgreSQL: session id -> its first queued (not yet indexed) message holding every word,
    tested by the same rule in Python. The scan is limited to the caller's tenants (`None`:
    every tenant), or to `session_ids`: another tenant's backlog costs a search nothing. The
    backlog is what the indexer has not reached, usually nothing or a few batches."""
    where: list[str] = []
    params: list[Any] = []
    if tenants is not None:
        params.append(tenants)
        where.append(f"s.tenant = ANY(${len(params)}::varchar[])")
    if session_ids is not None:
        params.append(session_ids)
        where.append(f"queued.session_id = ANY(${len(params)}::bigint[])")
    scoped = "" if not where else "JOIN sessions AS s ON s.id = queued.session_id AND " + " AND ".join(where) + " "
    listed = (await conn.exec_driver_sql(
        "SELECT m.id, m.session_id, octet_length(m.content) FROM search_backlog AS queued "
        f"{scoped}CROSS JOIN LATERAL (SELECT id, session_id, content FROM messages "
        "WHERE session_id = queued.session_id AND seq BETWEEN queued.first_seq AND queued.last_seq) AS m",
        tuple(params))).all()
    found: dict[int, int] = {}
    first = _first_holding(frozenset(words))
    async for part in _read_parts(conn, list(listed)):
        for session_id, message_id in (await _off_loop(first, part)).items():
            found[session_id] = min(message_id, found.get(session_id, message_id))
    return found


async def before_deleting_messages(db: Database, conn: AsyncConnection, session_id: int,
                                   message_id: int | None = None) -> None:
    """Keep the index exact when a session, or one of its messages, is deleted in `conn`'s
    transaction (which holds the session, so no indexer pass can interleave).

    SQLite: a trigger deletes a message's index row by rowid (a row never indexed is no
    matter); a deleted session's queued ranges are dropped. PostgreSQL: the search rows are
    deleted; queued ranges find nothing left to index."""
    if message_id is None:
        await conn.exec_driver_sql(f"DELETE FROM search_failed WHERE session_id = {db.placeholders(1)}",
                                   (session_id,))
    if db.is_sqlite:
        if message_id is None:
            await conn.exec_driver_sql("DELETE FROM search_backlog WHERE session_id = ?", (session_id,))
        return
    if message_id is None:
        await conn.exec_driver_sql("DELETE FROM message_search WHERE session_id = $1", (session_id,))
    else:
        await conn.exec_driver_sql("DELETE FROM message_search WHERE message_id = $1", (message_id,))
