"""Import throughput of the transcript importers (messages per second, per format).

    python bench/import_throughput.py [--messages 200000] [--dir DIR] [--parse-only] [--realdata DIR]

Writes one large transcript per format into a temporary directory (or DIR), then
times ``iter_records`` over each (parse), and the whole ``sessionscope import PATH
--format F --db FILE`` command into a fresh SQLite store (parse + store, as a user runs
it, process start and migrations included), checking that every parsed message was
stored and reporting the command's peak RSS; then the same for the real transcripts in
../shared/realdata (when present). The generators are importable so the store-write
benchmark can reuse them: ``write_openclaw(dir, n)``, ``write_claude_code(dir, n)``,
``write_codex(dir, n)``; each writes about ``n`` messages and returns the path to import.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionscope.importers import Skipped, iter_records

START = datetime(2026, 1, 1, tzinfo=UTC)
TEXT = "Here is a reasonably sized message body that stands in for real conversation text. " * 3


def _iso(n: int) -> str:
    return (START + timedelta(milliseconds=250 * n)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _dump(handle, obj: dict) -> None:  # type: ignore[no-untyped-def]
    handle.write(json.dumps(obj, separators=(",", ":")) + "\n")


def write_openclaw(directory: str | os.PathLike[str], n: int) -> Path:
    """An OpenClaw state dir with one session of ``n`` messages (user, assistant+tool call, tool result)."""
    sessions = Path(directory) / "openclaw" / "agents" / "bench" / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    sid = "bench-session"
    (sessions / "sessions.json").write_text(
        json.dumps({"agent:bench:main": {"sessionId": sid, "channel": "web"}})
    )
    with open(sessions / f"{sid}.jsonl", "w") as out:
        _dump(out, {"type": "session", "version": 3, "id": sid, "timestamp": _iso(0), "cwd": "/bench"})
        for i in range(n):
            entry = {
                "type": "message",
                "id": f"{i:08x}",
                "parentId": f"{i - 1:08x}" if i else None,
                "timestamp": _iso(i),
            }
            kind = i % 3
            if kind == 0:
                entry["message"] = {"role": "user", "content": TEXT, "timestamp": 0}
            elif kind == 1:
                entry["message"] = {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": TEXT},
                        {
                            "type": "toolCall",
                            "id": f"call_{i}",
                            "name": "bash",
                            "arguments": {"command": "ls"},
                        },
                    ],
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "usage": {
                        "input": 900,
                        "output": 60,
                        "cacheRead": 400,
                        "cacheWrite": 0,
                        "cost": {"total": 0.004},
                    },
                    "stopReason": "toolUse",
                }
            else:
                entry["message"] = {
                    "role": "toolResult",
                    "toolCallId": f"call_{i - 1}",
                    "toolName": "bash",
                    "content": [{"type": "text", "text": TEXT}],
                    "isError": False,
                }
            _dump(out, entry)
    return Path(directory) / "openclaw"


def write_claude_code(directory: str | os.PathLike[str], n: int) -> Path:
    """A Claude Code projects dir with one transcript of ``n`` messages."""
    project = Path(directory) / "claude" / "projects" / "-bench"
    project.mkdir(parents=True, exist_ok=True)
    sid = "00000000-0000-0000-0000-00000000beef"
    with open(project / f"{sid}.jsonl", "w") as out:
        for i in range(n):
            base = {
                "uuid": f"u{i}",
                "parentUuid": f"u{i - 1}" if i else None,
                "isSidechain": False,
                "sessionId": sid,
                "cwd": "/bench",
                "timestamp": _iso(i),
            }
            kind = i % 3
            if kind == 0:
                _dump(out, {**base, "type": "user", "message": {"role": "user", "content": TEXT}})
            elif kind == 1:
                _dump(
                    out,
                    {
                        **base,
                        "type": "assistant",
                        "message": {
                            "id": f"msg_{i}",
                            "role": "assistant",
                            "model": "claude-sonnet-4-5",
                            "content": [
                                {"type": "text", "text": TEXT},
                                {
                                    "type": "tool_use",
                                    "id": f"toolu_{i}",
                                    "name": "Bash",
                                    "input": {"command": "ls"},
                                },
                            ],
                            "usage": {
                                "input_tokens": 12,
                                "output_tokens": 60,
                                "cache_read_input_tokens": 900,
                                "cache_creation_input_tokens": 30,
                            },
                        },
                    },
                )
            else:
                _dump(
                    out,
                    {
                        **base,
                        "type": "user",
                        "message": {
                            "role": "user",
                            "content": [
                                {"type": "tool_result", "tool_use_id": f"toolu_{i - 1}", "content": TEXT}
                            ],
                        },
                    },
                )
    return Path(directory) / "claude"


def write_codex(directory: str | os.PathLike[str], n: int) -> Path:
    """A Codex sessions dir with one rollout of ``n`` messages (plus a token count per turn)."""
    day = Path(directory) / "codex" / "sessions" / "2026" / "01" / "01"
    day.mkdir(parents=True, exist_ok=True)
    sid = "0199aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee"
    with open(day / f"rollout-2026-01-01T00-00-00-{sid}.jsonl", "w") as out:
        _dump(
            out,
            {
                "timestamp": _iso(0),
                "type": "session_meta",
                "payload": {"id": sid, "timestamp": _iso(0), "cwd": "/bench", "source": "cli"},
            },
        )
        _dump(out, {"timestamp": _iso(0), "type": "turn_context", "payload": {"model": "gpt-5-codex"}})
        total = 0
        for i in range(n):
            kind = i % 3
            if kind == 0:
                payload = {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": TEXT}],
                }
            elif kind == 1:
                payload = {
                    "type": "function_call",
                    "name": "shell",
                    "arguments": '{"command":["ls"]}',
                    "call_id": f"c{i}",
                }
            else:
                payload = {"type": "function_call_output", "call_id": f"c{i - 1}", "output": TEXT}
            _dump(out, {"timestamp": _iso(i), "type": "response_item", "payload": payload})
            if kind == 1:
                total += 1000
                usage = {
                    "input_tokens": 1000,
                    "cached_input_tokens": 600,
                    "output_tokens": 50,
                    "total_tokens": 1050,
                }
                _dump(
                    out,
                    {
                        "timestamp": _iso(i),
                        "type": "event_msg",
                        "payload": {
                            "type": "token_count",
                            "info": {
                                "total_token_usage": {**usage, "input_tokens": total},
                                "last_token_usage": usage,
                            },
                        },
                    },
                )
    return Path(directory) / "codex"


WRITERS: dict[str, Callable[[str | os.PathLike[str], int], Path]] = {
    "openclaw": write_openclaw,
    "claude-code": write_claude_code,
    "codex": write_codex,
}


def measure(fmt: str, path: Path) -> tuple[int, int, float]:
    """(messages, skipped, seconds) for one full parse of ``path``."""
    messages = skipped = 0
    began = time.perf_counter()
    for record in iter_records(path, fmt):
        if isinstance(record, Skipped):
            skipped += 1
        elif record["type"] == "message":
            messages += 1
    return messages, skipped, time.perf_counter() - began


# Runs the real CLI entry point and reports the process's peak RSS on exit.
CLI = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))\n"
    "from sessionscope.cli import app\n"
    "app(prog_name='sessionscope')\n"
)


def measure_import(fmt: str, path: Path, db: Path) -> tuple[int, float, int]:
    """(messages stored, seconds, peak RSS in MB) for ``sessionscope import`` into a fresh SQLite file."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    env = os.environ | {"COLUMNS": "200"}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CLI, "import", str(path), "--format", fmt, "--db", str(db)],
                          capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{fmt}: sessionscope import failed:\n{done.stdout}\n{done.stderr}")
    stored = re.search(r"imported \d+ new session\(s\), (\d+) message\(s\)", done.stdout)
    rss = re.search(r"maxrss_kb (\d+)", done.stderr)
    assert stored and rss, done.stdout + done.stderr
    return int(stored.group(1)), seconds, int(rss.group(1)) // 1024


REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


async def _timed_import(url: str, fmt: str, path: Path, count: int) -> float:
    from sessionscope.importers import import_path
    from sessionscope.store import Scope, open_database

    db = await open_database(url)
    try:
        began = time.perf_counter()
        result = await import_path(db, Scope.everything(), path, fmt)
        assert result.stats.messages == count, f"{fmt}: parsed {count}, stored {result.stats.messages}"
        return time.perf_counter() - began
    finally:
        await db.close()


def measure_realdata(root: Path, scratch: Path) -> None:
    """The real transcripts of ../shared/realdata: parse rate, the import's own rate in process
    (tokenizer loaded first, so process start is not counted: the corpus is small enough that
    start-up would dominate), and the whole command as a user runs it."""
    import asyncio

    from sessionscope.tokenizer import count_tokens

    count_tokens("warm up")  # loads the encoder once
    print(f"\nreal corpus ({root})")
    print(f"{'format':<12} {'messages':>9} {'file MB':>8} {'parse msg/s':>12} {'import s':>9} {'import msg/s':>13}"
          f" {'command s':>10} {'command msg/s':>14}")
    for fmt in WRITERS:
        path = root / fmt
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
        count, _, parse_s = measure(fmt, path)
        db_path = scratch / f"real-{fmt}.db"

        import_s = asyncio.run(_timed_import(f"sqlite+aiosqlite:///{db_path}", fmt, path, count))
        stored, command_s, _ = measure_import(fmt, path, scratch / f"real-{fmt}-cli.db")
        print(f"{fmt:<12} {count:>9} {size:>8.1f} {count / parse_s:>12,.0f} {import_s:>9.2f} {count / import_s:>13,.0f}"
              f" {command_s:>10.2f} {stored / command_s:>14,.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--dir", help="write the generated files here instead of a temp dir")
    parser.add_argument("--parse-only", action="store_true", help="skip the import into a store")
    parser.add_argument("--realdata", default=str(REALDATA),
                        help="the real corpus to measure as well (skipped when the folder is missing)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.dir or scratch)
        print(f"{'format':<12} {'messages':>9} {'file MB':>8} {'parse s':>8} {'parse msg/s':>12}"
              f" {'import s':>9} {'import msg/s':>13} {'peak MB':>8}")
        for fmt, writer in WRITERS.items():
            path = writer(root, args.messages)
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
            count, skipped, seconds = measure(fmt, path)
            assert skipped == 0, f"{fmt}: {skipped} generated lines were skipped"
            line = f"{fmt:<12} {count:>9} {size:>8.1f} {seconds:>8.2f} {count / seconds:>12,.0f}"
            if not args.parse_only:
                stored, import_s, peak_mb = measure_import(fmt, path, root / f"{fmt}.db")
                assert stored == count, f"{fmt}: parsed {count} messages but stored {stored}"
                line += f" {import_s:>9.2f} {stored / import_s:>13,.0f} {peak_mb:>8}"
            print(line, flush=True)
        if not args.parse_only and Path(args.realdata).is_dir():
            measure_realdata(Path(args.realdata), Path(scratch))


if __name__ == "__main__":
    main()
