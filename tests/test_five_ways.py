"""One conversation, five ways in: session.append (with session.compact, session.reset and
session.record), local `import`, `import --url`, the builder entry (demo and bench) and OTLP.
The exports must agree apart from the fields a path owns (docs/ingest.md)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from sessionscope.cli.transport import connect
from sessionscope.ingest import ingest_records
from sessionscope.store import Scope, open_database
from sessionscope.store.transfer import export_lines
from tests.conftest import RPC

T0 = "2026-11-20T10:00:00.000Z"
CREATED = "2026-11-20T09:59:00.000Z"


def ts(second: int) -> str:
    return f"2026-11-20T10:00:{second:02d}.000Z"


BEFORE_COMPACTION = [
    {"id": "u1", "role": "user", "content": "Please read the config and deploy billing-api.", "timestamp": ts(1)},
    {"id": "a1", "role": "assistant", "content": "", "timestamp": ts(2),
     "tool_calls": [{"id": "c1", "name": "read_file", "arguments": '{"path": "/etc/app.yaml"}'}]},
    {"id": "t1", "role": "tool", "content": "port: 8080\nreplicas: 3", "tool_call_id": "c1",
     "tool_name": "read_file", "timestamp": ts(3)},
    {"id": "a2", "role": "assistant", "content": "", "timestamp": ts(4),
     "tool_calls": [{"id": "c2", "name": "run_shell", "arguments": {"cmd": "deploy billing-api", "dry_run": False}}]},
    {"id": "t2", "role": "tool", "content": "Error: permission denied (EACCES)", "tool_call_id": "c2",
     "tool_name": "run_shell", "is_error": True, "timestamp": ts(5)},
    {"id": "a3", "role": "assistant", "content": "The deploy failed: **permission denied**. " * 20,
     "timestamp": ts(6)},
    {"id": "u2", "role": "user", "content": "Try again with the deploy role.", "timestamp": ts(7)},
    {"id": "a4", "role": "assistant", "content": "Done: billing-api is deployed with 3 replicas.", "timestamp": ts(8)},
]
AFTER_COMPACTION = [
    {"id": "u3", "role": "user", "content": "Thanks. What did we decide about retries?", "timestamp": ts(9)},
    {"id": "a5", "role": "assistant", "content": "Decision: keep the retry limit at **5**.", "timestamp": ts(10)},
]
EXECUTIONS = [
    {"id": "e1", "started_at": ts(1), "duration_ms": 7000.0, "model": "gpt-4o", "provider": "openai",
     "usage": {"input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 100, "cache_write_tokens": 0}},
    {"id": "e2", "started_at": ts(9), "duration_ms": 1000.0, "model": "gpt-4o", "provider": "openai",
     "usage": {"input_tokens": 400, "output_tokens": 50, "cache_read_tokens": 0, "cache_write_tokens": 20}},
]
KEEP = 10  # keep_recent_tokens of the compaction: the cut falls at u2


def export_of(rpc: RPC, key: str) -> list[dict[str, Any]]:
    link = rpc("session.export", keys=[key])["url"]
    return [json.loads(line) for line in httpx.get(link).text.splitlines()]


def by_rpc(rpc: RPC, key: str) -> list[dict[str, Any]]:
    rpc.append(key, [dict(m) for m in BEFORE_COMPACTION], agent="five", channel="web", label="Five ways")
    assert rpc("session.compact", key=key, keep_recent_tokens=KEEP)["compacted"]
    rpc.append(key, [dict(m) for m in AFTER_COMPACTION], agent="five", channel="web")
    rpc("session.reset", keys=[key])
    for execution in EXECUTIONS:
        rpc("session.record", key=key, execution=execution)
    return export_of(rpc, key)


def as_records(export: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The reference export as an import's input: a new key, and messages without their token
    counts, so the importing path has to count them itself."""
    records = []
    for line in export:
        line = dict(line)
        if line["type"] == "session":
            line["key"], line["created_at"] = key, CREATED
            line.pop("tenant")
        if line["type"] == "message":
            line.pop("tokens")
        records.append(line)
    return records


def normalised(export: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop the fields a path owns: the session's key, tenant and creation time."""
    out = []
    for line in export:
        line = dict(line)
        if line["type"] == "session":
            for owned in ("key", "tenant", "created_at"):
                line.pop(owned)
        out.append(line)
    return out


def conversation_only(export: list[dict[str, Any]]) -> list[Any]:
    """What OTLP carries too: the turns (not their ids or times: those come from the spans), the
    compaction and reset placed among them, and the executions' usage and model."""
    out: list[Any] = []
    for line in export:
        kind = line["type"]
        if kind == "message":
            out.append((kind, line["seq"], line["role"], line["content"], line["tool_calls"], line["tool_call_id"],
                        line["tool_name"], line["is_error"], line["tokens"], line["compacted"]))
        elif kind == "compaction":
            out.append((kind, line["seq"], line["summary"], line["first_kept_seq"], line["messages_compacted"],
                        line["tokens_before"], line["tokens_after"]))
        elif kind in ("reset", "execution"):
            out.append((kind, line.get("seq"), line.get("usage"), line.get("model"), line.get("provider")))
    return out


def test_five_ways_store_the_same_conversation(rpc: RPC, database_url_factory: Any, dialect: str,
                                               tmp_path: Path) -> None:
    reference = by_rpc(rpc, "five/rpc")
    assert [line["type"] for line in reference].count("compaction") == 1
    assert sum(1 for line in reference if line["type"] == "reset") == 1
    assert next(line for line in reference if line.get("id") == "a2")["tool_calls"][0]["arguments"] == \
        '{"cmd":"deploy billing-api","dry_run":false}'

    # import --url: session.import on the same server
    remote = connect(None, rpc.url, None)
    stats = remote.import_records(as_records(reference, "five/remote"), rpc.tenant)
    assert (stats.sessions, stats.messages, stats.compactions, stats.resets, stats.executions) == (1, 10, 1, 1, 2)
    again = remote.import_records(as_records(reference, "five/remote"), rpc.tenant)
    assert (again.sessions, again.messages, again.compactions, again.resets, again.executions) == (0, 0, 0, 0, 0)
    assert normalised(export_of(rpc, "five/remote")) == normalised(reference)

    # local import into a store file (or database) of the same dialect, through the CLI backend
    local_url = database_url_factory(dialect, "five-local")
    local = connect(local_url, None, None, create=True)  # an import makes its store
    local.import_records(as_records(reference, "five/local"), rpc.tenant)
    path = tmp_path / "local.jsonl"
    local.export(["five/local"], rpc.tenant, str(path))
    local.close()
    assert normalised([json.loads(x) for x in path.read_text().splitlines()]) == normalised(reference)

    # the builder entry the demo and the bench use
    builder_url = database_url_factory(dialect, "five-builder")
    assert normalised(asyncio.run(build_and_export(builder_url, as_records(reference, "five/builder"),
                                                   rpc.tenant))) == normalised(reference)

    # OTLP: the turns as GenAI chat spans, compaction and reset over RPC between them
    post_spans(rpc, "five/otlp", BEFORE_COMPACTION, EXECUTIONS[0])
    assert rpc("session.compact", key="five/otlp", keep_recent_tokens=KEEP)["compacted"]
    post_spans(rpc, "five/otlp", AFTER_COMPACTION, EXECUTIONS[1])
    rpc("session.reset", keys=["five/otlp"])
    assert conversation_only(export_of(rpc, "five/otlp")) == conversation_only(reference)


async def build_and_export(url: str, records: list[dict[str, Any]], tenant: str) -> list[dict[str, Any]]:
    db = await open_database(url)
    try:
        await ingest_records(db, Scope.everything(), records, source="demo", tenant=tenant)
        lines = b"".join([chunk async for chunk in export_lines(db, Scope.everything(), ["five/builder"], tenant)])
    finally:
        await db.close()
    return [orjson.loads(line) for line in lines.splitlines()]


def _attr(key: str, value: Any) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _parts(message: dict[str, Any]) -> dict[str, Any]:
    if message["role"] == "tool":
        return {"role": "tool", "parts": [{"type": "tool_call_response", "id": message["tool_call_id"],
                                           "response": message["content"]}]}
    parts: list[dict[str, Any]] = [{"type": "text", "content": message["content"]}] if message["content"] else []
    parts += [{"type": "tool_call", "id": c["id"], "name": c["name"], "arguments": c["arguments"]}
              for c in message.get("tool_calls") or ()]
    return {"role": message["role"], "parts": parts}


def _span(key: str, span_id: str, name: str, start: int, end: int, parent: str = "", **attrs: Any) -> Span:
    span = Span(trace_id=bytes.fromhex(key.encode().hex().ljust(32, "0")[:32]),
                span_id=bytes.fromhex(span_id.encode().hex().ljust(16, "0")[:16]),
                parent_span_id=bytes.fromhex(parent.encode().hex().ljust(16, "0")[:16]) if parent else b"",
                name=name, start_time_unix_nano=start, end_time_unix_nano=end)
    span.attributes.extend(_attr(k.replace("__", "."), v) for k, v in attrs.items())
    return span


def post_spans(rpc: RPC, key: str, messages: list[dict[str, Any]], execution: dict[str, Any]) -> None:
    """One agent run (its usage) with a chat span per user or assistant turn (its output message)
    and an execute_tool span per tool result, in the conversation's order."""
    second = 1_000_000_000
    base = 1_795_000_000 * second + (100 * second if execution["id"] == "e2" else 0)
    usage = execution["usage"]
    agent_id = f"ag{execution['id']}"
    spans = [_span(key, agent_id, "invoke_agent five", base, base + (len(messages) + 1) * second, **{
        "gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": key, "gen_ai.agent.name": "five",
        "gen_ai.request.model": "gpt-4o", "gen_ai.provider.name": "openai",
        # GenAI counts cached input (read and written) inside input_tokens.
        "gen_ai.usage.input_tokens": usage["input_tokens"] + usage["cache_read_tokens"] + usage["cache_write_tokens"],
        "gen_ai.usage.output_tokens": usage["output_tokens"],
        "gen_ai.usage.cache_read.input_tokens": usage["cache_read_tokens"],
        "gen_ai.usage.cache_creation.input_tokens": usage["cache_write_tokens"],
    })]
    calls = {c["id"]: c for m in messages for c in m.get("tool_calls") or ()}
    for i, m in enumerate(messages, start=1):
        at = base + i * second
        if m["role"] == "tool":
            call = calls[m["tool_call_id"]]
            arguments = call["arguments"] if isinstance(call["arguments"], str) else json.dumps(call["arguments"])
            span = _span(key, f"t{execution['id']}{i}", f"execute_tool {m['tool_name']}", at - second // 2, at,
                         agent_id, **{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": m["tool_name"],
                                      "gen_ai.tool.call.id": m["tool_call_id"],
                                      "gen_ai.tool.call.arguments": arguments,
                                      "gen_ai.tool.call.result": m["content"]})
            if m.get("is_error"):
                span.status.code = span.status.STATUS_CODE_ERROR
                span.status.message = m["content"]
        else:
            span = _span(key, f"c{execution['id']}{i}", "chat gpt-4o", at - second // 10, at, agent_id, **{
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                "gen_ai.output.messages": json.dumps([_parts(m)])})
        spans.append(span)
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.extend(spans)
    response = httpx.post(f"{rpc.url}/v1/traces", content=request.SerializeToString(),
                          headers={"content-type": "application/x-protobuf", "x-sessionscope-tenant": rpc.tenant})
    assert response.status_code == 200, response.text
