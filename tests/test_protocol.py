"""JSON-RPC framing and the error contract: every code, one envelope, the store unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from sessionscope.rpc.registry import METHODS
from tests.conftest import RPC


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
    ("session.delete", {}, "key"),
    ("session.delete", {"key": "a", "keys": ["b"]}, "key"),
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


def test_same_envelope_for_every_method(rpc: RPC) -> None:
    """Every registered method answers `{"jsonrpc", "id", "result"|"error"}` with no other keys."""
    rpc.append("env", [{"id": "1", "role": "user", "content": "a"}])
    for name in sorted(METHODS):
        answer = rpc.request(name, {"key": "env", "tenant": rpc.tenant})
        assert set(answer) in ({"jsonrpc", "id", "result"}, {"jsonrpc", "id", "error"}), name
        assert answer["jsonrpc"] == "2.0" and answer["id"] == 1
        if "error" in answer:
            assert set(answer["error"]) <= {"code", "message", "data"}
            assert isinstance(answer["error"]["code"], int) and answer["error"]["message"]


def test_results_match_their_declared_models(rpc: RPC) -> None:
    """The OpenRPC result schema is the truth: real results validate against the models."""
    rpc.append("m", [{"id": "1", "role": "user", "content": "a"},
                     {"id": "2", "role": "assistant", "content": "b"}])
    rpc("session.record", key="m", execution={"model": "gpt-4o", "usage": {"input_tokens": 5}})
    calls = {
        "session.list": {}, "session.status": {"key": "m"}, "session.context": {"key": "m"},
        "session.metrics": {"key": "m"}, "session.history": {"key": "m"}, "agent.list": {},
        "channel.list": {}, "session.compactions": {"key": "m"}, "session.compact": {"key": "m"},
        "session.export": {"key": "m"},
    }
    for name, params in calls.items():
        METHODS[name].result.model_validate(rpc(name, **params))
    METHODS["rpc.discover"].result.model_validate(rpc.request("rpc.discover")["result"])
