"""Audit log, limits, retention and the integrity check, through the real server and the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

from sqlalchemy import update

from sessionscope.clock import now_ms
from sessionscope.rpc.models import MAX_KEY_BYTES, MAX_MESSAGE_BYTES
from sessionscope.rpc.protocol import MAX_BATCH
from sessionscope.store import open_database
from sessionscope.store.check import check
from sessionscope.store.retention import DAY_MS
from sessionscope.store.schema import compactions, facets, messages, sessions
from sessionscope.web.housekeeping import purge_once
from tests.conftest import RPC, conversation
from tests.security_helpers import AuthServer

MSG = [{"id": "1", "role": "user", "content": "hello"}]


def run_db(database_url: str, work: Any) -> Any:
    async def go() -> Any:
        db = await open_database(database_url, migrate=False)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(go())


# ---- audit -----------------------------------------------------------------------------------------

def test_audited_actions_record_who_what_and_outcome(auth_server: AuthServer, tenant: str) -> None:
    operator_token = auth_server.admin("token.create", name="ops-alice", role="operator", tenant=tenant)
    ops = auth_server.client(operator_token["token"])
    viewer = auth_server.client(auth_server.token("viewer", tenant, name="viewer-bob"))
    first = auth_server.admin("session.append", tenant=tenant, key="k1", agent="a", channel="web",
                              messages=conversation(6))
    auth_server.admin("session.append", tenant=tenant, key="k2", agent="a", channel="web", messages=MSG)
    popped = ops("session.pop", key="k1")["item"]
    compacted = ops("session.compact", key="k1", keep_recent_tokens=0)
    ops("session.restore", key="k1", seq=compacted["compaction"]["seq"])
    ops("session.export", keys=["k1", "k2"])
    ops("session.reset", key="k1")
    assert ops.error("session.delete", keys=["k2", "missing"])["code"] == -32001
    ops("session.delete", key="k2")
    assert viewer.error("session.reset", key="k1")["code"] == -32003
    entries = ops("audit.list")["entries"]
    got = [(e["action"], e["keys"], e["outcome"], e["token_name"]) for e in entries]
    assert got == [
        ("session.reset", ["k1"], "error -32003", "viewer-bob"),
        ("session.delete", ["k2"], "ok", "ops-alice"),
        ("session.delete", ["k2", "missing"], "error -32001", "ops-alice"),
        ("session.reset", ["k1"], "ok", "ops-alice"),
        ("session.export", ["k1", "k2"], "ok", "ops-alice"),
        ("session.restore", ["k1"], "ok", "ops-alice"),
        ("session.compact", ["k1"], "ok", "ops-alice"),
        ("session.pop", ["k1"], "ok", "ops-alice"),
        ("token.create", ["viewer-bob"], "ok", "test-admin"),
        ("token.create", ["ops-alice"], "ok", "test-admin"),
    ]
    assert {e["tenant"] for e in entries} == {tenant}
    assert popped is not None and popped["seq"] == first["last_seq"]
    assert entries[1]["token_id"] == operator_token["id"] and entries[1]["time"].endswith("Z")
    assert "url" not in json.dumps(entries[4]["detail"] or {})  # the export link is never logged
    page = ops("audit.list", limit=4)
    assert len(page["entries"]) == 4 and page["next_cursor"]
    rest = ops("audit.list", limit=100, cursor=page["next_cursor"])["entries"]
    assert [e["id"] for e in page["entries"] + rest] == [e["id"] for e in entries]
    assert ops("audit.list", action="session.delete")["entries"] == entries[1:3]
    assert viewer.error("audit.list")["code"] == -32003
    assert ops.error("audit.list", tenant=tenant + "-x")["code"] == -32003
    auth_server.admin("token.revoke", id=operator_token["id"])
    revoked = auth_server.admin("audit.list", tenant=tenant, action="token.revoke")["entries"]
    assert revoked[0]["keys"] == [f"token:{operator_token['id']}"] and revoked[0]["token_name"] == "test-admin"
    ops.close()
    viewer.close()


async def _make_store(db: str) -> None:
    await (await open_database(db)).close()


def test_cli_token_and_audit_on_a_local_store(tmp_path: Any) -> None:
    db = str(tmp_path / "cli.db")
    asyncio.run(_make_store(db))  # only serve, demo and import make a store; token commands refuse to

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sessionscope", *args, "--db", db], capture_output=True,
                              text=True, timeout=120, check=False)

    created = cli("token", "create", "robot", "--role", "agent", "--tenant", "acme")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().startswith("ss_") and "not shown again" in created.stderr
    listed = json.loads(cli("token", "list", "--json").stdout)
    assert [(t["name"], t["role"], t["tenant"]) for t in listed] == [("robot", "agent", "acme")]
    assert created.stdout.strip() not in cli("token", "list").stdout
    refused = cli("token", "revoke", str(listed[0]["id"]))  # no terminal to ask on, no --yes
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert cli("token", "revoke", str(listed[0]["id"]), "--yes").returncode == 0
    assert json.loads(cli("token", "list", "--json").stdout) == []
    bad = cli("token", "create", "x", "--role", "viewer")
    assert bad.returncode == 1 and "tenant" in bad.stderr
    audit = json.loads(cli("audit", "--json").stdout)["entries"]
    assert [(e["action"], e["outcome"], e["token_name"]) for e in audit] == [
        ("token.create", "error -32602", "cli"), ("token.revoke", "ok", "cli"), ("token.create", "ok", "cli")]


# ---- limits ----------------------------------------------------------------------------------------

def test_limits_are_clear_errors(rpc: RPC) -> None:
    rpc.append("k", MSG)
    too_big = rpc.http.post(f"{rpc.url}/rpc", content=b"[" + b" " * (8 * 1024 * 1024) + b"]",
                            headers={"content-type": "application/json"})
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == -32013
    assert too_big.json()["error"]["data"] == {"max_bytes": 8 * 1024 * 1024}
    batch = [{"jsonrpc": "2.0", "id": i, "method": "session.list", "params": {"tenant": rpc.tenant}}
             for i in range(MAX_BATCH + 1)]
    answer = rpc.raw(batch)
    assert answer.status_code == 200 and answer.json()["error"]["code"] == -32013
    assert len(rpc.raw(batch[:MAX_BATCH]).json()) == MAX_BATCH
    key_error = rpc.error("session.status", key="k" * (MAX_KEY_BYTES + 1))
    assert key_error["code"] == -32602 and key_error["data"]["field"] == "key"
    assert rpc.error("session.status", key="é" * (MAX_KEY_BYTES // 2 + 1))["data"]["field"] == "key"  # bytes
    rpc.append("k" * MAX_KEY_BYTES, MSG)  # exactly the limit is fine
    big = [{"role": "user", "content": "x" * (MAX_MESSAGE_BYTES + 1)}]
    error = rpc.error("session.append", key="k", agent="a", channel="web", messages=big)
    assert error["code"] == -32602 and error["data"]["field"] == "messages.0.content"
    assert rpc("session.metrics", key="k")["message_count"] == 1


# ---- retention -------------------------------------------------------------------------------------

def test_retention_purge_deletes_only_old_sessions_of_that_tenant(rpc: RPC) -> None:
    other = rpc.tenant + "-keep"
    for key in ("old", "older", "fresh"):
        rpc.append(key, MSG)
    rpc.append("old", MSG, tenant=other)

    async def age(db: Any) -> None:
        async with db.write() as conn:
            for key, days in (("old", 31), ("older", 400)):
                await conn.execute(update(sessions).where(sessions.c.tenant.in_([rpc.tenant, other]),
                                                          sessions.c.key == key)
                                   .values(updated_at=now_ms() - days * DAY_MS))

    run_db(rpc.database_url, age)
    assert rpc("tenant.set_retention", tenant=rpc.tenant, days=30) == {"tenant": rpc.tenant, "retention_days": 30}
    assert rpc.error("tenant.set_retention", tenant=rpc.tenant, days=0)["code"] == -32602
    result = rpc("tenant.purge", tenant=rpc.tenant)
    assert result["deleted"] == 2 and sorted(result["tenants"][0]["keys"]) == ["old", "older"]
    assert [s["key"] for s in rpc("session.list")["sessions"]] == ["fresh"]
    assert rpc("session.list", tenant=other)["total"] == 1  # no retention there
    audit = rpc("audit.list", tenant=rpc.tenant)["entries"]
    assert [(e["action"], sorted(e["keys"])) for e in audit[:2]] == [("tenant.purge", ["old", "older"]),
                                                                    ("tenant.set_retention", [])]
    assert run_db(rpc.database_url, lambda db: check(db, rpc.tenant)).ok


def test_server_purge_pass_is_audited_per_tenant(rpc: RPC) -> None:
    rpc.append("stale", MSG)
    rpc("tenant.set_retention", tenant=rpc.tenant, days=1)

    async def age_and_purge(db: Any) -> int:
        async with db.write() as conn:
            await conn.execute(update(sessions).where(sessions.c.tenant == rpc.tenant)
                               .values(updated_at=now_ms() - 2 * DAY_MS))
        return await purge_once(db)

    assert run_db(rpc.database_url, age_and_purge) >= 1
    assert rpc("session.list")["total"] == 0
    entry = rpc("audit.list", action="tenant.purge")["entries"][0]
    assert entry["keys"] == ["stale"] and entry["token_name"] == "retention" and entry["outcome"] == "ok"


# ---- integrity check -------------------------------------------------------------------------------

def test_check_passes_on_real_data_and_names_each_corruption(rpc: RPC, tmp_path: Any) -> None:
    rpc.append("k", conversation(8))
    rpc("session.compact", key="k", keep_recent_tokens=0)
    rpc.append("k", conversation(2, prefix="b"))
    rpc("session.reset", key="k")
    rpc("session.record", key="k", execution={"usage": {"input_tokens": 3, "output_tokens": 1}})
    assert run_db(rpc.database_url, lambda db: check(db, rpc.tenant)).ok

    async def corrupt(db: Any) -> list[str]:
        async with db.write() as conn:
            sid = (await conn.execute(sessions.select().where(sessions.c.tenant == rpc.tenant))).one().id
            await conn.execute(update(sessions).where(sessions.c.id == sid).values(
                tool_calls=sessions.c.tool_calls + 1, error_count=sessions.c.error_count + 1))
            await conn.execute(update(facets).where(facets.c.tenant == rpc.tenant).values(archived=1))
            await conn.execute(messages.delete().where(messages.c.session_id == sid, messages.c.seq == 2))
            await conn.execute(update(compactions).where(compactions.c.session_id == sid).values(summary=" "))
        report = await check(db, rpc.tenant)
        async with db.write() as conn:  # the facet put back; the session is deleted below
            await conn.execute(update(facets).where(facets.c.tenant == rpc.tenant).values(archived=0))
        return [p["problem"] for p in report.problems if p["tenant"] == rpc.tenant]

    problems = run_db(rpc.database_url, corrupt)
    assert any(p.startswith("tool_calls is") for p in problems)
    assert any(p.startswith("error_count is") for p in problems)
    assert any("counts 1 archived sessions but 0 are archived" in p for p in problems)
    assert any(p.startswith("message_count is") for p in problems)
    assert any("expected exactly 1.." in p for p in problems)
    assert any("empty summary" in p for p in problems)
    # Put the session back in order for the other tests sharing this store.
    rpc("session.delete", key="k")
    assert run_db(rpc.database_url, lambda db: check(db, rpc.tenant)).ok


def test_check_of_a_live_store_reads_one_snapshot(rpc: RPC, monkeypatch: Any) -> None:
    """`sessionscope check` on a store a server is writing to: an append that commits between a
    page of sessions and the count of their rows is not reported as a counter that does not
    match (on PostgreSQL, at READ COMMITTED, it was: "message_count is 6 but the rows say 12")."""
    from sessionscope.store import check as check_module

    first = rpc.append("live", conversation(2))["appended"]
    page_facts = check_module._page_facts
    appended: list[int] = []

    async def facts_after_an_append(conn: Any, ids: list[int]) -> Any:
        if not appended:
            appended.append(rpc.append("live", conversation(2, prefix="more"))["appended"])  # committed now
        return await page_facts(conn, ids)

    monkeypatch.setattr(check_module, "_page_facts", facts_after_an_append)
    report = run_db(rpc.database_url, lambda db: check(db, rpc.tenant))
    assert report.ok, report.problems
    monkeypatch.undo()
    assert run_db(rpc.database_url, lambda db: check(db, rpc.tenant)).ok
    assert appended and rpc("session.status", key="live")["session"]["message_count"] == first + appended[0]


def test_check_cli_exit_codes(tmp_path: Any) -> None:
    import sqlite3

    db = tmp_path / "c.db"
    subprocess.run([sys.executable, "-m", "sessionscope", "demo", "--db", str(db), "--no-serve", "--sessions", "5",
                    "--messages", "20"], capture_output=True, timeout=300, check=True)
    ok = subprocess.run([sys.executable, "-m", "sessionscope", "check", "--db", str(db)], capture_output=True,
                        text=True, timeout=120, check=False)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 5 session(s)")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE sessions SET resets = resets + 2 WHERE id = 1")
    bad = subprocess.run([sys.executable, "-m", "sessionscope", "check", "--db", str(db)], capture_output=True,
                         text=True, timeout=120, check=False)
    assert bad.returncode == 1 and "1 problem(s) in 5 session(s)" in bad.stdout and "resets is" in bad.stdout
