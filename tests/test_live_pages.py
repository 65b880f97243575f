"""session.history and session.items answer in pages past a byte budget, and the SDK and the Agents
SDK adapter follow the pages, so a reader gets the whole live context (store/live_pages.py)."""

from __future__ import annotations

from typing import Any

import pytest

from sessionscope.client import AsyncClient, Client
from sessionscope.integrations.openai_agents import SessionscopeSession
from sessionscope.store import live_pages
from tests.conftest import RPC

SMALL_BUDGET = 2_000  # bytes: a page holds a few of the messages below


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test server runs in this process: its reads use the patched budget.
    monkeypatch.setattr(live_pages, "READ_PAGE_BYTES", SMALL_BUDGET)


def turns(count: int) -> list[dict[str, Any]]:
    """`count` turns of user, tool call, tool result, answer; each message ~500 bytes."""
    out: list[dict[str, Any]] = []
    for n in range(count):
        out += [
            {"id": f"u{n}", "role": "user", "content": f"question {n} " + "q" * 500, "tokens": 1},
            {"id": f"c{n}", "role": "assistant", "content": "", "tokens": 1,
             "tool_calls": [{"id": f"call{n}", "name": "lookup", "arguments": '{"n": ' + str(n) + "}"}]},
            {"id": f"t{n}", "role": "tool", "content": f"result {n} " + "r" * 500, "tool_call_id": f"call{n}",
             "tokens": 1},
            {"id": f"a{n}", "role": "assistant", "content": f"answer {n} " + "a" * 500, "tokens": 1},
        ]
    return out


def all_pages(rpc: RPC, method: str, **params: Any) -> list[dict[str, Any]]:
    pages = [rpc(method, **params)]
    while pages[-1]["has_more"]:
        pages.append(rpc(method, **params, cursor=pages[-1]["next_cursor"]))
    return pages


def test_a_huge_history_comes_in_pages_of_the_real_budget(rpc: RPC) -> None:
    big = "lorem ipsum " * 80_000  # ~0.96 MB each, six of them: past the 4 MiB budget
    rpc.append("pages:big", [{"id": f"m{n}", "role": "user", "content": f"{n} {big}", "tokens": 1}
                             for n in range(6)])
    pages = all_pages(rpc, "session.history", key="pages:big")
    assert len(pages) == 2 and pages[0]["has_more"] and not pages[-1]["has_more"]
    assert all(len(m["content"]) * len(p["messages"]) <= live_pages.READ_PAGE_BYTES
               for p in pages for m in p["messages"])
    assert [m["content"][:2] for p in pages for m in p["messages"]] == [f"{n} " for n in range(6)]
    with Client(rpc.url) as client:
        whole = client.session("pages:big", tenant=rpc.tenant).history()["messages"]
    assert [m["content"][:2] for m in whole] == [f"{n} " for n in range(6)]


def test_history_pages_join_to_the_whole_context_and_keep_tool_turns(rpc: RPC, small_pages: None) -> None:
    rpc.append("pages:turns", turns(6))
    for format in ("openai", "anthropic"):
        pages = all_pages(rpc, "session.history", key="pages:turns", format=format)
        assert len(pages) > 3
        # A page never starts with a tool result: its call is on the same page.
        firsts = [p["messages"][0] for p in pages]
        assert not any(m["role"] == "tool" or (format == "anthropic" and m["content"][0]["type"] == "tool_result")
                       for m in firsts)
        joined = [m for p in pages for m in p["messages"]]
        with Client(rpc.url) as client:
            assert client.session("pages:turns", tenant=rpc.tenant).history(format=format)["messages"] == joined
        assert len(joined) == 24  # four per turn in both formats


def test_items_pages_follow_limit_and_summary(rpc: RPC, small_pages: None) -> None:
    rpc.append("pages:items", turns(5))
    pages = all_pages(rpc, "session.items", key="pages:items")
    assert len(pages) > 3 and all(p["summary"] is None for p in pages)
    ids = [m["id"] for p in pages for m in p["items"]]
    assert ids == [m["id"] for m in turns(5)]
    limited = all_pages(rpc, "session.items", key="pages:items", limit=7)
    assert [m["id"] for p in limited for m in p["items"]] == ids[-7:]
    with Client(rpc.url) as client:
        s = client.session("pages:items", tenant=rpc.tenant)
        assert [m["id"] for m in s.items()["items"]] == ids
        assert [m["id"] for m in s.items(limit=7)["items"]] == ids[-7:]


def test_cursors_are_bound_to_their_read(rpc: RPC, small_pages: None) -> None:
    rpc.append("pages:bound", turns(3))
    rpc.append("pages:other", turns(3))
    first = rpc("session.history", key="pages:bound")
    cursor = first["next_cursor"]
    assert first["has_more"] and cursor
    for method, params in (("session.history", {"key": "pages:other"}),
                           ("session.history", {"key": "pages:bound", "format": "anthropic"}),
                           ("session.items", {"key": "pages:bound"})):
        error = rpc.error(method, **params, cursor=cursor)
        assert error["code"] == -32602 and error["data"]["field"] == "cursor", (method, params)
    assert rpc.error("session.history", key="pages:bound", cursor="not-a-cursor")["data"]["field"] == "cursor"
    rpc("session.reset", key="pages:bound")
    stale = rpc.error("session.history", key="pages:bound", cursor=cursor)
    assert stale["code"] == -32602 and "stale" in stale["data"]["problem"]


class ResetAfterFirstPage(Client):
    """A real client whose session is reset (as from the dashboard) right after its first page."""

    def call(self, method: str, params: dict[str, Any] | None = None, *, retry: bool = False) -> Any:
        answer = super().call(method, params, retry=retry)
        if method == "session.history" and params and not params.get("cursor") and not getattr(self, "done", False):
            self.done = True
            super().call("session.reset", {"key": params["key"], "tenant": params["tenant"]})
            super().call("session.append", {"key": params["key"], "tenant": params["tenant"], "agent": "main",
                                            "channel": "web", "messages": [{"role": "user", "content": "new"}]})
        return answer


def test_the_sdk_starts_over_when_the_session_changes_between_pages(rpc: RPC, small_pages: None) -> None:
    rpc.append("pages:changed", turns(3))
    with ResetAfterFirstPage(rpc.url) as client:
        history = client.session("pages:changed", tenant=rpc.tenant).history()
    # Never the first page of the old context joined to the new one: the whole new context.
    assert history["messages"] == [{"role": "user", "content": "new"}]


async def test_the_agents_adapter_gets_every_item(rpc: RPC, small_pages: None) -> None:
    client = AsyncClient(rpc.url)
    session = SessionscopeSession("pages:agents", client, tenant=rpc.tenant)
    added = [{"role": "user" if n % 2 == 0 else "assistant", "content": f"item {n} " + "x" * 400}
             for n in range(30)]
    try:
        await session.add_items(added)
        first = rpc("session.items", key="pages:agents")
        assert first["has_more"]  # the server pages this context
        assert await session.get_items() == added
        assert await session.get_items(limit=25) == added[-25:]
    finally:
        await client.aclose()
