"""The process that test_crash.py kills: a fork server that imports everything once, then forks a
child per run; each child imports, compacts, resets and appends against the store until SIGKILL.

Protocol on stdin/stdout: the test writes `run <seed> <ack-file>`; the server forks, prints
`pid <child pid>`, waits for the child and prints `exit <status>`. The child appends each
acknowledged message id (`<key>\\t<id>\\tok`, each line begun with a newline) to the ack file
right after its transaction committed.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from typing import Any

from sessionscope.compaction import load_compaction_settings
from sessionscope.compaction.service import compact
from sessionscope.ingest import append_messages, ingest_records
from sessionscope.store import Scope, executions, open_database
from sessionscope.store import sessions as session_store
from sessionscope.tokenizer import encoder

TENANT = "crash"
KEYS = [f"crash-{i}" for i in range(4)]


def ack(fd: int, key: str, ids: list[str]) -> None:
    # A kill can cut a write of several pages anywhere. The leading newline ends a line an earlier
    # kill cut; the trailing "ok" marks a line written whole.
    os.write(fd, "".join(f"\n{key}\t{i}\tok" for i in ids).encode())


async def work(database_url: str, seed: int, ack_path: str) -> None:
    rng = random.Random(seed)
    scope = Scope.tenant(TENANT)
    settings = load_compaction_settings(None, None, env={})
    fd = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    db = await open_database(database_url, migrate=False)
    step = 0
    while True:
        step += 1
        key = rng.choice(KEYS)
        action = rng.random()
        if action < 0.55:
            ids = [f"{seed}-{step}-{i}" for i in range(rng.randint(1, 40))]
            batch = [{"id": i, "role": rng.choice(["user", "assistant"]), "content": f"message {i} " * rng.randint(1, 60)}
                     for i in ids]
            await append_messages(db, scope, key=key, agent="crash", channel="web", batch=batch, tenant=TENANT)
            ack(fd, key, ids)
        elif action < 0.7:
            try:
                await compact(db, scope, key, settings, tenant=TENANT, keep_recent_tokens=rng.randint(0, 400))
            except Exception as exc:
                if type(exc).__name__ not in ("NotFound", "Conflict"):
                    raise
        elif action < 0.8:
            try:
                await session_store.reset(db, scope, [key], TENANT)
            except Exception as exc:
                if type(exc).__name__ != "NotFound":
                    raise
        elif action < 0.9:
            import_key = f"imported-{seed}-{step}"
            ids = [f"{seed}-{step}-imp-{i}" for i in range(rng.randint(1, 300))]
            records: list[dict[str, Any]] = [{"type": "session", "key": import_key, "agent": "crash", "channel": "web"}]
            records += [{"type": "message", "id": i, "role": "user", "content": f"imported {i} " * 20} for i in ids]
            records.append({"type": "compaction", "summary": "imported summary", "first_kept_seq": len(ids),
                            "seq": len(ids) + 1})
            records.append({"type": "reset"})
            records.append({"type": "execution", "usage": {"input_tokens": 10, "output_tokens": 3}})
            await ingest_records(db, scope, records, source="import", tenant=TENANT)
            ack(fd, import_key, ids)
        else:
            try:
                await executions.record(db, scope, key, {"usage": {"input_tokens": 7, "output_tokens": 2}},
                                        tenant=TENANT)
            except Exception as exc:
                if type(exc).__name__ != "NotFound":
                    raise


def main() -> None:
    database_url = sys.argv[1]
    encoder()  # load the tokenizer once, before forking
    for line in sys.stdin:
        command, seed, ack_path = line.split()
        assert command == "run"
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(work(database_url, int(seed), ack_path))
            finally:
                os._exit(3)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {status}", flush=True)


if __name__ == "__main__":
    main()
