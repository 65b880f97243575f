"""Retrying a write transaction that PostgreSQL chose as a deadlock or serialization victim.

Writers lock the session row before anything else, so a cycle should not form; but one that
does (another process's lock order, a foreign key's KEY SHARE, an indexer) must cost a client
nothing. The whole transaction rolled back, so running the write again is safe: an append's
messages without ids get fresh ones, and ids already stored are skipped as usual.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger("sessionscope.store")

T = TypeVar("T")
ATTEMPTS = 5
# SQLSTATEs of a transaction PostgreSQL aborted to break a cycle or a serialization conflict.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def _sqlstate(error: BaseException) -> str | None:
    """Through SQLAlchemy (DBAPIError.orig) or straight from asyncpg (the one-statement appends)."""
    orig = getattr(error, "orig", None)
    for candidate in (error, orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return str(code)
    return None


async def on_deadlock(write: Callable[[], Awaitable[T]]) -> T:
    """`await write()`, again (up to ATTEMPTS times, after a short random pause) when the
    database aborted it as a deadlock or serialization victim."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await write()
        except Exception as error:
            if attempt == ATTEMPTS or _sqlstate(error) not in RETRYABLE_SQLSTATES:
                raise
            log.warning("write aborted by the database (%s); retrying (%d of %d)", _sqlstate(error),
                        attempt, ATTEMPTS - 1)
            await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")
