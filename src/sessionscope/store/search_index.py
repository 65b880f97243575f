"""Message search, indexed off the append path.

An append only queues its seq range in `search_backlog`, in its own transaction. `index_queued`
turns queued ranges into search rows: FTS5 rows on SQLite, one GIN-indexed tsvector per message
in `message_search` on PostgreSQL. A running server indexes in the background (store work that
overlaps the next request's parsing instead of lengthening every append), and CLI writers drain
the queue before they exit. A search never misses a committed message: on SQLite it drains the
queue first, on PostgreSQL it also scans the ranges still queued (store.listing).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope.store.database import Database

RANGES_PER_PASS = 200

# ---- SQLite: one writer at a time, so a pass simply takes the oldest ranges ---------------------

_SQLITE_OLDEST = "SELECT id, session_id, first_seq, last_seq FROM search_backlog ORDER BY id LIMIT ?"
_SQLITE_OF_SESSION = "SELECT id, session_id, first_seq, last_seq FROM search_backlog WHERE session_id = ?"
_SQLITE_INDEX = ("INSERT INTO message_search(rowid, content) SELECT id, content FROM messages "
                 "WHERE session_id = ? AND seq BETWEEN ? AND ?")
_SQLITE_DONE = "DELETE FROM search_backlog WHERE id = ?"

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
    "INSERT INTO message_search (message_id, session_id, document) "
    "SELECT m.id, m.session_id, to_tsvector('simple', m.content) "
    "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS queued(session_id, first_seq, last_seq) "
    # LATERAL: one probe of (session_id, seq) per range, whatever the statistics say.
    "CROSS JOIN LATERAL (SELECT id, session_id, content FROM messages WHERE session_id = queued.session_id "
    "AND seq BETWEEN queued.first_seq AND queued.last_seq) AS m "
    "ON CONFLICT (message_id) DO NOTHING"
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


def _index_sqlite_ranges(dbapi: Any, ranges: list[tuple[int, int, int, int]]) -> int:
    cursor = dbapi.cursor()
    try:
        for range_id, session_id, first_seq, last_seq in ranges:
            cursor.execute(_SQLITE_INDEX, (session_id, first_seq, last_seq))
            cursor.execute(_SQLITE_DONE, (range_id,))
    finally:
        cursor.close()
    return len(ranges)


def _index_oldest_sqlite(dbapi: Any, limit: int) -> int:
    ranges = dbapi.execute(_SQLITE_OLDEST, (limit,)).fetchall()
    return _index_sqlite_ranges(dbapi, ranges)


def _columns(ranges: list[tuple[int, int, int]]) -> tuple[list[int], list[int], list[int]]:
    return [r[0] for r in ranges], [r[1] for r in ranges], [r[2] for r in ranges]


async def _index_oldest_postgresql(db: Database, limit: int) -> int:
    async with db.write() as conn:
        claimed = [tuple(r) for r in (await conn.exec_driver_sql(_CLAIM, (limit,))).all()]
        if not claimed:
            return 0
        ids = sorted({r[0] for r in claimed})
        held = {r[0] for r in (await conn.exec_driver_sql(_HOLD, (ids,))).all()}
        ready = [r for r in claimed if r[0] in held]
        if ready:
            await conn.exec_driver_sql(_INDEX, _columns(ready))
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


async def before_deleting_messages(db: Database, conn: AsyncConnection, session_id: int,
                                   message_id: int | None = None) -> None:
    """Keep the index exact when a session, or one of its messages, is deleted in `conn`'s
    transaction (which holds the session, so no indexer pass can interleave).

    SQLite: FTS5 removes a message's entries (by trigger) with the text it indexed, and must not
    be asked to remove what it never indexed; so the session's queued ranges are indexed first.
    PostgreSQL: the search rows are deleted; queued ranges find nothing left to index."""
    if db.is_sqlite:
        def index_session(dbapi: Any) -> int:
            return _index_sqlite_ranges(dbapi, dbapi.execute(_SQLITE_OF_SESSION, (session_id,)).fetchall())

        await db.run_on_driver(conn, index_session)
    elif message_id is None:
        await conn.exec_driver_sql("DELETE FROM message_search WHERE session_id = $1", (session_id,))
    else:
        await conn.exec_driver_sql("DELETE FROM message_search WHERE message_id = $1", (message_id,))
