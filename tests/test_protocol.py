"""JSON-RPC framing and the error contract: every code, one envelope, the store unchanged."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest

from sessionscope.rpc.registry import METHODS
from tests.conftest import RPC, conversation


def fingerprint(rpc: RPC) -> Any:
    listed = rpc("session.list", limit=500)
    return [(s["key"], s["message_count"], s["resets"], s["compactions"], s["executions"], s["total_tokens"])
            for s in listed["sessions"]], listed["total"]


def test_parse_error(rpc: RPC) -> None:
    answer = rpc.http.post(f"{rpc.url}/rpc", content=b"{not json", headers={"content-type": "application/json"})
    assert answer.status_code == 200
    assert answer.json() == {"jsonrpc": "2.0", "id": None,
                             "error": {"code": -32700, "message": "parse error: the body is not valid JSON"}}


@pytest.mark.parametrize("payload", [
    {"id": 1, "method": "session.list"},
    {"jsonrpc": "1.0", "id": 1, "method": "session.list"},
    {"jsonrpc": "2.0", "id": 1, "method": 5},
    {"jsonrpc": "2.0", "id": {"x": 1}, "method": "session.list"},
    "just a string",
    [],
])
def test_invalid_request(rpc: RPC, payload: Any) -> None:
    answer = rpc.raw(payload).json()
    assert answer["error"]["code"] == -32600
    assert answer["error"]["message"].startswith("invalid request")


def test_unknown_method(rpc: RPC) -> None:
    assert rpc.request("session.nope")["error"]["code"] == -32601


@pytest.mark.parametrize("method,params,field", [
    ("session.list", {"limit": 0}, "limit"),
    ("session.list", {"limit": "5"}, "limit"),
    ("session.list", {"sort": "messages"}, "sort"),
    ("session.list", {"cursor": "garbage!"}, "cursor"),
    ("session.list", {"unknown": 1}, "unknown"),
    ("session.status", {}, "key"),
    ("session.status", {"key": ""}, "key"),
    ("session.status", {"key": "a\x00b"}, "key"),
    ("session.status", {"key": "k" * 513}, "key"),
    ("session.append", {"key": "k", "agent": "a", "channel": "c", "messages": []}, "messages"),
    ("session.append", {"key": "k", "agent": "a", "channel": "c", "messages": [{"role": "robot"}]},
     "messages.0.role"),
    ("session.append", {"key": "k", "agent": "a", "channel": "c",
                        "messages": [{"role": "user", "timestamp": "yesterday"}]}, "messages.0.timestamp"),
    ("session.append", {"key": "k", "agent": "a", "channel": "c",
                        "messages": [{"role": "user", "content": "x" * 1_000_001}]}, "messages.0.content"),
    ("session.delete", {}, "keys"),
    ("session.delete", {"key": "a", "keys": ["b"]}, "keys"),
    ("session.record", {"key": "k", "execution": {"usage": {"input_tokens": -1}}}, "execution.usage.input_tokens"),
    ("session.history", {"key": "k", "format": "gemini"}, "format"),
])
def test_invalid_params_name_the_field(rpc: RPC, method: str, params: dict[str, Any], field: str) -> None:
    rpc.append("k", [{"id": "1", "role": "user", "content": "a"}])
    before = fingerprint(rpc)
    error = rpc.error(method, **params)
    assert error["code"] == -32602
    assert error["data"]["field"] == field and error["data"]["problem"]
    assert field in error["message"]
    assert fingerprint(rpc) == before


def test_params_must_be_an_object(rpc: RPC) -> None:
    answer = rpc.raw({"jsonrpc": "2.0", "id": 3, "method": "session.list", "params": [1, 2]}).json()
    assert answer["error"]["code"] == -32602 and answer["id"] == 3


@pytest.mark.parametrize("method", ["session.status", "session.reset", "session.compact", "session.export",
                                    "session.context", "session.metrics", "session.history", "session.record",
                                    "session.delete", "session.compactions", "session.restore"])
def test_not_found_for_every_keyed_method(rpc: RPC, method: str) -> None:
    params: dict[str, Any] = {"key": "missing:key/🚀"}
    if method == "session.record":
        params["execution"] = {}
    if method == "session.restore":
        params["seq"] = 1
    error = rpc.error(method, **params)
    assert error == {"code": -32001, "message": "session not found: 'missing:key/🚀'",
                     "data": {"key": "missing:key/🚀"}}


def test_batch_and_notifications(rpc: RPC) -> None:
    rpc.append("b", [{"id": "1", "role": "user", "content": "a"}])
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "session.status", "params": {"key": "b", "tenant": rpc.tenant}},
        {"jsonrpc": "2.0", "method": "session.reset", "params": {"key": "b", "tenant": rpc.tenant}},
        {"jsonrpc": "2.0", "id": "c", "method": "nope"},
        {"jsonrpc": "2.0", "id": "d", "method": "session.metrics", "params": {"key": "b", "tenant": rpc.tenant}},
    ]
    answers = rpc.raw(batch).json()
    assert [a["id"] for a in answers] == ["a", "c", "d"]
    assert answers[1]["error"]["code"] == -32601
    assert answers[2]["result"]["resets"] == 1  # the notification ran, silently
    only_notification = rpc.raw({"jsonrpc": "2.0", "method": "session.list", "params": {}})
    assert only_notification.status_code == 204 and only_notification.content == b""


def test_oversized_batch(rpc: RPC) -> None:
    batch = [{"jsonrpc": "2.0", "id": i, "method": "session.list"} for i in range(101)]
    assert rpc.raw(batch).json()["error"]["code"] == -32013


def test_body_too_large(rpc: RPC) -> None:
    before = fingerprint(rpc)
    huge = b'{"jsonrpc":"2.0","id":1,"method":"session.append","params":{"content":"' + b"x" * (9 * 1024 * 1024) + b'"}}'
    answer = rpc.http.post(f"{rpc.url}/rpc", content=huge, headers={"content-type": "application/json"})
    # Refused at the HTTP boundary, before dispatch: the class's status, in a JSON-RPC envelope.
    assert answer.status_code == 413 and answer.json()["error"]["code"] == -32013
    assert answer.json()["error"]["data"] == {"max_bytes": 8 * 1024 * 1024}
    assert fingerprint(rpc) == before


def test_deep_nesting_is_rejected(rpc: RPC) -> None:
    deep: Any = "x"
    for _ in range(200):
        deep = [deep]
    answer = rpc.raw({"jsonrpc": "2.0", "id": 1, "method": "session.list", "params": {"search": deep}}).json()
    assert answer["error"]["code"] == -32602 and answer["error"]["data"]["field"] == "search"
    very_deep = b"[" * 200_000 + b"]" * 200_000
    answer = rpc.http.post(f"{rpc.url}/rpc", content=very_deep, headers={"content-type": "application/json"})
    assert answer.status_code == 200 and answer.json()["error"]["code"] == -32700


def every_method_call(rpc: RPC) -> list[tuple[str, dict[str, Any]]]:
    """One successful call of every registered method, in an order where each one can succeed."""
    rpc.append("env", conversation(8, "env"))
    rpc.append("pop", [{"id": "p1", "role": "user", "content": "a"}, {"id": "p2", "role": "assistant",
                                                                        "content": "b"}])
    return [
        ("rpc.discover", {}), ("auth.whoami", {}), ("agent.list", {}), ("channel.list", {}), ("tenant.list", {}),
        ("session.list", {}), ("session.status", {"key": "env"}), ("session.context", {"key": "env"}),
        ("session.metrics", {"key": "env"}), ("session.history", {"key": "env"}),
        ("session.items", {"key": "env"}),
        ("session.append", {"key": "env", "agent": "main", "channel": "web",
                            "messages": [{"id": "late", "role": "user", "content": "one more"}]}),
        ("session.record", {"key": "env", "execution": {"model": "gpt-4o", "usage": {"input_tokens": 5}}}),
        ("session.compact", {"key": "env", "keep_recent_tokens": 50}), ("session.compactions", {"key": "env"}),
        ("session.restore", {"key": "env", "seq": "from session.compactions"}),
        ("session.import", {"key": "imported", "agent": "main", "channel": "web",
                            "records": [{"type": "message", **m} for m in conversation(1, "imp")]}),
        ("session.export", {"key": "env"}), ("session.label", {"key": "env", "label": "renamed"}),
        ("session.archive", {"key": "env"}), ("session.unarchive", {"key": "env"}),
        ("session.pop", {"key": "pop"}),
        ("session.reset", {"key": "pop"}), ("session.delete", {"key": "pop"}),
        ("token.create", {"name": "envelope", "role": "viewer", "tenant": rpc.tenant}),
        ("token.list", {}), ("token.revoke", {"id": "from token.create"}),
        ("audit.list", {}), ("store.check", {}), ("tenant.set_retention", {"days": 30}), ("tenant.purge", {}),
    ]


def test_same_envelope_for_every_method(rpc: RPC) -> None:
    """Every registered method answers `{"jsonrpc", "id", "result"}` with a result its declared model
    accepts (the server checks it too: the test suite runs with SESSIONSCOPE_DEBUG=1)."""
    called: list[str] = []
    results: dict[str, Any] = {}
    for name, params in every_method_call(rpc):
        if params.get("seq") == "from session.compactions":
            params["seq"] = results["session.compactions"]["compactions"][-1]["seq"]
        if params.get("id") == "from token.create":
            params["id"] = results["token.create"]["id"]
        if name.startswith(("session.", "agent.", "channel.", "audit.", "tenant.set")):
            params.setdefault("tenant", rpc.tenant)
        if name == "tenant.purge":
            params["tenant"] = rpc.tenant
        answer = rpc.request(name, params)
        assert set(answer) == {"jsonrpc", "id", "result"}, (name, answer)
        assert answer["jsonrpc"] == "2.0" and answer["id"] == 1
        METHODS[name].result.model_validate(answer["result"])
        results[name] = answer["result"]
        called.append(name)
    assert sorted(called) == sorted(METHODS), "a method without a call here: add one"
    assert results["session.compact"]["compacted"] is True and results["session.restore"]["restored"] > 0


def test_a_result_that_breaks_its_model_is_an_internal_error(rpc: RPC) -> None:
    """The debug setting's check at work: a handler whose result lacks a field answers -32603."""
    method = METHODS["agent.list"]

    async def broken(ctx: Any, p: Any) -> Any:
        return {"agents": "not a list"}

    METHODS["agent.list"] = dataclasses.replace(method, handler=broken)
    try:
        error = rpc.error("agent.list")
    finally:
        METHODS["agent.list"] = method
    assert error["code"] == -32603 and "does not match its model" in error["message"]


# ---- session.list cursors --------------------------------------------------------------------------

def _cursor_parts(cursor: str) -> list[Any]:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def _cursor(parts: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def test_a_cursor_is_bound_to_its_sort_order_and_filters(rpc: RPC) -> None:
    for i in range(4):
        rpc.append(f"c{i}", [{"id": "1", "role": "user", "content": "a"}], agent=f"agent{i % 2}")
    cursor = rpc("session.list", sort="key", order="asc", limit=1)["next_cursor"]
    assert rpc("session.list", sort="key", order="asc", limit=1, cursor=cursor)["sessions"][0]["key"] == "c1"
    for other in ({"sort": "updated_at"}, {"sort": "message_count"}, {"order": "desc"}, {"agent": "agent0"},
                  {"search": "c"}, {"channel": "web"}):
        params = {"sort": "key", "order": "asc", "limit": 1, "cursor": cursor, **other}
        error = rpc.error("session.list", **params)
        assert error["code"] == -32602 and error["data"]["field"] == "cursor", other
        assert "another sort" in error["data"]["problem"]


@pytest.mark.parametrize("forge", [
    lambda p: [p[0], ["a", "list"], p[2]],  # a value of the wrong type for the sort
    lambda p: [p[0], 12, p[2]],  # a number where the key sort keeps text
    lambda p: [p[0], p[1], 2**63],  # a row id past 64 bits
    lambda p: [p[0], p[1], "7"],
    lambda p: [p[0], p[1]],
    lambda p: {"x": 1},
])
def test_a_forged_cursor_is_invalid_params(rpc: RPC, forge: Any) -> None:
    for i in range(3):
        rpc.append(f"f{i}", [{"id": "1", "role": "user", "content": "a"}])
    cursor = rpc("session.list", sort="key", order="asc", limit=1)["next_cursor"]
    error = rpc.error("session.list", sort="key", order="asc", limit=1, cursor=_cursor(forge(_cursor_parts(cursor))))
    assert error["code"] == -32602 and error["data"]["field"] == "cursor"
    numeric = rpc("session.list", sort="message_count", limit=1)["next_cursor"]
    parts = _cursor_parts(numeric)
    error = rpc.error("session.list", sort="message_count", limit=1, cursor=_cursor([parts[0], "text", parts[2]]))
    assert error["code"] == -32602 and error["data"]["field"] == "cursor"


def test_a_number_sort_cursor_may_hold_a_fraction(rpc: RPC) -> None:
    # A cursor's value passes for a number sort when it is any finite number; the list's compiled
    # statement must then compare it as a float, not bind it as the integer column's type.
    for i in range(3):
        rpc.append(f"n{i}", [{"id": str(j), "role": "user", "content": "a"} for j in range(i + 1)])
    parts = _cursor_parts(rpc("session.list", sort="message_count", order="asc", limit=1)["next_cursor"])
    page = rpc("session.list", sort="message_count", order="asc", limit=5, cursor=_cursor([parts[0], 2.5, parts[2]]))
    assert [s["key"] for s in page["sessions"]] == ["n2"]  # not n1: 2.5 is not 2


def test_an_empty_page_still_has_its_total(rpc: RPC) -> None:
    # The list reads its total with the page's rows; a page left with none reads it alone.
    for key in ("e1", "e2"):
        rpc.append(key, [{"id": "1", "role": "user", "content": "a"}])
    first = rpc("session.list", sort="key", order="asc", limit=1)
    rpc("session.delete", key="e2")
    page = rpc("session.list", sort="key", order="asc", limit=1, cursor=first["next_cursor"])
    assert page["sessions"] == [] and page["total"] == 1


# ---- key / keys, tool-call arguments ---------------------------------------------------------------

def test_exactly_one_of_key_or_keys_is_in_the_schema(rpc: RPC) -> None:
    doc = rpc.request("rpc.discover")["result"]
    delete = next(m for m in doc["methods"] if m["name"] == "session.delete")
    assert delete["x-params-one-of"] == [["key"], ["keys"]]
    for params in ({}, {"key": "a", "keys": ["b"]}):
        error = rpc.error("session.delete", **params)
        assert error["code"] == -32602 and error["data"]["field"] == "keys"
        assert "exactly one of key or keys" in error["data"]["problem"]


def test_tool_call_arguments_may_be_an_object_or_a_string(rpc: RPC) -> None:
    rpc.append("args", [
        {"id": "u", "role": "user", "content": "weather?"},
        {"id": "a1", "role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "name": "weather", "arguments": {"city": "Paris", "days": 2}},
            {"id": "c2", "name": "clock", "arguments": '{"tz": "UTC"}'}]},
    ])
    openai = rpc("session.history", key="args")["messages"][1]["tool_calls"]
    assert [c["function"]["arguments"] for c in openai] == ['{"city":"Paris","days":2}', '{"tz": "UTC"}']
    anthropic = rpc("session.history", key="args", format="anthropic")["messages"][1]["content"]
    assert [b["input"] for b in anthropic if b["type"] == "tool_use"] == [{"city": "Paris", "days": 2},
                                                                          {"tz": "UTC"}]
    error = rpc.error("session.append", key="args", agent="main", channel="web", messages=[
        {"id": "a2", "role": "assistant", "content": "", "tool_calls": [{"id": "c3", "name": "n", "arguments": [1]}]}])
    assert error["code"] == -32602 and error["data"]["field"].startswith("messages.0.tool_calls.0.arguments")
