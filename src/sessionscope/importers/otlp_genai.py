"""Map GenAI (OpenTelemetry semantic conventions) and OpenInference spans to conversations.

- A span belongs to the session named by ``gen_ai.conversation.id`` or ``session.id`` on
  itself or its nearest ancestor in the request. A trace with neither, but with GenAI spans,
  becomes the session ``trace:<trace id>`` (``by_trace``; the receiver logs and counts it);
  spans of traces with no GenAI span at all are ignored and counted.
- Agent: ``gen_ai.agent.name``, else the resource ``service.name``. Channel: resource
  ``sessionscope.channel`` or ``channel``, else ``otel``.
- Messages come from ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (JSON) or the
  flattened OpenInference ``llm.input_messages.N.message.*``. A span with neither but with
  ``input.value`` / ``output.value`` (OpenInference AGENT and CHAIN spans) gives a user and an
  assistant message, unless its trace holds model calls with messages (they are the same turn)
  or an enclosing span gives them already (nested chains repeat their parent's text).
- Model calls resend the whole history, so a message's id comes from the conversation and
  the message itself: a tool result by its call id, an assistant turn with tool calls by its
  first call id, anything else by its role, a digest of its text and how often the same text
  came earlier in that span. Resending a request, the history inside the next call, or an
  agent span's copy of its model calls' turns repeats ids the store already holds.
- An ``execute_tool`` span becomes an assistant tool call (unless a model output already
  carried that call) and a tool result. Tool messages carry the tool's name, taken from the
  call when the result lacks it.
- Executions: each agent span, whose direct child spans are its ``layers`` (``start_ms`` from
  the execution start), and each model call outside an agent span. Model: the response model
  first (``gen_ai.response.model``, OpenInference's ``llm.model_name``), then the request
  model. Provider: ``gen_ai.provider.name``, ``gen_ai.system``, ``llm.provider``,
  ``llm.system``. Usage comes from ``gen_ai.usage.*`` (or ``llm.token_count.*``); GenAI counts
  cached input inside ``input_tokens``, which here is the uncached part, as in the importers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from . import base
from .otlp import Record, Span

SOURCE = "otlp"
AGENT_OPS = frozenset({"invoke_agent"})
MODEL_OPS = frozenset({"chat", "text_completion", "generate_content"})
TOOL_OP = "execute_tool"
ROLES = {"user": "user", "assistant": "assistant", "system": "system", "tool": "tool", "developer": "system",
         "human": "user", "ai": "assistant", "model": "assistant", "function": "tool"}
OI_KINDS = {"AGENT": "invoke_agent", "LLM": "chat", "TOOL": TOOL_OP}
MAX_DEPTH = 256  # ancestor walks stop here: a malformed parent cycle must not hang
Key = tuple[str, str]


@dataclass
class Conversation:
    """One session's part of a request: its header fields, messages in time order, executions."""

    key: str
    agent: str
    channel: str
    created_at: str | None
    messages: list[Record] = field(default_factory=list)
    executions: list[Record] = field(default_factory=list)
    spans: int = 0
    by_trace: bool = False

    def records(self) -> list[Record]:
        header = base.session_header(self.key, self.agent, self.channel, None, self.created_at)
        return [header, *self.messages, *self.executions]


@dataclass
class Mapped:
    conversations: list[Conversation]
    ignored_spans: int  # in traces with no conversation id and no GenAI span


def spans_to_records(spans: list[Span]) -> list[Record]:
    """The record stream (docs/item-model.md) of every conversation in `spans`."""
    return [r for c in spans_to_conversations(spans).conversations for r in c.records()]


def _operation(span: Span) -> str:
    attrs = span.attributes
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str):
        return op
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str):
        return OI_KINDS.get(kind.upper(), kind.lower())
    return span.name.split(" ", 1)[0]


def _is_genai(span: Span, op: str) -> bool:
    return op in AGENT_OPS or op in MODEL_OPS or op == TOOL_OP or "openinference.span.kind" in span.attributes \
        or any(k.startswith("gen_ai.") for k in span.attributes)


def _own_conversation(span: Span) -> str | None:
    for key in ("gen_ai.conversation.id", "session.id"):
        value = span.attributes.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


class _Index:
    """The request's spans by id, with each span's operation and conversation computed once."""

    def __init__(self, spans: list[Span]) -> None:
        self.by_id: dict[Key, Span] = {(s.trace_id, s.span_id): s for s in spans}
        self.children: dict[Key, list[Span]] = defaultdict(list)
        for span in spans:
            if span.parent_id:
                self.children[(span.trace_id, span.parent_id)].append(span)
        self.ops = {(s.trace_id, s.span_id): _operation(s) for s in spans}
        self._conversations: dict[Key, str | None] = {}
        self._usages: dict[Key, dict[str, int] | None] = {}

    def op(self, span: Span) -> str:
        return self.ops[(span.trace_id, span.span_id)]

    def usage(self, span: Span) -> dict[str, int] | None:
        """The span's own usage (read only: a span is a model call and a layer of its agent run)."""
        key = (span.trace_id, span.span_id)
        if key not in self._usages:
            self._usages[key] = _usage(span.attributes)
        return self._usages[key]

    def parent(self, span: Span) -> Span | None:
        return self.by_id.get((span.trace_id, span.parent_id)) if span.parent_id else None

    def conversation(self, span: Span) -> str | None:
        chain: list[Key] = []
        current: Span | None = span
        found: str | None = None
        while current is not None and len(chain) < MAX_DEPTH:
            key = (current.trace_id, current.span_id)
            if key in self._conversations:
                found = self._conversations[key]
                break
            chain.append(key)
            found = _own_conversation(current)
            if found is not None:
                break
            current = self.parent(current)
        for key in chain:
            self._conversations[key] = found
        return found

    def ancestors(self, span: Span) -> list[Span]:
        out: list[Span] = []
        current = self.parent(span)
        while current is not None and len(out) < MAX_DEPTH:
            out.append(current)
            current = self.parent(current)
        return out

    def descendants(self, span: Span) -> list[Span]:
        found: list[Span] = []
        stack = list(self.children.get((span.trace_id, span.span_id), []))
        while stack and len(found) < 10_000:
            current = stack.pop()
            found.append(current)
            stack.extend(self.children.get((current.trace_id, current.span_id), []))
        return found


def spans_to_conversations(spans: list[Span]) -> Mapped:
    index = _Index(spans)
    groups: dict[str, list[Span]] = defaultdict(list)
    untraced: dict[str, list[Span]] = defaultdict(list)
    for span in sorted(spans, key=lambda s: (s.start_ns, s.end_ns)):
        conv = index.conversation(span)
        if conv is not None:
            groups[conv].append(span)
        else:
            untraced[span.trace_id].append(span)
    ignored = 0
    by_trace: set[str] = set()
    for trace_id, members in untraced.items():
        if any(_is_genai(s, index.op(s)) for s in members):
            key = f"trace:{trace_id}"
            groups[key].extend(members)
            by_trace.add(key)
        else:
            ignored += len(members)
    conversations = [_conversation(conv, members, index) for conv, members in groups.items()]
    for conversation in conversations:
        conversation.by_trace = conversation.key in by_trace
    return Mapped(conversations, ignored)


def _conversation(conv: str, members: list[Span], index: _Index) -> Conversation:
    agent_span = next((s for s in members if index.op(s) in AGENT_OPS), members[0])
    agent = _attr([agent_span, *members], ("gen_ai.agent.name",))
    resource = agent_span.resource
    out = Conversation(
        conv,
        agent or str(resource.get("service.name") or SOURCE),
        str(resource.get("sessionscope.channel") or resource.get("channel") or "otel"),
        _iso(min(s.start_ns for s in members)),
        spans=len(members),
    )
    extracted = {(s.trace_id, s.span_id): _messages(s, index.op(s)) for s in members}
    # Traces whose model calls carry messages: agent and chain spans there only repeat them.
    modelled = {s.trace_id for s in members
                if index.op(s) in MODEL_OPS and any(extracted[(s.trace_id, s.span_id)][:2])}
    events: list[tuple[int, int, Record]] = []  # (time ns, order, message)
    for order, span in enumerate(members):
        op = index.op(span)
        inputs, outputs, from_values = extracted[(span.trace_id, span.span_id)]
        if op == TOOL_OP:
            events.extend((t, order, m) for t, m in _tool_messages(conv, span))
        elif not _repeats(span, op, from_values, modelled, index, extracted):
            events.extend(_span_events(conv, span, order, inputs, outputs))
        if op in AGENT_OPS:
            out.executions.append(_execution(span, index, extracted, agent=True))
        elif op in MODEL_OPS and not any(index.op(a) in AGENT_OPS for a in index.ancestors(span)):
            out.executions.append(_execution(span, index, extracted, agent=False))
    out.messages = _dedupe(sorted(events, key=lambda e: (e[0], e[1])))
    return out


def _repeats(span: Span, op: str, from_values: bool, modelled: set[str], index: _Index,
             extracted: dict[Key, tuple[list[Message], list[Message], bool]]) -> bool:
    """An agent or chain span whose turn its trace's model calls, or an enclosing span, give."""
    if (op in AGENT_OPS or from_values) and span.trace_id in modelled:
        return True
    return from_values and any(extracted.get((a.trace_id, a.span_id), ((), (), False))[2]
                               for a in index.ancestors(span))


def _dedupe(events: list[tuple[int, int, Record]]) -> list[Record]:
    """Each message once; a tool span's call once its model output holds it; tool names filled in."""
    kept: list[Record] = []
    seen_ids: set[str] = set()
    names: dict[str, str] = {}
    for _, _, message in events:
        calls = message["tool_calls"] or []
        from_tool_span = message.pop("_from_tool_span", False)
        if from_tool_span and calls and calls[0]["id"] in names:
            continue
        if message["id"] in seen_ids:
            continue
        seen_ids.add(message["id"])
        names.update((c["id"], c["name"]) for c in calls if c["id"])
        kept.append(message)
    for message in kept:
        if message["role"] == "tool" and not message["tool_name"] and message["tool_call_id"] in names:
            message["tool_name"] = names[message["tool_call_id"]] or None
    return kept


def _first_str(values: Any) -> str | None:
    for value in values:
        if isinstance(value, str) and value:
            return value
    return None


def _iso(ns: int) -> str | None:
    """RFC 3339 with milliseconds; by hand, as this runs for every message of a request."""
    if not ns:
        return None
    seconds, ms = divmod(ns // 1_000_000, 1000)
    return f"{_iso_second(seconds)}.{ms:03d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    """A request's spans mostly share their seconds: each second is formatted once."""
    t = time.gmtime(seconds)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


# ---------------------------------------------------------------- messages

Message = dict[str, Any]


def _messages(span: Span, op: str) -> tuple[list[Message], list[Message], bool]:
    """Input and output messages as ``{role, content, tool_calls, tool_call_id, name}``, and
    whether they came from ``input.value`` / ``output.value`` alone."""
    attrs = span.attributes
    if "gen_ai.input.messages" in attrs or "gen_ai.output.messages" in attrs:
        inputs = _genai_messages(attrs.get("gen_ai.input.messages"))
        system = _genai_parts_text(_json(attrs.get("gen_ai.system_instructions")))
        if system and not any(m["role"] == "system" for m in inputs):
            inputs.insert(0, _msg("system", system))
        return inputs, _genai_messages(attrs.get("gen_ai.output.messages")), False
    flat = _openinference_messages(attrs)
    if flat[0] or flat[1]:
        return flat[0], flat[1], False
    if op == TOOL_OP:  # its input and output are the call's, mapped by _tool_messages
        return [], [], False
    question, answer = attrs.get("input.value"), attrs.get("output.value")
    inputs = [_msg("user", question)] if isinstance(question, str) and question else []
    outputs = [_msg("assistant", answer)] if isinstance(answer, str) and answer else []
    return inputs, outputs, bool(inputs or outputs)


def _msg(role: str, content: str, calls: list[dict[str, str]] | None = None, call_id: Any = None,
         name: Any = None) -> Message:
    return {"role": role, "content": content, "tool_calls": calls or [],
            "tool_call_id": str(call_id) if call_id else None, "name": str(name) if name else None}


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value


def _genai_parts_text(parts: Any) -> str:
    if not isinstance(parts, list):
        return ""
    return "\n".join(str(p.get("content")) for p in parts if isinstance(p, dict) and p.get("type") == "text")


def _genai_messages(value: Any) -> list[Message]:
    messages: list[Message] = []
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
                calls.append({"id": str(part.get("id") or ""), "name": str(part.get("name") or ""),
                              "arguments": base.arguments_text(part.get("arguments"))})
            elif kind == "tool_call_response":
                response = part.get("response", part.get("result"))
                results.append((part.get("id"), response if isinstance(response, str)
                                else base.arguments_text(response)))
        for call_id, text in results:  # each tool result is its own tool message
            messages.append(_msg("tool", text, call_id=call_id, name=raw.get("name")))
        if texts or calls or not results:
            messages.append(_msg(str(raw.get("role") or ""), "\n".join(texts), calls))
    return messages


def _openinference_messages(attrs: dict[str, Any]) -> tuple[list[Message], list[Message]]:
    """One pass over the span's keys: ``llm.{input,output}_messages.N.message.FIELD`` and
    ``...message.tool_calls.M.tool_call.FIELD``, split with ``str.partition`` (no prefix scans)."""
    grouped: tuple[dict[int, _OIEntry], dict[int, _OIEntry]] = ({}, {})
    for key, value in attrs.items():
        if "_messages." not in key:  # most keys: a test that builds nothing
            continue
        head, _, rest = key.partition("_messages.")
        if (direction := _OI_DIRECTION.get(head)) is None:
            continue
        number, _, name = rest.partition(".message.")
        if not number.isdecimal() or not name:  # isdigit would pass "²", which int() refuses
            continue
        position = int(number)
        entry = grouped[direction].get(position)
        if entry is None:
            entry = grouped[direction][position] = ({}, {})
        if name.startswith("tool_calls."):
            call_number, _, call_field = name[11:].partition(".tool_call.")
            if call_number.isdecimal() and call_field:
                entry[1].setdefault(int(call_number), {})[call_field] = value
        else:
            entry[0][name] = value
    return _oi_messages(grouped[0]), _oi_messages(grouped[1])


_OI_DIRECTION = {"llm.input": 0, "llm.output": 1}  # what precedes "_messages." in the flat keys
_OIEntry = tuple[dict[str, Any], dict[int, dict[str, Any]]]  # a message's fields, its calls' fields


def _oi_messages(entries: dict[int, _OIEntry]) -> list[Message]:
    messages: list[Message] = []
    for position in sorted(entries):
        fields, raw_calls = entries[position]
        calls = [{"id": str(c.get("id") or ""), "name": str(c.get("function.name") or ""),
                  "arguments": base.arguments_text(c.get("function.arguments"))}
                 for _, c in sorted(raw_calls.items())] if raw_calls else []
        content = fields.get("content")
        messages.append(_msg(str(fields.get("role") or ""), content if isinstance(content, str) else "",
                             calls, fields.get("tool_call_id"), fields.get("name")))
    return messages


def _span_events(conv: str, span: Span, order: int, inputs: list[Message],
                 outputs: list[Message]) -> list[tuple[int, int, Record]]:
    """The span's messages as (time, order, record): its inputs at its start, its outputs at its end."""
    events: list[tuple[int, int, Record]] = []
    repeats: dict[tuple[str, str], int] = defaultdict(int)
    start, end = _iso(span.start_ns), _iso(span.end_ns)
    for n, msg in enumerate(inputs + outputs):
        role = _role(msg)
        calls = msg["tool_calls"]
        if role == "tool" and msg["tool_call_id"]:
            msg_id = base.stable_id(SOURCE, conv, "result", msg["tool_call_id"])
        elif calls and calls[0]["id"]:
            msg_id = base.stable_id(SOURCE, conv, "call", calls[0]["id"])
        else:
            digest = hashlib.sha256(msg["content"].encode("utf-8", "surrogatepass")).hexdigest()[:16]
            msg_id = base.stable_id(SOURCE, conv, "text", role, digest, repeats[(role, digest)])
            repeats[(role, digest)] += 1
        tool = role == "tool"
        record = _message(msg_id, role, msg["content"], start if n < len(inputs) else end, tool_calls=calls,
                          tool_call_id=msg["tool_call_id"] if tool else None, tool_name=msg["name"] if tool else None)
        events.append((span.start_ns if n < len(inputs) else span.end_ns, order, record))
    return events


def _role(msg: Message) -> str:
    return ROLES.get(msg["role"].lower(), "assistant" if msg["tool_calls"] else "user")


def _message(msg_id: str, role: str, content: str, timestamp: str | None, **fields: Any) -> Record:
    record = base.message(msg_id, role, _text(content), timestamp, **fields)
    record["tokens"] = None  # the ingest service counts o200k_base tokens
    for name in ("tool_call_id", "tool_name"):
        if record[name] is not None:
            record[name] = _text(record[name])
    return record


def _text(value: str) -> str:
    """PostgreSQL text cannot hold NUL: span text keeps its place with U+FFFD. (Keys and names
    are not changed: a NUL there is refused by the ingest rules.)"""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _tool_messages(conv: str, span: Span) -> list[tuple[int, Record]]:
    attrs = span.attributes
    name = str(attrs.get("gen_ai.tool.name") or attrs.get("tool.name") or span.name.removeprefix("execute_tool "))
    call_id = str(attrs.get("gen_ai.tool.call.id") or attrs.get("tool_call.id") or span.span_id)
    arguments = attrs.get("gen_ai.tool.call.arguments", attrs.get("tool.parameters", attrs.get("input.value")))
    result = attrs.get("gen_ai.tool.call.result", attrs.get("output.value"))
    call = _message(base.stable_id(SOURCE, conv, "call", call_id), "assistant", "", _iso(span.start_ns),
                    tool_calls=[{"id": call_id, "name": name, "arguments": base.arguments_text(arguments)}])
    call["_from_tool_span"] = True
    text = result if isinstance(result, str) else ("" if result is None else base.arguments_text(result))
    if span.error and not text:
        text = span.error
    reply = _message(base.stable_id(SOURCE, conv, "result", call_id), "tool", text, _iso(span.end_ns),
                     tool_call_id=call_id, tool_name=name, is_error=span.error is not None)
    return [(span.start_ns, call), (span.end_ns, reply)]


# ---------------------------------------------------------------- executions


def _usage(attrs: dict[str, Any]) -> dict[str, int] | None:
    prompt = attrs.get("gen_ai.usage.input_tokens", attrs.get("llm.token_count.prompt"))
    completion = attrs.get("gen_ai.usage.output_tokens", attrs.get("llm.token_count.completion"))
    if prompt is None and completion is None:
        return None
    read = _count(attrs.get("gen_ai.usage.cache_read.input_tokens",
                            attrs.get("llm.token_count.prompt_details.cache_read")))
    write = _count(attrs.get("gen_ai.usage.cache_creation.input_tokens",
                             attrs.get("llm.token_count.prompt_details.cache_write")))
    # GenAI and OpenInference count cached input inside the prompt; keep the uncached part.
    return {"input_tokens": max(0, _count(prompt) - read - write), "output_tokens": _count(completion),
            "cache_read_tokens": read, "cache_write_tokens": write}


def _count(value: Any) -> int:
    """A token count: non-negative, and within PostgreSQL's bigint."""
    if value is None:  # the usual cache counts
        return 0
    number = value if type(value) is int else base.as_int(value)
    return min(max(0, number), 2**62)


RESPONSE_MODEL = ("gen_ai.response.model", "llm.model_name")
REQUEST_MODEL = ("gen_ai.request.model",)
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")


def _attr(spans: list[Span], names: tuple[str, ...]) -> str | None:
    for span in spans:
        attrs = span.attributes
        for name in names:
            value = attrs.get(name)
            if isinstance(value, str) and value:
                return value
    return None


def _execution(span: Span, index: _Index, extracted: dict[Key, tuple[list[Message], list[Message], bool]], *,
               agent: bool) -> Record:
    """An agent run (its model calls and layers from its descendants) or a lone model call."""
    calls = [d for d in index.descendants(span) if index.op(d) in MODEL_OPS] if agent else []
    own_usage = index.usage(span)
    if own_usage is not None:
        total = dict(own_usage)
    else:  # sum the model calls inside the agent run
        total = base.usage()
        for call in calls:
            for key, value in (index.usage(call) or {}).items():
                total[key] += value
    kids = sorted(index.children.get((span.trace_id, span.span_id), []), key=lambda s: s.start_ns) \
        if agent else []
    layers = []
    for kid in kids[:256]:
        inputs, outputs, _ = extracted.get((kid.trace_id, kid.span_id)) or _messages(kid, index.op(kid))
        kid_usage = index.usage(kid) or {}
        layers.append({
            "name": kid.name[:256],
            "start_ms": max(0, (kid.start_ns - span.start_ns) // 1_000_000),
            "duration_ms": max(0, (kid.end_ns - kid.start_ns) // 1_000_000),
            "messages_in": len(inputs),
            "messages_out": len(outputs),
            "tokens_in": kid_usage.get("input_tokens", 0) + kid_usage.get("cache_read_tokens", 0),
            "tokens_out": kid_usage.get("output_tokens", 0),
            "error": kid.error,
        })
    own = [span]
    model = _attr(own, RESPONSE_MODEL) or _attr(calls, RESPONSE_MODEL) or _attr(own, REQUEST_MODEL) \
        or _attr(calls, REQUEST_MODEL)
    cost = base.as_float(span.attributes.get("gen_ai.usage.cost", span.attributes.get("llm.cost.total")))
    provider = _attr(own, PROVIDER) or _attr(calls, PROVIDER)
    return base.execution(
        base.stable_id(SOURCE, "exec", span.trace_id, span.span_id),
        _iso(span.start_ns),
        model=_text(model) if model else None,
        provider=_text(provider) if provider else None,
        usage_=total,
        cost_usd=cost if cost is None or cost >= 0 else None,
        duration_ms=max(0, (span.end_ns - span.start_ns) // 1_000_000),
        model_ms=_busy_ms(calls if agent else [span]),
        layers=layers,
    )


def _busy_ms(spans: list[Span]) -> float | None:
    """The time covered by the spans (model calls: parallel ones counted once), or None with no
    span to tell: an agent run whose model calls were not traced has no known model time."""
    if not spans:
        return None
    busy = 0
    until = 0
    for span in sorted(spans, key=lambda s: s.start_ns):
        start = max(span.start_ns, until)
        if span.end_ns > start:
            busy += span.end_ns - start
            until = span.end_ns
    return busy / 1_000_000
