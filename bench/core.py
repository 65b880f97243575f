"""Core benchmark: session.list, search, status, metrics/context, ingest and export, through the
real HTTP server, each next to the raw SQL time for the same query in the same run.

    python bench/core.py                       # SQLite, the issue's sizes
    python bench/core.py --database postgresql # PostgreSQL at 127.0.0.1:5432 (bars are 1.5x)
    python bench/core.py --sessions 100000     # a quicker run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bulk import load_messages, load_sessions, message_rows
from sessionscope.demo import AGENTS, CHANNELS, TENANTS
from sessionscope.store import open_database, search_index
from sessionscope.store.appends import MESSAGE_COLUMNS, index_for_search, insert_sql

OUT = Path(__file__).resolve().parent / "out"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# Another name (SESSIONSCOPE_BENCH_PGDB) keeps two benches on one server apart.
PG_DB = os.environ.get("SESSIONSCOPE_BENCH_PGDB", "sessionscope_bench")
PG_BENCH = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DB}"
RUN = str(int(time.time()))
SORTS = ["updated_at", "created_at", "key", "agent", "channel", "message_count", "total_tokens", "cost_usd"]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def spread(values: list[float]) -> str:
    """Every read prints its tail too: p50, p99 and the worst call."""
    return f"p50 {ms(pct(values, 50))} p99 {ms(pct(values, 99))} max {ms(max(values))}"


def process_tree(pid: int) -> list[int]:
    """A process and its children, recursively: a server's figures (CPU, memory) include its
    worker processes (sessionscope's web/cpu_pool.py)."""
    out = [pid]
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(FileNotFoundError):
            for child in children.read_text().split():
                out.extend(process_tree(int(child)))
    return out


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def store_files(url: str) -> list[Path]:
    if not url.startswith("sqlite"):
        return []
    db = Path(url.split("///", 1)[1])
    return [p for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")) if p.exists()]


def evict(url: str) -> None:
    """Drop the store's pages from the caches, so the next read comes from the disk (as the first
    search of a term did after other work, 3-7 s on the 1M-session store). SQLite: the server's
    own page caches and the OS page cache of its files. PostgreSQL: see _evict_postgresql."""
    if not url.startswith("sqlite"):
        asyncio.run(_evict_postgresql())
        return
    import sqlite3

    # The server's connections keep 16 MiB of pages each, which the OS cannot drop: a change
    # made by another connection (an unused header field rewritten) makes them drop theirs.
    with contextlib.closing(sqlite3.connect(url.split("///", 1)[1], timeout=60)) as conn:
        conn.execute(f"PRAGMA user_version = {conn.execute('PRAGMA user_version').fetchone()[0]}")
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in store_files(url):
        _drop_from_page_cache(path)


def _drop_from_page_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages cannot be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


# A table in a database of its own, read into shared buffers to push the store's pages out, until
# at most EVICT_LEFT of the store's are left.
PG_EVICT_DB = f"{PG_DB}_evict"
EVICT_LEFT = 16


async def _evict_postgresql() -> None:
    """An approximation of a cold start without restarting a server that others share: after a
    CHECKPOINT (dirty buffers cannot be dropped) a scratch table of twice shared_buffers is read
    into the buffer pool with pg_prewarm until at most EVICT_LEFT of the store's buffers are
    left (the clock sweep spares a page as many passes as its use count, up to 5), then the
    store's files are dropped from the OS page cache as on SQLite."""
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", PG_EVICT_DB):
            await admin.execute(f'CREATE DATABASE "{PG_EVICT_DB}"')
        await admin.execute("CHECKPOINT")
        data_dir = Path(await admin.fetchval("SHOW data_directory"))
        store_oid = await admin.fetchval("SELECT oid FROM pg_database WHERE datname = $1", PG_DB)
    finally:
        await admin.close()
    scratch = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_EVICT_DB)
    try:
        await scratch.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        await scratch.execute("CREATE EXTENSION IF NOT EXISTS pg_buffercache")
        if not await scratch.fetchval("SELECT to_regclass('evict') IS NOT NULL"):
            pages = 2 * int(await scratch.fetchval("SELECT setting FROM pg_settings WHERE name = 'shared_buffers'"))
            # About seven 1 KB rows a page.
            await scratch.execute("CREATE TABLE evict AS SELECT repeat('x', 1000) AS pad "
                                  f"FROM generate_series(1, {pages * 7})")
        for _ in range(8):
            await scratch.execute("SELECT pg_prewarm('evict', 'buffer')")
            left = await scratch.fetchval("SELECT count(*) FROM pg_buffercache WHERE reldatabase = $1", store_oid)
            if left <= EVICT_LEFT:
                break
    finally:
        await scratch.close()
    for path in (data_dir / "base" / str(store_oid)).iterdir():
        _drop_from_page_cache(path)


def warm(url: str) -> None:
    """Read a reused store's files once, so that the run starts from the page cache a build
    leaves, not from what an earlier run's cold-cache row evicted (that row measures the disk)."""
    start, size = time.perf_counter(), 0
    for path in store_files(url):
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                size += len(chunk)
    if size:
        print(f"  read the store's files once ({size / 2**20:,.0f} MiB in {time.perf_counter() - start:.1f} s)",
              flush=True)


class WalPeak:
    """Samples the -wal file's size on a thread while a phase runs."""

    def __init__(self, url: str) -> None:
        self.path = Path(url.split("///", 1)[1] + "-wal") if url.startswith("sqlite") else None
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, self.path.stat().st_size) if self.path else 0

    def __enter__(self) -> WalPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Server:
    def __init__(self, url: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, "-m", "sessionscope.cli", "serve", "--db", url, "--port",
                                      str(self.port), "--no-auth"], stdout=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(timeout=600)
        for _ in range(300):
            try:
                self.http.get(f"{self.base}/healthz")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("server did not start")
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def call(self, method: str, **params: Any) -> tuple[Any, float]:
        """One call over a kept connection with a lean client (stdlib http.client, orjson), as
        `ingest` does: it shares the two cores with the server, and what is timed is the server.
        `call_httpx` times the same through httpx, whose own cost is about a millisecond a call."""
        body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        start = time.perf_counter()
        try:
            self.conn.request("POST", "/rpc", body, {"content-type": "application/json"})
            response = self.conn.getresponse()
        except (ConnectionError, http.client.RemoteDisconnected):
            # The server closed the idle connection (keep-alive timeout) while other phases ran.
            self.conn.close()
            start = time.perf_counter()
            self.conn.request("POST", "/rpc", body, {"content-type": "application/json"})
            response = self.conn.getresponse()
        answer = orjson.loads(response.read())
        elapsed = time.perf_counter() - start
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"], elapsed

    def call_httpx(self, method: str, **params: Any) -> float:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        start = time.perf_counter()
        answer = self.http.post(f"{self.base}/rpc", json=body).json()
        elapsed = time.perf_counter() - start
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return elapsed

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


# One API call (a function that makes it and returns its time), then the same query in raw SQL.
Pair = tuple[Callable[[], float], str, dict[str, Any]]


async def side_by_side(url: str, pairs: list[Pair]) -> tuple[list[float], list[float]]:
    """Each API call right before its raw SQL, on one open connection: the two see the same
    load on this shared machine, where timing all of one and then all of the other did not."""
    db = await open_database(url, migrate=False)
    api, raw = [], []
    try:
        async with db.engine.connect() as conn:
            for call_api, sql, params in pairs:
                api.append(call_api())
                start = time.perf_counter()
                (await conn.execute(text(sql), params)).all()
                raw.append(time.perf_counter() - start)
    finally:
        await db.close()
    return api, raw


async def prepare(url: str, sessions: int, big: int, export_sessions: int) -> None:
    db = await open_database(url)
    try:
        t = time.perf_counter()
        await load_sessions(db, sessions)
        print(f"  loaded {sessions:,} sessions in {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        from sessionscope.ingest import append_messages
        from sessionscope.store import Scope

        for i in range(export_sessions):
            await append_messages(db, Scope.everything(), key=f"big/{i}", agent="main", channel="web", tenant="default",
                                  batch=[{"id": "seed", "role": "user", "content": "start", "tokens": 5}], source="bench")
            await load_messages(db, "default", f"big/{i}", big)
        print(f"  loaded {export_sessions} x {big:,} messages in {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        await search_index.drain(db)
        print(f"  indexed the loaded messages for search in {time.perf_counter() - t:.1f} s", flush=True)
        if not db.is_sqlite:
            # What autovacuum does after a bulk load (it is off on our bench machine): statistics
            # for the planner and a clean visibility map.
            async with db.engine.connect() as conn:
                await (await conn.execution_options(isolation_level="AUTOCOMMIT")).exec_driver_sql("VACUUM ANALYZE")
    finally:
        await db.close()


def sqlite_or_pg(database: str) -> str:
    OUT.mkdir(exist_ok=True)
    if database == "sqlite":
        path = OUT / "core.db"
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
    return PG_BENCH


def list_sql(call: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The raw SQL of one session.list call of list_params."""
    filters = [name for name in ("tenant", "agent", "channel") if name in call]
    where = " AND ".join(f"{name} = :{name}" for name in filters)
    order = call["order"].upper()
    sql = f"SELECT * FROM sessions WHERE {where} ORDER BY {call['sort']} {order}, id {order} LIMIT 51"
    return sql, {name: call[name] for name in filters}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=100_000, help="messages in each big session")
    parser.add_argument("--export-sessions", type=int, default=10, help="big sessions (export covers all)")
    parser.add_argument("--ingest", type=int, default=100_000, help="messages appended in batches of 100")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="keep the store built by an earlier run")
    parser.add_argument("--reads", action="store_true",
                        help="only the session.list and session.status rows (to iterate on them)")
    parser.add_argument("--search", action="store_true", help="only the search rows, warm and cold")
    args = parser.parse_args()
    factor = 1.5 if args.database == "postgresql" else 1.0
    if args.reuse:
        url = f"sqlite+aiosqlite:///{OUT / 'core.db'}" if args.database == "sqlite" else PG_BENCH
        print(f"reusing the {args.database} store of an earlier run", flush=True)
        warm(url)
    else:
        url = sqlite_or_pg(args.database)
        print(f"building: {args.database}, {args.sessions:,} sessions", flush=True)
        asyncio.run(prepare(url, args.sessions, args.big, args.export_sessions))
    server = Server(url)
    rows: list[tuple[str, str, str, str]] = []
    try:
        rows += run_benchmarks(server, url, args, factor)
    finally:
        server.stop()
    print(f"\nsessionscope core benchmark ({args.database}, {args.sessions:,} sessions; bars x{factor}; "
          f"{load()} at the end)")
    print(f"{'operation':58} {'API':>22} {'raw SQL':>16}  bar")
    for name, api, raw, bar in rows:
        print(f"{name:58} {api:>22} {raw:>16}  {bar}")


def list_params(rounds: int) -> list[dict[str, Any]]:
    """session.list calls over every tenant and sort, both orders, a third filtered by agent and a
    third by channel (list_sql is the same in raw SQL)."""
    rng = random.Random(5)
    calls = []
    for i in range(rounds):
        params: dict[str, Any] = {"tenant": TENANTS[i % len(TENANTS)], "sort": SORTS[i % len(SORTS)],
                                  "order": "desc" if i % 2 else "asc", "limit": 50}
        if i % 3 == 0:
            params["agent"] = rng.choice(AGENTS)
        elif i % 3 == 1:
            params["channel"] = rng.choice(CHANNELS)
        calls.append(params)
    return calls


def read_rows(server: Server, url: str, args: argparse.Namespace, factor: float) -> list[tuple[str, str, str, str]]:
    """session.list (filtered and sorted) and session.status, each call beside its raw SQL."""
    out: list[tuple[str, str, str, str]] = []
    calls = list_params(args.rounds)
    for params in calls:  # warm: the API and the raw SQL then read the same pages from memory
        server.call("session.list", **params)
    pairs: list[Pair] = [(lambda p=params: server.call("session.list", **p)[1], *list_sql(params))
                         for params in calls]
    api, raw = asyncio.run(side_by_side(url, pairs))
    out.append((f"session.list page of 50, filtered+sorted (n={args.rounds})",
                spread(api), f"p50 {ms(pct(raw, 50))}",
                f"p50 <= {2 * factor:.1f}x raw ({pct(api, 50) / pct(raw, 50):.1f}x)"))
    through_httpx = [server.call_httpx("session.list", **params) for params in calls]
    out.append(("  the same through httpx (for comparison: the client's own cost)", spread(through_httpx), "", ""))
    # status of a 100k-message session
    for _ in range(10):
        server.call("session.status", key="big/0", tenant="default")  # warm: markdown rendered once
    sql, params = asyncio.run(_status_sql(url))
    pairs = [(lambda: server.call("session.status", key="big/0", tenant="default")[1], sql, params)] * args.rounds
    api, raw = asyncio.run(side_by_side(url, pairs))
    out.append((f"session.status first page, {args.big:,}-message session (n={args.rounds})", spread(api),
                f"p50 {ms(pct(raw, 50))}",
                f"p50 <= {3 * factor:.1f}x raw ({pct(api, 50) / pct(raw, 50):.1f}x)"))
    through_httpx = [server.call_httpx("session.status", key="big/0", tenant="default") for _ in range(args.rounds)]
    out.append(("  the same through httpx (for comparison: the client's own cost)", spread(through_httpx), "", ""))
    return out


SEARCH_TERMS = ["-1001234", "topic:42", "support", "discord", "ops-bot:slack", "group:-10099", "whatsapp:group",
                "-100777"]


def search_rows(server: Server, url: str, factor: float) -> list[tuple[str, str, str, str]]:
    """session.list with `search`, warm, then each call after the store was evicted from the
    caches (evict), with the slowest term of each."""
    out = []
    for label, cold in (("", False), (", cold cache (see evict)", True)):
        api, by_term, before = [], {}, load()
        for i in range(len(SEARCH_TERMS) * (2 if cold else 5)):
            if cold:
                evict(url)
            term = SEARCH_TERMS[i % len(SEARCH_TERMS)]
            _, elapsed = server.call("session.list", search=term, tenant=TENANTS[i % 3], limit=50)
            api.append(elapsed)
            by_term[term] = max(by_term.get(term, 0.0), elapsed)
        worst = sorted(by_term.items(), key=lambda kv: -kv[1])[:3]
        out.append((f"session.list with search{label}", spread(api), f"{before} -> {load()}",
                    f"p99 <= {200 * factor:.0f} ms"))
        out.append(("  slowest terms (max)", "", "", ", ".join(f"{t} {s * 1000:.0f} ms" for t, s in worst)))
    return out


def run_benchmarks(server: Server, url: str, args: argparse.Namespace, factor: float
                   ) -> list[tuple[str, str, str, str]]:
    if args.search:
        return search_rows(server, url, factor)
    out: list[tuple[str, str, str, str]] = read_rows(server, url, args, factor)
    if args.reads:
        return out
    # content search (`query`) over the big sessions' messages
    words = ["billing-api", "deploy", "99902", "file2.py", "nothingmatchesthis"]
    api = []
    for i in range(max(40, args.rounds // 5)):
        _, elapsed = server.call("session.list", query=words[i % len(words)], tenant="default", limit=50)
        api.append(elapsed)
    out.append((f"session.list with query, {args.export_sessions * args.big:,} messages (hit, rare, miss)",
                spread(api), "", f"p50 <= {50 * factor:.0f} ms, p99 <= {200 * factor:.0f} ms"))
    out += search_rows(server, url, factor)
    # metrics and context, small vs big session
    server.call("session.append", key="small", tenant="default", agent="main", channel="web",
                messages=[{"id": "1", "role": "user", "content": "hi"}])
    for method in ("session.metrics", "session.context"):
        small = [server.call(method, key="small", tenant="default")[1] for _ in range(50)]
        big = [server.call(method, key="big/0", tenant="default")[1] for _ in range(50)]
        out.append((f"{method}: 1-message vs {args.big:,}-message session",
                    f"{ms(pct(small, 50))} vs {ms(pct(big, 50))}", f"big: {spread(big)}", "independent of length"))
    # ingest: one client, then several agents appending to their own sessions at once
    batches = args.ingest // 100
    ingest(server, 5, 1)  # warm-up: first-call costs are not steady-state throughput
    settle(url)
    raw_rate = asyncio.run(_raw_ingest(url, batches * 100, search_index=False))
    raw_indexed_rate = asyncio.run(_raw_ingest(url, batches * 100, search_index=True))
    out.append((f"raw SQL: executemany x100 ({batches * 100:,} msgs), then with search index entries", "",
                f"{raw_rate:,.0f} msg/s", f"{raw_indexed_rate:,.0f} msg/s with the index"))
    for clients in (1, 4):
        settle(url)
        with WalPeak(url) as wal:
            api_rate = ingest(server, batches, clients)
        lag = settle(url)
        out.append((f"ingest: session.append x100, {clients} client(s) ({batches * 100:,} msgs)",
                    f"{api_rate:,.0f} msg/s", f"{raw_rate:,.0f} msg/s",
                    f">= {20_000 / factor:,.0f} msg/s and >= 0.3x raw ({api_rate / raw_rate:.2f}x)"))
        if wal.path is not None:
            out.append(("  WAL peak during that ingest (sampled every 10 ms)", f"{wal.peak / 2**20:.1f} MiB", "",
                        "<= 64 MiB"))
        # The search indexer runs beside the appends; what it had not done when the last
        # append returned is charged to the phase here.
        behind, catch_up = lag
        whole = batches * 100 / (batches * 100 / api_rate + catch_up)
        out.append((f"  the same until search indexed it all ({behind:,} ranges left, {catch_up:.1f} s)",
                    f"{whole:,.0f} msg/s", "", f">= {20_000 / factor:,.0f} msg/s"))
    settle(url)
    sdk_rate = ingest_sdk(server, batches)
    out.append(("ingest: the same, 1 client through the Python SDK (httpx)", f"{sdk_rate:,.0f} msg/s", "",
                "for comparison: the client's own cost shares the cores"))
    # export
    keys = [f"big/{i}" for i in range(args.export_sessions)]
    link, _ = server.call("session.export", keys=keys, tenant="default")
    start = time.perf_counter()
    lines = 0
    with server.http.stream("GET", link["url"]) as response:
        for chunk in response.iter_bytes():
            lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - start
    out.append((f"export {lines:,} lines ({args.export_sessions} sessions)",
                f"{lines / elapsed:,.0f} lines/s", f"peak RSS {server.peak_rss_mb():.0f} MB",
                f">= {100_000 / factor:,.0f} lines/s, peak RSS <= {200 * factor:.0f} MB"))
    return out


def settle(url: str) -> tuple[int, float]:
    """Start each timed write phase with no work left from the one before: an empty search
    queue, which the server's indexer drains, and on SQLite an empty WAL (no phase pays for an
    earlier phase's checkpoint). Returns the ranges that were queued and how long the server took
    to index them."""

    async def wait() -> tuple[int, float]:
        db = await open_database(url, migrate=False)
        try:
            start, behind = time.perf_counter(), await search_index.queued(db)
            while await search_index.queued(db):  # noqa: ASYNC110 - the server indexes in another process
                await asyncio.sleep(0.01)
            return behind, time.perf_counter() - start
        finally:
            await db.close()

    lag = asyncio.run(wait())
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.split("///", 1)[1], timeout=60) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return lag


def ingest_batch(b: int) -> list[dict[str, Any]]:
    return [{"id": f"i{b}-{i}", "role": "user" if i % 2 else "assistant",
             "content": f"ingest message {b}-{i} about deploy {i % 17} of billing-api"} for i in range(100)]


def ingest(server: Server, batches: int, clients: int) -> float:
    """Agents append batches of 100 to their own sessions, each over one keep-alive connection.

    The load generator is deliberately lean (stdlib http.client, orjson bodies): it shares this
    machine's two cores with the server, and what is measured is the server's throughput.
    `ingest_sdk` measures the same through the Python SDK (httpx) for comparison.
    """
    from concurrent.futures import ThreadPoolExecutor

    def agent(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
        for b in range(n, batches, clients):
            body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "session.append",
                                 "params": {"key": f"ingest-{RUN}-{clients}/{n}", "tenant": "default",
                                            "agent": "main", "channel": "web", "messages": ingest_batch(b)}})
            conn.request("POST", "/rpc", body, {"content-type": "application/json"})
            assert "result" in orjson.loads(conn.getresponse().read())
        conn.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(agent, range(clients)))
    return batches * 100 / (time.perf_counter() - start)


def ingest_sdk(server: Server, batches: int) -> float:
    """One agent appending through sessionscope.client.Client."""
    from sessionscope.client import Client

    with Client(server.base) as client:
        session = client.session(f"ingest-sdk-{RUN}", agent="main", channel="web", tenant="default")
        start = time.perf_counter()
        for b in range(batches):
            session.append(*ingest_batch(b))
        return batches * 100 / (time.perf_counter() - start)


async def _status_sql(url: str) -> tuple[str, dict[str, Any]]:
    """The raw SQL of session.status's page: big/0's newest 100 messages (and one more)."""
    db = await open_database(url, migrate=False)
    try:
        async with db.engine.connect() as conn:
            sid, upper = (await conn.execute(text("SELECT id, next_seq FROM sessions WHERE tenant='default' "
                                                  "AND key='big/0'"))).one()
    finally:
        await db.close()
    return ("SELECT * FROM messages WHERE session_id = :sid AND seq < :upper ORDER BY seq DESC LIMIT 101",
            {"sid": sid, "upper": upper})


async def _raw_ingest(url: str, count: int, *, search_index: bool) -> float:
    """executemany of the same number of message rows into a fresh session, in batches of 100,
    a transaction each; with `search_index`, each batch also writes its search index entries."""
    db = await open_database(url, migrate=False)
    try:
        from sessionscope.ingest import append_messages
        from sessionscope.store import Scope

        key = f"raw-ingest-{RUN}-{'indexed' if search_index else 'rows'}"
        await append_messages(db, Scope.everything(), key=key, agent="main", channel="web", tenant="default",
                              batch=[{"id": "seed", "role": "user", "content": "x", "tokens": 1}], source="bench")
        async with db.engine.connect() as conn:
            sid = (await conn.execute(text("SELECT id FROM sessions WHERE key=:k"), {"k": key})).scalar_one()
        columns = MESSAGE_COLUMNS
        start = time.perf_counter()
        for b in range(count // 100):
            rows = [tuple(r.get(c) for c in columns) for r in message_rows(sid, 100, 2 + b * 100)]
            async with db.write() as conn:
                await conn.exec_driver_sql(insert_sql(db), rows)
                if search_index:
                    await index_for_search(db, conn, sid, 2 + b * 100, 101 + b * 100)
        return count / (time.perf_counter() - start)
    finally:
        await db.close()


if __name__ == "__main__":
    shutil.rmtree(OUT / "tmp", ignore_errors=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
