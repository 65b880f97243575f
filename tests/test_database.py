"""Database reads: a read transaction is one snapshot; a read on the driver that fails or is
cancelled leaves its connection fit for the next."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from sqlalchemy import func, select

from sessionscope.ingest import append_messages
from sessionscope.store import Scope, database, open_database
from sessionscope.store.schema import messages, sessions


def _failing(dbapi: Any) -> None:
    cursor = dbapi.cursor()
    cursor.execute("SELECT 1")
    cursor.execute("SELECT no_such_column FROM sessions")


def _count_sessions(dbapi: Any) -> int:
    cursor = dbapi.cursor()
    cursor.execute("SELECT count(*) FROM sessions")
    return int(cursor.fetchone()[0])


def _slow_then_count(dbapi: Any) -> int:
    cursor = dbapi.cursor()
    cursor.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
                   "SELECT count(*) FROM n")
    return _count_sessions(dbapi)


def test_a_failed_read_leaves_the_connection_usable(dialect: str, database_url_factory: Any) -> None:
    async def scenario() -> list[int]:
        db = await open_database(database_url_factory(dialect, "reads"))
        try:
            counts = []
            for _ in range(database.SQLITE_KEPT_READERS + 2):
                with pytest.raises(Exception, match="no_such_column"):
                    await db.read_on_driver(_failing)
                counts.append(await db.read_on_driver(_count_sessions))
            return counts
        finally:
            await db.close()

    assert asyncio.run(scenario()) == [0] * (database.SQLITE_KEPT_READERS + 2)


def test_a_cancelled_read_ends_its_transaction_before_the_next(database_url_factory: Any) -> None:
    url = database_url_factory("sqlite", "cancelled")

    async def scenario() -> int:
        db = await open_database(url)
        try:
            task = asyncio.ensure_future(db.read_on_driver(_slow_then_count))
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The kept connection is reused: its thread finishes the cancelled read (ROLLBACK
            # included) first, so this one starts a transaction of its own.
            return await db.read_on_driver(_count_sessions)
        finally:
            await db.close()

    assert asyncio.run(scenario()) == 0
    # No snapshot is left open: a checkpoint can take the whole WAL.
    with sqlite3.connect(url.split("///", 1)[1]) as conn:
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0


def test_a_read_transaction_sees_one_snapshot(dialect: str, database_url_factory: Any) -> None:
    """A commit that lands while a read transaction is open is not seen by the rest of it:
    `sessionscope check` compares a page of sessions with their rows in one read, and a
    PostgreSQL transaction left at READ COMMITTED gave each statement the newest commit, so a
    write in between was reported as a counter that does not match its rows."""
    scope = Scope.tenant("snapshot")

    async def append(db: Any, content: str) -> None:
        await append_messages(db, scope, key="s", agent="a", channel="c", tenant="snapshot",
                              batch=[{"role": "user", "content": content}])

    async def counts(conn: Any) -> tuple[int, int]:
        counter = (await conn.execute(select(sessions.c.message_count).where(sessions.c.key == "s"))).scalar()
        rows = (await conn.execute(select(func.count()).select_from(messages))).scalar()
        return int(counter), int(rows)

    async def scenario() -> list[tuple[int, int]]:
        db = await open_database(database_url_factory(dialect, "snapshot"))
        try:
            await append(db, "one")
            async with db.read() as conn:
                seen = [await counts(conn)]
                await append(db, "two")  # committed by another connection, mid-read
                seen.append(await counts(conn))
            async with db.read() as conn:
                seen.append(await counts(conn))
            return seen
        finally:
            await db.close()

    assert asyncio.run(scenario()) == [(1, 1), (1, 1), (2, 2)]
