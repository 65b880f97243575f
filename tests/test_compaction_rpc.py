"""session.compact's dry run and keep choices, through the real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools

from tests.conftest import RPC, conversation

_ids = itertools.count()


def test_dry_run_returns_the_cut_and_summary_and_writes_nothing(rpc: RPC) -> None:
    key = f"dry-{next(_ids)}"
    rpc.append(key, conversation(12))
    before = rpc("session.history", key=key)["messages"]
    preview = rpc("session.compact", key=key, keep_recent_tokens=300, dry_run=True)
    assert preview["dry_run"] is True and preview["compacted"] is False and preview["compaction"] is None
    assert preview["first_kept_seq"] > 1 and preview["messages_compacted"] == preview["first_kept_seq"] - 1
    assert preview["tokens_after"] < preview["tokens_before"]
    assert preview["summary"].startswith("Summary of") and "<h2>" in preview["summary_html"]
    assert "## " not in preview["summary_html"]
    assert rpc("session.compactions", key=key)["compactions"] == []
    assert rpc("session.history", key=key)["messages"] == before
    # What the dry run showed is what a real compaction then does.
    done = rpc("session.compact", key=key, keep_recent_tokens=300)
    assert done["compacted"] and done["compaction"]["first_kept_seq"] == preview["first_kept_seq"]
    assert done["compaction"]["summary"] == preview["summary"]
    assert done["tokens_after"] == preview["tokens_after"]
    assert "<h2>" in done["summary_html"]


def test_keep_recent_turns_keeps_whole_turns(rpc: RPC) -> None:
    key = f"turns-{next(_ids)}"
    messages = conversation(10)
    rpc.append(key, messages)
    rpc("session.compact", key=key, keep_recent_turns=3)
    history = rpc("session.history", key=key)["messages"]
    assert history[0]["role"] == "system"
    users = [m for m in history[1:] if m["role"] == "user"]
    assert [u["content"][:7] for u in users] == ["Turn 7:", "Turn 8:", "Turn 9:"]


def test_nothing_to_compact_says_why_and_its_suggestion_compacts(rpc: RPC) -> None:
    key = f"nothing-{next(_ids)}"
    rpc.append(key, conversation(4))
    result = rpc("session.compact", key=key, keep_recent_tokens=10_000_000)
    assert result["compacted"] is False
    assert "keep_recent_tokens=10000000 keeps all" in result["message"]
    suggested = result["suggested_keep"]
    assert suggested["keep_recent_turns"] == 3
    again = rpc("session.compact", key=key, keep_recent_tokens=suggested["keep_recent_tokens"])
    assert again["compacted"] and again["compaction"]["messages_compacted"] > 0


def test_a_single_turn_is_never_compacted_and_the_message_says_so(rpc: RPC) -> None:
    key = f"single-{next(_ids)}"
    rpc.append(key, conversation(1))
    result = rpc("session.compact", key=key, keep_recent_tokens=10)
    assert result["compacted"] is False and result["suggested_keep"] is None
    assert "single turn" in result["message"] and "within" not in result["message"]


def test_both_keeps_at_once_is_a_clear_error(rpc: RPC) -> None:
    key = f"both-{next(_ids)}"
    rpc.append(key, conversation(3))
    error = rpc.error("session.compact", key=key, keep_recent_tokens=100, keep_recent_turns=1)
    assert error["code"] == -32602 and error["data"]["field"] == "keep_recent_turns"
    error = rpc.error("session.compact", key=key, keep_recent_turns=0)
    assert error["code"] == -32602 and error["data"]["field"] == "keep_recent_turns"
