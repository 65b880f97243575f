"""ingest/many.py's GroupWriter, the OTLP receiver's group commit: requests ready together are
one transaction, a session's parts from several requests are written once in time order, and
a request that the store refuses fails alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from sessionscope.errors import Unavailable
from sessionscope.ingest import many
from sessionscope.store import appends, batches, open_database
from sessionscope.store.scope import Scope

TENANT = "group"
NOW = 1_900_000_000_000


@pytest.fixture
def url(dialect: str, database_url_factory: Any) -> str:
    return database_url_factory(dialect, "group")


def _batch(key: str, second: int, content: str) -> batches.Batch:
    message = {"id": content, "role": "user", "content": content, "timestamp": f"2030-01-01T00:00:{second:02d}Z"}
    return batches.Batch(key, "a", "web", NOW + second, appends.prepare_messages([message], NOW))


class _Counted:
    """store/batches.append_sessions, counting its calls and refusing batches of `refused`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, refused: str | None = None) -> None:
        self.calls: list[list[str]] = []
        real = batches.append_sessions

        async def counted(db: Any, tenant: str, items: list[batches.Batch], now: int) -> Any:
            self.calls.append(sorted(b.key for b in items))
            if refused is not None and any(b.key == refused for b in items):
                raise RuntimeError(f"the store refuses {refused}")
            return await real(db, tenant, items, now)

        monkeypatch.setattr(batches, "append_sessions", counted)


def on_store(url: str, main: Any) -> None:
    """Run `main(db)` on the store at `url`, closing it after."""
    async def run() -> None:
        db = await open_database(url)
        try:
            await main(db)
        finally:
            await db.close()

    asyncio.run(run())


async def _contents(db: Any, key: str) -> list[str]:
    async with db.read() as conn:
        return list((await conn.execute(text(
            "SELECT m.content FROM messages m JOIN sessions s ON s.id = m.session_id "
            "WHERE s.tenant = :t AND s.key = :k ORDER BY m.seq"), {"t": TENANT, "k": key})).scalars().all())


def test_requests_ready_together_are_one_write_in_time_order(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    counted = _Counted(monkeypatch)

    async def main(db: Any) -> None:
        writer = many.GroupWriter(db, linger=30)
        later = writer.preparing()
        later.__enter__()  # a second request is still being decoded
        first = asyncio.create_task(writer.write(Scope.everything(), TENANT, [_batch("s", 20, "second")]))
        await asyncio.sleep(0.2)
        assert not first.done()  # it waits for the request being decoded
        second = asyncio.create_task(writer.write(Scope.everything(), TENANT,
                                                  [_batch("s", 10, "first"), _batch("t", 5, "other")]))
        later.__exit__(None, None, None)
        await asyncio.wait_for(asyncio.gather(first, second), 30)
        assert counted.calls == [["s", "t"]]  # one transaction for both requests
        assert await _contents(db, "s") == ["first", "second"]
        async with db.read() as conn:
            created = (await conn.execute(text("SELECT created_at FROM sessions WHERE tenant = :t AND key = 's'"),
                                          {"t": TENANT})).scalar_one()
        assert int(created) == NOW + 10  # the earliest part's

    on_store(url, main)


def test_a_lone_request_does_not_wait_for_the_linger(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    counted = _Counted(monkeypatch)

    async def main(db: Any) -> None:
        writer = many.GroupWriter(db, linger=3600)
        # Nothing else is being decoded: written at once (far inside the hour's linger).
        await asyncio.wait_for(writer.write(Scope.everything(), TENANT, [_batch("lone", 1, "alone")]), 60)
        assert counted.calls == [["lone"]]
        assert await _contents(db, "lone") == ["alone"]

    on_store(url, main)


def test_a_request_the_store_refuses_fails_alone(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    counted = _Counted(monkeypatch, refused="poison")

    async def main(db: Any) -> None:
        writer = many.GroupWriter(db, linger=30)
        decoding = writer.preparing()
        decoding.__enter__()
        good = asyncio.create_task(writer.write(Scope.everything(), TENANT, [_batch("good", 1, "kept")]))
        bad = asyncio.create_task(writer.write(Scope.everything(), TENANT, [_batch("poison", 1, "refused")]))
        await asyncio.sleep(0)
        decoding.__exit__(None, None, None)
        await asyncio.wait_for(good, 30)
        with pytest.raises(RuntimeError, match="refuses poison"):
            await asyncio.wait_for(bad, 30)
        assert counted.calls == [["good", "poison"], ["good"], ["poison"]]
        assert await _contents(db, "good") == ["kept"]
        assert await _contents(db, "poison") == []

    on_store(url, main)


def test_merged_joins_a_sessions_parts_in_time_order() -> None:
    joined = many.merged([[_batch("k", 30, "c"), _batch("x", 1, "x")], [_batch("k", 10, "a")],
                          [_batch("k", 20, "b")]])
    assert [b.key for b in joined] == ["k", "x"]
    assert [m["content"] for m in joined[0].messages] == ["a", "b", "c"]
    assert joined[0].created_at == NOW + 10


def test_a_stopped_writer_answers_every_waiting_request(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow(*args: Any) -> Any:
        await asyncio.sleep(3600)

    monkeypatch.setattr(batches, "append_sessions", slow)

    async def main(db: Any) -> None:
        writer = many.GroupWriter(db, linger=0)
        writing = asyncio.create_task(writer.write(Scope.everything(), TENANT, [_batch("w", 1, "being written")]))
        await asyncio.sleep(0.1)
        waiting = asyncio.create_task(writer.write(Scope.everything(), TENANT, [_batch("q", 1, "queued")]))
        await asyncio.sleep(0.1)
        assert writer._flusher is not None
        writer._flusher.cancel()  # as when the server stops
        for request in (writing, waiting):
            with pytest.raises(Unavailable, match="stopping"):
                await asyncio.wait_for(request, 30)

    on_store(url, main)


def test_the_next_group_waits_for_as_many_requests_as_the_last_one_held(url: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Exporters answered together send again together, one of them a little behind: its request
    joins the others' group (a lone one's would arrive after their later turns)."""
    counted = _Counted(monkeypatch)

    async def main(db: Any) -> None:
        writer = many.GroupWriter(db, linger=30)
        decoding = writer.preparing()
        decoding.__enter__()
        first = [asyncio.create_task(writer.write(Scope.everything(), TENANT, [_batch(k, 10, f"{k}1")]))
                 for k in ("e1", "e2")]
        await asyncio.sleep(0)
        decoding.__exit__(None, None, None)
        await asyncio.wait_for(asyncio.gather(*first), 30)
        ahead = asyncio.create_task(writer.write(Scope.everything(), TENANT, [_batch("e1", 20, "e12")]))
        await asyncio.sleep(0.3)
        assert not ahead.done()  # nothing is being decoded, but the last group held two
        behind = asyncio.create_task(writer.write(Scope.everything(), TENANT, [_batch("e2", 20, "e22")]))
        await asyncio.wait_for(asyncio.gather(ahead, behind), 30)
        assert counted.calls == [["e1", "e2"], ["e1", "e2"]]

    on_store(url, main)
