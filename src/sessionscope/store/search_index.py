"""Message search, indexed off the append path.

An append only queues its seq range in `search_backlog`, in its own transaction. `index_queued`
turns queued ranges into search rows: FTS5 rows on SQLite, one GIN-indexed tsvector per message
in `message_search` on PostgreSQL. A running server indexes in the background (store work that
overlaps the next request's parsing instead of lengthening every append), and CLI writers drain
the queue before they exit. A search never misses a committed message: on SQLite it drains the
queue first, on PostgreSQL it also scans the ranges still queued (`postgresql_matching`).

No message can stop the queue. On PostgreSQL a message is indexed in overlapping chunks of
CHUNK_CHARS characters, one `message_search` row each, so no tsvector can pass PostgreSQL's 1 MB
limit whatever the text (a query matches a message when all its words fall in one chunk). A range
that still fails to index is set aside in `search_failed` (logged; the metric
`sessionscope_search_ranges_set_aside` and `sessionscope check` report it) and the queue moves on.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from sqlalchemy import TextualSelect, literal_column, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope.clock import now_ms
from sessionscope.store.database import Database

log = logging.getLogger("sessionscope.search")

RANGES_PER_PASS = 200
# A 100,000-character chunk makes a tsvector of at most about 500 KB (distinct CJK two-character
# words, the densest text measured), half of PostgreSQL's limit. Chunks overlap so that a word
# cut by one chunk's end is whole in the next.
CHUNK_CHARS = 100_000
CHUNK_OVERLAP = 1_000
_STEP = CHUNK_CHARS - CHUNK_OVERLAP
MAX_ERROR_CHARS = 500


def _pg_chunks(content: str) -> str:
    """FROM-clause item: the chunk numbers n of `content` (a column), as c(n)."""
    return f"generate_series(0, greatest(length({content}) - {CHUNK_OVERLAP + 1}, 0) / {_STEP}) AS c(n)"


def _pg_chunk_document(content: str) -> str:
    return f"to_tsvector('simple', substr({content}, c.n * {_STEP} + 1, {CHUNK_CHARS}))"


# ---- SQLite: one writer at a time, so a pass simply takes the oldest ranges ---------------------

_SQLITE_OLDEST = "SELECT id, session_id, first_seq, last_seq FROM search_backlog ORDER BY id LIMIT ?"
_SQLITE_OF_SESSION = "SELECT id, session_id, first_seq, last_seq FROM search_backlog WHERE session_id = ?"
_SQLITE_INDEX = ("INSERT INTO message_search(rowid, content) SELECT id, content FROM messages "
                 "WHERE session_id = ? AND seq BETWEEN ? AND ?")
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
_INDEX = (
    "INSERT INTO message_search (message_id, chunk, session_id, document) "
    f"SELECT m.id, c.n, m.session_id, {_pg_chunk_document('m.content')} "
    "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS queued(session_id, first_seq, last_seq) "
    # LATERAL: one probe of (session_id, seq) per range, whatever the statistics say.
    "CROSS JOIN LATERAL (SELECT id, session_id, content FROM messages WHERE session_id = queued.session_id "
    "AND seq BETWEEN queued.first_seq AND queued.last_seq) AS m "
    f"CROSS JOIN LATERAL {_pg_chunks('m.content')} "
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
                cursor.execute(_SQLITE_INDEX, (session_id, first_seq, last_seq))
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


async def _index_postgresql(conn: AsyncConnection, ready: list[tuple[int, int, int]]) -> None:
    """Index the ranges in one statement; if it fails, range by range, setting aside those that
    fail alone, so that no range can keep the rest of the queue from being indexed."""
    try:
        async with conn.begin_nested():
            await conn.exec_driver_sql(_INDEX, _columns(ready))
        return
    except DBAPIError:
        pass
    for one in ready:
        try:
            async with conn.begin_nested():
                await conn.exec_driver_sql(_INDEX, _columns([one]))
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


def postgresql_matching(query: str, tenants: list[str] | None) -> TextualSelect:
    """PostgreSQL: the ids of sessions with a message matching `query`: the indexed messages, plus
    those whose ranges the indexer has not reached yet, so a search never lags the appends.

    The queued part reads message text, so it is limited to the caller's tenants (`None`: every
    tenant): another tenant's backlog costs a search nothing. It builds its documents chunk by
    chunk, as the indexer does, so that no message can make it fail."""
    scoped = "" if tenants is None else (
        "JOIN sessions AS s ON s.id = queued.session_id AND s.tenant = ANY(CAST(:tenants AS varchar[])) ")
    statement = text(
        "SELECT session_id FROM message_search WHERE document @@ plainto_tsquery('simple', :query) "
        f"UNION ALL SELECT m.session_id FROM search_backlog AS queued {scoped}CROSS JOIN LATERAL "
        "(SELECT session_id, content FROM messages WHERE session_id = queued.session_id "
        "AND seq BETWEEN queued.first_seq AND queued.last_seq) AS m "
        f"WHERE EXISTS (SELECT 1 FROM {_pg_chunks('m.content')} "
        f"WHERE {_pg_chunk_document('m.content')} @@ plainto_tsquery('simple', :query))"
    ).bindparams(query=query)
    if tenants is not None:
        statement = statement.bindparams(tenants=tenants)
    return statement.columns(literal_column("session_id"))


async def before_deleting_messages(db: Database, conn: AsyncConnection, session_id: int,
                                   message_id: int | None = None) -> None:
    """Keep the index exact when a session, or one of its messages, is deleted in `conn`'s
    transaction (which holds the session, so no indexer pass can interleave).

    SQLite: FTS5 removes a message's entries (by trigger) with the text it indexed, and must not
    be asked to remove what it never indexed; so the session's queued ranges are indexed first.
    PostgreSQL: the search rows are deleted; queued ranges find nothing left to index."""
    if message_id is None:
        await conn.exec_driver_sql(f"DELETE FROM search_failed WHERE session_id = {db.placeholders(1)}",
                                   (session_id,))
    if db.is_sqlite:
        def index_session(dbapi: Any) -> int:
            return _index_sqlite_ranges(dbapi, dbapi.execute(_SQLITE_OF_SESSION, (session_id,)).fetchall())

        await db.run_on_driver(conn, index_session)
    elif message_id is None:
        await conn.exec_driver_sql("DELETE FROM message_search WHERE session_id = $1", (session_id,))
    else:
        await conn.exec_driver_sql("DELETE FROM message_search WHERE message_id = $1", (message_id,))
