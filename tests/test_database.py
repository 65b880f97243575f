"""Database.read_on_driver: a read that fails or is cancelled leaves its connection fit for the next."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

from sessionscope.store import database, open_database


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
