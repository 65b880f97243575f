"""Crash safety: a process importing, compacting, resetting and appending is SIGKILLed at random
points; after every kill the store passes `check` and holds every acknowledged append.

On SQLite and PostgreSQL, each with its own store. The worker (tests/crash_worker.py) forks a
fresh child per run, so a kill costs milliseconds rather than a Python start-up.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from sessionscope.store import open_database
from sessionscope.store.check import check, format_report
from sessionscope.store.schema import messages, sessions

KILLS = int(os.environ.get("SESSIONSCOPE_CRASH_KILLS", "50"))
WORKER = Path(__file__).with_name("crash_worker.py")
ROOT = Path(__file__).resolve().parents[1]
SURVIVED: dict[str, int] = {}


async def stored_ids(db: Any) -> dict[str, set[str]]:
    async with db.read() as conn:
        found = (await conn.execute(
            select(sessions.c.key, messages.c.msg_id).join(messages, messages.c.session_id == sessions.c.id)
            .where(sessions.c.tenant == "crash")
        )).all()
    out: dict[str, set[str]] = defaultdict(set)
    for key, msg_id in found:
        out[key].add(msg_id)
    return out


async def server_done_with_the_killed(db: Any) -> None:
    """PostgreSQL: wait until no other connection to the store is inside a statement or a
    transaction. A COMMIT the killed process sent just before the kill still commits, a moment
    later, in its server process; checking before it lands reads a store that is still moving."""
    if db.is_sqlite:
        return
    for _ in range(500):
        async with db.read() as conn:
            busy = (await conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'"))).scalar()
        if not busy:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the killed process's connections were still busy after 5 s")


def read_acks(path: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    if path.exists():
        for line in path.read_text().splitlines():
            fields = line.split("\t")
            if len(fields) == 3 and fields[2] == "ok":  # a line cut by the kill is not an acknowledgement
                out[fields[0]].add(fields[1])
    return out


def test_sigkill_at_random_points(dialect: str, database_url_factory: Any, tmp_path: Path) -> None:
    url = database_url_factory(dialect, "crash")
    loop = asyncio.new_event_loop()
    db = loop.run_until_complete(open_database(url))  # migrates before the worker starts
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    worker = subprocess.Popen([sys.executable, str(WORKER), url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)
    rng = random.Random(5)
    acks = tmp_path / "acks.txt"
    survived = 0
    try:
        for run in range(KILLS):
            assert worker.stdin and worker.stdout
            worker.stdin.write(f"run {run} {acks}\n")
            worker.stdin.flush()
            pid = int(worker.stdout.readline().split()[1])
            # Early kills land in connect and the first writes; later ones deep inside imports.
            loop.run_until_complete(asyncio.sleep(rng.choice([0.005, 0.03, 0.1]) + rng.random() * 0.35))
            os.kill(pid, signal.SIGKILL)
            status = worker.stdout.readline()
            assert status.startswith("exit"), status
            assert os.WIFSIGNALED(int(status.split()[1])), f"run {run} ended before the kill: {status}"
            loop.run_until_complete(server_done_with_the_killed(db))
            report = loop.run_until_complete(check(db))
            assert report.ok, f"after kill {run + 1}:\n{format_report(report)}"
            stored = loop.run_until_complete(stored_ids(db))
            for key, ids in read_acks(acks).items():
                missing = ids - stored.get(key, set())
                assert not missing, f"after kill {run + 1}: {len(missing)} acknowledged append(s) of {key} lost"
            survived += 1
    finally:
        worker.kill()
        worker.wait(timeout=30)
        loop.run_until_complete(db.close())
        loop.close()
    acked = sum(len(v) for v in read_acks(acks).values())
    SURVIVED[dialect] = survived
    print(f"\nkill points survived on {dialect}: {survived} ({acked} acknowledged messages all present; "
          f"{report.sessions} sessions pass check)")
    assert survived == KILLS and acked > 0
    assert KILLS >= 50 or "SESSIONSCOPE_CRASH_KILLS" in os.environ, "the issue asks for at least 50 kills"
