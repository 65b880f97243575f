"""Where an OTLP request's server CPU goes, per span, measured in process (no HTTP, no other
load's wall time): protobuf decoding, mapping to conversations, the ingest rules' `prepare`
(validation, o200k_base counting, pricing), and the store's one-transaction write split by
statement. The spans are bench/otlp_ingest.py's, dealt to requests of 512 as its 4 exporters
deal them, written to a fresh SQLite store.

    PYTHONPATH=src:. python bench/otlp_stages.py [--sessions 400]

CPU is `time.process_time` / `time.thread_time` (the write runs on the driver thread), so the
figures move far less with the machine's load than bench/otlp_ingest.py's rates.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.core import OUT
from bench.otlp_ingest import BATCH, EXPORTERS, _spans_for

STATEMENTS: collections.Counter[str] = collections.Counter()


class _TimedCursor:
    """A DB-API cursor that adds each statement's thread CPU to STATEMENTS by its first words."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)

    def _timed(self, method: str, sql: str, *args: Any) -> Any:
        start = time.thread_time()
        try:
            return getattr(self.cursor, method)(sql, *args)
        finally:
            STATEMENTS[" ".join(sql.split()[:4])[:48]] += time.thread_time() - start

    def execute(self, sql: str, *args: Any) -> Any:
        return self._timed("execute", sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        return self._timed("executemany", sql, *args)


class _TimedConnection:
    def __init__(self, dbapi: Any) -> None:
        self.dbapi = dbapi

    def cursor(self) -> _TimedCursor:
        return _TimedCursor(self.dbapi.cursor())


async def run(sessions: int, url: str) -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from sessionscope.importers.otlp import decode_spans
    from sessionscope.importers.otlp_genai import spans_to_conversations
    from sessionscope.ingest import SessionBatch
    from sessionscope.ingest.many import prepare
    from sessionscope.store import batches
    from sessionscope.store.database import open_database

    spans = [s for w in range(EXPORTERS) for s in _spans_for(w, sessions, 5, "stages")]
    bodies = [encode_spans(spans[i:i + BATCH]).SerializeToString() for i in range(0, len(spans), BATCH)]
    write_cpu = [0.0]
    real_write = batches._write

    def timed_write(dbapi: Any, *args: Any) -> Any:
        start = time.thread_time()
        try:
            return real_write(_TimedConnection(dbapi), *args)
        finally:
            write_cpu[0] += time.thread_time() - start

    batches._write = timed_write  # type: ignore[assignment]
    db = await open_database(url)
    # One request's work untimed first: the tokenizer and the validators load on first use.
    warm = spans_to_conversations(decode_spans(bodies[0], "application/x-protobuf"))
    prepare([SessionBatch(key=c.key, agent=c.agent, channel=c.channel, created_at=c.created_at,
                          items=c.messages, executions=c.executions) for c in warm.conversations])
    stages = dict.fromkeys(("decode", "map", "prepare"), 0.0)
    try:
        for body in bodies:
            t0 = time.process_time()
            decoded = decode_spans(body, "application/x-protobuf")
            t1 = time.process_time()
            mapped = spans_to_conversations(decoded)
            t2 = time.process_time()
            ready, _ = prepare([SessionBatch(key=c.key, agent=c.agent, channel=c.channel, created_at=c.created_at,
                                             items=c.messages, executions=c.executions)
                                for c in mapped.conversations])
            t3 = time.process_time()
            stages["decode"] += t1 - t0
            stages["map"] += t2 - t1
            stages["prepare"] += t3 - t2
            await batches.append_sessions(db, "default", ready, int(time.time() * 1000))
    finally:
        batches._write = real_write  # type: ignore[assignment]
        await db.close()
    n = len(spans)
    print(f"{n:,} spans in {len(bodies)} requests of {BATCH}; CPU per span:")
    for name, seconds in stages.items():
        print(f"  {name:<8} {seconds / n * 1e6:6.1f} us")
    print(f"  write    {write_cpu[0] / n * 1e6:6.1f} us (driver thread), of which:")
    for sql, seconds in STATEMENTS.most_common(8):
        print(f"    {seconds / n * 1e6:6.1f} us  {sql}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=400)
    OUT.mkdir(exist_ok=True)
    path = OUT / "otlp_stages.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    asyncio.run(run(parser.parse_args().sessions, f"sqlite+aiosqlite:///{path}"))


if __name__ == "__main__":
    main()
