"""PostgreSQL message search, indexed off the append path.

An append queues its seq range in `search_backlog`, in its own transaction. `index_queued` turns
queued ranges into `message_search` rows (a tsvector per message, GIN-indexed); a running server
does this in the background, and CLI writers drain the queue before they exit. A search also
scans the ranges still queued (store.listing), so a message is findable as soon as its append
commits. SQLite indexes in the append's transaction instead (FTS5, store.conversation).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope.store.database import Database

RANGES_PER_PASS = 200

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
QUEUE = "INSERT INTO search_backlog (session_id, first_seq, last_seq) VALUES ($1, $2, $3)"
_REQUEUE = ("INSERT INTO search_backlog (session_id, first_seq, last_seq) "
            "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])")


def _columns(ranges: list[tuple[int, int, int]]) -> tuple[list[int], list[int], list[int]]:
    return [r[0] for r in ranges], [r[1] for r in ranges], [r[2] for r in ranges]


async def index_queued(db: Database, limit: int = RANGES_PER_PASS) -> int:
    """Index up to `limit` queued ranges in one transaction; returns how many left the queue for
    good (0 when it is empty). Ranges of sessions deleted since are dropped; those of a session
    a pop or delete holds right now go back to the queue."""
    if db.is_sqlite:
        return 0
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


async def drain(db: Database) -> int:
    """Index everything queued; returns the number of ranges. For writers without a server."""
    total = 0
    while count := await index_queued(db):
        total += count
    return total


async def queued(db: Database) -> int:
    """Ranges waiting to be indexed (0 on SQLite)."""
    if db.is_sqlite:
        return 0
    async with db.read() as conn:
        return int((await conn.exec_driver_sql("SELECT count(*) FROM search_backlog")).scalar_one())


async def forget(db: Database, conn: AsyncConnection, session_id: int, message_id: int | None = None) -> None:
    """Drop the search rows of a session, or of one of its messages, in the deleting transaction
    (which holds the session FOR UPDATE, so no indexer pass can add them back). SQLite's FTS5
    rows go with the messages, by trigger."""
    if db.is_sqlite:
        return
    if message_id is None:
        await conn.exec_driver_sql("DELETE FROM message_search WHERE session_id = $1", (session_id,))
    else:
        await conn.exec_driver_sql("DELETE FROM message_search WHERE message_id = $1", (message_id,))
