"""sessionscope as the `Session` of the OpenAI Agents SDK (`openai-agents`).

    from agents import Agent, Runner
    from sessionscope.client import AsyncClient
    from sessionscope.integrations.openai_agents import SessionscopeSession

    client = AsyncClient("http://127.0.0.1:8750", token)
    session = SessionscopeSession("support:42", client, agent="helpdesk", channel="web")
    result = await Runner.run(agent, "Where is my order?", session=session)

Each Responses API item is stored twice in one append: as one of our messages (role, content,
tool fields), which is what the dashboard, search, compaction and counters read, and verbatim
as the message's `raw` copy, which is what `get_items` returns. The items returned are the live
context, so a Reset or Compact done in the dashboard changes what the agent sends next: after a
compaction the summary comes first, then the kept items; after a reset nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, TypeVar

from agents.memory.session_settings import SessionSettings, resolve_session_limit

from sessionscope.client import calls
from sessionscope.client.aio import AsyncClient
from sessionscope.client.calls import Target, new_id
from sessionscope.client.protocol import Steps, arun_steps, run_steps
from sessionscope.client.sync import Client
from sessionscope.errors import NotFound

T = TypeVar("T")

Item = dict[str, Any]

TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "reasoning_text"})
ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def _text(content: Any) -> str:
    """Message content (a string or a list of parts) as plain text for the dashboard."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return "" if content is None else json.dumps(content)
    texts = []
    for part in content:
        if not isinstance(part, dict):
            texts.append(str(part))
        elif part.get("type") in TEXT_PARTS or "text" in part:
            texts.append(str(part.get("text", "")))
        elif part.get("type") == "refusal":
            texts.append(str(part.get("refusal", "")))
        else:
            texts.append(f"[{part.get('type', 'part')}]")
    return "\n".join(t for t in texts if t)


def item_to_message(item: Item) -> dict[str, Any]:
    """One Responses item as one of our messages (raw copy attached)."""
    kind = item.get("type")
    message: dict[str, Any]
    if kind in (None, "message"):
        message = {"role": ROLES.get(str(item.get("role")), "user"), "content": _text(item.get("content"))}
    elif kind == "function_call":
        message = {"role": "assistant", "content": "", "tool_calls": [{
            "id": item.get("call_id") or item.get("id") or new_id(), "name": item.get("name") or "function",
            "arguments": item.get("arguments") or "{}"}]}
    elif kind == "function_call_output" or str(kind).endswith("_call_output"):
        message = {"role": "tool", "content": _text(item.get("output")),
                   "tool_call_id": item.get("call_id") or item.get("id") or new_id()}
    elif kind == "reasoning":
        message = {"role": "assistant", "content": _text(item.get("summary"))}
    elif str(kind).endswith("_call"):
        # Hosted tools (web search, file search, computer, MCP...): a call named by its type.
        args = {k: v for k, v in item.items() if k not in ("type", "id", "call_id", "status")}
        message = {"role": "assistant", "content": "", "tool_calls": [{
            "id": item.get("call_id") or item.get("id") or new_id(), "name": str(kind),
            "arguments": json.dumps(args)}]}
    else:
        message = {"role": "assistant", "content": json.dumps(item)}
    return message | {"id": new_id(), "raw": item}


def message_to_items(message: dict[str, Any]) -> list[Item]:
    """A stored message without a raw copy (appended by the SDK, imported...) as Responses items."""
    role = message["role"]
    if role == "tool":
        return [{"type": "function_call_output", "call_id": message["tool_call_id"],
                 "output": message["content"]}]
    out: list[Item] = []
    if message["content"] or not message.get("tool_calls"):
        out.append({"role": role, "content": message["content"]})
    for call in message.get("tool_calls") or ():
        out.append({"type": "function_call", "call_id": call["id"], "name": call["name"],
                    "arguments": call["arguments"]})
    return out


class SessionscopeSession:
    """An `agents` Session backed by one sessionscope session (`session_id` is its key).

    It answers every operation as the SDK's `SQLiteSession` does: `get_items(limit)` gives the
    newest `limit` items exactly (0 gives none, a negative limit or None all of them), `pop_item`
    the newest item, `clear_session` empties what `get_items` gives. `client` is an `AsyncClient`
    (usable from any event loop or thread), or a sync `Client` whose calls then run in a worker thread.
    """

    def __init__(self, key: str, client: AsyncClient | Client, *, agent: str = "main",
                 channel: str = "openai-agents", tenant: str | None = None,
                 session_settings: SessionSettings | None = None) -> None:
        self.session_id = key
        self.session_settings = session_settings
        self.client = client
        self.target = Target(key, agent=agent, channel=channel, tenant=tenant)

    async def _run(self, steps: Steps[T]) -> T:
        if isinstance(self.client, AsyncClient):
            return await arun_steps(self.client, steps)
        return await asyncio.to_thread(run_steps, self.client, steps)

    async def get_items(self, limit: int | None = None) -> list[Item]:
        """The live context, oldest first; `limit` keeps exactly the newest N items."""
        limit = resolve_session_limit(limit, self.session_settings)
        if limit is not None and limit < 0:
            limit = None  # SQLiteSession passes it to SQLite's LIMIT, where negative means none
        if limit == 0:
            return []
        try:
            # A message gives at least one item, so the newest `limit` messages hold the newest
            # `limit` items (the summary counts as one entry on both sides).
            live = await self._run(calls.items(self.target, limit))
        except NotFound:
            return []
        items: list[Item] = []
        if live["summary"]:
            items.append({"role": "system", "content": live["summary"]})
        for message in live["items"]:
            raw = message.get("raw")
            items.extend([raw] if raw is not None else message_to_items(message))
        return items[-limit:] if limit is not None else items

    async def add_items(self, items: list[Item]) -> None:
        if not items:
            return
        messages = [item_to_message(dict(item)) for item in items]
        # A function_call_output names only its call; the call earlier in the batch names the tool.
        names = {c["id"]: c["name"] for m in messages for c in m.get("tool_calls") or ()}
        for m in messages:
            if m["role"] == "tool" and m["tool_call_id"] in names:
                m["tool_name"] = names[m["tool_call_id"]]
        await self._run(calls.append(self.target, *messages))

    async def pop_item(self) -> Item | None:
        """Remove and return the newest item; None when there is none."""
        try:
            popped = await self._run(calls.pop(self.target))
        except NotFound:
            return None
        if popped is None:
            return None
        if popped.get("raw") is not None:
            return popped["raw"]
        converted = message_to_items(popped)
        return converted[-1] if converted else None

    async def clear_session(self) -> None:
        """A reset: the conversation leaves the live context; it stays stored for audit."""
        with contextlib.suppress(NotFound):
            await self._run(calls.reset(self.target))
