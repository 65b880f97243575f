"""Two processes appending to one session at once: no gaps, no duplicates, retries harmless."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import RPC

WRITER = textwrap.dedent("""
    import sys
    from sessionscope.client import Client
    url, tenant, name, batches = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = Client(url)
    for b in range(batches):
        messages = [{"id": f"{name}-{b}-{i}", "role": "user", "content": f"{name} {b} {i}"} for i in range(20)]
        params = {"key": "shared", "tenant": tenant, "agent": "main", "channel": "web", "messages": messages}
        client.call("session.append", params)
        if b % 5 == 0:  # a retry of the same batch must add nothing
            assert client.call("session.append", params)["appended"] == 0
""")


def test_two_processes_append_to_one_session(rpc: RPC) -> None:
    batches = 25
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, rpc.url, rpc.tenant, name, str(batches)],
                              stderr=subprocess.PIPE, text=True) for name in ("alpha", "beta")]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    total = 2 * batches * 20
    seqs, ids, cursor = [], [], None
    status = rpc("session.status", key="shared", limit=1000)
    while True:
        seqs = [i["seq"] for i in status["items"]] + seqs
        ids = [i["id"] for i in status["items"]] + ids
        if not status["has_more"]:
            break
        cursor = status["items"][0]["seq"]
        status = rpc("session.status", key="shared", limit=1000, before_seq=cursor)
    assert seqs == list(range(1, total + 1))
    assert len(set(ids)) == total
    # Each writer's own messages stay in the order it sent them.
    for name in ("alpha", "beta"):
        mine = [i for i in ids if i.startswith(name)]
        assert mine == [f"{name}-{b}-{i}" for b in range(batches) for i in range(20)]
    assert rpc("session.metrics", key="shared")["message_count"] == total
