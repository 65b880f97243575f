"""The session calls of the Python SDK, each written once as steps (see `protocol.Steps`).

`Session` sends them with the sync client, `AsyncSession` awaits them with the async one, and the
Agents SDK adapter uses them with either. Appends and records carry client-made ids, fixed before
the first attempt, so the client may retry them safely: the server skips an id it already stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sessionscope.client.protocol import Download, Request, Steps
from sessionscope.errors import InvalidParams

# The server accepts at most this many messages per session.append.
APPEND_BATCH = 1000
# A paged read restarts this many times at most when the session changes under it.
RESTARTS = 3


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Target:
    """The session a handle calls, and what its appends say about the session."""

    key: str
    agent: str = "main"
    channel: str = "sdk"
    tenant: str | None = None
    label: str | None = None

    def params(self, **params: Any) -> dict[str, Any]:
        out = {"key": self.key, **{k: v for k, v in params.items() if v is not None}}
        if self.tenant is not None:
            out["tenant"] = self.tenant
        return out


def append(t: Target, *messages: dict[str, Any]) -> Steps[dict[str, Any]]:
    """Append messages (`{"role", "content", ...}`); ids are added where missing.

    Returns `{appended, duplicates, last_seq}` (plus `auto_compaction` when one ran); a retried
    batch counts as duplicates. More than 1000 messages go as several appends.
    """
    stamped = [m if m.get("id") else {**m, "id": new_id()} for m in messages]
    if not stamped:
        raise ValueError("append needs at least one message")
    results = []
    for start in range(0, len(stamped), APPEND_BATCH):
        params = t.params(agent=t.agent, channel=t.channel, label=t.label,
                          messages=stamped[start:start + APPEND_BATCH])
        results.append((yield Request("session.append", params, retry=True)))
    merged = {"appended": sum(r["appended"] for r in results),
              "duplicates": sum(r["duplicates"] for r in results), "last_seq": results[-1]["last_seq"]}
    compacted = [r["auto_compaction"] for r in results if r.get("auto_compaction")]
    if compacted:
        merged["auto_compaction"] = compacted[-1]
    return merged


def _pages(method: str, params: dict[str, Any]) -> Steps[list[dict[str, Any]]]:
    """Every page of a paged read, in order. A reset or compaction between two pages makes the
    next cursor stale (-32602 on `cursor`): the read starts over, so it never mixes two contexts."""
    for attempt in range(RESTARTS + 1):
        pages = [(yield Request(method, params, retry=True))]
        try:
            while pages[-1].get("has_more"):
                pages.append((yield Request(method, {**params, "cursor": pages[-1]["next_cursor"]}, retry=True)))
        except InvalidParams as exc:
            if (exc.data or {}).get("field") != "cursor" or attempt == RESTARTS:
                raise
            continue
        return pages
    raise AssertionError("unreachable")


def history(t: Target, format: str = "openai") -> Steps[dict[str, Any]]:
    """The live context: `{"messages": [...]}` (plus `"system"` for format="anthropic"), whole:
    past the server's page size its pages are read and joined."""
    pages = yield from _pages("session.history", t.params(format=format))
    out: dict[str, Any] = {"messages": [m for page in pages for m in page["messages"]], "format": format}
    if format == "anthropic":
        out["system"] = "\n\n".join(page["system"] for page in pages if page.get("system"))
    return out


def items(t: Target, limit: int | None = None) -> Steps[dict[str, Any]]:
    """The live messages with their raw client copies: `{"summary", "items"}`, whole (pages are
    joined); `limit` keeps exactly the newest N messages (the summary counts as the oldest entry)."""
    pages = yield from _pages("session.items", t.params(limit=limit))
    return {"summary": pages[0]["summary"], "items": [m for page in pages for m in page["items"]]}


def record(t: Target, execution: dict[str, Any]) -> Steps[dict[str, Any]]:
    """Record one execution (see the Execution object of the RPC contract)."""
    execution = execution if execution.get("id") else {**execution, "id": new_id()}
    return (yield Request("session.record", t.params(execution=execution), retry=True))


def pop(t: Target) -> Steps[dict[str, Any] | None]:
    """Remove and return the newest live message, or None."""
    return (yield Request("session.pop", t.params(), retry=False))["item"]


def reset(t: Target) -> Steps[int]:
    """Start over: the conversation leaves the live context (it stays stored)."""
    return (yield Request("session.reset", t.params(), retry=False))["reset"]


def compact(t: Target, instructions: str | None = None, keep_recent_tokens: int | None = None
            ) -> Steps[dict[str, Any]]:
    """Summarise the older part of the live context."""
    params = t.params(instructions=instructions, keep_recent_tokens=keep_recent_tokens)
    return (yield Request("session.compact", params, retry=False))


def export(t: Target, path: str) -> Steps[int]:
    """Write the session's JSONL export to `path`; returns the bytes written."""
    link = yield Request("session.export", t.params(), retry=True)
    return (yield Download(link["url"], path))


def status(t: Target, limit: int | None = None) -> Steps[dict[str, Any]]:
    return (yield Request("session.status", t.params(limit=limit), retry=True))


def metrics(t: Target) -> Steps[dict[str, Any]]:
    return (yield Request("session.metrics", t.params(), retry=True))


def context(t: Target) -> Steps[dict[str, Any]]:
    return (yield Request("session.context", t.params(), retry=True))


def delete(t: Target) -> Steps[int]:
    return (yield Request("session.delete", t.params(), retry=False))["deleted"]

