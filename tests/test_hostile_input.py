"""Hostile input through the real server on both databases (issue 14): values that used to poison a
tenant, stop search or freeze the server are refused with -32602 naming the field, or stored in a
form every reader can read back; `sessionscope check` reports rows that slipped in before."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import text

from sessionscope.clock import now_ms, parse_rfc3339
from sessionscope.store import open_database
from sessionscope.store.check import check
from tests.conftest import RPC

UNREPRESENTABLE = ["9999-12-31T23:59:59.999-23:59", "0001-01-01T00:00:00+23:59"]


def in_store(database_url: str, scenario: Any) -> Any:
    async def main() -> Any:
        db = await open_database(database_url)
        try:
            return await scenario(db)
        finally:
            await db.close()

    return asyncio.run(main())


@pytest.mark.parametrize("when", UNREPRESENTABLE)
def test_a_time_outside_utc_is_refused_naming_the_field(rpc: RPC, when: str) -> None:
    error = rpc.error("session.append", key="t/1", agent="a", channel="web",
                      messages=[{"role": "user", "content": "hi", "timestamp": when}])
    assert error["code"] == -32602
    assert error["data"]["field"] == "messages.0.timestamp"
    assert "UTC" in error["data"]["problem"]
    rpc.append("t/1", [{"role": "user", "content": "hi"}])
    error = rpc.error("session.record", key="t/1", execution={"started_at": when})
    assert error["code"] == -32602 and error["data"]["field"] == "execution.started_at"
    # The tenant still lists, reads and exports.
    assert [s["key"] for s in rpc("session.list")["sessions"]] == ["t/1"]
    rpc("session.status", key="t/1")
    rpc("session.context", key="t/1")


def test_a_future_time_never_moves_updated_at_past_the_server_clock(rpc: RPC) -> None:
    before = now_ms()
    rpc.append("t/future", [{"role": "user", "content": "from the future", "timestamp": "9999-12-31T23:59:59Z"}])
    row = rpc("session.list")["sessions"][0]
    assert before - 1000 <= parse_rfc3339(row["updated_at"]) <= now_ms()
    item = rpc("session.items", key="t/future")["items"][0]
    assert item["timestamp"] == "9999-12-31T23:59:59.000Z"  # the message keeps its own time


def test_check_reports_times_no_reader_can_format(rpc: RPC) -> None:
    rpc.append("t/poisoned", [{"role": "user", "content": "hi"}])
    rpc("session.record", key="t/poisoned", execution={"model": "m"})

    async def scenario(db: Any) -> Any:
        async with db.write() as conn:
            sid = (await conn.execute(text("SELECT id FROM sessions WHERE tenant = :t AND key = 't/poisoned'"),
                                      {"t": rpc.tenant})).scalar_one()
            far = 253402300800000 + 86_400_000  # 10000-01-02 UTC
            await conn.execute(text("UPDATE sessions SET updated_at = :far WHERE id = :sid"), {"far": far, "sid": sid})
            await conn.execute(text("UPDATE messages SET ts = :far WHERE session_id = :sid"), {"far": -far, "sid": sid})
            await conn.execute(text("UPDATE executions SET started_at = :far WHERE session_id = :sid"),
                               {"far": far, "sid": sid})
        return await check(db, tenant=rpc.tenant)

    report = in_store(rpc.database_url, scenario)
    problems = [p["problem"] for p in report.problems]
    assert any("updated_at" in p for p in problems), problems
    assert any("message" in p and "time" in p for p in problems), problems
    assert any("started_at" in p for p in problems), problems


def test_an_id_used_before_a_reset_can_be_used_again(rpc: RPC) -> None:
    first = [{"id": "m1", "role": "user", "content": "before", "raw": {"v": 1}},
             {"id": "m2", "role": "assistant", "content": "reply"}]
    assert rpc.append("r/1", first)["appended"] == 2
    rpc("session.reset", key="r/1")
    again = rpc.append("r/1", [{"id": "m1", "role": "user", "content": "after", "raw": {"v": 2}}])
    assert again == {"appended": 1, "duplicates": 0, "last_seq": 4}
    # Within the live conversation a retry is still a duplicate.
    assert rpc.append("r/1", [{"id": "m1", "role": "user", "content": "after"}])["duplicates"] == 1
    assert [m["content"] for m in rpc("session.history", key="r/1")["messages"]] == ["after"]
    live = rpc("session.items", key="r/1")["items"]
    assert [(i["id"], i.get("raw")) for i in live] == [("m1", {"v": 2})]
    shown = [(i["id"], i.get("content")) for i in rpc("session.status", key="r/1")["items"]]
    assert shown == [("m1", "before"), ("m2", "reply"), ("reset-3", None), ("m1", "after")]

    async def scenario(db: Any) -> Any:
        return await check(db, tenant=rpc.tenant)

    assert in_store(rpc.database_url, scenario).ok


def test_a_retried_import_of_an_export_with_a_reused_id_stores_nothing_twice(rpc: RPC) -> None:
    """An export of a session that used m1 on both sides of a reset round-trips whole, and
    importing it again (or into the session it came from) stores nothing new."""
    import orjson

    from sessionscope.ingest import ingest_records
    from sessionscope.store import Scope
    from sessionscope.store.transfer import export_lines

    rpc.append("r/round", [{"id": "m1", "role": "user", "content": "before"},
                           {"id": "m2", "role": "assistant", "content": "reply"}])
    rpc("session.reset", key="r/round")
    rpc.append("r/round", [{"id": "m1", "role": "user", "content": "after"}])
    copy = rpc.tenant + "-copy"

    async def scenario(db: Any) -> Any:
        lines = b"".join([chunk async for chunk in export_lines(db, Scope.everything(), ["r/round"], rpc.tenant)])
        records = [orjson.loads(line) for line in lines.splitlines()]
        first = await ingest_records(db, Scope.everything(), records, source="import", tenant=copy)
        again = await ingest_records(db, Scope.everything(), records, source="import", tenant=copy)
        home = await ingest_records(db, Scope.everything(), records, source="import", tenant=rpc.tenant)
        return first, again, home

    first, again, home = in_store(rpc.database_url, scenario)
    assert (first.messages, first.resets, first.duplicates) == (3, 1, 0)
    assert (again.messages, again.resets, again.duplicates) == (0, 0, 3)
    assert (home.messages, home.resets, home.duplicates) == (0, 0, 3)
    for tenant in (rpc.tenant, copy):
        shown = [(i["id"], i.get("content")) for i in rpc("session.status", key="r/round", tenant=tenant)["items"]]
        assert shown == [("m1", "before"), ("m2", "reply"), ("reset-3", None), ("m1", "after")]


def test_otlp_ids_repeating_after_a_reset_are_stored_again(rpc: RPC) -> None:
    import httpx

    from sessionscope.web.otlp import TENANT_HEADER

    def turn(text_in: str) -> dict[str, Any]:
        messages = [{"role": "user", "parts": [{"type": "text", "content": text_in}]}]
        return {"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "chat m",
            "startTimeUnixNano": "1772000000000000000", "endTimeUnixNano": "1772000000500000000",
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.conversation.id", "value": {"stringValue": "otel:reset"}},
                {"key": "gen_ai.input.messages", "value": {"stringValue": json.dumps(messages)}},
            ],
        }]}]}]}

    def post(body: dict[str, Any]) -> None:
        answer = httpx.post(f"{rpc.url}/v1/traces", json=body, headers={TENANT_HEADER: rpc.tenant})
        assert answer.status_code == 200, answer.text

    post(turn("first"))
    count = rpc("session.status", key="otel:reset")["session"]["message_count"]
    post(turn("first"))  # an exporter's retry: nothing new
    assert rpc("session.status", key="otel:reset")["session"]["message_count"] == count
    rpc("session.reset", key="otel:reset")
    post(turn("first"))  # the same span ids after a reset: a new conversation stores them
    assert rpc("session.status", key="otel:reset")["session"]["message_count"] == 2 * count
    assert [m["content"] for m in rpc("session.history", key="otel:reset")["messages"]] == ["first"]
    post(turn("first"))
    assert rpc("session.status", key="otel:reset")["session"]["message_count"] == 2 * count


def test_a_message_id_with_a_control_character_is_refused(rpc: RPC) -> None:
    error = rpc.error("session.append", key="r/2", agent="a", channel="web",
                      messages=[{"id": "\x1fretired\x1f1", "role": "user", "content": "x"}])
    assert error["code"] == -32602 and error["data"]["field"] == "messages.0.id"


# Each of the characters keys.py forbids beside C0 controls: bidi overrides, isolates and marks.
BIDI_AND_CONTROLS = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
                     "\u200e", "\u200f", "\u061c", "\x1b[31m", "\x07", "\x7f"]


@pytest.mark.parametrize("char", BIDI_AND_CONTROLS, ids=[f"U+{ord(c[0]):04X}" for c in BIDI_AND_CONTROLS])
def test_keys_labels_and_names_refuse_bidi_overrides_and_controls(rpc: RPC, char: str) -> None:
    bad = f"inv{char}oice.pdf"
    fields = {"key": {"key": bad}, "label": {"label": bad}, "agent": {"agent": bad}}
    for field, change in fields.items():
        params = {"key": "b/ok", "agent": "a", "channel": "web", "messages": [{"role": "user", "content": "x"}]}
        error = rpc.error("session.append", **(params | change))
        assert error["code"] == -32602 and error["data"]["field"] == field, error
    assert rpc("session.list")["sessions"] == []  # nothing stored under any of them


def test_refusals_are_audited_bounded_under_the_callers_own_tenant(auth_server: Any, tenant: str) -> None:
    from sessionscope.rpc import auditing

    viewer_token = auth_server.token("viewer", tenant, name="viewer-mallory")
    viewer = auth_server.client(viewer_token)
    victim = tenant + "-victim"
    keys = ["k" * 500 + str(i) for i in range(40)] + ["x" * 1000, "bad\x1bkey"]
    for _ in range(5):
        batch = [{"jsonrpc": "2.0", "id": i, "method": "session.delete",
                  "params": {"tenant": victim, "keys": keys}} for i in range(100)]
        answers = viewer.post(batch).json()
        assert {a["error"]["code"] for a in answers} == {-32003}
    mine = auth_server.admin("audit.list", tenant=tenant, limit=500)["entries"]
    refused = [e for e in mine if e["token_name"] == "viewer-mallory"]
    assert 0 < len(refused) <= auditing.REFUSALS_PER_WINDOW
    assert all(len(e["keys"]) <= auditing.MAX_REFUSED_KEYS and all(len(k) <= 512 for k in e["keys"])
               for e in refused)
    assert auth_server.admin("audit.list", tenant=victim)["entries"] == []
    viewer.close()


def test_ids_and_audit_cursors_of_2_to_the_63_are_refused_not_internal_errors(auth_server: Any) -> None:
    # The largest BIGINT reaches the store (an unknown id); one more is refused by the validator.
    unknown = auth_server.admin.error("token.revoke", id=2**63 - 1)
    assert unknown["code"] == -32602 and unknown["data"]["problem"].startswith("no token with id"), unknown
    for big in (2**63, 2**64 + 5):
        error = auth_server.admin.error("token.revoke", id=big)
        assert error["code"] == -32602 and error["data"]["field"] == "id", error
        assert "no token" not in error["data"]["problem"], error
    assert auth_server.admin("audit.list", cursor=str(2**63 - 1), limit=1)["entries"] is not None
    for cursor in (str(2**63), "9" * 19, "-1", "1e3"):
        error = auth_server.admin.error("audit.list", cursor=cursor)
        assert error["code"] == -32602 and error["data"]["field"] == "cursor", (cursor, error)


def test_check_reports_non_finite_numbers_and_out_of_contract_keys(rpc: RPC) -> None:
    rpc.append("c/ok", [{"role": "user", "content": "hi"}])
    rpc("session.record", key="c/ok", execution={"model": "m", "cost_usd": 0.5})

    async def scenario(db: Any) -> Any:
        async with db.write() as conn:
            params = {"t": rpc.tenant}
            await conn.execute(text("UPDATE executions SET cost_usd = :inf WHERE session_id = "
                                    "(SELECT id FROM sessions WHERE tenant = :t AND key = 'c/ok')"),
                               params | {"inf": float("inf")})
            await conn.execute(text("UPDATE sessions SET key = :bad WHERE tenant = :t AND key = 'c/ok'"),
                               params | {"bad": "c/\x1b[31mred"})
        return await check(db, tenant=rpc.tenant)

    problems = [p["problem"] for p in in_store(rpc.database_url, scenario).problems]
    assert any("not a finite number" in p for p in problems), problems
    assert any("out of contract" in p for p in problems), problems


def test_an_export_link_dies_with_its_token_and_ignores_a_forged_host(auth_server: Any, tenant: str) -> None:
    import httpx

    from sessionscope.client import Client

    created = auth_server.admin("token.create", name="ops-exporter", role="operator", tenant=tenant)
    auth_server.admin("session.append", tenant=tenant, key="e/1", agent="a", channel="web",
                      messages=[{"role": "user", "content": "exported"}])
    ops = auth_server.client(created["token"])
    for forged_headers in ({"host": "attacker.example"},
                           {"x-forwarded-host": "attacker.example", "x-forwarded-proto": "https",
                            "forwarded": "host=attacker.example;proto=https"}):
        forged = ops.post({"jsonrpc": "2.0", "id": 1, "method": "session.export", "params": {"key": "e/1"}},
                          headers=forged_headers).json()
        link = forged["result"]["url"]
        assert link.startswith(auth_server.url + "/export/"), link  # the address the server is bound to
        client = Client(auth_server.url, token=created["token"])
        assert client.own_url(link).startswith(auth_server.url + "/export/")
    url = ops("session.export", key="e/1")["url"]
    assert httpx.get(url).status_code == 200
    auth_server.admin("token.revoke", id=created["id"])
    assert httpx.get(url).status_code in (403, 404)  # the link is gone
    ops.close()


def test_export_links_use_the_configured_public_url(database_url: str, tenant: str) -> None:
    from sessionscope.web.services import ServerConfig
    from tests.conftest import RunningServer

    config = ServerConfig(database=database_url, auth=False, extra={"public_url": "https://sessions.example.org/"})
    with RunningServer(config) as running:
        rpc = RPC(running.url, tenant)
        rpc.append("e/public", [{"role": "user", "content": "x"}])
        url = rpc("session.export", key="e/public")["url"]
        rpc.http.close()
    assert url.startswith("https://sessions.example.org/export/")


def test_a_session_deleted_during_its_download_ends_the_stream_with_an_error_line(
        rpc: RPC, monkeypatch: pytest.MonkeyPatch) -> None:
    """The export reads a page per transaction; the session is deleted after the first page
    (from another connection, while the server waits), so the body must say it is incomplete."""
    import threading

    import httpx
    import orjson

    from sessionscope.store import Scope, sessions, transfer, wire

    rpc.append("e/gone", [{"id": f"m{i}", "role": "user", "content": f"line {i}"} for i in range(5)])
    url = rpc("session.export", key="e/gone")["url"]
    monkeypatch.setattr(transfer, "EXPORT_PAGE", 2)
    shape = wire.message_item
    deleted = threading.Event()

    def delete_now() -> None:
        in_store(rpc.database_url, lambda db: sessions.delete_sessions(db, Scope.everything(), ["e/gone"],
                                                                        rpc.tenant))
        deleted.set()

    def message_item(row: Any, *args: Any, **kwargs: Any) -> Any:
        if not deleted.is_set():
            worker = threading.Thread(target=delete_now)
            worker.start()
            worker.join()
        return shape(row, *args, **kwargs)

    monkeypatch.setattr(wire, "message_item", message_item)
    answer = httpx.get(url)
    assert answer.status_code == 200
    lines = [orjson.loads(line) for line in answer.content.splitlines()]
    assert lines[0]["type"] == "session"
    assert lines[-1] == {"type": "error", "error": {
        "code": -32001, "message": "session 'e/gone' was deleted during the export; this file is incomplete",
        "data": {"key": "e/gone"}}}
    assert [line["type"] for line in lines[1:-1]] == ["message", "message"]  # the first page only
