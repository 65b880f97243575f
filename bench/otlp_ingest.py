"""OTLP ingest benchmark: OpenInference spans sent by the official OTLP/HTTP exporter to a real
`sessionscope serve`, next to `session.append` on the same server in the same run.

    python bench/otlp_ingest.py                         # SQLite, the issue's sizes
    python bench/otlp_ingest.py --database postgresql   # PostgreSQL at 127.0.0.1:5432
    python bench/otlp_ingest.py --profile bench/out/otlp.prof   # cProfile of the server
    python bench/otlp_ingest.py --history               # model calls resend the earlier turns

Each of 4 exporter processes records its share of the spans first (the application's own
cost, not timed), then hands them to a BatchSpanProcessor (batches of 512) whose
OTLPSpanExporter posts protobuf to /v1/traces. A session's 5 traces are dealt round-robin to
the processes, so they arrive in no particular order, as they do from a fleet of workers. The
clock stops when every exporter has flushed and `session.list` shows every session; then each
session is read back to check that its turns are in span order and that `created_at` is its
earliest span's start.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.core import OUT, PG_ADMIN, Server, ingest, process_tree


class ProfiledServer(Server):
    """bench.core's server, optionally run under cProfile (written when it stops)."""

    def __init__(self, url: str, profile: str | None) -> None:
        self.profile = profile
        if profile is None:
            super().__init__(url)
            return
        real_popen = subprocess.Popen

        def popen(argv: list[str], **kwargs: Any) -> subprocess.Popen:
            return real_popen([argv[0], "-m", "cProfile", "-o", profile, *argv[1:]], **kwargs)

        subprocess.Popen = popen  # type: ignore[assignment,misc]
        try:
            super().__init__(url)
        finally:
            subprocess.Popen = real_popen  # type: ignore[misc]

    def stop(self) -> None:
        if self.profile is None:
            super().stop()
            return
        # uvicorn re-raises the signal it stopped on: SIGTERM would kill the process before
        # cProfile writes; SIGINT ends it with KeyboardInterrupt, past cProfile's `finally`.
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)

T0 = 1_780_000_000_000_000_000  # ns; a fixed past time, so created_at is checkable
TRACE_GAP_NS = 2_000_000_000
EXPORTERS = 4
BATCH = 512
PG_DB = "sessionscope_bench_otlp"
# How often the clock's end is checked once the exporters are done. The check (session.list
# with a key search and its total) costs the server ~9 ms: every 10 ms it took half a core
# from the write it waits for; every 50 ms the figure is at most that late.
POLL_SECONDS = 0.05


def _spans_for(worker: int, sessions: int, traces: int, run: str, history: bool = False) -> list[Any]:
    """This worker's traces (session s, trace t, dealt round-robin), recorded by the real SDK.
    With `history`, each model call carries the turns before it, as chat model calls do."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for n in range(worker, sessions * traces, EXPORTERS):
        s, t = divmod(n, traces)
        session = f"otlp-{run}/{s}"
        start = T0 + s * 1_000_000 + t * TRACE_GAP_NS
        question, answer = f"question {t} of session {s} about deploy {t % 7}", f"answer {t} for session {s}"
        root = tracer.start_span("agent", start_time=start, attributes={
            "openinference.span.kind": "AGENT", "session.id": session,
            "input.value": question, "output.value": answer,
        })
        turns = [("system", "You are a deploy assistant.")]
        for earlier in range(t if history else 0):
            turns += [("user", f"question {earlier} of session {s} about deploy {earlier % 7}"),
                      ("assistant", f"answer {earlier} for session {s}")]
        turns.append(("user", question))
        inputs = {f"llm.input_messages.{i}.message.{field}": value for i, turn in enumerate(turns)
                  for field, value in zip(("role", "content"), turn, strict=True)}
        llm = tracer.start_span("ChatCompletion", context=trace.set_span_in_context(root),
                                start_time=start + 1_000_000, attributes={
            "openinference.span.kind": "LLM", "session.id": session,
            "llm.model_name": "gpt-4o-mini", "llm.provider": "openai", "llm.system": "openai",
            **inputs,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": answer,
            # Counts of their own, as real model calls report: with one count for every call,
            # each execution's price came from a cache (pricing.py), which real traffic misses.
            "llm.token_count.prompt": 40 + s % 1000 + t, "llm.token_count.completion": 12 + (3 * s + t) % 50,
        })
        llm.end(end_time=start + 500_000_000)
        root.end(end_time=start + 600_000_000)
    provider.shutdown()
    return list(memory.get_finished_spans())


def _exporter(worker: int, sessions: int, traces: int, run: str, url: str, ready: Any, go: Any,
              done: Any, history: bool) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    spans = _spans_for(worker, sessions, traces, run, history)
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=600)
    processor = BatchSpanProcessor(exporter, max_queue_size=max(len(spans), BATCH), max_export_batch_size=BATCH,
                                   schedule_delay_millis=50)
    ready.put(len(spans))
    go.wait()
    cpu = time.process_time()
    for span in spans:
        processor.on_end(span)  # what the SDK does as each span ends
    processor.force_flush(timeout_millis=600_000)
    processor.shutdown()
    done.put(time.process_time() - cpu)  # the exporter's own CPU: it shares the cores with the server


def run_otlp(server: Server, sessions: int, traces: int, run: str, history: bool = False
             ) -> tuple[int, float, float]:
    """(spans, seconds until all are listable, the exporter processes' CPU seconds)."""
    ctx = mp.get_context("spawn")
    ready, done, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_exporter, args=(w, sessions, traces, run, server.base, ready, go, done, history))
             for w in range(EXPORTERS)]
    for p in procs:
        p.start()
    spans = sum(ready.get(timeout=600) for _ in procs)
    start = time.perf_counter()
    go.set()
    exporter_cpu = sum(done.get(timeout=1200) for _ in procs)
    while server.call("session.list", search=f"otlp-{run}/", limit=1)[0]["total"] < sessions:
        time.sleep(POLL_SECONDS)
    elapsed = time.perf_counter() - start
    for p in procs:
        p.join()
    return spans, elapsed, exporter_cpu


def server_cpu_s(server: Server, *, workers: bool = True) -> float:
    """CPU seconds the server process and (`workers`) its worker processes have used: a figure
    that other load on the machine does not move much, unlike the rates."""
    total = 0
    for pid in process_tree(server.proc.pid) if workers else [server.proc.pid]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def settle(url: str) -> float:
    """Seconds until the search indexer has caught up with what came before (the append phase's
    100,000 messages are indexed in the background after they are answered): otherwise that
    work shares the store's one writer with the OTLP phase, and the OTLP figure pays for it."""
    from sessionscope.store import open_database, search_index

    async def wait() -> float:
        db = await open_database(url)
        start = time.perf_counter()
        try:
            while await search_index.queued(db):  # noqa: ASYNC110 - another process indexes
                await asyncio.sleep(0.05)
        finally:
            await db.close()
        return time.perf_counter() - start

    return asyncio.run(wait())


def warm_otlp(server: Server, run: str) -> None:
    """A small run of the same exporters (sessions of their own), twice, a few seconds apart:
    the server starts its decoding processes when requests overlap (web/cpu_pool.py), as a
    server that has been receiving traces from several exporters has them running."""
    for round_ in range(2):
        run_otlp(server, 200, 5, f"warm{round_}-{run}")
        time.sleep(3)


def check_sessions(server: Server, sessions: int, traces: int, run: str) -> tuple[int, int, int]:
    """(sessions whose turns are out of span order, whose created_at is not the first span's start,
    messages stored)."""
    out_of_order = wrong_created = stored = 0
    for s in range(sessions):
        status, _ = server.call("session.status", key=f"otlp-{run}/{s}", limit=1000)
        items = [i for i in status["items"] if i.get("kind", "message") == "message"]
        stored += len(items)
        times = [i["timestamp"] for i in items]
        if times != sorted(times):
            out_of_order += 1
        first = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((T0 + s * 1_000_000) / 1e9))
        if not status["session"]["created_at"].startswith(first):
            wrong_created += 1
    return out_of_order, wrong_created, stored


def fresh_store(database: str) -> str:
    """An empty store of this benchmark's own (the core benchmark's stays as it is)."""
    OUT.mkdir(exist_ok=True)
    if database == "sqlite":
        path = OUT / "otlp.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite+aiosqlite:///{path}"
    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{PG_DB}"')
        await conn.close()

    asyncio.run(create())
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DB}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sessions", type=int, default=2_000)
    parser.add_argument("--traces", type=int, default=5, help="traces per session, 2 spans each")
    parser.add_argument("--append", type=int, default=100_000, help="messages appended in batches of 100")
    parser.add_argument("--profile", help="write a cProfile of the server process to this file")
    parser.add_argument("--history", action="store_true",
                        help="each model call carries the session's earlier turns, as chat model calls do")
    args = parser.parse_args()
    url = fresh_store(args.database)
    run = str(int(time.time()))
    server = ProfiledServer(url, args.profile)
    try:
        server.http.get(f"{server.base}/healthz")
        ingest(server, 5, 1)  # warm-up
        warm_otlp(server, run)
        settled = settle(url)
        cpu = server_cpu_s(server)
        append_rate = ingest(server, args.append // 100, 1)
        append_cpu = (server_cpu_s(server) - cpu) / args.append
        cpu, main_cpu = server_cpu_s(server), server_cpu_s(server, workers=False)
        spans, elapsed, exporter_cpu = run_otlp(server, args.sessions, args.traces, run, args.history)
        span_cpu = (server_cpu_s(server) - cpu) / spans
        main_span_cpu = (server_cpu_s(server, workers=False) - main_cpu) / spans
        out_of_order, wrong_created, stored = check_sessions(server, args.sessions, args.traces, run)
    finally:
        server.stop()
    rate = spans / elapsed
    print(f"\nsessionscope OTLP ingest benchmark ({args.database})")
    print(f"session.append x100, 1 client ({args.append:,} msgs)          {append_rate:>10,.0f} msg/s")
    print(f"OTLP/HTTP protobuf, {EXPORTERS} exporter processes, batches of {BATCH}"
          f"{', model calls with their history' if args.history else ''}: "
          f"{spans:,} spans in {elapsed:.2f} s = {rate:,.0f} spans/s "
          f"({rate / append_rate:.2f}x session.append)")
    print("  bar: >= 10,000 spans/s on SQLite and >= 0.5x session.append")
    print(f"  (the OTLP phase began once the indexer had caught up with the appends: {settled:.1f} s after them)")
    print(f"  server CPU: {append_cpu * 1e6:.0f} us per appended message, {span_cpu * 1e6:.0f} us per span "
          f"({main_span_cpu * 1e6:.0f} in the serving process); "
          f"the exporters' own: {exporter_cpu / spans * 1e6:.0f} us per span")
    print(f"  {args.sessions:,} sessions, {stored:,} messages stored; {out_of_order} with turns out of "
          f"span order, {wrong_created} with created_at after their first span")


if __name__ == "__main__":
    main()
