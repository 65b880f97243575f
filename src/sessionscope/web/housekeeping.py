"""Background work of a running server: the hourly retention purge, audited per tenant, the
message search indexer and the auto-compaction worker (compaction/service.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sessionscope.store import Database, Scope, audit, retention, search_index

log = logging.getLogger("sessionscope.retention")
INDEX_IDLE_S = 0.1  # how long the indexer waits when the queue runs dry
INDEX_GATHER_S = 0.02  # SQLite: after a wakeup, how long later appends may join the same pass
PURGE_ACTOR = "retention"


async def purge_once(db: Database) -> int:
    """One purge over every tenant; each tenant that lost sessions gets an audit entry."""
    report = await retention.purge(db, Scope.everything())
    for entry in report:
        if entry["deleted"]:
            await audit.record(db, action="tenant.purge", tenant=entry["tenant"], keys=entry["keys"],
                               token_name=PURGE_ACTOR, detail={"deleted": entry["deleted"],
                                                                "cutoff": entry["cutoff"]})
    return sum(entry["deleted"] for entry in report)


async def purge_forever(db: Database, interval_s: float = retention.PURGE_INTERVAL_S) -> None:
    """Purge now, then every `interval_s`; a failed pass is logged and retried next time."""
    while True:
        try:
            deleted = await purge_once(db)
            if deleted:
                log.info("retention purge deleted %d session(s)", deleted)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention purge failed")
        await asyncio.sleep(interval_s)


def start(db: Database, config: Any) -> asyncio.Task[None] | None:
    interval = config.extra.get("purge_interval_s", retention.PURGE_INTERVAL_S)
    if not interval:
        return None
    return asyncio.get_running_loop().create_task(purge_forever(db, float(interval)))


async def index_forever(db: Database) -> None:
    """Keep message search current, in short transactions of up to RANGES_PER_PASS ranges.

    On SQLite an append wakes the indexer, which takes what was queued by INDEX_GATHER_S later;
    on PostgreSQL the queue is polled, because other processes append too."""
    wakeup = search_index.wakeup(db)
    while True:
        wakeup.clear()  # before the pass: an append during it wakes the next one
        try:
            indexed = await search_index.index_queued(db)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("message search indexing failed; retrying")
            indexed = 0
        if indexed >= search_index.RANGES_PER_PASS:
            continue
        if db.is_sqlite:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), INDEX_IDLE_S * 10)
            # One pass for the appends of the next few milliseconds too: fewer, larger FTS5
            # transactions, and fewer trips to the writer thread.
            await asyncio.sleep(INDEX_GATHER_S)
        else:
            await asyncio.sleep(INDEX_IDLE_S)


def start_indexer(db: Database) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(index_forever(db))


def start_compactor(services: Any) -> asyncio.Task[None]:
    """Auto-compactions that appends scheduled run here, never inside the append's request."""
    task: asyncio.Task[None] = services.compactor.start()
    return task
