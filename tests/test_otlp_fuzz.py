"""Hostile OTLP bodies at a real server: the RPC's validation rules, a bounded amount of work per
request, and a clear 4xx (never a 500, nor a 503 that exporters retry forever) for any body."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from sessionscope.web.otlp import MAX_SPANS, TENANT_HEADER
from tests.conftest import RPC

T0 = 1_772_000_000_000_000_000
JSON = "application/json"
PROTO = "application/x-protobuf"


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _span(n: int, conversation: str, text: str = "hello", agent: str | None = None) -> dict[str, Any]:
    attrs = [_attr("openinference.span.kind", "LLM"), _attr("session.id", conversation),
             _attr("llm.input_messages.0.message.role", "user"),
             _attr("llm.input_messages.0.message.content", text),
             _attr("llm.output_messages.0.message.role", "assistant"),
             _attr("llm.output_messages.0.message.content", f"answer {n}")]
    if agent is not None:
        attrs.append(_attr("gen_ai.agent.name", agent))
    return {"traceId": f"{n + 1:032x}", "spanId": f"{n + 1:016x}", "name": "ChatCompletion",
            "startTimeUnixNano": str(T0 + n * 1_000_000), "endTimeUnixNano": str(T0 + n * 1_000_000 + 500_000),
            "attributes": attrs}


def _body(*spans: dict[str, Any]) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}).encode()


def _post(rpc: RPC, body: bytes, content_type: str = JSON) -> httpx.Response:
    return httpx.post(f"{rpc.url}/v1/traces", content=body, timeout=60,
                      headers={"content-type": content_type, TENANT_HEADER: rpc.tenant})


def _keys(rpc: RPC) -> list[str]:
    return [s["key"] for s in rpc("session.list", limit=500)["sessions"]]


@pytest.mark.parametrize(("key", "text", "agent", "field", "problem"), [
    ("esc\x1b[31mred", "hi", None, "session.key", "control characters"),
    ("nul\x00key", "hi", None, "session.key", "control characters"),
    ("k" * 513, "hi", None, "session.key", "512 UTF-8 bytes"),
    ("big-content", "x" * 1_000_001, None, "content", "1000000 UTF-8 bytes"),
    ("long-agent", "hi", "a" * 257, "session.agent", "at most 256"),
])
def test_records_that_break_the_rpc_rules_are_refused_by_name(rpc: RPC, key: str, text: str, agent: str | None,
                                                             field: str, problem: str) -> None:
    answer = _post(rpc, _body(_span(0, key, text, agent), _span(1, "fine")))
    assert answer.status_code == 200, answer.text
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert field in partial["errorMessage"] and problem in partial["errorMessage"]
    assert _keys(rpc) == ["fine"]  # the good session of the same request is stored, the bad one is not

    proto = ExportTraceServiceResponse()
    raw = httpx.post(f"{rpc.url}/v1/traces", content=_as_protobuf(_body(_span(2, key, text, agent))), timeout=60,
                     headers={"content-type": PROTO, TENANT_HEADER: rpc.tenant})
    proto.ParseFromString(raw.content)
    assert raw.status_code == 200 and proto.partial_success.rejected_spans == 1
    assert problem in proto.partial_success.error_message
    assert _keys(rpc) == ["fine"]


def _as_protobuf(body: bytes) -> bytes:
    from google.protobuf import json_format

    return json_format.Parse(body, ExportTraceServiceRequest()).SerializeToString()


def test_a_request_past_the_span_cap_is_refused_before_any_work(rpc: RPC) -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for n in range(MAX_SPANS + 1):
        span = spans.add(trace_id=n.to_bytes(16, "big"), span_id=(n + 1).to_bytes(8, "big"), name="x")
        kv = span.attributes.add(key="session.id")
        kv.value.string_value = "capped"
    answer = _post(rpc, request.SerializeToString(), PROTO)
    assert answer.status_code == 413
    assert f"the limit is {MAX_SPANS}".encode() in answer.content
    assert _keys(rpc) == []


@pytest.mark.parametrize("body", [
    b'{"resourceSpans":[{"scopeSpans":["x"]}]}',
    b'{"resourceSpans":"x"}',
    b'{"resourceSpans":[{"resource":[]}]}',
    b'{"resourceSpans":[{"scopeSpans":[{"spans":{"a":1}}]}]}',
    b'{"resourceSpans":[{"scopeSpans":[{"spans":[7]}]}]}',
    b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":5,"spanId":"00"}]}]}]}',
    _body(dict(_span(0, "x"), startTimeUnixNano=[1])),
    _body(dict(_span(0, "x"), startTimeUnixNano="1" + "0" * 30)),
    _body(dict(_span(0, "x"), attributes={"key": "x"})),
    _body(dict(_span(0, "x"), attributes=[{"key": "n", "value": {"intValue": {"x": 1}}}])),
    _body(dict(_span(0, "x"), attributes=[{"key": "b", "value": {"bytesValue": "not base64!"}}])),
    _body(dict(_span(0, "x"), status="error")),
    b"[" * 100_000,
    b'{"resourceSpans":' + b'[' * 5_000 + b']' * 5_000 + b'}',
    # kvlists nested 300 deep inside an attribute (protobuf's own limit is 100)
    _body(dict(_span(0, "x"), attributes=[])).replace(b'"attributes": []', b'"attributes": [{"key": "deep", "value": '
                                                      + b'{"kvlistValue": {"values": [{"key": "k", "value": ' * 300
                                                      + b'{}' + b'}]}}' * 300 + b'}]'),
])
def test_malformed_json_shapes_get_a_clear_400(rpc: RPC, body: bytes) -> None:
    answer = _post(rpc, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == 3 and answer.json()["message"].startswith("not an OTLP trace export")


@pytest.mark.parametrize("key", [
    "llm.input_messages.0.message.calls",  # a field named like the parser's own bookkeeping
    "llm.input_messages.\u00b2.message.role",  # a digit (str.isdigit) that int() refuses
    "llm.input_messages.0.message.tool_calls.\u00b2.tool_call.id",
])
def test_odd_openinference_keys_are_mapped_not_a_500(rpc: RPC, key: str) -> None:
    span = _span(0, "odd-keys")
    span["attributes"].append(_attr(key, "tool"))
    answer = _post(rpc, _body(span))
    assert answer.status_code == 200, answer.text
    assert _keys(rpc) == ["odd-keys"]


# ---- fuzz: any body gets 200, 400 or 413 -----------------------------------------------------------

hostile = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False),
    st.text(max_size=20), st.sampled_from(["", "\x00", "\x1b[2J", "k" * 600, "\ud800", "5b8efff798038103d269b633813fc60c",
                                           "eee19b7ec3c1b174", "1772000000000000000"]),
)
values = st.recursive(hostile, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(["stringValue", "intValue", "arrayValue", "kvlistValue",
                                                         "values", "key", "value", "x"]), inner, max_size=3),
                      max_leaves=8)
attribute = st.fixed_dictionaries({"key": st.sampled_from(
    ["session.id", "gen_ai.conversation.id", "openinference.span.kind", "llm.input_messages.0.message.content",
     "llm.input_messages.0.message.role", "gen_ai.input.messages", "input.value", "output.value", "llm.model_name",
     "gen_ai.agent.name", "gen_ai.usage.input_tokens", "tool_call.id", "x"]) | hostile, "value": values})
span = st.fixed_dictionaries({}, optional={
    "traceId": st.sampled_from(["5b8efff798038103d269b633813fc60c", "W47/95gDgQPSabYzgT/GDA=="]) | hostile,
    "spanId": st.sampled_from(["eee19b7ec3c1b174", "aaa19b7ec3c1b175"]) | hostile,
    "parentSpanId": st.sampled_from(["eee19b7ec3c1b174", ""]) | hostile,
    "name": hostile, "startTimeUnixNano": hostile, "endTimeUnixNano": hostile, "status": values,
    "attributes": st.lists(attribute, max_size=6) | values,
})
otlp_json = st.fixed_dictionaries({"resourceSpans": st.lists(st.fixed_dictionaries({}, optional={
    "resource": st.fixed_dictionaries({"attributes": st.lists(attribute, max_size=2)}) | values,
    "scopeSpans": st.lists(st.fixed_dictionaries({"spans": st.lists(span, max_size=4) | values}), max_size=2)
    | values,
}), max_size=2) | values})
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@FUZZ
@given(body=otlp_json)
def test_fuzzed_json_bodies(rpc: RPC, body: dict[str, Any]) -> None:
    answer = _post(rpc, json.dumps(body).encode())
    assert answer.status_code in (200, 400, 413), answer.text


def _valid_protobuf() -> bytes:
    return _as_protobuf(_body(_span(0, "fuzz-a"), _span(1, "fuzz-b", "x" * 300)))


@FUZZ
@given(data=st.data())
def test_fuzzed_protobuf_bodies(rpc: RPC, data: st.DataObject) -> None:
    body = bytearray(_valid_protobuf())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        body = body[:data.draw(st.integers(0, len(body)))]
    answer = _post(rpc, bytes(body), PROTO)
    assert answer.status_code in (200, 400, 413), answer.content[:200]
