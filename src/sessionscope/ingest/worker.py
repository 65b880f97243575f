"""Reading and preparing transcript files in a worker process, for `sessionscope import`.

A local import is CPU work from end to end, and most of it is not the store's: parsing the
source lines, validating each record (ingest/models.py) and preparing it (o200k_base counts,
ids, times, execution prices). One Python process did all of it under one GIL, so the store
waited while the parser ran. Here a spawned process runs the importer and the ingest service's
own validation and preparation (`session_blocks`, `validated_chunks`, `prepared_chunk`: the same
functions, not a copy) and hands the prepared chunks to the importing process, which counts
their tokens and writes them (`ingest_blocks`). The split is where the two came out about
even, measured on 200,000 Claude Code messages (CPU seconds, importing process / worker): with
the importing process preparing, 7.0 / 5.3 (the worker waited on its full queue); with the
worker preparing everything, 4.0 / 7.3 (the writer waited); with the worker preparing all but
the o200k_base counts, 5.5 / 5.9.

Memory stays flat: the queue between them holds at most QUEUE_CHUNKS chunks of ingest.CHUNK
records, and the worker waits when it is full. A failure in the worker (a malformed file, a
record that breaks a rule) is raised in the importing process at the point in the stream where
it happened, so what was stored before it stays stored and the session it broke is not.
Small inputs are read in process (`worth_a_worker`): starting a Python process costs more than
it saves below WORKER_MIN_BYTES.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from sessionscope import tokenizer
from sessionscope.errors import SessionscopeError

# Below this much source text a worker's start (a new interpreter importing the ingest service,
# about a second) costs more than it saves: measured on the real Codex corpus (13 MB, 2,900
# messages) the import took 4.4 s in process and 6.0 s with a worker; on 115 MB of Claude Code
# lines (200,000 messages) the worker wins.
WORKER_MIN_BYTES = 32 * 1024 * 1024
QUEUE_CHUNKS = 8
# How often the importing process checks that a silent worker is still alive.
POLL_SECONDS = 1.0


def worth_a_worker(path: str | os.PathLike[str]) -> bool:
    root = Path(path)
    if root.is_file():
        return root.stat().st_size >= WORKER_MIN_BYTES
    total = 0
    for file in root.rglob("*"):
        if file.is_file():
            total += file.stat().st_size
            if total >= WORKER_MIN_BYTES:
                return True
    return False


class PreparedFiles:
    """The validated record stream of the files at `path`, read by a worker process.

    Iterate `blocks()` once (as ingest_blocks does); afterwards `result` is the importer's
    ImportResult (what became of each source record type, the skipped lines). Use as a context
    manager: leaving it stops the worker, whatever happened."""

    def __init__(self, path: str | os.PathLike[str], fmt: str, *, keep_tokens: bool) -> None:
        context = multiprocessing.get_context("spawn")
        self._queue: Any = context.Queue(QUEUE_CHUNKS)
        self._process = context.Process(target=_work, args=(self._queue, str(path), fmt, keep_tokens),
                                        name="sessionscope-import-reader", daemon=True)
        self._process.start()
        # This process counts the tokens: it loads the encoder (a quarter of a second) while the
        # worker starts, instead of after the first chunk came.
        tokenizer.encoder()
        self._next: tuple[Any, ...] | None = None
        self.result: Any = None

    def __enter__(self) -> PreparedFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=10)
        self._queue.close()

    def _peek(self) -> tuple[Any, ...]:
        while self._next is None:
            try:
                message = self._queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not self._process.is_alive():
                    raise SessionscopeError(
                        f"the import reader stopped (exit code {self._process.exitcode})") from None
                continue
            if message[0] == "error":
                raise pickle.loads(message[1])
            self._next = message
        return self._next

    def _take(self) -> tuple[Any, ...]:
        message = self._peek()
        self._next = None
        return message

    def blocks(self) -> Iterator[tuple[dict[str, Any], AsyncIterator[Any]]]:
        """(session header, its chunks as the worker prepared them), as ingest_blocks takes them
        (it counts their tokens)."""
        while (message := self._peek())[0] == "session":
            self._take()
            yield message[1], self._chunks()
        self.result = self._take()[1]  # "end"

    async def _chunks(self) -> AsyncIterator[Any]:
        while self._peek()[0] == "chunk":
            yield self._take()[1]


def _work(out: Any, path: str, fmt: str, keep_tokens: bool) -> None:
    """The worker: the importer's records, validated and prepared, in stream order."""
    from sessionscope.importers import read_records
    from sessionscope.ingest import prepared_chunk, session_blocks, validated_chunks

    try:
        result, records = read_records(path, fmt)
        for header, block in session_blocks(records):
            out.put(("session", header))
            for chunk in validated_chunks(block, keep_tokens=keep_tokens):
                out.put(("chunk", prepared_chunk(chunk, count=False, words=True)))
        out.put(("end", result))
    except BaseException as exc:  # noqa: BLE001 - every failure is the importing process's to raise
        out.put(("error", _portable(exc)))
    finally:
        out.close()
        out.join_thread()


def _portable(exc: BaseException) -> bytes:
    """The exception pickled, or, when it does not survive pickling, a SessionscopeError with its text."""
    try:
        pickled = pickle.dumps(exc)
        pickle.loads(pickled)
        return pickled
    except Exception:  # noqa: BLE001 - any exception type may come from an importer
        return pickle.dumps(SessionscopeError(f"{type(exc).__name__}: {exc}"))
