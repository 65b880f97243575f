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
- one execution per ``message.id``: 2.1.x writes a tool result between two lines of the same
  reply, so the reply's lines can end up in two assistant messages; the execution keeps the
  last line's (final) usage (the ingest service counts each message's own tokens). The split
  of cache writes (``cache_creation.ephemeral_1h_input_tokens``) is kept;
- ``thinking`` parts are the turn's ``reasoning``, images are attachments, ``isMeta`` user
  entries (slash-command expansions, caveats) are marked ``injected``;
- a ``summary`` entry is Claude Code's title for the session: it becomes the label;
- a user entry's ``tool_result`` parts become tool messages, its text one user message.

Constant memory: the file is read once for the main chain and once per sub-agent found.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import base
from .base import ExecutionSpool, RecentMap, Record, Skipped, Tally

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
# Stop reasons that mean the turn did not end as the model meant it to.
STOP_REASONS = {"max_tokens": "length", "refusal": "refusal", "model_context_window_exceeded": "length"}


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
    # The API reply (message.id) whose execution is still open: its lines may be cut apart by
    # tool results, so it is spooled only once a line of another reply arrives.
    reply: dict[str, Any] | None = None
    boundary: dict[str, Any] | None = None  # compact_boundary waiting for its summary
    tool_names: RecentMap = field(default_factory=RecentMap)
    spool: ExecutionSpool = field(default_factory=ExecutionSpool)


def iter_claude_code(path: str | os.PathLike[str], tally: Tally | None = None) -> Iterator[Record | Skipped]:
    """Records of every transcript under ``path`` (``~/.claude``, its ``projects``
    dir, one project dir, or one file)."""
    tally = tally if tally is not None else Tally()
    for transcript in find_transcripts(Path(path)):
        yield from _iter_file(transcript, tally)


def find_transcripts(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if (root / "projects").is_dir():
        root = root / "projects"
    return sorted(p for p in root.rglob("*.jsonl") if p.is_file())


def _iter_file(path: Path, tally: Tally) -> Iterator[Record | Skipped]:
    sub_agents: list[str] = []
    yield from _iter_chain(path, None, sub_agents, tally)
    for agent_id in sub_agents:
        yield from _iter_chain(path, agent_id, None, tally)


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


def _iter_chain(path: Path, agent_id: str | None, sub_agents: list[str] | None,
                tally: Tally) -> Iterator[Record | Skipped]:
    name = str(path)
    chain: _Chain | None = None
    titled = False
    for entry in _selected(path, agent_id, sub_agents):
        if isinstance(entry, Skipped):
            tally.count("(unreadable line)", Tally.SKIPPED)
            yield entry
            continue
        line_no, obj = entry
        if chain is None:
            chain = _new_chain(path, obj, agent_id)
        chain.created_at = chain.created_at or base.normalize_timestamp(obj.get("timestamp"))
        kind = obj.get("type")
        if kind == "summary" and isinstance(obj.get("summary"), str) and not chain.header_sent:
            chain.label, titled = obj["summary"], True
        elif not titled and chain.label is None and agent_id is None and isinstance(obj.get("cwd"), str):
            chain.label = obj["cwd"]
        result = _entry(obj, chain, line_no)
        source_type = f"system:{obj.get('subtype')}" if kind == "system" else str(kind)
        if isinstance(result, str):
            tally.count(source_type, Tally.SKIPPED)
            yield Skipped(name, line_no, result)
            continue
        records, outcome = result
        tally.count(source_type, outcome)
        yield from records
    if chain is not None:
        yield from _flush(chain)
        yield from _header(chain)
        _close_reply(chain)
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


def _entry(obj: dict[str, Any], chain: _Chain, line_no: int) -> tuple[list[Record], str] | str:
    """The records of one entry and what became of it (a Tally outcome); a string when unreadable."""
    kind = obj.get("type")
    if kind == "assistant":
        out = _assistant(obj, chain)
        return out if isinstance(out, str) else (out, Tally.MAPPED)
    if kind == "user":
        out = _user(obj, chain)
        return out if isinstance(out, str) else (out, Tally.MAPPED)
    if kind == "system":
        if obj.get("subtype") != "compact_boundary":
            return [], Tally.SKIPPED  # turn durations, hook notes, API errors: no conversation
        out = list(_flush(chain))
        meta = obj.get("compactMetadata") if isinstance(obj.get("compactMetadata"), dict) else {}
        chain.boundary = {"obj": obj, "meta": meta}
        return out, Tally.MAPPED
    if kind == "summary":
        if not isinstance(obj.get("summary"), str):
            return "summary entry without summary text"
        return [], Tally.MAPPED  # the session's title: _iter_chain made it the label
    if kind in IGNORED_TYPES:
        return [], Tally.SKIPPED
    # A type this importer does not know yet is kept whole, as an event, and counted.
    out = list(_flush(chain))
    out.extend(_header(chain))
    chain.count += 1
    ident = base.stable_id(SOURCE, chain.sid, "raw", obj.get("uuid") or line_no)
    out.append(base.raw_event(ident, str(kind), obj, base.normalize_timestamp(obj.get("timestamp"))))
    return out, Tally.RAW


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
    """Emit what is held back: a merged assistant reply, a boundary with no summary line."""
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
    reply = chain.reply
    if reply is None or reply["api_id"] != pending["api_id"]:
        _close_reply(chain)
        reply = chain.reply = {"api_id": pending["api_id"], "timestamp": pending["timestamp"],
                               "usage": None, "model": None}
    if raw_usage:
        reply["usage"] = raw_usage  # later lines of a reply carry its usage so far: the last is final
    reply["model"] = pending["model"] or reply["model"]
    chain.count += 1
    yield base.message(
        pending["id"],
        "assistant",
        "\n".join(pending["texts"]),
        pending["timestamp"],
        tool_calls=pending["calls"],
        is_error=pending["is_error"],
        reasoning="\n\n".join(pending["thinking"]) or None,
        stop_reason=pending["stop_reason"],
    )


def _close_reply(chain: _Chain) -> None:
    """Spool the open reply's execution with the final usage its last line carried."""
    reply, chain.reply = chain.reply, None
    if reply is None or not reply["usage"] or reply["model"] == SYNTHETIC_MODEL:
        return
    raw_usage = reply["usage"]
    split = raw_usage.get("cache_creation") if isinstance(raw_usage.get("cache_creation"), dict) else {}
    chain.spool.add(
        base.execution(
            base.stable_id(SOURCE, "exec", chain.sid, reply["api_id"]),
            reply["timestamp"],
            model=reply["model"],
            provider=PROVIDER,
            usage_=base.usage(
                raw_usage.get("input_tokens"),
                raw_usage.get("output_tokens"),
                raw_usage.get("cache_read_input_tokens"),
                raw_usage.get("cache_creation_input_tokens"),
                split.get("ephemeral_1h_input_tokens"),
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
            "thinking": [],
            "calls": [],
            "usage": None,
            "model": None,
            "is_error": False,
            "stop_reason": None,
        }
    content = msg["content"]
    for part in [{"type": "text", "text": content}] if isinstance(content, str) else content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            pending["texts"].append(part["text"])
        elif part.get("type") == "thinking" and isinstance(part.get("thinking"), str):
            if part["thinking"]:
                pending["thinking"].append(part["thinking"])
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
    pending["stop_reason"] = STOP_REASONS.get(str(msg.get("stop_reason")), pending["stop_reason"])
    return out


def _image(part: dict[str, Any]) -> dict[str, Any] | None:
    source = base.as_dict(part.get("source"))
    if source.get("type") != "base64":
        return None
    return base.image_attachment(source.get("media_type"), source.get("data"))


def _result_parts(content: Any) -> tuple[str, list[dict[str, Any]]]:
    """Text and image attachments of a tool result's content (a string or a list of blocks)."""
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else ():
        if isinstance(part, dict) and part.get("type") == "text":
            texts.append(str(part.get("text") or ""))
        elif isinstance(part, dict) and part.get("type") == "image":
            image = _image(part)
            if image is not None:
                images.append(image)
            else:
                texts.append("[image]")
    return "\n".join(texts), images


def _result_text(content: Any) -> str:
    return _result_parts(content)[0]


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
    images: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        if not isinstance(part, dict):
            continue
        if part.get("type") == "tool_result":
            call_id = str(part.get("tool_use_id") or "")
            text, result_images = _result_parts(part.get("content"))
            out.extend(_header(chain))
            chain.count += 1
            out.append(
                base.message(
                    base.stable_id(SOURCE, chain.sid, uuid, index),
                    "tool",
                    text,
                    timestamp,
                    tool_call_id=call_id or None,
                    tool_name=chain.tool_names.get(call_id),
                    is_error=bool(part.get("is_error")),
                    attachments=result_images,
                )
            )
        elif part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part.get("type") == "image":
            image = _image(part)
            if image is not None:
                images.append(image)
            else:
                texts.append("[image]")
    if texts or images:
        out.extend(_header(chain))
        chain.count += 1
        # isMeta: text Claude Code put in the user's turn (a slash command's expansion, caveats).
        kind = base.INJECTED if obj.get("isMeta") else None
        out.append(base.message(base.stable_id(SOURCE, chain.sid, uuid), "user", "\n".join(texts), timestamp,
                                kind=kind, attachments=images))
    return out
