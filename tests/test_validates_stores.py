"""Property (issue 14): every input the validator accepts stores and reads back, on both databases.
Anything else is refused with -32602 naming a field; nothing ends in -32603."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import RPC

# Text with what breaks databases: NUL, lone surrogates, controls, bidi overrides, astral planes.
hostile_text = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF,
                                     blacklist_categories=()), max_size=40) | st.sampled_from(
    ["\x00", "a\x00b", "\ud800", "x\udfffy", "\u202eevil", "\x1b[31m", "", " "])
big_ints = st.integers(min_value=-1, max_value=2**70) | st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63])


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "tool"]), "content": hostile_text},
    optional={"id": hostile_text, "tokens": big_ints, "tool_name": hostile_text, "timestamp": st.sampled_from(
        ["2026-01-01T00:00:00Z", "9999-12-31T23:59:59.999-23:59", "0001-01-01T00:00:00+23:59", "not a time"]),
        "raw": st.sampled_from([{"a": "\x00"}, {"a": "\ud800"}, nested(1000), nested(10), {"x": [1, 2]}])},
)
counter = itertools.count()
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


def outcome(rpc: RPC, method: str, **params: Any) -> dict[str, Any]:
    params.setdefault("tenant", rpc.tenant)
    # json.dumps escapes lone surrogates (\\ud800), which httpx's own encoder cannot send at all.
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    response = rpc.http.post(f"{rpc.url}/rpc", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    answer = response.json()
    if "error" in answer:
        assert answer["error"]["code"] == -32602, answer["error"]
        assert answer["error"]["data"]["field"], answer["error"]
    return answer


@SETTINGS
@given(messages=st.lists(message, min_size=1, max_size=3), channel=st.text(min_size=1, max_size=260),
       label=st.none() | hostile_text)
def test_an_accepted_append_stores_and_reads_back(rpc: RPC, messages: list[dict[str, Any]], channel: str,
                                                  label: str | None) -> None:
    key = f"p/{next(counter)}"
    params: dict[str, Any] = {"key": key, "agent": "a", "channel": channel, "messages": messages}
    if label is not None:
        params["label"] = label
    answer = outcome(rpc, "session.append", **params)
    if "error" in answer:
        return
    status = rpc("session.status", key=key)
    stored = [i for i in status["items"] if i["kind"] == "message"]
    fresh = list({m.get("id") or f"anon-{i}": m for i, m in enumerate(messages)}.values())
    assert [i["content"] for i in stored] == [m["content"] for m in fresh]
    row = status["session"]
    assert row["channel"] == channel and row["label"] == label
    rpc("session.list", query=messages[0]["content"][:20] or "x")
    rpc("session.history", key=key)


@SETTINGS
@given(number=big_ints, query=hostile_text)
def test_accepted_numbers_and_queries_read_back(rpc: RPC, number: int, query: str) -> None:
    rpc.append("n/1", [{"role": "user", "content": "numbers"}])
    outcome(rpc, "session.status", key="n/1", before_seq=number)
    outcome(rpc, "session.restore", key="n/1", seq=number) if number < 1 or number > 2**63 - 1 else None
    outcome(rpc, "session.list", query=query)
    outcome(rpc, "session.record", key="n/1", execution={"usage": {"input_tokens": number}})
    outcome(rpc, "session.append", key="n/1", agent="a", channel="web",
            messages=[{"role": "user", "content": "t", "tokens": number}])
    metrics = rpc("session.metrics", key="n/1")
    assert metrics["message_count"] >= 1
