"""session.items and session.pop (store/items.py): raw copies, the live boundary, and a pop that
leaves the store exactly as if the message had never been appended."""

from __future__ import annotations

import asyncio

from sessionscope.store import open_database
from sessionscope.store.check import check
from tests.conftest import RPC, conversation


def store_check(rpc: RPC) -> list[dict]:
    async def run() -> list[dict]:
        db = await open_database(rpc.database_url)
        try:
            return (await check(db, rpc.tenant)).problems
        finally:
            await db.close()

    return asyncio.run(run())


def test_pop_restores_the_counters_of_before_the_append(rpc: RPC) -> None:
    rpc.append("p", conversation(3))
    before = rpc("session.status", key="p")["session"]
    raw = {"type": "function_call", "call_id": "c-x", "name": "lookup", "arguments": "{}", "extra": None}
    rpc.append("p", [{"role": "assistant", "content": "", "raw": raw,
                      "tool_calls": [{"id": "c-x", "name": "lookup", "arguments": "{}"}]}])
    popped = rpc("session.pop", key="p")["item"]
    assert popped["raw"] == raw and popped["tool_calls"][0]["id"] == "c-x"
    after = rpc("session.status", key="p")["session"]
    ignore = {"updated_at"}
    assert {k: v for k, v in after.items() if k not in ignore} == {k: v for k, v in before.items() if k not in ignore}
    assert store_check(rpc) == []
    # The freed seq is used again: the next append continues the sequence without a hole.
    assert rpc.append("p", [{"role": "user", "content": "next"}])["last_seq"] == before["message_count"] + 1
    assert store_check(rpc) == []


def test_items_follow_compaction_and_reset(rpc: RPC) -> None:
    rpc.append("c", conversation(10))
    assert rpc("session.items", key="c")["summary"] is None
    assert rpc("session.compact", key="c", keep_recent_tokens=300)["compacted"]
    live = rpc("session.items", key="c")
    history = rpc("session.history", key="c")["messages"]
    assert live["summary"] == history[0]["content"]
    assert [m["content"] for m in live["items"]] == [m["content"] for m in history[1:]]
    assert all(not m["compacted"] for m in live["items"])
    # The newest live message sits under the compaction item: popping it is refused, nothing changes.
    error = rpc.error("session.pop", key="c")
    assert error["code"] == -32009
    assert rpc("session.items", key="c") == live
    rpc("session.reset", key="c")
    assert rpc("session.items", key="c") == {"summary": None, "items": [], "has_more": False, "next_cursor": None}
    assert rpc("session.pop", key="c") == {"item": None}
    assert rpc.error("session.pop", key="missing")["code"] == -32001
    assert store_check(rpc) == []


def test_items_limit_keeps_exactly_the_newest(rpc: RPC) -> None:
    rpc.append("l", conversation(4))  # turn 3 is user, call, tool result, answer
    items = rpc("session.items", key="l", limit=2)["items"]
    # Exactly the newest two, as the Agents SDK's SQLiteSession gives them, though the tool result's
    # call is left out (session.history, the context for a model, is the one that never does that).
    assert [m["role"] for m in items] == ["tool", "assistant"]
    items = rpc("session.items", key="l", limit=3)["items"]
    assert [m["role"] for m in items] == ["assistant", "tool", "assistant"]
