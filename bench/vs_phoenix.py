"""Side by side with Arize Phoenix on the same OpenInference agent sessions.

Both servers run on loopback with SQLite, each in a throwaway directory, and receive the same
spans through the official OTLP/HTTP exporter. Timed: ingest until persisted (every session
listable), the first page of sessions, content search (a hit and a miss), one session's detail.
Read: each server's peak RSS (VmHWM) and its store's size on disk. Answers are checked.

    pip install -e '.[peers]'                    # arize-phoenix beside sessionscope
    python bench/vs_phoenix.py --sessions 2000   # the real run
    python bench/vs_phoenix.py --sessions 100 --phoenix-bin /tmp/phoenix-venv/bin/phoenix

Not part of the test suite. Phoenix's span search scans span attributes; each of its calls is
capped at --timeout seconds so that the run ends (a capped row prints ">= N s"). Each read
is the median of 5 calls.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.core import process_tree

NEEDLE = "zebraquartz"
MISS = "nowhere-term-qxv"
TURNS = 2
REPEAT = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_id(n: int) -> str:
    return f"agent-session-{n:05d}"


def generate(sessions: int) -> list[ReadableSpan]:
    """OpenInference spans: per turn an AGENT span (session.id, input/output values) with an LLM
    child carrying the chat messages. The needle is in one session's last turn only."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("vs-phoenix")
    for n in range(sessions):
        for t in range(TURNS):
            question = f"Turn {t} of session {n}: why did invoice {n * 7 + t} fail to sync with billing?"
            if n == sessions // 2 and t == TURNS - 1:
                question += f" The customer code is {NEEDLE}."
            answer = f"Invoice {n * 7 + t} failed because the billing API returned 429; retried later."
            common = {"session.id": session_id(n), "input.value": question, "output.value": answer}
            with tracer.start_as_current_span("agent.run", attributes={
                    "openinference.span.kind": "AGENT", **common}), tracer.start_as_current_span("llm.chat", attributes={
                        "openinference.span.kind": "LLM", "session.id": session_id(n),
                        "llm.model_name": "gpt-4o-mini", "llm.provider": "openai",
                        "llm.input_messages.0.message.role": "user",
                        "llm.input_messages.0.message.content": question,
                        "llm.output_messages.0.message.role": "assistant",
                        "llm.output_messages.0.message.content": answer,
                        "llm.token_count.prompt": 40, "llm.token_count.completion": 20,
                        "input.value": question, "output.value": answer}):
                pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def send(endpoint: str, spans: list[ReadableSpan]) -> None:
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=120)
    for i in range(0, len(spans), 512):
        result = exporter.export(spans[i:i + 512])
        if result.name != "SUCCESS":
            raise RuntimeError(f"export to {endpoint} failed: {result}")
    exporter.shutdown()


def peak_rss_mb(pid: int) -> float:
    """The peaks (VmHWM) of the server and of its worker processes, added up: an upper bound of
    what the server held at once (sessionscope decodes large OTLP requests in workers)."""
    total = 0
    for process in process_tree(pid):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmHWM"):
                    total += int(line.split()[1])
    return total / 1024 if total else float("nan")


SETTLE_S = 3.0


def dir_size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def wait_until(check: Callable[[], bool], timeout: float) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            if check():
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("timed out waiting")


def timed(fn: Callable[[], Any], repeat: int = REPEAT) -> tuple[Any, float]:
    """The answer and the median of `repeat` calls: the first call of each kind also pays for
    warming up (imports, caches), on either server."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return value, statistics.median(times)


class Peer:
    """One server process: its base URL, its pid and its store's directory."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int, store: Path,
                 ready: str) -> None:
        self.name, self.store, self.base = name, store, f"http://127.0.0.1:{port}"
        self.log = (store / f"{name}.log").open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=store)
        self.http = httpx.Client(timeout=300)
        wait_until(lambda: self.http.get(self.base + ready).status_code < 500, 180)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Sessionscope(Peer):
    def rpc(self, method: str, **params: Any) -> Any:
        answer = self.http.post(self.base + "/rpc", json={"jsonrpc": "2.0", "id": 1, "method": method,
                                                          "params": params}).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def persisted(self, sessions: int) -> bool:
        return int(self.rpc("session.list", limit=1)["total"]) >= sessions

    def first_page(self) -> list[str]:
        return [s["key"] for s in self.rpc("session.list", limit=50)["sessions"]]

    def search(self, term: str, timeout: float) -> list[str]:
        return [s["key"] for s in self.rpc("session.list", query=term, limit=50)["sessions"]]

    def detail(self, key: str) -> int:
        return len(self.rpc("session.status", key=key)["items"])


class Phoenix(Peer):
    project = "default"

    def gql(self, query: str, timeout: float = 300, **variables: Any) -> Any:
        answer = self.http.post(self.base + "/graphql", json={"query": query, "variables": variables},
                                timeout=timeout).json()
        if answer.get("errors"):
            raise RuntimeError(f"phoenix graphql: {answer['errors']}")
        return answer["data"]

    def _project_id(self) -> str:
        projects = self.gql("{ projects(first: 10) { edges { node { id name } } } }")["projects"]["edges"]
        return next(e["node"]["id"] for e in projects if e["node"]["name"] == self.project)

    def persisted(self, sessions: int) -> bool:
        try:
            pid = self._project_id()
        except StopIteration:
            return False
        node = self.gql("query($id: ID!) { node(id: $id) { ... on Project { sessionCount traceCount } } }",
                        id=pid)["node"]
        return int(node["sessionCount"]) >= sessions and int(node["traceCount"]) >= sessions * TURNS

    def first_page(self) -> list[str]:
        node = self.gql("query($id: ID!) { node(id: $id) { ... on Project { sessions(first: 50, sort: "
                        "{col: startTime, dir: desc}) { edges { node { id sessionId } } } } } }",
                        id=self._project_id())["node"]
        self._ids = {e["node"]["sessionId"]: e["node"]["id"] for e in node["sessions"]["edges"]}
        return list(self._ids)

    def search(self, term: str, timeout: float) -> list[str]:
        node = self.gql("query($id: ID!, $cond: String!) { node(id: $id) { ... on Project { spans(first: 50, "
                        "filterCondition: $cond) { edges { node { attributes } } } } } }", timeout=timeout,
                        id=self._project_id(), cond=f"{json.dumps(term)} in input.value")["node"]
        found = {json.loads(e["node"]["attributes"]).get("session", {}).get("id")
                 for e in node["spans"]["edges"]}
        return sorted(s for s in found if s)

    def detail(self, key: str) -> int:
        node = self.gql("query($id: ID!) { node(id: $id) { ... on ProjectSession { traces(first: 100) { edges {"
                        " node { spans(first: 100) { edges { node { input { value } output { value } } } } } } } } }"
                        "}", id=self._ids[key])["node"]
        return sum(len(t["node"]["spans"]["edges"]) for t in node["traces"]["edges"])


def start_phoenix(binary: str, root: Path) -> Phoenix:
    port, grpc = free_port(), free_port()
    work = root / "phoenix"
    work.mkdir()
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(work), "PHOENIX_PORT": str(port),
           "PHOENIX_GRPC_PORT": str(grpc), "PHOENIX_HOST": "127.0.0.1", "PHOENIX_TELEMETRY_ENABLED": "false"}
    env.pop("PHOENIX_SQL_DATABASE_URL", None)
    return Phoenix("phoenix", [binary, "serve"], env, port, work, "/healthz")


def start_sessionscope(root: Path) -> Sessionscope:
    port = free_port()
    work = root / "sessionscope"
    work.mkdir()
    cmd = [sys.executable, "-m", "sessionscope.cli", "serve", "--db", str(work / "store.db"), "--no-auth",
           "--port", str(port)]
    return Sessionscope("sessionscope", cmd, dict(os.environ), port, work, "/healthz")


def measure(peer: Peer, spans: list[ReadableSpan], sessions: int, timeout: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    start = time.perf_counter()
    send(peer.base + "/v1/traces", spans)
    wait_until(lambda: peer.persisted(sessions), 1800)
    out["ingest"] = time.perf_counter() - start
    keys, out["first page"] = timed(peer.first_page)  # type: ignore[attr-defined]
    assert len(keys) == min(50, sessions), (peer.name, len(keys))
    for label, term, want in (("search (hit)", NEEDLE, [session_id(sessions // 2)]), ("search (miss)", MISS, [])):
        try:
            found, out[label] = timed(lambda t=term: peer.search(t, timeout))  # type: ignore[attr-defined]
            assert found == want, (peer.name, label, found)
        except (httpx.TimeoutException, httpx.ReadTimeout):
            out[label] = None  # capped
    count, out["detail"] = timed(lambda: peer.detail(keys[0]))  # type: ignore[attr-defined]
    assert count >= TURNS, (peer.name, "detail", count)
    out["peak RSS"] = peak_rss_mb(peer.proc.pid)
    out["store, at once"] = dir_size_mb(peer.store)
    # The store at rest, the same wait for both: a server may empty an idle WAL (sessionscope
    # does after a second without a commit, store/checkpoint.py).
    time.sleep(SETTLE_S)
    out["store"] = dir_size_mb(peer.store)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=2_000)
    parser.add_argument("--phoenix-bin", default=shutil.which("phoenix") or "phoenix")
    parser.add_argument("--timeout", type=float, default=30.0, help="cap on each Phoenix search, in seconds")
    args = parser.parse_args()
    spans = generate(args.sessions)
    print(f"{args.sessions:,} sessions, {len(spans):,} OpenInference spans; load "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()), flush=True)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="vs-phoenix-") as tmp:
        for name, start in (("phoenix", lambda: start_phoenix(args.phoenix_bin, Path(tmp))),
                            ("sessionscope", lambda: start_sessionscope(Path(tmp)))):
            peer = start()
            try:
                results[name] = measure(peer, spans, args.sessions, args.timeout)
            finally:
                peer.stop()
            print(f"  {name}: done", flush=True)
    print(f"\nsessionscope vs Phoenix, {args.sessions:,} sessions ({len(spans):,} spans); load at the end "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    print(f"{'measure':16} {'phoenix':>14} {'sessionscope':>14} {'ratio':>10}   (store: {SETTLE_S:.0f} s after the last read)")
    for row in ("ingest", "first page", "search (hit)", "search (miss)", "detail", "peak RSS", "store",
                "store, at once"):
        p, s = results["phoenix"][row], results["sessionscope"][row]
        unit = "MB" if row.startswith(("peak RSS", "store")) else "s"
        def show(v: float, unit: str = unit) -> str:
            return f"{v:10.1f} {unit}" if unit == "MB" else f"{v * 1000:10.1f} ms"
        pshow = f">= {args.timeout:.0f} s" if p is None else show(p)
        ratio = (args.timeout if p is None else p) / s if s else float("inf")
        print(f"{row:16} {pshow:>14} {show(s):>14} {('>=' if p is None else '') + f'{ratio:.1f}x':>10}")


if __name__ == "__main__":
    main()
