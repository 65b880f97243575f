"""Message search indexed off the append path: appends queue their ranges, the indexer turns
them into search rows, a search is right before, during and after indexing, and deleting
messages keeps the index exact (on SQLite, FTS5's own integrity check says so)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import text

from sessionscope.ingest import append_messages
from sessionscope.store import Scope, items, listing, open_database, search_index
from sessionscope.store import sessions as session_store
from sessionscope.web.services import ServerConfig
from tests.conftest import RunningServer

SCOPE = Scope.everything()


@pytest.fixture(scope="module")
def pg_url(database_url_factory: Any) -> str:
    return database_url_factory("postgresql", "search_index")


@pytest.fixture
def url(dialect: str, database_url_factory: Any) -> str:
    return database_url_factory(dialect, "search_index")


def run(url: str, scenario: Any) -> Any:
    async def main() -> Any:
        db = await open_database(url)
        try:
            await search_index.drain(db)  # start from an empty queue: tests share the store
            return await scenario(db)
        finally:
            await db.close()

    return asyncio.run(main())


async def append(db: Any, key: str, *contents: str, tenant: str = "search") -> None:
    await append_messages(db, SCOPE, key=key, agent="a", channel="web", tenant=tenant,
                              batch=[{"role": "user", "content": c} for c in contents])


async def found(db: Any, query: str, tenant: str = "search") -> list[str]:
    page = await listing.list_sessions(db, SCOPE, tenant=tenant, query=query, limit=100)
    return sorted(s["key"] for s in page["sessions"])


async def indexed_rows(db: Any, key: str, tenant: str = "search") -> int:
    """PostgreSQL: the session's message_search rows."""
    async with db.read() as conn:
        return int((await conn.execute(text(
            "SELECT count(*) FROM message_search WHERE session_id = "
            "(SELECT id FROM sessions WHERE tenant = :t AND key = :k)"), {"t": tenant, "k": key})).scalar_one())


@pytest.mark.postgres_only
def test_search_is_right_while_queued_and_after_indexing(pg_url: str) -> None:
    async def scenario(db: Any) -> None:
        await append(db, "q/1", "the pelican landed", "nothing here")
        await append(db, "q/1", "second batch mentions albatross")
        await append(db, "q/2", "albatross again")
        assert await search_index.queued(db) == 3
        assert await found(db, "albatross") == ["q/1", "q/2"]  # served from the queue
        assert await indexed_rows(db, "q/1") == 0
        assert await search_index.index_queued(db) == 3
        assert await search_index.queued(db) == 0
        assert await indexed_rows(db, "q/1") == 3
        assert await found(db, "albatross") == ["q/1", "q/2"]  # served from message_search
        assert await found(db, "pelican landed") == ["q/1"]
        assert await found(db, "pelican albatross") == []  # both words in one message, as before
        await search_index.index_queued(db)
        assert await indexed_rows(db, "q/1") == 3  # indexing twice adds nothing

    run(pg_url, scenario)


@pytest.mark.postgres_only
def test_pop_and_delete_take_their_search_rows(pg_url: str) -> None:
    async def scenario(db: Any) -> None:
        await append(db, "p/1", "keep this", "retract kestrel")
        await append(db, "p/2", "kestrel too")
        await search_index.drain(db)
        assert await found(db, "kestrel") == ["p/1", "p/2"]
        await items.pop(db, SCOPE, "p/1", tenant="search")
        assert await found(db, "kestrel") == ["p/2"]
        assert await indexed_rows(db, "p/1") == 1
        await session_store.delete_sessions(db, SCOPE, ["p/2"], tenant="search")
        assert await found(db, "kestrel") == []
        async with db.read() as conn:
            left = (await conn.execute(text("SELECT count(*) FROM message_search m WHERE NOT EXISTS "
                                            "(SELECT 1 FROM sessions s WHERE s.id = m.session_id)"))).scalar_one()
        assert left == 0

    run(pg_url, scenario)


@pytest.mark.postgres_only
def test_a_session_held_by_a_pop_or_delete_is_indexed_later(pg_url: str) -> None:
    async def scenario(db: Any) -> None:
        await append(db, "h/1", "heron in the reeds")
        await append(db, "h/2", "heron elsewhere")
        async with db.engine.connect() as holder:
            await holder.begin()
            await holder.execute(text("SELECT id FROM sessions WHERE tenant = 'search' AND key = 'h/1' FOR UPDATE"))
            assert await search_index.index_queued(db) == 1  # h/2 indexed, h/1 back in the queue
            assert await search_index.queued(db) == 1
            await holder.rollback()
        assert await indexed_rows(db, "h/1") == 0 and await indexed_rows(db, "h/2") == 1
        assert await found(db, "heron") == ["h/1", "h/2"]
        assert await search_index.drain(db) == 1
        assert await indexed_rows(db, "h/1") == 1

    run(pg_url, scenario)


@pytest.mark.postgres_only
def test_ranges_of_deleted_sessions_are_dropped(pg_url: str) -> None:
    async def scenario(db: Any) -> None:
        await append(db, "d/1", "gone before indexing")
        await session_store.delete_sessions(db, SCOPE, ["d/1"], tenant="search")
        assert await search_index.queued(db) == 1
        assert await search_index.drain(db) == 1
        assert await search_index.queued(db) == 0

    run(pg_url, scenario)


@pytest.mark.postgres_only
def test_a_running_server_indexes_in_the_background(pg_url: str) -> None:
    with RunningServer(ServerConfig(database=pg_url, auth=False)):
        async def scenario(db: Any) -> int:
            await append(db, "bg/1", "osprey over the lake", tenant="background")
            deadline = time.monotonic() + 20
            while await search_index.queued(db) and time.monotonic() < deadline:  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.05)
            return await indexed_rows(db, "bg/1", tenant="background")

        assert run(pg_url, scenario) == 1


@pytest.mark.postgres_only
def test_a_local_cli_import_leaves_nothing_queued(pg_url: str, tmp_path: Any) -> None:
    import json
    import os
    import subprocess
    import sys

    records = [{"type": "session", "key": "cli/1", "agent": "a", "channel": "web", "tenant": "cli"},
               {"type": "message", "id": "m1", "role": "user", "content": "wagtail by the river"}]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    done = subprocess.run([sys.executable, "-m", "sessionscope.cli", "import", str(path), "--db", pg_url],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
                          check=False)
    assert done.returncode == 0, done.stderr

    async def scenario(db: Any) -> tuple[int, int, list[str]]:
        return await search_index.queued(db), await indexed_rows(db, "cli/1", tenant="cli"), \
            await found(db, "wagtail", tenant="cli")

    async def main() -> tuple[int, int, list[str]]:
        db = await open_database(pg_url)
        try:
            return await scenario(db)
        finally:
            await db.close()

    assert asyncio.run(main()) == (0, 1, ["cli/1"])


def test_deleting_queued_messages_keeps_the_index_exact(url: str) -> None:
    async def scenario(db: Any) -> None:
        from sessionscope.store.check import check, format_report

        await append(db, "x/1", "first puffin", "second puffin")
        await append(db, "x/2", "puffin colony")
        await append(db, "x/3", "a lone puffin")
        assert await search_index.queued(db) == 3  # nothing indexed yet
        popped = await items.pop(db, SCOPE, "x/1", tenant="search")
        assert popped is not None and popped["content"] == "second puffin"
        await session_store.delete_sessions(db, SCOPE, ["x/2"], tenant="search")
        await append(db, "x/1", "third puffin")  # reuses the popped seq
        report = await check(db)  # on SQLite: FTS5 integrity-check against the messages
        assert report.ok, format_report(report)
        assert await found(db, "puffin") == ["x/1", "x/3"]
        assert await found(db, "second puffin") == []
        assert await found(db, "third") == ["x/1"]
        await search_index.drain(db)
        assert await search_index.queued(db) == 0
        assert (await check(db)).ok

    run(url, scenario)


def test_appends_through_a_server_are_indexed_without_a_search(dialect: str, url: str) -> None:
    with RunningServer(ServerConfig(database=url, auth=False)):
        async def scenario(db: Any) -> int:
            await append(db, "srv/1", "osprey over the lake", tenant=f"server-{dialect}")
            deadline = time.monotonic() + 20
            while await search_index.queued(db) and time.monotonic() < deadline:  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.05)
            return await search_index.queued(db)

        assert run(url, scenario) == 0


def test_check_finds_a_search_index_out_of_step(dialect: str, url: str) -> None:
    # (the statement that plants a ghost search row, the one that removes it)
    ghost = {"sqlite": ("INSERT INTO message_search(rowid, words) VALUES (987654321, 'ghost')",
                        "DELETE FROM message_search WHERE rowid = 987654321"),
             "postgresql": (("INSERT INTO message_search (message_id, session_id, document) "
                             "VALUES (987654321, 1, to_tsvector('simple', 'ghost'))"),
                            "DELETE FROM message_search WHERE message_id = 987654321")}[dialect]

    async def scenario(db: Any) -> tuple[bool, str, bool]:
        from sessionscope.store.check import check, format_report

        await append(db, "c/1", "a real message")
        async with db.write() as conn:
            await conn.exec_driver_sql(ghost[0])
        broken = await check(db)
        async with db.write() as conn:
            await conn.exec_driver_sql(ghost[1])
        return broken.ok, format_report(broken), (await check(db)).ok

    broken_ok, text_, mended_ok = run(url, scenario)
    assert not broken_ok and "message search" in text_
    assert mended_ok


def distinct_words(chars: int, seed: int = 7) -> str:
    """Text of distinct words: PostgreSQL's densest tsvector, past its 1 MB limit at ~750 KB."""
    import random
    import string

    rnd = random.Random(seed)
    words, size = [], 0
    while size < chars:
        words.append("".join(rnd.choice(string.ascii_lowercase) for _ in range(8)))
        size += 9
    return " ".join(words)


@pytest.mark.postgres_only
def test_a_message_past_the_tsvector_limit_is_indexed_and_blocks_nothing(pg_url: str) -> None:
    async def scenario(db: Any) -> None:
        huge = distinct_words(995_000) + " zanzibarlast"
        await append(db, "big/1", "zanzibarfirst " + huge, tenant="big")
        await append(db, "small/1", "an ordinary albatross", tenant="other")
        # Served from the queue, for the tenant with the huge message and for any other.
        assert await found(db, "zanzibarlast", tenant="big") == ["big/1"]
        assert await found(db, "albatross", tenant="other") == ["small/1"]
        assert await search_index.drain(db) == 2
        assert await search_index.queued(db) == 0 and await search_index.set_aside(db) == 0
        assert await indexed_rows(db, "big/1", tenant="big") > 1  # in chunks
        assert await found(db, "zanzibarfirst", tenant="big") == ["big/1"]
        assert await found(db, "zanzibarlast", tenant="big") == ["big/1"]
        assert await found(db, "albatross", tenant="other") == ["small/1"]

    run(pg_url, scenario)


@pytest.mark.postgres_only
def test_a_range_that_fails_is_set_aside_and_reported(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    from sessionscope.store.check import check, format_report
    from sessionscope.web.metrics import StoreCollector

    async def scenario(db: Any) -> tuple[bool, str, float]:
        await append(db, "fail/1", "a cormorant that cannot be indexed", tenant="failing")
        await append(db, "fail/2", "a cormorant that can", tenant="failing")
        async with db.write() as conn:
            bad = (await conn.execute(text("SELECT id FROM sessions WHERE tenant = 'failing' AND key = 'fail/1'"))
                   ).scalar_one()
            # Any failure of one range will do: here the index refuses this session's rows.
            await conn.execute(text(f"ALTER TABLE message_search ADD CONSTRAINT refuse_one CHECK (session_id <> {bad})"))
        try:
            assert await search_index.drain(db) == 2  # the queue moves on past the failing range
        finally:
            async with db.write() as conn:
                await conn.execute(text("ALTER TABLE message_search DROP CONSTRAINT refuse_one"))
        assert await search_index.queued(db) == 0
        assert await search_index.set_aside(db) == 1
        assert await found(db, "cormorant", tenant="failing") == ["fail/2"]
        report = await check(db, tenant="failing")
        collector = StoreCollector()  # the metric a dashboard alerts on
        await collector.refresh(db)
        gauge = {m.name: m.samples[0].value for m in collector.collect()}["sessionscope_search_ranges_set_aside"]
        async with db.write() as conn:
            await conn.execute(text("DELETE FROM search_failed"))
        return report.ok, format_report(report), gauge

    ok, report, gauge = run(pg_url, scenario)
    assert not ok and "set aside" in report
    assert gauge == 1
    assert any("set aside" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


@pytest.mark.postgres_only
def test_the_backlog_scan_reads_only_the_callers_tenants(pg_url: str) -> None:
    async def scenario(db: Any) -> list[int]:
        await append(db, "scan/1", "a shared word: grebe", tenant="scan-a")
        await append(db, "scan/2", "grebe as well", tenant="scan-b")
        async with db.read() as conn:
            ids = list(await search_index.queued_matches(conn, ["grebe"], ["scan-b"]))
            mine = (await conn.execute(text("SELECT id FROM sessions WHERE tenant = 'scan-b'"))).scalar_one()
        assert ids == [mine]
        return ids

    run(pg_url, scenario)
