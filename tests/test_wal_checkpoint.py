"""SQLite's WAL is checkpointed by a background thread, not inside the COMMIT of an append."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from sessionscope.ingest import append_messages as append
from sessionscope.store import Scope, checkpoint, open_database
from sessionscope.store.checkpoint import FALLBACK_AUTOCHECKPOINT_PAGES


def test_background_thread_checkpoints_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "store.db"

    async def scenario() -> tuple[int, int, bool]:
        db = await open_database(str(path))
        try:
            before = path.stat().st_size
            for b in range(20):
                batch = [{"id": f"{b}-{i}", "role": "user", "content": f"message {b}-{i} " * 20, "tokens": 1}
                         for i in range(100)]
                await append(db, Scope.everything(), key="k", agent="a", channel="web", batch=batch)
            wal_pages = path.with_name(path.name + "-wal").stat().st_size // 4096
            # Far below the commits' own threshold: only the background thread copies pages over.
            assert wal_pages < FALLBACK_AUTOCHECKPOINT_PAGES
            deadline = time.monotonic() + 10
            while path.stat().st_size == before and time.monotonic() < deadline:  # noqa: ASYNC110 - a background thread copies pages
                await asyncio.sleep(0.05)
            thread = db._checkpointer._thread  # type: ignore[union-attr]
            return before, path.stat().st_size, thread.is_alive()
        finally:
            await db.close()

    before, after, alive = asyncio.run(scenario())
    assert alive
    assert after > before, "the database file never received the WAL's pages"


def test_closing_the_store_stops_the_checkpoint_thread(tmp_path: Path) -> None:
    async def scenario() -> bool:
        db = await open_database(str(tmp_path / "store.db"))
        thread = db._checkpointer._thread  # type: ignore[union-attr]
        assert thread.is_alive()
        await db.close()
        return thread.is_alive()

    assert asyncio.run(scenario()) is False


WAL_BOUND_BYTES = 64 * 1024 * 1024
OLD_PEAK_BYTES = 80 * 1024 * 1024


def test_the_wal_stays_bounded_when_the_checkpoint_thread_falls_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load (the 20,000-span bench, load ~12 on 2 cores) the checkpoint thread gets little
    time; then only the commits' own threshold checkpoints, and the WAL file grew to ~80 MiB and
    stayed that size. Here the thread never runs at all, while a reader comes and goes."""
    monkeypatch.setattr(checkpoint.WalCheckpointer, "start", lambda self: None)
    path = tmp_path / "store.db"
    wal = path.with_name(path.name + "-wal")
    stop = threading.Event()
    peak = [0]

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], wal.stat().st_size if wal.exists() else 0)
            time.sleep(0.005)

    def read(offset: float) -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        time.sleep(offset)
        while not stop.is_set():
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM sessions").fetchall()
            time.sleep(0.03)
            conn.execute("COMMIT")
            time.sleep(0.03)
        conn.close()

    async def scenario() -> int:
        db = await open_database(str(path))
        threads = [threading.Thread(target=sample)] + [threading.Thread(target=read, args=(i * 0.1,))
                                                       for i in range(1)]
        for t in threads:
            t.start()
        written = 0
        try:
            # Past the old peak in content alone; the messages' raw copies and search index add more.
            b = 0
            while written < OLD_PEAK_BYTES * 1.1:
                batch = [{"id": f"{b}-{i}", "role": "user", "content": f"{b}-{i} " + "x" * 8000}
                         for i in range(100)]
                await append(db, Scope.everything(), key=f"k{b % 4}", agent="a", channel="web", batch=batch)
                written += sum(len(m["content"]) for m in batch)
                b += 1
        finally:
            stop.set()
            for t in threads:
                t.join()
            await db.close()
        return written

    written = asyncio.run(scenario())
    assert written > OLD_PEAK_BYTES
    assert 0 < peak[0] <= WAL_BOUND_BYTES, f"WAL peaked at {peak[0] / 2**20:.1f} MiB"


def test_an_idle_store_gives_back_its_wal(tmp_path: Path) -> None:
    """After a burst of writes, once no connection has committed for a while, the WAL file is
    emptied (checkpoint.IDLE_TRUNCATE_S), so an idle store's disk footprint is its database."""
    path = tmp_path / "store.db"
    wal = path.with_name(path.name + "-wal")

    async def scenario() -> tuple[int, int]:
        db = await open_database(str(path))
        try:
            for b in range(10):
                batch = [{"id": f"{b}-{i}", "role": "user", "content": f"message {b}-{i} " * 20, "tokens": 1}
                         for i in range(100)]
                await append(db, Scope.everything(), key="k", agent="a", channel="web", batch=batch)
            written = wal.stat().st_size
            deadline = time.monotonic() + 10
            while wal.stat().st_size and time.monotonic() < deadline:  # noqa: ASYNC110 - a background thread
                await asyncio.sleep(0.1)
            return written, wal.stat().st_size
        finally:
            await db.close()

    written, idle = asyncio.run(scenario())
    assert written > 0
    assert idle == 0
