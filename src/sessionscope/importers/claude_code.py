"""Claude Code transcripts: ``~/.claude/projects/<project>/<sessionId>.jsonl``.

Each line is an entry: ``user`` and ``assistant`` carry an Anthropic-style ``message``
(content parts ``text``, ``tool_use``, ``tool_result``, ``thinking``; ``usage`` with
``cache_read_input_tokens``/``cache_creation_input_tokens``), ``system`` entries with
subtype ``compact_boundary`` mark a compaction whose summary follows as a user entry
flagged ``isCompactSummary``, and ``summary`` entries hold a summary with its ``leafUuid``.

Mapping:
- main-chain entries form the session ``claude-code:<sessionId>`` (channel ``cli``);
- sidechain entries (``isSidechain``: a sub-agent's own conversation, in the same file
  or in ``agent-<id>.jsonl``) form one session per sub-agent,
  ``claude-code:<sessionId>:sub-agent:<agentId>``, channel ``sub-agent``;
- Claude Code writes one line per content block of a streamed reply, all with the same
  ``message.id``; consecutive lines of one reply merge into one assistant message and
  one execution (the last line's usage is the final one);
- a user entry's ``tool_result`` parts become tool messages, its text one user message;
- ``thinking`` parts are private reasoning and are not message content.

Constant memory: the file is read once for the main chain and once per sub-agent found.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import base
from .base import ExecutionSpool, RecentMap, Record, Skipped

SOURCE = "claude-code"
PROVIDER = "anthropic"
# Bookkeeping entry types of Claude Code that hold no conversation.
IGNORED_TYPES = frozenset(
    {
        "file-history-snapshot",
        "queue-operation",
        "progress",
        "attachment",
        "custom-title",
        "agent-name",
        "last-prompt",
        "tag",
        "pr-link",
    }
)
SYNTHETIC_MODEL = "<synthetic>"  # local error placeholders, never billed
MAX_HELD_SUMMARIES = 1_000  # a known Claude Code bug copies many summaries into one file


@dataclass
class _Chain:
    """One session being emitted: the main chain or one sub-agent."""

    key: str
    sid: str
    channel: str
    label: str | None
    header_sent: bool = False
    created_at: str | None = None
    count: int = 0
    context_start: int = 0
    assistant: dict[str, Any] | None = None  # reply being merged across lines
    boundary: dict[str, Any] | None = None  # compact_boundary waiting for its summary
    # summary entries lead the file, before any timestamp: held so the header gets one
    summaries: list[dict[str, Any]] = field(default_factory=list)
    tool_names: RecentMap = field(default_factory=RecentMap)
    spool: ExecutionSpool = field(default_factory=ExecutionSpool)


def iter_claude_code(path: str | os.PathLike[str]) -> Iterator[Record | Skipped]:
    """Records of every transcript under ``path`` (``~/.claude``, its ``projects``
    dir, one project dir, or one file)."""
    for transcript in find_transcripts(Path(path)):
        yield from _iter_file(transcript)


def find_transcripts(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if (root / "projects").is_dir():
        root = root / "projects"
    return sorted(p for p in root.rglob("*.jsonl") if p.is_file())


def _iter_file(path: Path) -> Iterator[Record | Skipped]:
    sub_agents: list[str] = []
    yield from _iter_chain(path, None, sub_agents)
    for agent_id in sub_agents:
        yield from _iter_chain(path, agent_id, None)


def _selected(path: Path, agent_id: str | None, sub_agents: list[str] | None) -> Iterator[Any]:
    """Entries of the main chain (``agent_id`` None) or of one sub-agent.

    Sidechain lines without ``agentId`` (older versions) are grouped by the root entry
    of their run, which is the same in every pass, so the grouping is deterministic.
    """
    legacy_group: str | None = None
    for entry in base.iter_json_lines(path):
        if isinstance(entry, Skipped):
            if sub_agents is not None:  # report each bad line once, in the main pass
                yield entry
            continue
        obj = entry[1]
        if not obj.get("isSidechain"):
            if agent_id is None:
                yield entry
            continue
        group = obj.get("agentId")
        if not isinstance(group, str) or not group:
            if obj.get("parentUuid") is None or legacy_group is None:
                legacy_group = str(obj.get("uuid") or f"line{entry[0]}")
            group = legacy_group
        if sub_agents is not None and group not in sub_agents:
            sub_agents.append(group)
        if group == agent_id:
            yield entry


def _iter_chain(path: Path, agent_id: str | None, sub_agents: list[str] | None) -> Iterator[Record | Skipped]:
    name = str(path)
    chain: _Chain | None = None
    for entry in _selected(path, agent_id, sub_agents):
        if isinstance(entry, Skipped):
            yield entry
            continue
        line_no, obj = entry
        if chain is None:
            chain = _new_chain(path, obj, agent_id)
        chain.created_at = chain.created_at or base.normalize_timestamp(obj.get("timestamp"))
        if chain.label is None and agent_id is None and isinstance(obj.get("cwd"), str):
            chain.label = obj["cwd"]
        result = _entry(obj, chain)
        if isinstance(result, str):
            yield Skipped(name, line_no, result)
        else:
            yield from result
    if chain is not None:
        yield from _flush(chain)
        yield from _header(chain)
        yield from chain.spool.drain()


def _new_chain(path: Path, obj: dict[str, Any], agent_id: str | None) -> _Chain:
    sid = found if isinstance(found := obj.get("sessionId"), str) else path.stem
    if agent_id is None:
        return _Chain(key=f"{SOURCE}:{sid}", sid=sid, channel="cli", label=None)
    return _Chain(
        key=f"{SOURCE}:{sid}:sub-agent:{agent_id}",
        sid=f"{sid}:{agent_id}",
        channel="sub-agent",
        label=f"sub-agent {agent_id}",
    )


def _header(chain: _Chain) -> Iterator[Record]:
    if not chain.header_sent:
        chain.header_sent = True
        yield base.session_header(chain.key, SOURCE, chain.channel, chain.label, chain.created_at)


def _entry(obj: dict[str, Any], chain: _Chain) -> list[Record] | str:
    kind = obj.get("type")
    if kind == "assistant":
        return _assistant(obj, chain)
    if kind == "user":
        return _user(obj, chain)
    if kind == "system":
        if obj.get("subtype") != "compact_boundary":
            return []  # turn durations, hook notes, API errors: no conversation
        out = list(_flush(chain))
        meta = obj.get("compactMetadata") if isinstance(obj.get("compactMetadata"), dict) else {}
        chain.boundary = {"obj": obj, "meta": meta}
        return out
    if kind == "summary":
        summary = obj.get("summary")
        if not isinstance(summary, str):
            return "summary entry without summary text"
        if len(chain.summaries) < MAX_HELD_SUMMARIES:
            chain.summaries.append(obj)
        return []
    if kind in IGNORED_TYPES:
        return []
    return f"unknown entry type {kind!r}"


def _compaction(
    chain: _Chain, summary: str, tokens_before: Any, ident: str, summarizer: str, obj: dict[str, Any]
) -> Record:
    # Everything before the boundary left the context: it is what was compacted.
    compacted = chain.count - chain.context_start
    chain.context_start = chain.count
    return base.compaction(
        base.stable_id(SOURCE, "compaction", chain.sid, ident),
        base.normalize_timestamp(obj.get("timestamp")) or chain.created_at,
        summary,
        messages_compacted=compacted,
        tokens_before=base.as_int(tokens_before) if tokens_before is not None else None,
        summarizer=summarizer,
    )


def _flush(chain: _Chain) -> Iterator[Record]:
    """Emit what is held back: summaries, a merged assistant reply, a boundary with no summary line."""
    if chain.summaries:
        held, chain.summaries = chain.summaries, []
        yield from _header(chain)
        for obj in held:
            ident = f"summary:{obj.get('leafUuid')}:{obj.get('summary')}"
            yield _compaction(chain, obj["summary"], None, ident, f"{SOURCE}:summary", obj)
    if chain.boundary is not None:
        boundary, chain.boundary = chain.boundary, None
        obj = boundary["obj"]
        text = obj.get("content") if isinstance(obj.get("content"), str) else "Conversation compacted"
        yield from _header(chain)
        yield _boundary_compaction(chain, boundary, text)
    if chain.assistant is not None:
        pending, chain.assistant = chain.assistant, None
        yield from _header(chain)
        yield from _emit_assistant(chain, pending)


def _boundary_compaction(chain: _Chain, boundary: dict[str, Any], summary: str) -> Record:
    meta = boundary["meta"]
    trigger = meta.get("trigger")
    summarizer = f"{SOURCE}:{trigger}" if isinstance(trigger, str) else SOURCE
    obj = boundary["obj"]
    ident = f"boundary:{obj.get('uuid')}"
    return _compaction(chain, summary, meta.get("preTokens"), ident, summarizer, obj)


def _emit_assistant(chain: _Chain, pending: dict[str, Any]) -> Iterator[Record]:
    raw_usage = pending["usage"]
    chain.count += 1
    yield base.message(
        pending["id"],
        "assistant",
        "\n".join(pending["texts"]),
        pending["timestamp"],
        tool_calls=pending["calls"],
        is_error=pending["is_error"],
        tokens=base.as_int(raw_usage.get("output_tokens")) if raw_usage else None,
    )
    if raw_usage and pending["model"] != SYNTHETIC_MODEL:
        chain.spool.add(
            base.execution(
                base.stable_id(SOURCE, "exec", chain.sid, pending["api_id"]),
                pending["timestamp"],
                model=pending["model"],
                provider=PROVIDER,
                usage_=base.usage(
                    raw_usage.get("input_tokens"),
                    raw_usage.get("output_tokens"),
                    raw_usage.get("cache_read_input_tokens"),
                    raw_usage.get("cache_creation_input_tokens"),
                ),
            )
        )


def _assistant(obj: dict[str, Any], chain: _Chain) -> list[Record] | str:
    msg = obj.get("message")
    if not isinstance(msg, dict) or not isinstance(msg.get("content"), list | str):
        return "assistant entry without message content"
    uuid = str(obj.get("uuid") or "")
    api_id = str(msg.get("id") or uuid)
    out: list[Record] = []
    pending = chain.assistant
    if pending is None or pending["api_id"] != api_id:
        out.extend(_flush(chain))
        pending = chain.assistant = {
            "id": base.stable_id(SOURCE, chain.sid, uuid or api_id),
            "api_id": api_id,
            "timestamp": base.normalize_timestamp(obj.get("timestamp")),
            "texts": [],
            "calls": [],
            "usage": None,
            "model": None,
            "is_error": False,
        }
    content = msg["content"]
    for part in [{"type": "text", "text": content}] if isinstance(content, str) else content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            pending["texts"].append(part["text"])
        elif part.get("type") == "tool_use":
            call_id = str(part.get("id") or "")
            chain.tool_names.put(call_id, part.get("name"))
            pending["calls"].append(
                {
                    "id": call_id,
                    "name": str(part.get("name") or ""),
                    "arguments": base.arguments_text(part.get("input")),
                }
            )
    if isinstance(msg.get("usage"), dict):
        pending["usage"] = msg["usage"]
    pending["model"] = msg.get("model") or pending["model"]
    pending["is_error"] = pending["is_error"] or bool(obj.get("isApiErrorMessage"))
    return out


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("text") or ""))
            elif isinstance(part, dict) and part.get("type") == "image":
                texts.append("[image]")
        return "\n".join(texts)
    return ""


def _user(obj: dict[str, Any], chain: _Chain) -> list[Record] | str:
    msg = obj.get("message")
    if not isinstance(msg, dict) or not isinstance(msg.get("content"), list | str):
        return "user entry without message content"
    content = msg["content"]
    timestamp = base.normalize_timestamp(obj.get("timestamp"))
    if obj.get("isCompactSummary"):
        text = content if isinstance(content, str) else _result_text(content)
        boundary, chain.boundary = chain.boundary, None
        out = list(_flush(chain))
        out.extend(_header(chain))
        if boundary is not None:
            out.append(_boundary_compaction(chain, boundary, text))
        else:
            out.append(_compaction(chain, text, None, str(obj.get("uuid")), SOURCE, obj))
        return out
    out = list(_flush(chain))
    uuid = str(obj.get("uuid") or "")
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
    texts: list[str] = []
    for index, part in enumerate(parts):
        if not isinstance(part, dict):
            continue
        if part.get("type") == "tool_result":
            call_id = str(part.get("tool_use_id") or "")
            out.extend(_header(chain))
            chain.count += 1
            out.append(
                base.message(
                    base.stable_id(SOURCE, chain.sid, uuid, index),
                    "tool",
                    _result_text(part.get("content")),
                    timestamp,
                    tool_call_id=call_id or None,
                    tool_name=chain.tool_names.get(call_id),
                    is_error=bool(part.get("is_error")),
                )
            )
        elif part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part.get("type") == "image":
            texts.append("[image]")
    if texts:
        out.extend(_header(chain))
        chain.count += 1
        out.append(base.message(base.stable_id(SOURCE, chain.sid, uuid), "user", "\n".join(texts), timestamp))
    return out
