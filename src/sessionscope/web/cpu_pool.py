"""CPU-bound request work (decoding an OTLP export into prepared sessions) in worker processes.

A server is one Python process, and the GIL lets its threads use one core between them. An OTLP
request's decoding, mapping and preparing (web/otlp.py's `_decode`: protobuf, the OpenInference
and GenAI mapping, validation) took half of the server's CPU per span, on the core the event
loop and the store's writes need. In a worker process it runs on another core, and the serving
process only counts tokens (the encoder would cost each worker ~70 MB) and writes what comes
back.

The pool starts the first time it is worth it (requests that overlap: see CpuPool.run), in the
background: the request that starts it, and every one until its processes are up (a new
interpreter importing the ingest service takes about a second), runs in a thread as before, so
no request waits for a process to start. A worker that dies (killed, out of memory) breaks the
pool; the request is then done in a thread and the pool starts again on the next one. Small bodies (below POOL_MIN_BYTES) stay in a thread:
for them sending the work over costs more than it saves.

How many processes: `ServerConfig.extra["cpu_workers"]`, else SESSIONSCOPE_CPU_WORKERS, else
DEFAULT_WORKERS on a machine with two cores or more and none on one core (0: threads only).
`serve --workers N` sets 0 unless told otherwise: its N serving processes share the cores already.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from sessionscope.errors import ConfigError

log = logging.getLogger("sessionscope.server")

T = TypeVar("T")

DEFAULT_WORKERS = 2
# Below this a request's body is decoded in a thread: measured on bench/otlp_ingest.py's spans,
# a request of a few dozen spans costs less to decode than to send to a process and back.
POOL_MIN_BYTES = 64 * 1024
WORKERS_ENV = "SESSIONSCOPE_CPU_WORKERS"


def workers_for(extra: dict[str, Any]) -> int:
    """The configured number of worker processes; ConfigError when it is not a count."""
    value = extra.get("cpu_workers", os.environ.get(WORKERS_ENV, "").strip() or None)
    if value is None:
        return DEFAULT_WORKERS if (os.cpu_count() or 1) >= 2 else 0
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = -1
    if not 0 <= count <= 64:
        raise ConfigError(f"{WORKERS_ENV} / cpu_workers: {value!r} is not a number of processes from 0 to 64")
    return count


def _warm() -> int:
    """In a new worker: import what the work needs before the first request. Not the o200k_base
    encoder (~70 MB a process): the serving process counts tokens."""
    from sessionscope.server import tune_gc
    from sessionscope.web import otlp  # noqa: F401 - the decoder and everything it imports

    tune_gc()
    return os.getpid()


class CpuPool:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._warming: list[concurrent.futures.Future[int]] = []

    @property
    def ready(self) -> bool:
        return self._pool is not None and bool(self._warming) and all(
            f.done() and f.exception() is None for f in self._warming)

    async def run(self, size: int, fn: Callable[..., T], *args: Any, overlapping: bool = True) -> T:
        """fn(*args) in a worker process when the pool is up and `size` (the body's bytes) is
        worth it; in a thread otherwise. `fn` and its arguments and result must pickle.

        Only a request that `overlapping` others (another is being decoded as it comes) starts
        the pool: one client sending one request at a time gains nothing from a second core
        while it waits, and the workers' memory (~100 MB together, at their peak) is not spent
        for it."""
        if self.workers and size >= POOL_MIN_BYTES:
            if self._pool is None:
                if overlapping:
                    self._start()
            elif self.ready:
                try:
                    return await asyncio.wrap_future(self._pool.submit(fn, *args))
                except BrokenProcessPool:
                    log.warning("a CPU worker process died; restarting the pool, this request runs in a thread")
                    self.close()
        return await asyncio.to_thread(fn, *args)

    def _start(self) -> None:
        self._pool = concurrent.futures.ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"))
        self._warming = [self._pool.submit(_warm) for _ in range(self.workers)]

    def close(self, *, wait: bool = False) -> None:
        """Stop the workers: at once (a broken pool), or (`wait`, the server stopping) after
        they exit, so they leave nothing behind."""
        pool, self._pool, self._warming = self._pool, None, []
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)
