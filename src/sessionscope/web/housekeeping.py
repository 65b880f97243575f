"""Background work of a running server: the hourly retention purge, audited per tenant."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sessionscope.store import Database, Scope, audit, retention

log = logging.getLogger("sessionscope.retention")
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
