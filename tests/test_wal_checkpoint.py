"""SQLite's WAL is checkpointed by a background thread, not inside the COMMIT of an append."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sessionscope.ingest import append_messages as append
from sessionscope.store import Scope, open_database
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
