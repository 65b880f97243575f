"""Codex CLI rollouts: ``~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl``.

Each line is ``{"timestamp", "type", "payload"}`` with type ``session_meta`` (id, cwd,
source, model provider), ``turn_context`` (model), ``response_item`` (``message``,
``function_call``, ``function_call_output``, ``custom_tool_call``/``_output``,
``reasoning``...), ``event_msg`` (``token_count`` with ``info.last_token_usage``; most other
events repeat response items for the UI) and ``compacted``.

Mapping:
- one session per rollout file, key ``codex:<session id>``, channel from
  ``session_meta.source`` (cli, vscode, exec), agent ``codex``;
- an assistant message and the function calls that follow it merge into one assistant
  message with ``tool_calls``; a call output becomes a tool message, its ``is_error`` from the
  exit code (0.58: ``metadata.exit_code`` in a JSON wrapper, which is unwrapped to the real
  output; 0.104 and later: ``Process exited with code N`` in the output's header);
- ``reasoning`` summaries are the ``reasoning`` of the assistant turn that follows them;
- ``developer`` messages are system instructions (role ``system``); user messages that Codex
  writes itself (``# AGENTS.md``, ``<environment_context>``...) are marked ``injected``;
- ``input_image`` parts are image attachments;
- each ``token_count`` with new usage becomes an execution. OpenAI counts cached input
  inside ``input_tokens``; here ``input_tokens`` is the uncached part and
  ``cache_read_tokens`` the cached one, as for the other providers;
- ``compacted`` becomes a compaction; when it carries ``replacement_history`` (0.104 and
  later) those items follow it as the live context, as Codex keeps them;
- ``web_search_call``, ``turn_aborted`` and other records that are not conversation are
  events; a record type this importer does not know is kept whole as an event.
Older rollouts without the ``payload`` wrapper (bare response items) are read too.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import base
from .base import ExecutionSpool, RecentMap, Record, Skipped, Tally

SOURCE = "codex"
ROLES = {"user": "user", "assistant": "assistant", "developer": "system", "system": "system"}
# Response items with no conversation in them (git snapshots for undo).
SKIPPED_ITEMS = frozenset({"ghost_snapshot", "other"})
CALL_ITEMS = frozenset({"function_call", "custom_tool_call", "local_shell_call", "tool_search_call"})
OUTPUT_ITEMS = frozenset({"function_call_output", "custom_tool_call_output", "tool_search_output"})
ITEM_TYPES = frozenset({"message", "reasoning", "web_search_call"}) | SKIPPED_ITEMS | CALL_ITEMS | OUTPUT_ITEMS
# event_msg types that repeat response items for the UI (the response item is what is kept).
ECHO_EVENTS = frozenset({"user_message", "agent_message", "agent_reasoning", "agent_reasoning_raw_content",
                         "exec_command_end", "patch_apply_end", "mcp_tool_call_end", "web_search_end",
                         "view_image_tool_call", "image_generation_end", "item_completed", "context_compacted",
                         "task_started", "task_complete", "dynamic_tool_call_request",
                         "dynamic_tool_call_response", "agent_reasoning_section_break"})
# User messages that Codex writes into the conversation itself, by their opening text.
INJECTED_PREFIXES = ("# AGENTS.md instructions", "<environment_context>", "<user_instructions>",
                     "<turn_aborted>", "<INSTRUCTIONS>", "<user_shell_command>")
_EXIT_LINE = re.compile(r"^Process exited with code (-?\d+)$", re.MULTILINE)
INJECTED_PROBE_CHARS = 80  # those openings sit at the start, after some whitespace at most
# 0.104+ outputs open with a header (chunk id, wall time, exit code) before "Output:".
HEADER_CHARS = 400


@dataclass
class _Rollout:
    sid: str
    key: str
    tally: Tally
    channel: str = "cli"
    label: str | None = None
    created_at: str | None = None
    header_sent: bool = False
    model: str | None = None
    provider: str | None = "openai"
    line: int = 0  # current line: rollouts are append-only, so line numbers are stable ids
    part: int | None = None  # index inside a compaction's replacement_history
    count: int = 0
    context_start: int = 0
    last_input: int | None = None  # prompt size of the latest turn, for tokens_before
    last_total: Any = None  # cumulative usage already turned into an execution
    assistant: Record | None = None  # message waiting for the calls that follow it
    reasoning: list[str] = field(default_factory=list)  # summaries waiting for their turn
    tool_names: RecentMap = field(default_factory=RecentMap)
    spool: ExecutionSpool = field(default_factory=ExecutionSpool)

    def item_id(self) -> str:
        if self.part is None:
            return base.stable_id(SOURCE, self.sid, "line", self.line)
        return base.stable_id(SOURCE, self.sid, "line", self.line, "kept", self.part)


def iter_codex(path: str | os.PathLike[str], tally: Tally | None = None) -> Iterator[Record | Skipped]:
    """Records of every rollout under ``path`` (``~/.codex``, its sessions dir, or one file)."""
    tally = tally if tally is not None else Tally()
    for rollout in find_rollouts(Path(path)):
        yield from _iter_file(rollout, tally)


def find_rollouts(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if (root / "sessions").is_dir():
        root = root / "sessions"
    return sorted(p for p in root.rglob("rollout-*.jsonl") if p.is_file())


def _session_id_from_name(path: Path) -> str:
    # rollout-2025-10-29T00-59-38-<uuid>.jsonl: the uuid is the last five dash groups
    parts = path.stem.split("-")
    return "-".join(parts[-5:]) if len(parts) > 6 else path.stem


def _iter_file(path: Path, tally: Tally) -> Iterator[Record | Skipped]:
    name = str(path)
    sid = _session_id_from_name(path)
    state = _Rollout(sid=sid, key=f"{SOURCE}:{sid}", tally=tally)
    for entry in base.iter_json_lines(path):
        if isinstance(entry, Skipped):
            tally.count("(unreadable line)", Tally.SKIPPED)
            yield entry
            continue
        line_no, obj = entry
        state.line = line_no
        kind, payload = _unwrap(obj)
        if payload is None:
            tally.count(str(kind or "entry"), Tally.SKIPPED)
            yield Skipped(name, line_no, f"{kind or 'entry'} without an object payload")
            continue
        timestamp = base.normalize_timestamp(obj.get("timestamp") or payload.get("timestamp"))
        source_type = _source_type(str(kind), str(payload.get("type")))  # str: keys must hash
        result: tuple[list[Record], str] | str
        if kind == "session_meta":
            _meta(payload, timestamp, state)
            result = [], Tally.MAPPED
        elif kind == "turn_context":
            state.model = payload.get("model") or state.model
            result = [], Tally.MAPPED
        elif kind == "response_item":
            result = _item(payload, timestamp, state)
        elif kind == "event_msg":
            result = _event(payload, timestamp, state)
        elif kind == "compacted":
            result = _compacted(payload, timestamp, state)
        else:
            result = _raw(str(kind), obj, timestamp, state)
        if isinstance(result, str):
            tally.count(source_type, Tally.SKIPPED)
            yield Skipped(name, line_no, result)
            continue
        records, outcome = result
        tally.count(source_type, outcome)
        yield from records
    yield from _flush(state)
    yield from _header(state)
    yield from state.spool.drain()


@functools.lru_cache(maxsize=256)
def _source_type(kind: str, item_type: str) -> str:
    """The summary's name of a record type: ``response_item:<type>``, ``event_msg:<type>`` or the type."""
    return f"{kind}:{item_type}" if kind in ("response_item", "event_msg") else str(kind)


def _unwrap(obj: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """``(type, payload)``; legacy lines are a bare meta or a bare response item."""
    kind = obj.get("type")
    if "payload" in obj:
        payload = obj["payload"]
        return kind, payload if isinstance(payload, dict) else None
    if kind is None and "id" in obj and "timestamp" in obj:
        return "session_meta", obj
    if kind in ITEM_TYPES:
        return "response_item", obj
    if obj.get("record_type") == "state":
        return "turn_context", {}
    return kind, None


def _meta(payload: dict[str, Any], timestamp: str | None, state: _Rollout) -> None:
    if isinstance(payload.get("id"), str) and not state.header_sent:
        state.sid = payload["id"]
        state.key = f"{SOURCE}:{state.sid}"
    source = payload.get("source")
    if isinstance(source, str) and source:
        state.channel = source
    state.label = payload.get("cwd") if isinstance(payload.get("cwd"), str) else state.label
    state.provider = payload.get("model_provider") or state.provider
    state.created_at = state.created_at or base.normalize_timestamp(payload.get("timestamp")) or timestamp


def _header(state: _Rollout) -> Iterator[Record]:
    if not state.header_sent:
        state.header_sent = True
        yield base.session_header(state.key, SOURCE, state.channel, state.label, state.created_at)


def _flush(state: _Rollout, timestamp: str | None = None, *, reasoning_turn: bool = True) -> Iterator[Record]:
    """Emit the held assistant turn; reasoning that no turn took becomes a turn of its own
    (unless ``reasoning_turn`` is False: an assistant message is about to take it)."""
    if state.reasoning and state.assistant is None and reasoning_turn:
        state.assistant = base.message(state.item_id() + "r", "assistant", "", timestamp, tokens=0)
        _take_reasoning(state)
    if state.assistant is not None:
        pending, state.assistant = state.assistant, None
        yield from _header(state)
        state.count += 1
        yield pending


def _take_reasoning(state: _Rollout) -> None:
    if state.reasoning and state.assistant is not None:
        state.assistant["reasoning"] = "\n\n".join(state.reasoning)
        state.reasoning = []


def _emit(state: _Rollout, record: Record) -> list[Record]:
    out = list(_flush(state, record.get("timestamp")))
    out.extend(_header(state))
    state.count += 1
    out.append(record)
    return out


def _content(content: Any) -> tuple[str, list[dict[str, Any]]] | None:
    """Text and image attachments of message content; None when it is neither text nor parts."""
    if isinstance(content, str):
        return content, []
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return None
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "input_image":
            image = base.data_url_attachment(part.get("image_url"))
            if image is not None:
                images.append(image)
            else:
                texts.append("[image]")
        elif isinstance(part.get("text"), str):  # input_text, output_text
            texts.append(part["text"])
    return "\n".join(texts), images


def _item(payload: dict[str, Any], timestamp: str | None, state: _Rollout) -> tuple[list[Record], str] | str:
    kind = payload.get("type")
    if kind == "message":
        role = ROLES.get(str(payload.get("role")))
        parsed = _content(payload.get("content"))
        if role is None or parsed is None:
            return f"message with unknown role {payload.get('role')!r} or unreadable content"
        text, images = parsed
        injected = role == "user" and text[:INJECTED_PROBE_CHARS].lstrip().startswith(INJECTED_PREFIXES)
        record = base.message(state.item_id(), role, text, timestamp, attachments=images,
                              kind=base.INJECTED if injected else None)
        if role != "assistant":
            return _emit(state, record), Tally.MAPPED
        out = list(_flush(state, timestamp, reasoning_turn=False))
        state.assistant = record  # hold it: function calls of the same turn join it
        _take_reasoning(state)
        return out, Tally.MAPPED
    if kind == "reasoning":
        # A reasoning item opens a model response: what is held belongs to the previous one.
        out = list(_flush(state, timestamp))
        parts = base.as_list(payload.get("summary")) + base.as_list(payload.get("content"))
        texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
        state.reasoning.extend(t for t in texts if t)
        return out, Tally.MAPPED
    if kind in CALL_ITEMS:
        return _call(payload, timestamp, state), Tally.MAPPED
    if kind in OUTPUT_ITEMS:
        call_id = str(payload.get("call_id") or "")
        text, is_error, images = _output(payload)
        record = base.message(state.item_id(), "tool", text, timestamp, tool_call_id=call_id or None,
                              tool_name=state.tool_names.get(call_id), is_error=is_error, attachments=images)
        return _emit(state, record), Tally.MAPPED
    if kind == "web_search_call":
        # Run by OpenAI inside the response: no output item follows, so it is an event, not a call.
        query = base.as_text(base.as_dict(payload.get("action")).get("query"))
        record = base.message(state.item_id(), "system", f"web search: {query}".rstrip(": "), timestamp,
                              tokens=0, kind=base.EVENT, tool_name="web_search")
        return _emit(state, record), Tally.MAPPED
    if kind == "agent_message":
        # A message from another agent: in the context, but not typed by the user.
        parsed = _content(payload.get("content")) or ("", [])
        record = base.message(state.item_id(), "user", parsed[0], timestamp, kind=base.INJECTED,
                              tool_name=base.as_text(payload.get("author")) or None)
        return _emit(state, record), Tally.MAPPED
    if kind == "image_generation_call":
        image = base.image_attachment("image/png", payload.get("result"))
        prompt = base.as_text(payload.get("revised_prompt"))
        record = base.message(state.item_id(), "assistant", prompt, timestamp,
                              attachments=[image] if image and image["data"] else None)
        return _emit(state, record), Tally.MAPPED
    if kind in SKIPPED_ITEMS:
        return [], Tally.SKIPPED
    return _raw(f"response_item:{kind}", payload, timestamp, state)


def _raw(source_type: str, obj: dict[str, Any], timestamp: str | None, state: _Rollout) -> tuple[list[Record], str]:
    """A record no mapper knows: kept whole as an event, in its place, and counted."""
    return _emit(state, base.raw_event(state.item_id(), source_type, obj, timestamp)), Tally.RAW


def _call(payload: dict[str, Any], timestamp: str | None, state: _Rollout) -> list[Record]:
    call_id = str(payload.get("call_id") or payload.get("id") or "")
    kind = payload.get("type")
    if kind == "local_shell_call":
        name, arguments = "local_shell", base.arguments_text(payload.get("action"))
    elif kind == "tool_search_call":
        name, arguments = "tool_search", base.arguments_text(payload.get("arguments"))
    else:
        name = str(payload.get("name") or "")
        arguments = base.arguments_text(payload.get("arguments", payload.get("input")))
    state.tool_names.put(call_id, name)
    if state.assistant is None:
        state.assistant = base.message(state.item_id(), "assistant", "", timestamp)
        _take_reasoning(state)
    calls = state.assistant["tool_calls"] or []
    calls.append({"id": call_id, "name": name, "arguments": arguments})
    state.assistant["tool_calls"] = calls
    return []


def _output(payload: dict[str, Any]) -> tuple[str, bool, list[dict[str, Any]]]:
    """Text, error flag and images of a call output."""
    if payload.get("type") == "tool_search_output":
        return base.arguments_text(payload.get("tools")), payload.get("status") not in (None, "completed"), []
    output = payload.get("output")
    if isinstance(output, str):
        text, is_error = _unwrapped(output)
        return text, is_error, []
    if isinstance(output, dict) and "content" in output:
        content = output.get("content")
        text = content if isinstance(content, str) else base.arguments_text(output)
        return text, output.get("success") is False, []
    parsed = _content(output)
    if parsed is not None:
        return parsed[0], False, parsed[1]
    return "", False, []


def _unwrapped(output: str) -> tuple[str, bool]:
    """0.58 wraps shell output as ``{"output", "metadata": {"exit_code"}}``; 0.104+ writes
    ``Process exited with code N`` in a header before ``Output:``. Other text is as it is."""
    if output.startswith('{"output"'):
        try:
            wrapper = json.loads(output)
        except ValueError:
            wrapper = None
        if isinstance(wrapper, dict) and isinstance(wrapper.get("output"), str):
            code = base.as_dict(wrapper.get("metadata")).get("exit_code")
            return wrapper["output"], isinstance(code, int) and not isinstance(code, bool) and code != 0
    head = output[:HEADER_CHARS]
    if "Process exited with code " not in head:  # the common case costs one substring test
        return output, False
    found = _EXIT_LINE.search(head.split("\nOutput:", 1)[0])
    return output, found is not None and int(found.group(1)) != 0


def _event(payload: dict[str, Any], timestamp: str | None, state: _Rollout) -> tuple[list[Record], str] | str:
    kind = payload.get("type")
    if kind == "turn_aborted":
        reason = payload.get("reason") if isinstance(payload.get("reason"), str) else "aborted"
        record = base.message(state.item_id(), "system", f"turn aborted ({reason})", timestamp, tokens=0,
                              kind=base.EVENT, stop_reason="aborted", tool_name="turn_aborted")
        return _emit(state, record), Tally.MAPPED
    if kind in ECHO_EVENTS:
        return [], Tally.SKIPPED  # user_message, agent_message, ...: UI echoes of response items
    if kind != "token_count":
        return _raw(f"event_msg:{kind}", payload, timestamp, state)
    info = payload.get("info")
    if info is None:
        return [], Tally.SKIPPED  # rate-limit-only heartbeat
    if not isinstance(info, dict) or not isinstance(info.get("last_token_usage"), dict):
        return "token_count without last_token_usage"
    total = info.get("total_token_usage")
    if total is not None and total == state.last_total:
        return [], Tally.SKIPPED  # Codex repeats the same count; the turn is already recorded
    state.last_total = total
    last = info["last_token_usage"]
    cached = base.as_int(last.get("cached_input_tokens"))
    prompt = base.as_int(last.get("input_tokens"))
    state.last_input = prompt
    usage = base.usage(max(0, prompt - cached), last.get("output_tokens"), cached, 0)
    usage["reasoning_tokens"] = base.as_int(last.get("reasoning_output_tokens"))
    state.spool.add(
        base.execution(
            base.stable_id(SOURCE, "exec", state.sid, state.line),
            timestamp,
            model=state.model,
            provider=state.provider,
            usage_=usage,
        )
    )
    return [], Tally.MAPPED


REPLACEMENT_REASON = "replacement_history"


def _compacted(payload: dict[str, Any], timestamp: str | None, state: _Rollout) -> tuple[list[Record], str] | str:
    summary = payload.get("message")
    kept = payload.get("replacement_history")
    if not isinstance(summary, str):
        return "compacted entry without a summary message"
    out = list(_flush(state, timestamp))
    out.extend(_header(state))
    compacted = state.count - state.context_start
    state.context_start = state.count
    kept = [item for item in kept if isinstance(item, dict)] if isinstance(kept, list) else None
    if kept is not None and not summary.strip():
        # The summary is inside the kept items (encrypted when Codex compacts on the server).
        summary = f"Codex replaced the conversation with {len(kept)} kept item(s)"
    record = base.compaction(
        base.stable_id(SOURCE, "compaction", state.sid, state.line),
        timestamp,
        summary,
        messages_compacted=compacted,
        tokens_before=state.last_input,
        summarizer=SOURCE,
    )
    if kept is not None:
        # The kept items are the live context now: history shows them, not the summary.
        record["reason"] = REPLACEMENT_REASON
    out.append(record)
    for index, item in enumerate(kept or ()):
        state.part = index
        result = _item(item, timestamp, state)
        if not isinstance(result, str):
            out.extend(result[0])
    state.part = None
    out.extend(_flush(state, timestamp))
    return out, Tally.MAPPED
