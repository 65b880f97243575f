"""Render isolation: an unrelated request's latency while the worst markdown is being read.

A server (`sessionscope serve --no-auth`, SQLite in a temporary directory) holds sessions whose
assistant messages are the slowest shapes found for markdown-it: just under the render size
budget (so only the time budget stops them) and 1 MB (over it). READERS threads read those
sessions' `session.status` without pause while one client times `session.list` and `/healthz`
of the same server. The bar (issue 14): the unrelated request's p99 under 100 ms.

    PYTHONPATH=src python bench/render_isolation.py [--seconds 20] [--readers 4]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sessionscope.markdown import MAX_RENDER_CHARS

# (name, content): each measured offline at 2-13 s or more for markdown-it.
WORST = [
    ("image-brackets", "![" * (MAX_RENDER_CHARS // 2)),
    ("table-rows", ("a|b\n|-|-|\n" * (MAX_RENDER_CHARS // 10))[:MAX_RENDER_CHARS]),
    ("open-links", "[" * MAX_RENDER_CHARS),
    ("one-megabyte", "![" * 500_000),
]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rpc(http: httpx.Client, base: str, method: str, **params: object) -> dict:
    answer = http.post(f"{base}/rpc", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return answer["result"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--readers", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        url = f"sqlite+aiosqlite:///{tmp}/render.db"
        proc = subprocess.Popen([sys.executable, "-m", "sessionscope.cli", "serve", "--db", url, "--port", str(port),
                                 "--no-auth"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        http = httpx.Client(timeout=600)
        try:
            for _ in range(300):
                try:
                    if http.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            for name, content in WORST:
                rpc(http, base, "session.append", key=f"worst/{name}", agent="a", channel="web",
                    messages=[{"role": "assistant", "content": content}])
            rpc(http, base, "session.append", key="unrelated", agent="a", channel="web",
                messages=[{"role": "user", "content": "hello"}])
            stop = threading.Event()
            reads = [0]

            def reader(index: int) -> None:
                with httpx.Client(timeout=600) as own:
                    while not stop.is_set():
                        name = WORST[index % len(WORST)][0]
                        rpc(own, base, "session.status", key=f"worst/{name}")
                        reads[0] += 1

            threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(args.readers)]
            for t in threads:
                t.start()
            time.sleep(1.0)  # the readers are rendering
            timings: dict[str, list[float]] = {"session.list": [], "/healthz": []}
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                started = time.perf_counter()
                rpc(http, base, "session.list", limit=10)
                timings["session.list"].append(time.perf_counter() - started)
                started = time.perf_counter()
                http.get(f"{base}/healthz")
                timings["/healthz"].append(time.perf_counter() - started)
                time.sleep(0.01)
            stop.set()
            for t in threads:
                t.join(timeout=120)
            print(f"{args.readers} readers of the worst messages, {reads[0]} session.status reads in "
                  f"{args.seconds:g} s")
            for name, values in timings.items():
                print(f"{name:>13}: n={len(values)} p50={pct(values, 50) * 1000:.1f} ms "
                      f"p99={pct(values, 99) * 1000:.1f} ms max={max(values) * 1000:.1f} ms")
        finally:
            http.close()
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
