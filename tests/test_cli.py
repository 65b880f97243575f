"""The CLI against a local store file and against a running server (--url)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RPC, conversation


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sessionscope.cli", *args], capture_output=True, text=True, check=False,
                          timeout=300, input=input, env={**os.environ, "COLUMNS": "200", **(env or {})})


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("cli") / "demo.db")
    done = run("demo", "--db", path, "--sessions", "30", "--messages", "30", "--no-serve")
    assert done.returncode == 0, done.stderr
    assert "30 sessions" in done.stdout
    return path


def test_ls_filters_and_json(demo_db: str) -> None:
    out = run("ls", "--db", demo_db, "--json", "--limit", "500")
    rows = json.loads(out.stdout)["sessions"]
    assert len(rows) == 30
    channels = {r["channel"] for r in rows}
    assert {"telegram", "discord", "slack", "web", "whatsapp", "cron", "sub-agent"} <= channels
    only = json.loads(run("ls", "--db", demo_db, "--json", "--channel", "slack").stdout)["sessions"]
    assert only and all(r["channel"] == "slack" for r in only)
    by_tokens = json.loads(run("ls", "--db", demo_db, "--json", "--sort", "total_tokens", "--order", "asc").stdout)
    tokens = [r["total_tokens"] for r in by_tokens["sessions"]]
    assert tokens == sorted(tokens)
    newest = [r["key"] for r in json.loads(run("ls", "--db", demo_db, "--json", "--limit", "3").stdout)["sessions"]]
    piped = run("ls", "--db", demo_db, "--limit", "3")
    lines = [line.split("\t") for line in piped.stdout.splitlines()]
    assert piped.returncode == 0 and lines[0][:2] == ["key", "label"] and [cells[0] for cells in lines[1:]] == newest
    assert "3 of 30 sessions" in piped.stderr  # the page line stays out of what grep and cut read
    terminal = run("ls", "--db", demo_db, "--limit", "3", env={"FORCE_COLOR": "1", "COLUMNS": "80"})
    assert terminal.returncode == 0 and "\t" not in terminal.stdout
    assert all(key in terminal.stdout for key in newest)  # whole keys, even on 80 columns
    searched = run("ls", "--db", demo_db, "--json", "--query", "retry limit")
    assert searched.returncode == 0 and json.loads(searched.stdout)["sessions"]
    assert searched.stderr == ""  # the store's connections were closed, nothing left to warn about


def test_show_export_delete_import(demo_db: str, tmp_path: Path) -> None:
    row = json.loads(run("ls", "--db", demo_db, "--json", "--sort", "message_count", "--limit", "1").stdout)
    key, tenant = row["sessions"][0]["key"], row["sessions"][0]["tenant"]
    shown = run("show", key, "--db", demo_db, "--tenant", tenant, "--limit", "5")
    assert shown.returncode == 0 and key in shown.stdout
    target = tmp_path / "out.jsonl"
    assert run("export", key, "--db", demo_db, "--tenant", tenant, "-o", str(target)).returncode == 0
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert lines[0]["key"] == key
    refused = run("delete", key, "--db", demo_db, "--tenant", tenant, input="n\n")
    assert refused.returncode == 1
    assert run("delete", key, "--db", demo_db, "--tenant", tenant, "--yes").returncode == 0
    missing = run("show", key, "--db", demo_db, "--tenant", tenant)
    assert missing.returncode == 1 and "session not found" in missing.stderr and "Traceback" not in missing.stderr
    imported = run("import", str(target), "--db", demo_db)
    assert imported.returncode == 0, imported.stderr
    assert "imported 1 new session(s)" in imported.stdout
    again = run("import", str(target), "--db", demo_db)
    assert "imported 0 new session(s), 0 message(s)" in again.stdout
    assert run("show", key, "--db", demo_db, "--tenant", tenant).returncode == 0


def test_reset_compact_restore_locally(demo_db: str) -> None:
    row = json.loads(run("ls", "--db", demo_db, "--json", "--sort", "message_count", "--limit", "2").stdout)
    key, tenant = row["sessions"][1]["key"], row["sessions"][1]["tenant"]
    compacted = run("compact", key, "--db", demo_db, "--tenant", tenant, "--keep-recent-tokens", "200", "--yes")
    assert compacted.returncode == 0 and ("compacted" in compacted.stdout or "nothing to compact" in compacted.stdout)
    listed = run("compactions", key, "--db", demo_db, "--tenant", tenant)
    header, *rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert listed.returncode == 0 and header[0] == "seq" and header[-1] == "state"
    assert len(rows) == (0 if "nothing to compact" in compacted.stdout else 1)
    assert run("reset", key, "--db", demo_db, "--tenant", tenant, "--yes").returncode == 0
    status = json.loads(run("show", key, "--db", demo_db, "--tenant", tenant, "--json").stdout)
    assert status["session"]["resets"] >= 1 and status["items"][-1]["kind"] == "reset"


def test_readable_errors(demo_db: str, tmp_path: Path) -> None:
    bad_sort = run("ls", "--db", demo_db, "--sort", "nope")
    assert bad_sort.returncode == 1 and "sort" in bad_sort.stderr and "Traceback" not in bad_sort.stderr
    no_file = run("import", str(tmp_path / "missing.jsonl"), "--db", str(tmp_path / "x.db"))
    assert no_file.returncode == 1 and "no such file" in no_file.stderr
    unreachable = run("ls", "--url", "http://127.0.0.1:9")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr


def test_remote_commands(rpc: RPC, tmp_path: Path) -> None:
    rpc.append("remote:key/1", conversation(10))
    common = ["--url", rpc.url, "--tenant", rpc.tenant]
    listed = json.loads(run("ls", *common, "--json").stdout)
    assert [s["key"] for s in listed["sessions"]] == ["remote:key/1"]
    compacted = run("compact", "remote:key/1", *common, "--keep-recent-tokens", "200", "--yes")
    assert compacted.returncode == 0 and "compacted" in compacted.stdout
    header, *rows = [line.split("\t") for line in run("compactions", "remote:key/1", *common).stdout.splitlines()]
    assert len(rows) == 1 and dict(zip(header, rows[0], strict=True))["state"] == "active"
    out = tmp_path / "remote.jsonl"
    assert run("export", "remote:key/1", *common, "-o", str(out)).returncode == 0
    assert json.loads(out.read_text().splitlines()[0])["key"] == "remote:key/1"
    assert run("reset", "remote:key/1", *common, "--yes").returncode == 0
    assert rpc("session.history", key="remote:key/1")["messages"] == []


def test_ls_piped_keeps_keys_and_labels_on_their_line(rpc: RPC) -> None:
    # Labels refuse control characters now (docs/security.md), so tabs and newlines cannot reach ls.
    rpc.append("two  spaces/and:colons", conversation(2), label="line one  line two")
    piped = run("ls", "--url", rpc.url, "--tenant", rpc.tenant)
    header, *rows = [line.split("\t") for line in piped.stdout.splitlines()]
    assert piped.returncode == 0 and len(rows) == 1 and len(rows[0]) == len(header)
    assert rows[0][0] == "two  spaces/and:colons" and rows[0][1] == "line one  line two"
