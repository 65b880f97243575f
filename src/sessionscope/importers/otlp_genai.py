"""Map GenAI (OpenTelemetry semantic conventions) and OpenInference spans to records.

- A span belongs to the session named by ``gen_ai.conversation.id`` or ``session.id``
  on itself or its nearest ancestor in the request; spans with neither are dropped.
- Agent: ``gen_ai.agent.name``, else the resource ``service.name``. Channel: resource
  ``sessionscope.channel`` or ``channel``, else ``otel``.
- Messages come from ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (JSON) or the
  flattened OpenInference ``llm.input_messages.N.message.*``. Model calls resend the
  whole history, so message ids come from the conversation and the message itself: a
  tool result by its call id, an assistant turn with tool calls by its first call id,
  anything else by its position in the input plus a digest of its content. Re-sending a
  request, or the history inside the next call, repeats ids the store already holds.
- An ``execute_tool`` span becomes an assistant tool call (unless a model output already
  carried that call) and a tool result.
- Executions: each ``invoke_agent`` span, whose direct child spans are its ``layers``
  (``start_ms`` from the execution start), and each model call outside an agent span.
  Usage comes from ``gen_ai.usage.*`` (or ``llm.token_count.*``); GenAI counts cached
  input inside ``input_tokens``, which here is the uncached part, as in the importers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from typing import Any

from . import base
from .otlp import Record, Span

SOURCE = "otlp"
AGENT_OPS = frozenset({"invoke_agent"})
MODEL_OPS = frozenset({"chat", "text_completion", "generate_content"})
ROLES = {"user": "user", "assistant": "assistant", "system": "system", "tool": "tool", "developer": "system"}
_OI_MESSAGE = re.compile(r"^llm\.(input|output)_messages\.(\d+)\.message\.(.+)$")
_OI_CALL = re.compile(r"^tool_calls\.(\d+)\.tool_call\.(.+)$")


def _operation(span: Span) -> str:
    op = span.attributes.get("gen_ai.operation.name")
    if isinstance(op, str):
        return op
    kind = str(span.attributes.get("openinference.span.kind") or "").upper()
    if kind == "AGENT":
        return "invoke_agent"
    if kind == "LLM":
        return "chat"
    if kind == "TOOL":
        return "execute_tool"
    return span.name.split(" ", 1)[0]


def _conversation(span: Span) -> str | None:
    for key in ("gen_ai.conversation.id", "session.id"):
        value = span.attributes.get(key)
        if isinstance(value, str | int) and str(value):
            return str(value)
    return None


def spans_to_records(spans: list[Span]) -> list[Record]:
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    children: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for span in spans:
        if span.parent_id:
            children[(span.trace_id, span.parent_id)].append(span)
    sessions: dict[str, list[Span]] = defaultdict(list)
    for span in sorted(spans, key=lambda s: (s.start_ns, s.end_ns)):
        conv = _find_conversation(span, by_id)
        if conv is not None:
            sessions[conv].append(span)
    out: list[Record] = []
    for conv, members in sessions.items():
        out.extend(_session(conv, members, by_id, children))
    return out


def _find_conversation(span: Span, by_id: dict[tuple[str, str], Span]) -> str | None:
    seen = 0
    current: Span | None = span
    while current is not None and seen < 256:  # a malformed parent cycle must not hang
        conv = _conversation(current)
        if conv is not None:
            return conv
        current = by_id.get((current.trace_id, current.parent_id)) if current.parent_id else None
        seen += 1
    return None


def _under_agent(span: Span, by_id: dict[tuple[str, str], Span]) -> Span | None:
    current = by_id.get((span.trace_id, span.parent_id)) if span.parent_id else None
    for _ in range(256):
        if current is None:
            return None
        if _operation(current) in AGENT_OPS:
            return current
        current = by_id.get((current.trace_id, current.parent_id)) if current.parent_id else None
    return None


def _session(
    conv: str,
    members: list[Span],
    by_id: dict[tuple[str, str], Span],
    children: dict[tuple[str, str], list[Span]],
) -> list[Record]:
    agent_span = next((s for s in members if _operation(s) in AGENT_OPS), members[0])
    agent = _first_str(s.attributes.get("gen_ai.agent.name") for s in [agent_span, *members])
    resource = agent_span.resource
    header = base.session_header(
        conv,
        agent or str(resource.get("service.name") or SOURCE),
        str(resource.get("sessionscope.channel") or resource.get("channel") or "otel"),
        None,
        _iso(min(s.start_ns for s in members)),
    )
    member_ids = {(s.trace_id, s.span_id) for s in members}
    events: list[tuple[int, int, Record]] = []  # (time ns, order, message)
    executions: list[Record] = []
    for order, span in enumerate(members):
        op = _operation(span)
        # An agent span's messages repeat those of its model calls; prefer the calls.
        if op in AGENT_OPS and any(
            _operation(c) in MODEL_OPS and (c.trace_id, c.span_id) in member_ids
            for c in _descendants(span, children)
        ):
            pass
        elif op == "execute_tool":
            events.extend((t, order, m) for t, m in _tool_messages(conv, span))
        else:
            inputs, outputs = _messages(span)
            events.extend(
                (span.start_ns, order, _record(conv, i, m, span.start_ns)) for i, m in enumerate(inputs)
            )
            events.extend(
                (span.end_ns, order, _record(conv, len(inputs) + j, m, span.end_ns))
                for j, m in enumerate(outputs)
            )
        if op in AGENT_OPS:
            executions.append(_execution(span, children))
        elif op in MODEL_OPS and _under_agent(span, by_id) is None:
            executions.append(_execution(span, {}))
    records = [header]
    seen_ids: set[str] = set()
    seen_calls: set[str] = set()
    for _, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        calls = message["tool_calls"] or []
        if message.get("_from_tool_span") and calls and calls[0]["id"] in seen_calls:
            continue  # the model output already recorded this call
        message.pop("_from_tool_span", None)
        if message["id"] in seen_ids:
            continue
        seen_ids.add(message["id"])
        seen_calls.update(c["id"] for c in calls)
        records.append(message)
    records.extend(executions)
    return records


def _descendants(span: Span, children: dict[tuple[str, str], list[Span]]) -> list[Span]:
    found: list[Span] = []
    stack = list(children.get((span.trace_id, span.span_id), []))
    while stack and len(found) < 10_000:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get((current.trace_id, current.span_id), []))
    return found


def _first_str(values: Any) -> str | None:
    return next((v for v in values if isinstance(v, str) and v), None)


def _iso(ns: int) -> str | None:
    return base.normalize_timestamp(ns) if ns else None


# ---------------------------------------------------------------- messages


def _messages(span: Span) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Input and output messages as ``{role, content, tool_calls, tool_call_id}``."""
    attrs = span.attributes
    if "gen_ai.input.messages" in attrs or "gen_ai.output.messages" in attrs:
        inputs = _genai_messages(attrs.get("gen_ai.input.messages"))
        system = _genai_parts_text(_json(attrs.get("gen_ai.system_instructions")))
        if system and not any(m["role"] == "system" for m in inputs):
            inputs.insert(0, {"role": "system", "content": system, "tool_calls": [], "tool_call_id": None})
        return inputs, _genai_messages(attrs.get("gen_ai.output.messages"))
    return _openinference_messages(attrs, "input"), _openinference_messages(attrs, "output")


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _genai_parts_text(parts: Any) -> str:
    if not isinstance(parts, list):
        return ""
    return "\n".join(str(p.get("content")) for p in parts if isinstance(p, dict) and p.get("type") == "text")


def _genai_messages(value: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    data = _json(value)
    for raw in data if isinstance(data, list) else []:
        if not isinstance(raw, dict):
            continue
        parts = found if isinstance(found := raw.get("parts"), list) else []
        calls, texts, results = [], [], []
        for part in parts:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text":
                texts.append(str(part.get("content") or ""))
            elif kind == "tool_call":
                calls.append(
                    {
                        "id": str(part.get("id") or ""),
                        "name": str(part.get("name") or ""),
                        "arguments": base.arguments_text(part.get("arguments")),
                    }
                )
            elif kind == "tool_call_response":
                response = part.get("response", part.get("result"))
                results.append(
                    (
                        str(part.get("id") or ""),
                        response if isinstance(response, str) else base.arguments_text(response),
                    )
                )
        role = str(raw.get("role") or "")
        for call_id, text in results:  # each tool result is its own tool message
            messages.append(
                {"role": "tool", "content": text, "tool_calls": [], "tool_call_id": call_id or None}
            )
        if texts or calls or not results:
            messages.append(
                {"role": role, "content": "\n".join(texts), "tool_calls": calls, "tool_call_id": None}
            )
    return messages


def _openinference_messages(attrs: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    grouped: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        match = _OI_MESSAGE.match(key)
        if match is None or match.group(1) != direction:
            continue
        entry = grouped.setdefault(int(match.group(2)), {"calls": {}})
        field, call = match.group(3), _OI_CALL.match(match.group(3))
        if call is not None:
            entry["calls"].setdefault(int(call.group(1)), {})[call.group(2)] = value
        else:
            entry[field] = value
    messages = []
    for index in sorted(grouped):
        entry = grouped[index]
        calls = [
            {
                "id": str(c.get("id") or ""),
                "name": str(c.get("function.name") or ""),
                "arguments": base.arguments_text(c.get("function.arguments")),
            }
            for _, c in sorted(entry["calls"].items())
        ]
        messages.append(
            {
                "role": str(entry.get("role") or ""),
                "content": str(entry.get("content") or ""),
                "tool_calls": calls,
                "tool_call_id": entry.get("tool_call_id"),
            }
        )
    return messages


def _record(conv: str, position: int, msg: dict[str, Any], ns: int) -> Record:
    role = ROLES.get(msg["role"].lower(), "assistant" if msg["tool_calls"] else "user")
    calls = msg["tool_calls"]
    if role == "tool" and msg["tool_call_id"]:
        msg_id = base.stable_id(SOURCE, conv, "result", msg["tool_call_id"])
    elif calls and calls[0]["id"]:
        msg_id = base.stable_id(SOURCE, conv, "call", calls[0]["id"])
    else:
        digest = hashlib.sha256(msg["content"].encode()).hexdigest()[:16]
        msg_id = base.stable_id(SOURCE, conv, "pos", position, role, digest)
    return base.message(
        msg_id,
        role,
        msg["content"],
        _iso(ns),
        tool_calls=calls,
        tool_call_id=msg["tool_call_id"] if role == "tool" else None,
    )


def _tool_messages(conv: str, span: Span) -> list[tuple[int, Record]]:
    attrs = span.attributes
    name = str(
        attrs.get("gen_ai.tool.name") or attrs.get("tool.name") or span.name.removeprefix("execute_tool ")
    )
    call_id = str(attrs.get("gen_ai.tool.call.id") or attrs.get("tool_call.id") or span.span_id)
    arguments = attrs.get(
        "gen_ai.tool.call.arguments", attrs.get("tool.parameters", attrs.get("input.value"))
    )
    result = attrs.get("gen_ai.tool.call.result", attrs.get("output.value"))
    call = base.message(
        base.stable_id(SOURCE, conv, "call", call_id),
        "assistant",
        "",
        _iso(span.start_ns),
        tool_calls=[{"id": call_id, "name": name, "arguments": base.arguments_text(arguments)}],
    )
    call["_from_tool_span"] = True
    text = result if isinstance(result, str) else ("" if result is None else base.arguments_text(result))
    if span.error and not text:
        text = span.error
    reply = base.message(
        base.stable_id(SOURCE, conv, "result", call_id),
        "tool",
        text,
        _iso(span.end_ns),
        tool_call_id=call_id,
        tool_name=name,
        is_error=span.error is not None,
    )
    return [(span.start_ns, call), (span.end_ns, reply)]


# ---------------------------------------------------------------- executions


def _usage(attrs: dict[str, Any]) -> dict[str, int] | None:
    prompt = attrs.get("gen_ai.usage.input_tokens", attrs.get("llm.token_count.prompt"))
    completion = attrs.get("gen_ai.usage.output_tokens", attrs.get("llm.token_count.completion"))
    if prompt is None and completion is None:
        return None
    read = base.as_int(
        attrs.get(
            "gen_ai.usage.cache_read.input_tokens", attrs.get("llm.token_count.prompt_details.cache_read")
        )
    )
    write = base.as_int(
        attrs.get(
            "gen_ai.usage.cache_creation.input_tokens",
            attrs.get("llm.token_count.prompt_details.cache_write"),
        )
    )
    # GenAI and OpenInference count cached input inside the prompt; keep the uncached part.
    return base.usage(max(0, base.as_int(prompt) - read - write), completion, read, write)


def _model(span: Span) -> str | None:
    return _first_str(
        span.attributes.get(k) for k in ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
    )


def _provider(span: Span) -> str | None:
    return _first_str(
        span.attributes.get(k) for k in ("gen_ai.provider.name", "gen_ai.system", "llm.provider")
    )


def _execution(span: Span, children: dict[tuple[str, str], list[Span]]) -> Record:
    kids = sorted(children.get((span.trace_id, span.span_id), []), key=lambda s: s.start_ns)
    descendants = _descendants(span, children) if children else []
    calls = [d for d in descendants if _operation(d) in MODEL_OPS]
    total = _usage(span.attributes)
    if total is None:  # sum the model calls inside the agent run
        total = base.usage()
        for call in calls:
            for key, value in (_usage(call.attributes) or {}).items():
                total[key] += value
    layers = []
    for kid in kids:
        inputs, outputs = _messages(kid)
        kid_usage = _usage(kid.attributes) or {}
        layers.append(
            {
                "name": kid.name,
                "start_ms": max(0, (kid.start_ns - span.start_ns) // 1_000_000),
                "duration_ms": max(0, (kid.end_ns - kid.start_ns) // 1_000_000),
                "messages_in": len(inputs),
                "messages_out": len(outputs),
                "tokens_in": kid_usage.get("input_tokens", 0) + kid_usage.get("cache_read_tokens", 0),
                "tokens_out": kid_usage.get("output_tokens", 0),
                "error": kid.error,
            }
        )
    return base.execution(
        base.stable_id(SOURCE, "exec", span.trace_id, span.span_id),
        _iso(span.start_ns),
        model=_model(span) or _first_str(_model(c) for c in calls),
        provider=_provider(span) or _first_str(_provider(c) for c in calls),
        usage_=total,
        cost_usd=base.as_float(
            span.attributes.get("gen_ai.usage.cost", span.attributes.get("llm.cost.total"))
        ),
        duration_ms=max(0, (span.end_ns - span.start_ns) // 1_000_000),
        layers=layers,
    )
