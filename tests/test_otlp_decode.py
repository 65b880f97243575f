"""decode_otlp against spans made by the real opentelemetry-sdk and a hand-written OTLP JSON body."""

from __future__ import annotations

import gzip
import json
import logging
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from sessionscope.importers.otlp import decode_otlp, decode_spans
from sessionscope.importers.otlp_genai import Conversation, spans_to_conversations
from sessionscope.web import metrics
from sessionscope.web.otlp import TENANT_HEADER
from tests.conftest import RPC

T0 = 1_772_000_000_000_000_000  # 2026-02-25T06:13:20Z in ns
MS = 1_000_000
PROTO = "application/x-protobuf"


def _msgs(*messages: dict) -> str:
    return json.dumps(list(messages))


def _text(role: str, text: str) -> dict:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


SYSTEM = _text("system", "Be brief.")
USER = _text("user", "Weather in Paris?")
CALL = {
    "role": "assistant",
    "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
}
RESULT = {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny 21C"}]}
ANSWER = _text("assistant", "Sunny, 21°C.")


def _agent_run(conversation: str = "conv-1") -> bytes:
    """One agent turn: a history layer, two model calls around a tool call, a failed guardrail."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "support-bot", "sessionscope.channel": "slack"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    agent = tracer.start_span(
        "invoke_agent Helper",
        start_time=T0,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "Helper",
            "gen_ai.conversation.id": conversation,
            "gen_ai.input.messages": _msgs(USER),
            "gen_ai.output.messages": _msgs(ANSWER),
        },
    )
    ctx = trace.set_span_in_context(agent)

    def child(name: str, start_ms: int, end_ms: int, attributes: dict, error: str | None = None) -> None:
        span = tracer.start_span(name, context=ctx, start_time=T0 + start_ms * MS, attributes=attributes)
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=T0 + end_ms * MS)

    child("history-window", 1, 3, {})
    child(
        "chat gpt-4o",
        5,
        105,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.input.messages": _msgs(SYSTEM, USER),
            "gen_ai.output.messages": _msgs(CALL),
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.cache_read.input_tokens": 20,
        },
    )
    child(
        "execute_tool get_weather",
        110,
        130,
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.id": "call_1",
            "gen_ai.tool.call.arguments": '{"city":"Paris"}',
            "gen_ai.tool.call.result": "sunny 21C",
        },
    )
    child(
        "chat gpt-4o",
        140,
        200,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.input.messages": _msgs(SYSTEM, USER, CALL, RESULT),
            "gen_ai.output.messages": _msgs(ANSWER),
            "gen_ai.usage.input_tokens": 200,
            "gen_ai.usage.output_tokens": 8,
        },
    )
    child("guardrail", 201, 204, {}, error="blocked word")
    agent.end(end_time=T0 + 210 * MS)
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


def test_sdk_agent_run_maps_to_session_messages_and_execution() -> None:
    records = decode_otlp(_agent_run(), PROTO)
    header, *rest = records
    assert header == {
        "type": "session",
        "version": 1,
        "key": "conv-1",
        "tenant": "default",
        "agent": "Helper",
        "channel": "slack",
        "label": None,
        "created_at": "2026-02-25T06:13:20.000Z",
    }
    messages = [r for r in rest if r["type"] == "message"]
    # History resent by the second model call and the agent span's copy collapse to one each.
    assert [(m["role"], m["content"]) for m in messages] == [
        ("system", "Be brief."),
        ("user", "Weather in Paris?"),
        ("assistant", ""),
        ("tool", "sunny 21C"),
        ("assistant", "Sunny, 21°C."),
    ]
    call, result = messages[2], messages[3]
    assert call["tool_calls"] == [{"id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}]
    assert (result["tool_call_id"], result["tool_name"], result["is_error"]) == (
        "call_1",
        "get_weather",
        False,
    )
    assert messages[1]["timestamp"] == "2026-02-25T06:13:20.005Z"
    assert result["timestamp"] == "2026-02-25T06:13:20.130Z"

    [execution] = [r for r in rest if r["type"] == "execution"]
    assert execution["started_at"] == "2026-02-25T06:13:20.000Z"
    assert execution["duration_ms"] == 210
    assert execution["model_ms"] == 100 + 60  # the two model calls inside the run
    assert (execution["model"], execution["provider"]) == ("gpt-4o", "openai")
    # GenAI counts cached input inside input_tokens: 120 - 20 cached + 200.
    assert execution["usage"] == {
        "input_tokens": 300,
        "output_tokens": 18,
        "cache_read_tokens": 20,
        "cache_write_tokens": 0,
        "cache_write_1h_tokens": 0,
    }
    assert [(layer["name"], layer["start_ms"], layer["duration_ms"]) for layer in execution["layers"]] == [
        ("history-window", 1, 2),
        ("chat gpt-4o", 5, 100),
        ("execute_tool get_weather", 110, 20),
        ("chat gpt-4o", 140, 60),
        ("guardrail", 201, 3),
    ]
    first_call = execution["layers"][1]
    assert (
        first_call["messages_in"],
        first_call["messages_out"],
        first_call["tokens_in"],
        first_call["tokens_out"],
    ) == (
        2,
        1,
        120,
        10,
    )
    assert execution["layers"][4]["error"] == "blocked word"
    assert records.index(execution) == len(records) - 1  # executions follow the items


def test_resending_is_idempotent_and_next_turn_reuses_history_ids() -> None:
    body = _agent_run()
    first = decode_otlp(body, PROTO)
    assert decode_otlp(body, PROTO) == first
    # A separately produced run of the same conversation (new trace and span ids) repeats
    # the same history, and so the same message ids; the store then adds nothing.
    again = decode_otlp(_agent_run(), PROTO)
    ids = [r["id"] for r in first if r["type"] == "message"]
    assert [r["id"] for r in again if r["type"] == "message"] == ids
    assert len(set(ids)) == len(ids)
    # Execution ids follow the span, so a different run is a different execution.
    assert [r["id"] for r in again if r["type"] == "execution"] != [
        r["id"] for r in first if r["type"] == "execution"
    ]


def test_gzip_body_and_other_conversation_keys() -> None:
    records = decode_otlp(gzip.compress(_agent_run("conv-2")), "application/x-protobuf; charset=binary")
    assert records[0]["key"] == "conv-2"


OPENINFERENCE_JSON = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "oi-app"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "openinference"},
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "name": "ChatCompletion",
                            "kind": 3,
                            "startTimeUnixNano": "1772000000000000000",
                            "endTimeUnixNano": "1772000000250000000",
                            "attributes": [
                                {"key": "openinference.span.kind", "value": {"stringValue": "LLM"}},
                                {"key": "session.id", "value": {"stringValue": "oi-sess"}},
                                {"key": "llm.model_name", "value": {"stringValue": "claude-haiku-4-5"}},
                                {"key": "llm.provider", "value": {"stringValue": "anthropic"}},
                                {
                                    "key": "llm.input_messages.0.message.role",
                                    "value": {"stringValue": "user"},
                                },
                                {
                                    "key": "llm.input_messages.0.message.content",
                                    "value": {"stringValue": "list files"},
                                },
                                {
                                    "key": "llm.output_messages.0.message.role",
                                    "value": {"stringValue": "assistant"},
                                },
                                {
                                    "key": "llm.output_messages.0.message.tool_calls.0.tool_call.id",
                                    "value": {"stringValue": "tc_9"},
                                },
                                {
                                    "key": "llm.output_messages.0.message.tool_calls.0.tool_call.function.name",
                                    "value": {"stringValue": "ls"},
                                },
                                {
                                    "key": "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments",
                                    "value": {"stringValue": '{"path": "."}'},
                                },
                                {"key": "llm.token_count.prompt", "value": {"intValue": "50"}},
                                {"key": "llm.token_count.completion", "value": {"intValue": "7"}},
                                {
                                    "key": "llm.token_count.prompt_details.cache_write",
                                    "value": {"intValue": "30"},
                                },
                            ],
                            "status": {},
                        },
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "aaa19b7ec3c1b175",
                            "parentSpanId": "eee19b7ec3c1b174",
                            "name": "ls",
                            "startTimeUnixNano": "1772000000300000000",
                            "endTimeUnixNano": "1772000000310000000",
                            "attributes": [
                                {"key": "openinference.span.kind", "value": {"stringValue": "TOOL"}},
                                {"key": "tool.name", "value": {"stringValue": "ls"}},
                                {"key": "tool_call.id", "value": {"stringValue": "tc_9"}},
                                {"key": "output.value", "value": {"stringValue": "a.txt"}},
                            ],
                            "status": {"code": 2, "message": "permission denied"},
                        },
                        {
                            "traceId": "0af7651916cd43dd8448eb211c80319c",
                            "spanId": "b7ad6b7169203331",
                            "name": "unrelated http GET",
                            "startTimeUnixNano": "1772000000000000000",
                            "endTimeUnixNano": "1772000000001000000",
                        },
                    ],
                }
            ],
        }
    ]
}


def test_openinference_json_body() -> None:
    records = decode_otlp(json.dumps(OPENINFERENCE_JSON).encode(), "application/json")
    assert [r["type"] for r in records] == ["session", "message", "message", "message", "execution"]
    header, user, call, result, execution = records
    assert (header["key"], header["agent"], header["channel"]) == ("oi-sess", "oi-app", "otel")
    assert (user["role"], user["content"], user["timestamp"]) == (
        "user",
        "list files",
        "2026-02-25T06:13:20.000Z",
    )
    assert call["tool_calls"] == [{"id": "tc_9", "name": "ls", "arguments": '{"path": "."}'}]
    # The tool span repeats the call the model output already holds: only its result is new.
    assert (result["role"], result["tool_call_id"], result["tool_name"]) == ("tool", "tc_9", "ls")
    assert (result["content"], result["is_error"]) == ("a.txt", True)
    assert (execution["model"], execution["provider"], execution["duration_ms"]) == (
        "claude-haiku-4-5",
        "anthropic",
        250,
    )
    assert execution["model_ms"] == 250  # a model call's execution: all of it is the model's
    assert execution["usage"] == {
        "input_tokens": 20,
        "output_tokens": 7,
        "cache_read_tokens": 0,
        "cache_write_tokens": 30,
    }
    assert execution["layers"] == []


def test_spans_without_a_conversation_are_grouped_by_trace() -> None:
    llm, tool, http = OPENINFERENCE_JSON["resourceSpans"][0]["scopeSpans"][0]["spans"]
    anonymous = dict(llm, attributes=[a for a in llm["attributes"] if a["key"] != "session.id"])
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [anonymous, tool, http]}]}]}
    mapped = spans_to_conversations(decode_spans(json.dumps(body).encode(), "application/json"))
    (conversation,) = mapped.conversations
    assert (conversation.key, conversation.by_trace, conversation.spans) == (
        "trace:5b8efff798038103d269b633813fc60c", True, 2)
    assert [m["role"] for m in conversation.messages] == ["user", "assistant", "tool"]
    assert mapped.ignored_spans == 1  # the plain HTTP span's trace has no GenAI span


def _oi_span(span_id: str, kind: str, start_ms: int, end_ms: int, parent: str = "", **attributes: Any) -> dict:
    attrs = [{"key": "openinference.span.kind", "value": {"stringValue": kind}},
             {"key": "session.id", "value": {"stringValue": "oi-values"}}]
    attrs += [{"key": k.replace("__", "."), "value": {"stringValue": v} if isinstance(v, str) else {"intValue": v}}
              for k, v in attributes.items()]
    span = {"traceId": "1" * 32, "spanId": span_id, "name": kind.lower(), "attributes": attrs,
            "startTimeUnixNano": str(T0 + start_ms * MS), "endTimeUnixNano": str(T0 + end_ms * MS)}
    if parent:
        span["parentSpanId"] = parent
    return span


def _conversations(*spans: dict) -> list[Conversation]:
    body = {"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}
    return spans_to_conversations(decode_spans(json.dumps(body).encode(), "application/json")).conversations


AGENT_SPAN = _oi_span("a" * 16, "AGENT", 0, 900, input__value="Is the deploy done?",
                      output__value="Yes, billing-api is live.")
CHAIN_SPAN = _oi_span("b" * 16, "CHAIN", 10, 800, parent="a" * 16, input__value='{"input": "Is the deploy done?"}',
                      output__value='{"output": "Yes, billing-api is live."}')
LLM_SPAN = _oi_span("c" * 16, "LLM", 20, 700, parent="b" * 16, llm__model_name="gpt-4o-mini-2024-07-18",
                    llm__system="openai",
                    llm__input_messages__0__message__role="user", llm__input_messages__0__message__content="Is the deploy done?", llm__output_messages__0__message__role="assistant", llm__output_messages__0__message__content="Yes, billing-api is live.")


def test_agent_and_chain_spans_with_only_input_and_output_values_become_one_turn() -> None:
    (conversation,) = _conversations(AGENT_SPAN, CHAIN_SPAN)
    # The nested chain repeats its agent's turn in another shape: the outermost span gives it once.
    assert [(m["role"], m["content"]) for m in conversation.messages] == [
        ("user", "Is the deploy done?"), ("assistant", "Yes, billing-api is live.")]
    assert [m["timestamp"] for m in conversation.messages] == ["2026-02-25T06:13:20.000Z", "2026-02-25T06:13:20.900Z"]


def test_messages_attributes_come_first_and_no_turn_is_stored_twice() -> None:
    (together,) = _conversations(AGENT_SPAN, CHAIN_SPAN, LLM_SPAN)
    assert [(m["role"], m["content"]) for m in together.messages] == [
        ("user", "Is the deploy done?"), ("assistant", "Yes, billing-api is live.")]
    assert together.messages[0]["timestamp"] == "2026-02-25T06:13:20.020Z"  # the model call's own times
    # An exporter batch can end between the model call and its agent span: the agent span, alone
    # in the next request, gives the same turn with the same ids, which the store skips.
    (llm_only,) = _conversations(LLM_SPAN)
    (agent_only,) = _conversations(AGENT_SPAN)
    assert [m["id"] for m in agent_only.messages] == [m["id"] for m in llm_only.messages]


def test_response_model_system_as_provider_and_tool_names() -> None:
    tool_turn = {"llm__input_messages__0__message__role": "user",
                 "llm__input_messages__0__message__content": "list files",
                 "llm__input_messages__1__message__role": "assistant",
                 "llm__input_messages__1__message__tool_calls__0__tool_call__id": "call_7",
                 "llm__input_messages__1__message__tool_calls__0__tool_call__function__name": "ls",
                 "llm__input_messages__2__message__role": "tool",
                 "llm__input_messages__2__message__tool_call_id": "call_7",
                 "llm__input_messages__2__message__content": "a.txt",
                 "llm__output_messages__0__message__role": "assistant",
                 "llm__output_messages__0__message__content": "One file: a.txt"}
    llm = _oi_span("d" * 16, "LLM", 0, 100, llm__model_name="gpt-4o-mini-2024-07-18", llm__system="openai",
                   **tool_turn)
    (conversation,) = _conversations(llm)
    tool = next(m for m in conversation.messages if m["role"] == "tool")
    assert (tool["tool_call_id"], tool["tool_name"]) == ("call_7", "ls")
    (execution,) = conversation.executions
    assert (execution["model"], execution["provider"]) == ("gpt-4o-mini-2024-07-18", "openai")

    genai = dict(_oi_span("e" * 16, "LLM", 0, 100), attributes=[
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.conversation.id", "value": {"stringValue": "genai-models"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
        {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4o-2024-08-06"}},
        {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
        {"key": "gen_ai.input.messages", "value": {"stringValue": _msgs(USER)}}])
    (conversation,) = _conversations(genai)
    assert (conversation.executions[0]["model"], conversation.executions[0]["provider"]) == (
        "gpt-4o-2024-08-06", "openai")


def _post_json(rpc: RPC, *spans: dict) -> httpx.Response:
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}).encode()
    return httpx.post(f"{rpc.url}/v1/traces", content=body,
                      headers={"content-type": "application/json", TENANT_HEADER: rpc.tenant})


def _turn(n: int, conversation: str | None = "late") -> dict:
    """Trace n of a conversation: one model call, n seconds after T0."""
    attrs = [{"key": "openinference.span.kind", "value": {"stringValue": "LLM"}},
             {"key": "llm.input_messages.0.message.role", "value": {"stringValue": "user"}},
             {"key": "llm.input_messages.0.message.content", "value": {"stringValue": f"question {n}"}},
             {"key": "llm.output_messages.0.message.role", "value": {"stringValue": "assistant"}},
             {"key": "llm.output_messages.0.message.content", "value": {"stringValue": f"answer {n}"}}]
    if conversation is not None:
        attrs.append({"key": "session.id", "value": {"stringValue": conversation}})
    return {"traceId": f"{n + 7:032x}", "spanId": f"{n + 7:016x}", "name": "llm", "attributes": attrs,
            "startTimeUnixNano": str(T0 + n * 1000 * MS), "endTimeUnixNano": str(T0 + n * 1000 * MS + 500 * MS)}


def test_batches_arriving_out_of_order_are_stored_in_span_order(rpc: RPC) -> None:
    for n in (2, 3):
        assert _post_json(rpc, _turn(n)).status_code == 200
    assert _post_json(rpc, _turn(0), _turn(1)).status_code == 200  # the earliest traces come last
    assert _post_json(rpc, _turn(1)).status_code == 200  # and a retry adds nothing
    status = rpc("session.status", key="late")
    assert [i["content"] for i in status["items"]] == [
        "question 0", "answer 0", "question 1", "answer 1", "question 2", "answer 2", "question 3", "answer 3"]
    assert status["session"]["created_at"] == "2026-02-25T06:13:20.000Z"
    assert status["session"]["message_count"] == 8
    found = rpc("session.list", query="question")["sessions"]  # moved messages are still searchable
    assert [s["key"] for s in found] == ["late"]


def test_a_trace_without_conversation_id_is_stored_logged_and_counted(rpc: RPC,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sessionscope.otlp")
    before = metrics.OTLP_UNNAMED_SPANS.labels("grouped_by_trace")._value.get()
    assert _post_json(rpc, _turn(5, conversation=None)).status_code == 200
    key = f"trace:{5 + 7:032x}"
    assert [i["content"] for i in rpc("session.status", key=key)["items"]] == ["question 5", "answer 5"]
    assert metrics.OTLP_UNNAMED_SPANS.labels("grouped_by_trace")._value.get() == before + 1
    assert any("stored by trace" in r.getMessage() and key in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"\xff\xff\xff\xff", PROTO, "not an OTLP ExportTraceServiceRequest"),
        (b"{not json", "application/json", "not JSON"),
        (b"[1, 2]", "application/json", "resourceSpans"),
        (
            json.dumps(
                {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz", "spanId": "00"}]}]}]}
            ).encode(),
            "application/json",
            "traceId",
        ),
        (b"{}", "text/plain", "unsupported content type"),
        (b"\x1f\x8bnot really gzip", PROTO, "gzip"),
    ],
)
def test_garbage_raises_value_error(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_otlp(body, content_type)
