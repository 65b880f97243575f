"""Compaction through the real store and server: whatever the conversation, after one or several
compactions `session.history` is a valid conversation (every tool result follows its call,
nothing orphaned, order kept), on SQLite and PostgreSQL.

The pure cut rule is checked over 10,000 conversations in test_compaction_policy.py; this test
runs fewer (each example is a real session with real writes) but end to end.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionscope.compaction import validate_conversation
from sessionscope.compaction.policy import choose_cut
from sessionscope.errors import Conflict
from sessionscope.ingest import append_messages
from sessionscope.store import Scope, conversation, open_database
from sessionscope.store import compactions as compaction_store
from sessionscope.store import sessions as session_store
from tests.conftest import RPC
from tests.conftest import conversation as turns

_ids = itertools.count()

step = st.one_of(
    st.tuples(st.just("user"), st.integers(1, 120)),
    st.tuples(st.just("text"), st.integers(1, 120)),
    st.tuples(st.just("tools"), st.integers(1, 3), st.booleans()),
)


def build(steps: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in steps:
        n = next(_ids)
        if s[0] == "user":
            out.append({"id": f"u{n}", "role": "user", "content": "please check /srv/app.py " * s[1]})
        elif s[0] == "text":
            out.append({"id": f"a{n}", "role": "assistant", "content": "Decision: keep it. " * s[1]})
        else:
            calls = [{"id": f"c{n}-{k}", "name": "shell", "arguments": '{"cmd": "ls"}'} for k in range(s[1])]
            out.append({"id": f"t{n}", "role": "assistant", "content": "", "tool_calls": calls})
            for k, c in enumerate(calls):
                out.append({"id": f"r{n}-{k}", "role": "tool", "tool_call_id": c["id"], "tool_name": "shell",
                            "content": "Error: denied" if s[2] and k == 0 else "file list " * 20,
                            "is_error": bool(s[2] and k == 0)})
    return out


def assert_valid(history: list[dict[str, Any]]) -> None:
    called: set[str] = set()
    for m in history:
        for c in m.get("tool_calls", []):
            called.add(c["id"])
        if m["role"] == "tool":
            assert m["tool_call_id"] in called, f"orphaned tool result {m['tool_call_id']}"


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches=st.lists(st.lists(step, min_size=1, max_size=25), min_size=1, max_size=4),
       keep=st.integers(0, 1500))
def test_history_stays_valid_through_repeated_compaction(rpc: RPC, batches: list[list[tuple[Any, ...]]],
                                                         keep: int) -> None:
    key = f"prop-{next(_ids)}"
    appended: list[str] = []
    for batch in batches:
        messages = build([("user", 3), *batch])
        rpc.append(key, messages)
        appended += [m["id"] for m in messages]
        result = rpc("session.compact", key=key, keep_recent_tokens=keep)
        history = rpc("session.history", key=key)["messages"]
        assert_valid(history)
        if result["compacted"]:
            assert history[0]["role"] == "system"
            status = rpc("session.status", key=key, limit=1000)
            live_ids = [i["id"] for i in status["items"] if i["kind"] == "message" and not i["compacted"]]
            # The live messages are exactly a suffix of everything appended, in order.
            assert live_ids == appended[len(appended) - len(live_ids):]
            if len(history) > 1:
                assert history[1]["role"] == "user"  # the kept tail starts a turn
        again = rpc("session.compact", key=key, keep_recent_tokens=keep)
        assert again["compacted"] is False  # converges: no loop, no "already compacted" error


def test_commit_cuts_by_seq_so_appends_during_summarising_stay_live(database_url: str, tenant: str) -> None:
    """The store's two halves of a compaction (compaction/service.py summarises between them):
    a message appended after the snapshot stays live, and a reset in between refuses the commit."""
    scope = Scope.everything()

    async def run() -> None:
        db = await open_database(database_url)
        try:
            await append_messages(db, scope, key="cut", agent="a", channel="web", tenant=tenant,
                                  batch=turns(6, "early-"))
            snap = await compaction_store.snapshot(db, scope, "cut", tenant=tenant)
            late = turns(1, "late-")
            await append_messages(db, scope, key="cut", agent="a", channel="web", tenant=tenant, batch=late)
            cut = choose_cut(snap.live, 100)
            assert cut > 0
            committed = await compaction_store.commit(
                db, snap, first_kept_seq=int(snap.live[cut]["seq"]), summarized=cut, summary="earlier turns",
                summarizer="test", instructions=None, reason="manual")
            history = (await conversation.history(db, scope, "cut", tenant=tenant))["messages"]
            assert validate_conversation(history) == []
            assert history[0]["role"] == "system" and history[0]["content"].endswith("earlier turns")
            assert [m["content"] for m in history[-len(late):]] == [m["content"] for m in late]
            row = await session_store.get(db, scope, "cut", tenant)
            assert row["context_tokens"] == committed["tokens_after"]

            again = await compaction_store.snapshot(db, scope, "cut", tenant=tenant)
            await session_store.reset(db, scope, ["cut"], tenant)
            with pytest.raises(Conflict):
                await compaction_store.commit(db, again, first_kept_seq=int(again.live[-1]["seq"]), summarized=1,
                                              summary="too late", summarizer="test", instructions=None,
                                              reason="manual")
            assert (await session_store.get(db, scope, "cut", tenant))["compactions"] == 1
        finally:
            await db.close()

    asyncio.run(run())
