"""PostgreSQL: the pool replaces connections the server dropped, without pinging busy ones."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from sessionscope.ingest import append_messages
from sessionscope.store import Scope, database, open_database
from tests.conftest import PG_ADMIN_DSN

pytestmark = pytest.mark.postgres_only


async def _drop_connections_of(db_name: str) -> int:
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        return len(await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            db_name))
    finally:
        await admin.close()


def test_a_dropped_connection_is_replaced_after_idling(database_url_factory: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url = database_url_factory("postgresql", "pool")
    db_name = url.rsplit("/", 1)[1]

    async def scenario() -> dict[str, int]:
        db = await open_database(url)
        try:
            scope = Scope.everything()
            await append_messages(db, scope, key="k", agent="a", channel="web", tenant="t",
                                      batch=[{"id": "1", "role": "user", "content": "before"}])
            assert await _drop_connections_of(db_name) >= 1
            monkeypatch.setattr(database, "IDLE_PING_SECONDS", 0.0)
            # Both paths: a transaction through SQLAlchemy and the single-statement append.
            await append_messages(db, scope, key="k", agent="a", channel="web", tenant="t",
                                      batch=[{"id": "2", "role": "user", "content": "after"}])
            return await append_messages(db, scope, key="k", agent="a", channel="web", tenant="t",
                                             batch=[{"id": "3", "role": "user", "content": "again"}])
        finally:
            await db.close()

    assert asyncio.run(scenario()) == {"appended": 1, "duplicates": 0, "last_seq": 3}


def test_the_autovacuum_warning_comes_once_a_process(database_url_factory: Any,
                                                     caplog: pytest.LogCaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    url = database_url_factory("postgresql", "vacuum")
    monkeypatch.setattr(database, "_warned_autovacuum_off", set())

    async def open_twice() -> str:
        for _ in range(2):
            db = await open_database(url)
            async with db.engine.connect() as conn:
                setting = (await conn.exec_driver_sql("SHOW autovacuum")).scalar()
            await db.close()
        return str(setting)

    with caplog.at_level("WARNING", logger="sessionscope.store"):
        setting = asyncio.run(open_twice())
    warnings = [r for r in caplog.records if "autovacuum is off" in r.getMessage()]
    assert len(warnings) == (0 if setting == "on" else 1)
