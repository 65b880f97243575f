"""POST /v1/traces fed by the real opentelemetry-sdk and its OTLP/HTTP exporter over loopback."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sessionscope.web.otlp import TENANT_HEADER
from tests.conftest import RPC
from tests.security_helpers import AuthServer


def _msgs(*messages: dict[str, Any]) -> str:
    return json.dumps(list(messages))


def _text(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


USER = _text("user", "Weather in Paris?")
CALL = {"role": "assistant",
        "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]}
RESULT = {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny 21C"}]}
ANSWER = _text("assistant", "Sunny, 21°C.")


def agent_turn(tracer: trace.Tracer, conversation: str) -> None:
    """One agent invocation as GenAI-instrumented code emits it: a layer, two model calls, a tool."""
    with tracer.start_as_current_span("invoke_agent Helper", attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Helper",
        "gen_ai.conversation.id": conversation,
    }):
        with tracer.start_as_current_span("history-window"):
            pass
        with tracer.start_as_current_span("chat gpt-4o", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.input.messages": _msgs(USER), "gen_ai.output.messages": _msgs(CALL),
            "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.cache_read.input_tokens": 20,
        }):
            pass
        with tracer.start_as_current_span("execute_tool get_weather", attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.id": "call_1", "gen_ai.tool.call.arguments": '{"city":"Paris"}',
            "gen_ai.tool.call.result": "sunny 21C",
        }):
            pass
        with tracer.start_as_current_span("chat gpt-4o", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.input.messages": _msgs(USER, CALL, RESULT), "gen_ai.output.messages": _msgs(ANSWER),
            "gen_ai.usage.input_tokens": 200, "gen_ai.usage.output_tokens": 8,
        }):
            pass


def provider_for(exporter: Any) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot",
                                                        "sessionscope.channel": "slack"}))
    # One batch per flush, so a turn's spans reach the server in one request.
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    return provider


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_sdk_exporter_spans_become_a_session(rpc: RPC, compression: Compression) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{rpc.url}/v1/traces", headers={TENANT_HEADER: rpc.tenant},
                                compression=compression)
    provider = provider_for(exporter)
    agent_turn(provider.get_tracer("test"), "otel:conv-1")
    assert provider.force_flush()
    provider.shutdown()

    status = rpc("session.status", key="otel:conv-1")
    session = status["session"]
    assert (session["agent"], session["channel"], session["tenant"]) == ("Helper", "slack", rpc.tenant)
    messages = [(i["role"], i["content"]) for i in status["items"]]
    assert messages == [("user", "Weather in Paris?"), ("assistant", ""), ("tool", "sunny 21C"),
                        ("assistant", "Sunny, 21°C.")]
    call, result = status["items"][1], status["items"][2]
    assert call["tool_calls"][0]["name"] == "get_weather" and result["tool_call_id"] == "call_1"

    context = rpc("session.context", key="otel:conv-1")
    (execution,) = context["executions"]
    assert execution["model"] == "gpt-4o" and execution["provider"] == "openai"
    assert execution["usage"] == {"input_tokens": 300, "output_tokens": 18, "cache_read_tokens": 20,
                                  "cache_write_tokens": 0, "cache_write_1h_tokens": 0, "reasoning_tokens": 0}
    assert [layer["name"] for layer in execution["layers"]] == [
        "history-window", "chat gpt-4o", "execute_tool get_weather", "chat gpt-4o"]
    starts = [layer["start_ms"] for layer in execution["layers"]]
    assert starts == sorted(starts) and execution["duration_ms"] >= starts[-1]


def test_resent_spans_add_nothing(rpc: RPC) -> None:
    memory = InMemorySpanExporter()
    provider = provider_for(memory)
    agent_turn(provider.get_tracer("test"), "otel:again")
    provider.force_flush()
    spans = memory.get_finished_spans()
    exporter = OTLPSpanExporter(endpoint=f"{rpc.url}/v1/traces", headers={TENANT_HEADER: rpc.tenant})
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    before = rpc("session.metrics", key="otel:again")
    assert exporter.export(spans) == SpanExportResult.SUCCESS  # an exporter retry resends the batch
    assert rpc("session.metrics", key="otel:again") == before
    assert (before["message_count"], before["executions"]) == (4, 1)
    exporter.shutdown()
    provider.shutdown()


def test_json_encoding_and_the_response_body(rpc: RPC) -> None:
    body = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-bot"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "chat gpt-4o",
            "startTimeUnixNano": "1772000000000000000", "endTimeUnixNano": "1772000000500000000",
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.conversation.id", "value": {"stringValue": "otel:json"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                {"key": "gen_ai.input.messages", "value": {"stringValue": _msgs(USER)}},
                {"key": "gen_ai.output.messages", "value": {"stringValue": _msgs(ANSWER)}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "40"}},
            ],
        }]}],
    }]}
    headers = {"content-type": "application/json", TENANT_HEADER: rpc.tenant, "content-encoding": "gzip"}
    answer = httpx.post(f"{rpc.url}/v1/traces", content=gzip.compress(json.dumps(body).encode()), headers=headers)
    assert answer.status_code == 200 and answer.json() == {}
    assert answer.headers["content-type"] == "application/json"
    history = rpc("session.history", key="otel:json")["messages"]
    assert history == [{"role": "user", "content": "Weather in Paris?"},
                       {"role": "assistant", "content": "Sunny, 21°C."}]
    assert rpc("session.status", key="otel:json")["session"]["agent"] == "json-bot"

    # Protobuf answers carry an ExportTraceServiceResponse.
    no_spans = httpx.post(f"{rpc.url}/v1/traces", content=b"\x0a\x00",  # one empty ResourceSpans
                          headers={"content-type": "application/x-protobuf"})
    assert no_spans.status_code == 200
    ExportTraceServiceResponse().ParseFromString(no_spans.content)


@pytest.mark.parametrize(("body", "content_type", "headers", "needle"), [
    (b"\xff\x00 definitely not protobuf", "application/x-protobuf", {}, "not an OTLP ExportTraceServiceRequest"),
    (b"{not json", "application/json", {}, "not an OTLP trace export"),
    (b"plain text", "text/plain", {}, "unsupported content type"),
    (b"not gzip at all", "application/x-protobuf", {"content-encoding": "gzip"}, "does not inflate"),
    (b"", "application/x-protobuf", {}, "empty body"),
    (b"", "application/json", {}, "empty body"),
    (b"\x1f\x8b but not really gzip", "application/x-protobuf", {}, "does not inflate"),
    (gzip.compress(gzip.compress(b"{}")), "application/json", {"content-encoding": "gzip"}, "nested compression"),
    (gzip.compress(gzip.compress(b"{}")), "application/json", {}, "nested compression"),
    (b'{"resourceSpans":[{"scopeSpans":["x"]}]}', "application/json", {}, "not an OTLP trace export"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":5}]}]}]}', "application/json", {},
     "not an OTLP trace export"),
    (b'{"resourceSpans":' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json", {}, "not an OTLP trace export"),
])
def test_garbage_gets_400_with_a_reason(rpc: RPC, body: bytes, content_type: str, headers: dict[str, str],
                                        needle: str) -> None:
    answer = httpx.post(f"{rpc.url}/v1/traces", content=body, headers={"content-type": content_type, **headers})
    assert answer.status_code == 400
    if content_type == "application/json":
        assert answer.json()["code"] == 3 and needle in answer.json()["message"]
    else:
        assert needle.encode() in answer.content  # google.rpc.Status: code 3, then the message
        assert answer.content.startswith(b"\x08\x03\x12")


@pytest.mark.parametrize("headers", [{"content-encoding": "gzip"}, {}])
def test_gzip_bomb_is_refused(rpc: RPC, headers: dict[str, str]) -> None:
    """The ceiling holds whether or not Content-Encoding says gzip (the magic bytes are enough)."""
    bomb = gzip.compress(b"\x00" * (80 * 1024 * 1024))  # ~80 KB on the wire, 80 MB inflated
    answer = httpx.post(f"{rpc.url}/v1/traces", content=bomb,
                        headers={"content-type": "application/x-protobuf", **headers})
    assert answer.status_code == 413 and b"larger than" in answer.content


def test_nested_gzip_bomb_is_refused_without_inflating_the_inner_stream(rpc: RPC) -> None:
    """1 GiB of zeros, gzipped twice, is a few KB on the wire; the outer pass yields a gzip stream."""
    inner = gzip.compress(b"\x00" * (64 * 1024 * 1024), compresslevel=9)
    answer = httpx.post(f"{rpc.url}/v1/traces", content=gzip.compress(inner, compresslevel=9),
                        headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert answer.status_code == 400 and "nested compression" in answer.json()["message"]


def test_other_content_encodings_are_refused(rpc: RPC) -> None:
    answer = httpx.post(f"{rpc.url}/v1/traces", content=b"{}",
                        headers={"content-type": "application/json", "content-encoding": "br"})
    assert answer.status_code == 415 and "Content-Encoding" in answer.json()["message"]


def test_tokens_decide_who_may_ingest_and_where(auth_server: AuthServer, tenant: str) -> None:
    url = f"{auth_server.url}/v1/traces"
    memory = InMemorySpanExporter()
    provider = provider_for(memory)
    agent_turn(provider.get_tracer("test"), "otel:auth")
    provider.force_flush()
    spans = memory.get_finished_spans()
    provider.shutdown()

    assert OTLPSpanExporter(endpoint=url).export(spans) == SpanExportResult.FAILURE  # no token: 401
    viewer = auth_server.token("viewer", tenant)
    refused = httpx.post(url, content=b"", headers={"authorization": f"Bearer {viewer}",
                                                    "content-type": "application/json"})
    assert refused.status_code == 403 and "may not ingest" in refused.json()["message"]

    agent = auth_server.token("agent", tenant)
    exporter = OTLPSpanExporter(endpoint=url, headers={"authorization": f"Bearer {agent}"})
    assert exporter.export(spans) == SpanExportResult.SUCCESS  # lands in the token's own tenant
    assert auth_server.admin("session.metrics", key="otel:auth", tenant=tenant)["message_count"] == 4
    elsewhere = OTLPSpanExporter(endpoint=url, headers={"authorization": f"Bearer {agent}",
                                                        TENANT_HEADER: "someone-else"})
    assert elsewhere.export(spans) == SpanExportResult.FAILURE  # 403: another tenant
    exporter.shutdown()
    elsewhere.shutdown()
