"""Appends while an LLM auto-compaction of the same session is running.

A slow fake LLM (a real loopback HTTP server speaking the OpenAI Chat Completions wire format,
answering after --llm-delay seconds) is the agent's summariser. The session is pushed over its
auto-compaction threshold, and while the worker waits for the LLM, one client keeps appending
small batches to the same session. Printed: the append latency p50/p99 during the compaction
(bar: p99 <= 50 ms), and session.append messages/s for one client, batches of 100, in the same
run.

    PYTHONPATH=src python bench/ingest_pipeline.py [--database URL]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from sessionscope.web.services import ServerConfig


class SlowLLM(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.delay = delay
        self.calls = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: SlowLLM

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.calls += 1
        time.sleep(self.server.delay)
        body = json.dumps({"id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "slow",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": "## Requests\n- bench\n"}}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def call(http: httpx.Client, url: str, method: str, **params: Any) -> Any:
    answer = http.post(f"{url}/rpc", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return answer["result"]


def turn(prefix: str, n: int, words: int = 40) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-u{n}", "role": "user", "content": f"question {n} " + "about the deploy " * words},
            {"id": f"{prefix}-a{n}", "role": "assistant", "content": f"answer {n} " + "we keep retries " * words}]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    from tests.conftest import RunningServer

    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--llm-delay", type=float, default=3.0)
    parser.add_argument("--batches", type=int, default=300, help="batches of 100 for the msg/s figure")
    args = parser.parse_args()
    llm = SlowLLM(args.llm_delay)
    threading.Thread(target=llm.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        database = args.database or f"sqlite+aiosqlite:///{tmp}/bench.db"
        config = Path(tmp) / "sessionscope.toml"
        config.write_text(f'[agents.slow.compaction]\ncontext_window = 8000\nthreshold = 0.5\n'
                          f'keep_recent_tokens = 1000\nsummarizer = "llm"\n[agents.slow.compaction.llm]\n'
                          f'base_url = "{llm.base_url}"\nmodel = "slow"\ntimeout_s = {args.llm_delay + 10}\n')
        with RunningServer(ServerConfig(database=database, auth=False, config_path=str(config))) as server, \
                httpx.Client(timeout=60) as http:
            run = f"{time.time_ns()}"
            key = f"bench-compaction-{run}"
            n = 0
            while True:
                n += 1
                result = call(http, server.url, "session.append", key=key, agent="slow", channel="web",
                              messages=turn(run, n))
                if result.get("auto_compaction"):
                    break
            while llm.calls == 0:
                time.sleep(0.005)
            during: list[float] = []
            started = time.monotonic()
            while time.monotonic() - started < args.llm_delay * 0.8:
                n += 1
                t = time.perf_counter()
                call(http, server.url, "session.append", key=key, agent="slow", channel="web",
                     messages=turn(run, n, words=5))
                during.append(time.perf_counter() - t)
            compacted_meanwhile = call(http, server.url, "session.compactions", key=key)["compactions"]
            print(f"appends during an LLM auto-compaction ({len(during)} appends, LLM answers after "
                  f"{args.llm_delay:g} s, compaction committed before the last append: "
                  f"{'yes' if compacted_meanwhile else 'no'}): "
                  f"p50 {pct(during, 50) * 1000:.1f} ms, p99 {pct(during, 99) * 1000:.1f} ms (bar: p99 <= 50 ms)")
            # The same appends with no compaction anywhere: the machine's own spread, for scale.
            idle: list[float] = []
            for i in range(len(during)):
                t = time.perf_counter()
                call(http, server.url, "session.append", key=f"bench-idle-{run}", agent="main", channel="web",
                     messages=turn(run, i, words=5))
                idle.append(time.perf_counter() - t)
            print(f"the same appends with no compaction running: p50 {pct(idle, 50) * 1000:.1f} ms, "
                  f"p99 {pct(idle, 99) * 1000:.1f} ms")
            body = [{"id": f"x{i}", "role": "user" if i % 2 else "assistant", "content": "status check " * 8}
                    for i in range(100)]
            t = time.perf_counter()
            for b in range(args.batches):
                batch = [dict(m, id=f"{b}-{m['id']}") for m in body]
                call(http, server.url, "session.append", key=f"bench-rate-{run}", agent="main", channel="web",
                     messages=batch)
            rate = args.batches * 100 / (time.perf_counter() - t)
            print(f"session.append, 1 client, batches of 100: {rate:,.0f} msg/s (same run)")
    llm.shutdown()


if __name__ == "__main__":
    main()
