"""OpenClaw transcripts: ``~/.openclaw/agents/<agentId>/sessions/``.

The directory holds ``sessions.json`` (a map ``sessionKey -> {sessionId, channel,
label, ...}``) and one pi v3 JSONL transcript per session id, ``<sessionId>.jsonl``.
A reset archives the live transcript as ``<sessionId>.jsonl.reset.<stamp>`` and the
session starts afresh, so one session id can own several archives plus the live file.

Mapping:
- one sessionscope session per live session id; key, channel and label from sessions.json,
  agent from the ``agents/<agentId>`` directory;
- a reset gives the key a new session id, so sessions.json no longer names the archive's id:
  an archive whose id it does not name belongs to the transcript that started next after its
  reset (by time), following such hops to a live session. Archives come first (oldest
  first), each followed by a ``reset`` item, then the live file, so the key counts its resets;
- ``<id>.jsonl.deleted.<stamp>`` transcripts (OpenClaw deleted them) are skipped and counted;
- ``thinking`` parts are the turn's ``reasoning``; ``image`` parts are attachments;
  ``stopReason`` error, aborted and length are kept as the turn's ``stop_reason``;
- ``message`` entries: user -> user, assistant -> assistant (toolCall parts become
  ``tool_calls``), toolResult -> tool; an assistant ``usage`` becomes an execution line;
- ``compaction`` -> compaction item; ``model_change`` sets the model of later executions;
- ``custom``, labels, thinking-level and session-info entries carry no conversation; an entry
  type this importer does not know is kept whole as an event.

pi sessions are trees (``id``/``parentId``); entries are imported in file order, which
is the order they were written, and abandoned branches are kept.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import base
from .base import ExecutionSpool, RecentMap, Record, Skipped, Tally

SOURCE = "openclaw"
RESET_MARK = ".jsonl.reset."
DELETED_MARK = ".jsonl.deleted."
# A new transcript's first line may come a little before the archive's stamp is taken.
RESET_SLACK_MS = 60_000
STOP_REASONS = frozenset({"error", "aborted", "length"})
# Entry types that exist in pi v3 files but carry nothing for the conversation record.
IGNORED_TYPES = frozenset(
    {"custom", "thinking_level_change", "label", "session_info", "branch_summary", "session_state"}
)
# Message roles that are in-memory views of other entries (never stored as messages).
IGNORED_ROLES = frozenset({"branchSummary", "compactionSummary"})


@dataclass
class _Session:
    """What one session's parse carries from line to line (all O(1) in file size)."""

    sid: str
    key: str
    agent: str
    channel: str
    label: str | None
    header_sent: bool = False
    created_at: str | None = None
    model: str | None = None
    provider: str | None = None
    count: int = 0  # messages emitted so far
    context_start: int = 0  # ordinal where the live context begins (after a reset/compaction)
    tally: Tally = field(default_factory=Tally)
    last_timestamp: str | None = None
    # entry id -> (ordinal, message id), for compaction cut points
    entries: RecentMap = field(default_factory=RecentMap)
    spool: ExecutionSpool = field(default_factory=ExecutionSpool)


def iter_openclaw(path: str | os.PathLike[str], tally: Tally | None = None) -> Iterator[Record | Skipped]:
    """Records of every OpenClaw session under ``path`` (a state dir, an agent's
    sessions dir, or one transcript file)."""
    tally = tally if tally is not None else Tally()
    root = Path(path)
    if root.is_file():
        yield from _iter_sessions_dir(root.parent, tally, only=_session_id_of(root.name))
        return
    for sessions_dir in find_sessions_dirs(root):
        yield from _iter_sessions_dir(sessions_dir, tally)


def find_sessions_dirs(root: Path) -> list[Path]:
    """Every ``.../sessions`` directory at or below ``root`` in the OpenClaw layout."""
    if (root / "sessions.json").is_file() or any(root.glob("*.jsonl")):
        return [root]
    found: list[Path] = []
    for pattern in ("sessions", "*/sessions", "agents/*/sessions", ".openclaw/agents/*/sessions"):
        found.extend(p for p in sorted(root.glob(pattern)) if p.is_dir())
    return found


def is_transcript_name(name: str) -> bool:
    return name.endswith(".jsonl") or RESET_MARK in name


def _session_id_of(name: str) -> str:
    return name.split(".jsonl", 1)[0]


def _reset_stamp(name: str) -> str:
    return name.split(RESET_MARK, 1)[1] if RESET_MARK in name else ""


def _stamp_order(stamp: str) -> tuple[int, float, str]:
    """Archives sort by their stamp: epoch numbers numerically, ISO-like text lexically."""
    try:
        return (0, float(stamp), stamp)
    except ValueError:
        return (1, 0.0, stamp)


def _stamp_time(stamp: str) -> str | None:
    """The reset time of an archive: epoch digits, or ISO text with ``-`` for ``:``
    in the clock part (file names cannot hold colons on every system)."""
    fixed = re.sub(r"^(\d{4}-\d\d-\d\dT\d\d)-(\d\d)-(\d\d)", r"\1:\2:\3", stamp)
    return base.normalize_timestamp(fixed)


def _first_time(path: Path) -> int | None:
    """Epoch ms of a transcript's first timestamped line (its session header as a rule)."""
    for entry in base.iter_json_lines(path):
        if not isinstance(entry, Skipped):
            found = base.epoch_ms(base.normalize_timestamp(entry[1].get("timestamp")))
            if found is not None:
                return found
    return None


def _attach_orphans(groups: dict[str, list[Path]], indexed: set[str]) -> None:
    """Move archives whose id sessions.json no longer names into the session that followed them.

    A reset archives ``<id>.jsonl`` and starts a new id for the key; the new transcript opens
    just after the reset's stamp. Each orphan id goes to the transcript opening first at or
    after its last reset (minus RESET_SLACK_MS), and chains of resets follow hop by hop."""
    starts = {sid: _first_time(min(files, key=lambda f: f.name)) for sid, files in groups.items()}
    orphans = [sid for sid, files in groups.items()
               if sid not in indexed and all(RESET_MARK in f.name for f in files)]
    successor: dict[str, str] = {}
    for sid in orphans:
        stamps = [base.epoch_ms(_stamp_time(_reset_stamp(f.name))) for f in groups[sid]]
        reset_at = max((s for s in stamps if s is not None), default=None)
        if reset_at is None:
            continue
        later = [(start, other) for other, start in starts.items()
                 if other != sid and start is not None and start >= reset_at - RESET_SLACK_MS]
        if later:
            successor[sid] = min(later)[1]
    for sid in sorted(successor, key=lambda s: starts.get(s) or 0, reverse=True):
        target, hops = successor[sid], 0
        while target in successor and hops < len(successor):
            target, hops = successor[target], hops + 1
        if target in groups and target != sid:
            groups[target] = groups.pop(sid, []) + groups[target]


def _iter_sessions_dir(directory: Path, tally: Tally, only: str | None = None) -> Iterator[Record | Skipped]:
    meta_by_id, problems = _load_index(directory)
    yield from problems
    agent = directory.parent.name if directory.name == "sessions" else SOURCE
    groups: dict[str, list[Path]] = {}
    for entry in sorted(directory.iterdir()):
        if entry.is_file() and DELETED_MARK in entry.name:
            if only is None:
                tally.count("(deleted transcript file)", Tally.SKIPPED)
            continue
        if entry.is_file() and is_transcript_name(entry.name):
            groups.setdefault(_session_id_of(entry.name), []).append(entry)
    _attach_orphans(groups, set(meta_by_id))
    for sid, files in sorted(groups.items()):
        if only is not None and sid != only and all(_session_id_of(f.name) != only for f in files):
            continue
        archives = sorted(
            (f for f in files if RESET_MARK in f.name), key=lambda f: _stamp_order(_reset_stamp(f.name))
        )
        live = [f for f in files if f.name.endswith(".jsonl")]
        key, meta = meta_by_id.get(sid, (None, {}))
        state = _Session(
            sid=sid,
            key=key or f"agent:{agent}:{sid}",
            agent=agent if agent != SOURCE else _agent_from_key(key) or SOURCE,
            channel=_channel(meta),
            label=_label(meta),
            tally=tally,
        )
        for archive in archives:
            yield from _iter_file(archive, state)
            yield from _header(state)
            stamp = _stamp_time(_reset_stamp(archive.name)) or state.last_timestamp
            yield base.reset(base.stable_id(SOURCE, "reset", sid, _reset_stamp(archive.name)), stamp)
            state.context_start = state.count
        for transcript in live:
            yield from _iter_file(transcript, state)
        yield from _header(state)
        yield from state.spool.drain()


def _load_index(directory: Path) -> tuple[dict[str, tuple[str, dict[str, Any]]], list[Skipped]]:
    """sessions.json as ``sessionId -> (sessionKey, entry)``; it is small, so it is loaded whole."""
    index = directory / "sessions.json"
    if not index.is_file():
        return {}, []
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return {}, [Skipped(str(index), 1, f"invalid sessions.json: {exc}")]
    if not isinstance(data, dict):
        return {}, [Skipped(str(index), 1, "sessions.json is not an object")]
    by_id: dict[str, tuple[str, dict[str, Any]]] = {}
    for key, entry in data.items():
        if not isinstance(entry, dict):
            continue
        for sid in (
            entry.get("sessionId"),
            _session_id_of(os.path.basename(str(entry.get("sessionFile") or ""))),
        ):
            if isinstance(sid, str) and sid and sid not in by_id:
                by_id[sid] = (key, entry)
    return by_id, []


def _agent_from_key(key: str | None) -> str | None:
    parts = (key or "").split(":")
    return parts[1] if len(parts) >= 3 and parts[0] == "agent" and parts[1] else None


def _channel(meta: dict[str, Any]) -> str:
    origin = found if isinstance(found := meta.get("origin"), dict) else {}
    for value in (
        meta.get("channel"),
        meta.get("lastChannel"),
        origin.get("provider"),
        origin.get("channel"),
    ):
        if isinstance(value, str) and value:
            return value
    return SOURCE


def _label(meta: dict[str, Any]) -> str | None:
    origin = found if isinstance(found := meta.get("origin"), dict) else {}
    for value in (meta.get("label"), meta.get("displayName"), origin.get("label"), meta.get("subject")):
        if isinstance(value, str) and value:
            return value
    return None


def _header(state: _Session) -> Iterator[Record]:
    if not state.header_sent:
        state.header_sent = True
        yield base.session_header(state.key, state.agent, state.channel, state.label, state.created_at)


def _iter_file(path: Path, state: _Session) -> Iterator[Record | Skipped]:
    name = str(path)
    tally = state.tally
    for entry in base.iter_json_lines(path):
        if isinstance(entry, Skipped):
            tally.count("(unreadable line)", Tally.SKIPPED)
            yield entry
            continue
        line_no, obj = entry
        kind = obj.get("type")
        timestamp = base.normalize_timestamp(obj.get("timestamp"))
        source_type = str(kind)
        # Session time comes from the content: the first timestamped line when the header has none.
        state.created_at = state.created_at or timestamp
        if kind in ("session", "model_change") or kind in IGNORED_TYPES:
            if kind == "model_change":
                state.model = obj.get("modelId") or state.model
                state.provider = obj.get("provider") or state.provider
            tally.count(source_type, Tally.SKIPPED if kind in IGNORED_TYPES else Tally.MAPPED)
            continue
        outcome = Tally.MAPPED
        if kind == "message":
            records = _message(obj, timestamp, state)
            role = obj["message"].get("role") if isinstance(obj.get("message"), dict) else None
            source_type = f"message:{role}"
            if role in IGNORED_ROLES or (role == "bashExecution" and records == []):
                outcome = Tally.SKIPPED
        elif kind == "custom_message":
            records = _custom_message(obj, timestamp, state)
        elif kind == "compaction":
            records = _compaction(obj, timestamp, state)
        else:
            ident = base.stable_id(SOURCE, state.sid, "raw", _entry_key(obj))
            records = [_emit(state, obj, base.raw_event(ident, source_type, obj, timestamp))]
            outcome = Tally.RAW
        if isinstance(records, str):
            tally.count(source_type, Tally.SKIPPED)
            yield Skipped(name, line_no, records)
            continue
        tally.count(source_type, outcome)
        if records:
            yield from _header(state)
            state.last_timestamp = timestamp or state.last_timestamp
            yield from records


def _entry_key(obj: dict[str, Any]) -> str:
    """The source's identity of an entry; entries without an id fall back to their content."""
    entry_id = obj.get("id")
    if isinstance(entry_id, str) and entry_id:
        return f"{entry_id}@{obj.get('timestamp')}"
    return json.dumps(obj, sort_keys=True)


def _emit(state: _Session, obj: dict[str, Any], record: Record) -> Record:
    state.count += 1
    entry_id = obj.get("id")
    if isinstance(entry_id, str):
        state.entries.put(entry_id, (state.count - 1, record["id"]))
    return record


@dataclass
class _Parts:
    text: str
    calls: list[dict[str, str]]
    thinking: str | None = None
    images: list[dict[str, Any]] = field(default_factory=list)


def _text_and_calls(content: Any) -> _Parts | None:
    """Text, tool calls, thinking and images of pi content (a string or a list of parts);
    None when malformed."""
    if isinstance(content, str):
        return _Parts(content, [])
    if not isinstance(content, list):
        return None
    texts: list[str] = []
    calls: list[dict[str, str]] = []
    thinking: list[str] = []
    images: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "thinking" and isinstance(part.get("thinking"), str):
            if part["thinking"]:
                thinking.append(part["thinking"])
        elif kind == "image":
            image = base.image_attachment(part.get("mimeType"), part.get("data"))
            if image is not None:
                images.append(image)
            else:
                texts.append(f"[image {part.get('mimeType') or ''}]".replace(" ]", "]"))
        elif kind == "toolCall":
            calls.append(
                {
                    "id": str(part.get("id") or ""),
                    "name": str(part.get("name") or ""),
                    "arguments": base.arguments_text(part.get("arguments")),
                }
            )
    return _Parts("\n".join(texts), calls, "\n\n".join(thinking) or None, images)


def _message(obj: dict[str, Any], timestamp: str | None, state: _Session) -> list[Record] | str:
    msg = obj.get("message")
    if not isinstance(msg, dict):
        return "message entry without a message object"
    role = msg.get("role")
    timestamp = timestamp or base.normalize_timestamp(msg.get("timestamp"))
    msg_id = base.stable_id(SOURCE, state.sid, _entry_key(obj))
    if role in IGNORED_ROLES:
        return []
    if role == "bashExecution":
        # A user's "!" shell command; it enters the model context unless excluded.
        if msg.get("excludeFromContext"):
            return []
        text = f"$ {msg.get('command') or ''}\n{msg.get('output') or ''}".rstrip()
        return [_emit(state, obj, base.message(msg_id, "user", text, timestamp))]
    parsed = _text_and_calls(msg.get("content"))
    if parsed is None:
        return f"message content of role {role!r} is neither text nor a list of parts"
    text, calls = parsed.text, parsed.calls
    if role in ("user", "custom"):
        kind = base.INJECTED if role == "custom" else None
        return [_emit(state, obj, base.message(msg_id, "user", text, timestamp, kind=kind,
                                               attachments=parsed.images))]
    if role == "toolResult":
        record = base.message(
            msg_id,
            "tool",
            text,
            timestamp,
            tool_call_id=str(msg.get("toolCallId") or "") or None,
            tool_name=msg.get("toolName"),
            is_error=bool(msg.get("isError")),
            attachments=parsed.images,
        )
        return [_emit(state, obj, record)]
    if role != "assistant":
        return f"unknown message role {role!r}"
    stop = msg.get("stopReason") if msg.get("stopReason") in STOP_REASONS else None
    if stop in ("error", "aborted") and not text and msg.get("errorMessage"):
        text = str(msg["errorMessage"])
    raw_usage = msg.get("usage") if isinstance(msg.get("usage"), dict) else None
    record = base.message(
        msg_id,
        "assistant",
        text,
        timestamp,
        tool_calls=calls,
        is_error=stop == "error",
        tokens=base.as_int(raw_usage.get("output")) if raw_usage else None,
        reasoning=parsed.thinking,
        stop_reason=stop,
        attachments=parsed.images,
    )
    if raw_usage is not None:
        cost = raw_usage.get("cost")
        state.spool.add(
            base.execution(
                base.stable_id(SOURCE, "exec", state.sid, _entry_key(obj)),
                timestamp,
                model=msg.get("model") or state.model,
                provider=msg.get("provider") or state.provider,
                usage_=base.usage(
                    raw_usage.get("input"),
                    raw_usage.get("output"),
                    raw_usage.get("cacheRead"),
                    raw_usage.get("cacheWrite"),
                ),
                cost_usd=base.as_float(cost.get("total") if isinstance(cost, dict) else cost),
            )
        )
    return [_emit(state, obj, record)]


def _custom_message(obj: dict[str, Any], timestamp: str | None, state: _Session) -> list[Record] | str:
    """Extension-injected text that takes part in the model context, kept as a user message."""
    parsed = _text_and_calls(obj.get("content"))
    if parsed is None:
        return "custom_message content is neither text nor a list of parts"
    msg_id = base.stable_id(SOURCE, state.sid, _entry_key(obj))
    return [_emit(state, obj, base.message(msg_id, "user", parsed.text, timestamp, kind=base.INJECTED,
                                           attachments=parsed.images))]


def _compaction(obj: dict[str, Any], timestamp: str | None, state: _Session) -> list[Record] | str:
    summary = obj.get("summary")
    if not isinstance(summary, str):
        return "compaction entry without a summary"
    kept = state.entries.get(obj.get("firstKeptEntryId"))
    # Messages between the previous cut (or reset) and the first kept one were summarized.
    first_kept_ordinal = kept[0] if kept else state.count
    compacted = max(0, first_kept_ordinal - state.context_start)
    state.context_start = first_kept_ordinal
    record = base.compaction(
        base.stable_id(SOURCE, "compaction", state.sid, _entry_key(obj)),
        timestamp,
        summary,
        messages_compacted=compacted,
        tokens_before=base.as_int(obj.get("tokensBefore")) if obj.get("tokensBefore") is not None else None,
        tokens_after=base.as_int(obj["tokensAfter"]) if obj.get("tokensAfter") is not None else None,
        first_kept_id=kept[1] if kept else None,
        summarizer=SOURCE,
    )
    return [record]
