"""Codex CLI rollouts: ``~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl``.

Each line is ``{"timestamp", "type", "payload"}`` with type ``session_meta`` (id, cwd,
source, model provider), ``turn_context`` (model), ``response_item`` (``message``,
``function_call``, ``function_call_output``, ``custom_tool_call``/``_output``,
``reasoning``...), ``event_msg`` (``token_count`` with ``info.last_token_usage``; the
other events repeat response items for the UI) and ``compacted`` (summary ``message``).

Mapping:
- one session per rollout file, key ``codex:<session id>``, channel from
  ``session_meta.source`` (cli, vscode, exec), agent ``codex``;
- an assistant message and the function calls that follow it merge into one assistant
  message with ``tool_calls``; a call output becomes a tool message;
- ``developer`` messages are system instructions (role ``system``);
- each ``token_count`` with new usage becomes an execution. OpenAI counts cached input
  inside ``input_tokens``; here ``input_tokens`` is the uncached part and
  ``cache_read_tokens`` the cached one, as for the other providers;
- ``compacted`` becomes a compaction of everything before it.
Older rollouts without the ``payload`` wrapper (bare response items) are read too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import base
from .base import ExecutionSpool, RecentMap, Record, Skipped

SOURCE = "codex"
ROLES = {"user": "user", "assistant": "assistant", "developer": "system", "system": "system"}
# Response items that are private reasoning or server-side actions, not conversation.
IGNORED_ITEMS = frozenset({"reasoning", "web_search_call", "ghost_snapshot", "compaction_summary", "other"})
CALL_ITEMS = frozenset({"function_call", "custom_tool_call", "local_shell_call"})
OUTPUT_ITEMS = frozenset({"function_call_output", "custom_tool_call_output"})
ITEM_TYPES = frozenset({"message"}) | IGNORED_ITEMS | CALL_ITEMS | OUTPUT_ITEMS


@dataclass
class _Rollout:
    sid: str
    key: str
    channel: str = "cli"
    label: str | None = None
    created_at: str | None = None
    header_sent: bool = False
    model: str | None = None
    provider: str | None = "openai"
    line: int = 0  # current line: rollouts are append-only, so line numbers are stable ids
    count: int = 0
    context_start: int = 0
    last_input: int | None = None  # prompt size of the latest turn, for tokens_before
    last_total: Any = None  # cumulative usage already turned into an execution
    assistant: Record | None = None  # message waiting for the calls that follow it
    tool_names: RecentMap = field(default_factory=RecentMap)
    spool: ExecutionSpool = field(default_factory=ExecutionSpool)


def iter_codex(path: str | os.PathLike[str]) -> Iterator[Record | Skipped]:
    """Records of every rollout under ``path`` (``~/.codex``, its sessions dir, or one file)."""
    for rollout in find_rollouts(Path(path)):
        yield from _iter_file(rollout)


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


def _iter_file(path: Path) -> Iterator[Record | Skipped]:
    name = str(path)
    state = _Rollout(sid=_session_id_from_name(path), key=f"{SOURCE}:{_session_id_from_name(path)}")
    for entry in base.iter_json_lines(path):
        if isinstance(entry, Skipped):
            yield entry
            continue
        line_no, obj = entry
        state.line = line_no
        kind, payload = _unwrap(obj)
        if payload is None:
            yield Skipped(name, line_no, f"{kind or 'entry'} without an object payload")
            continue
        timestamp = base.normalize_timestamp(obj.get("timestamp") or payload.get("timestamp"))
        if kind == "session_meta":
            _meta(payload, timestamp, state)
            continue
        if kind == "turn_context":
            state.model = payload.get("model") or state.model
            continue
        if kind == "response_item":
            result = _item(payload, timestamp, state)
        elif kind == "event_msg":
            result = _event(payload, timestamp, state)
        elif kind == "compacted":
            result = _compacted(payload, timestamp, state)
        else:
            result = f"unknown entry type {kind!r}"
        if isinstance(result, str):
            yield Skipped(name, line_no, result)
        else:
            yield from result
    yield from _flush(state)
    yield from _header(state)
    yield from state.spool.drain()


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


def _flush(state: _Rollout) -> Iterator[Record]:
    if state.assistant is not None:
        pending, state.assistant = state.assistant, None
        yield from _header(state)
        state.count += 1
        yield pending


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts = []
    for part in content:
        if isinstance(part, dict):
            if isinstance(part.get("text"), str):  # input_text, output_text
                texts.append(part["text"])
            elif part.get("type") == "input_image":
                texts.append("[image]")
    return "\n".join(texts)


def _item(payload: dict[str, Any], timestamp: str | None, state: _Rollout) -> list[Record] | str:
    kind = payload.get("type")
    if kind == "message":
        role = ROLES.get(str(payload.get("role")))
        text = _content_text(payload.get("content"))
        if role is None or text is None:
            return f"message with unknown role {payload.get('role')!r} or unreadable content"
        out = list(_flush(state))
        msg_id = base.stable_id(SOURCE, state.sid, "line", state.line)
        record = base.message(msg_id, role, text, timestamp)
        if role == "assistant":
            state.assistant = record  # hold it: function calls of the same turn join it
        else:
            out.extend(_header(state))
            state.count += 1
            out.append(record)
        return out
    if kind in CALL_ITEMS:
        return _call(payload, timestamp, state)
    if kind in OUTPUT_ITEMS:
        call_id = str(payload.get("call_id") or "")
        text, is_error = _output(payload.get("output"))
        out = list(_flush(state))
        out.extend(_header(state))
        state.count += 1
        out.append(
            base.message(
                base.stable_id(SOURCE, state.sid, "line", state.line),
                "tool",
                text,
                timestamp,
                tool_call_id=call_id or None,
                tool_name=state.tool_names.get(call_id),
                is_error=is_error,
            )
        )
        return out
    if kind in IGNORED_ITEMS:
        return []
    return f"unknown response item {kind!r}"


def _call(payload: dict[str, Any], timestamp: str | None, state: _Rollout) -> list[Record]:
    call_id = str(payload.get("call_id") or payload.get("id") or "")
    if payload.get("type") == "local_shell_call":
        name, arguments = "local_shell", base.arguments_text(payload.get("action"))
    else:
        name = str(payload.get("name") or "")
        arguments = base.arguments_text(payload.get("arguments", payload.get("input")))
    state.tool_names.put(call_id, name)
    if state.assistant is None:
        msg_id = base.stable_id(SOURCE, state.sid, "line", state.line)
        state.assistant = base.message(msg_id, "assistant", "", timestamp)
    calls = state.assistant["tool_calls"] or []
    calls.append({"id": call_id, "name": name, "arguments": arguments})
    state.assistant["tool_calls"] = calls
    return []


def _output(output: Any) -> tuple[str, bool]:
    """Text and error flag of a call output (a string, or ``{content, success}``)."""
    if isinstance(output, str):
        return output, False
    if isinstance(output, dict):
        text = output.get("content")
        return (text if isinstance(text, str) else base.arguments_text(output)), output.get(
            "success"
        ) is False
    if isinstance(output, list):
        return _content_text(output) or "", False
    return "", False


def _event(payload: dict[str, Any], timestamp: str | None, state: _Rollout) -> list[Record] | str:
    if payload.get("type") != "token_count":
        return []  # user_message, agent_message, ...: UI echoes of response items
    info = payload.get("info")
    if info is None:
        return []  # rate-limit-only heartbeat
    if not isinstance(info, dict) or not isinstance(info.get("last_token_usage"), dict):
        return "token_count without last_token_usage"
    total = info.get("total_token_usage")
    if total is not None and total == state.last_total:
        return []  # Codex repeats the same count; the turn is already recorded
    state.last_total = total
    last = info["last_token_usage"]
    cached = base.as_int(last.get("cached_input_tokens"))
    prompt = base.as_int(last.get("input_tokens"))
    state.last_input = prompt
    state.spool.add(
        base.execution(
            base.stable_id(SOURCE, "exec", state.sid, state.line),
            timestamp,
            model=state.model,
            provider=state.provider,
            usage_=base.usage(max(0, prompt - cached), last.get("output_tokens"), cached, 0),
        )
    )
    return []


def _compacted(payload: dict[str, Any], timestamp: str | None, state: _Rollout) -> list[Record] | str:
    summary = payload.get("message")
    if not isinstance(summary, str):
        return "compacted entry without a summary message"
    out = list(_flush(state))
    out.extend(_header(state))
    compacted = state.count - state.context_start
    state.context_start = state.count
    out.append(
        base.compaction(
            base.stable_id(SOURCE, "compaction", state.sid, state.line),
            timestamp,
            summary,
            messages_compacted=compacted,
            tokens_before=state.last_input,
            summarizer=SOURCE,
        )
    )
    return out
