"""Cut policy: where compaction may cut, auto-compaction trigger, and the conversation validator."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionscope.compaction import summary_message
from sessionscope.compaction.policy import (
    choose_cut,
    needs_auto_compaction,
    turn_boundaries,
    validate_conversation,
)
from sessionscope.compaction.settings import AutoCompactPolicy, CompactionConfigError

Msg = dict[str, Any]


def user(tokens: int = 10) -> Msg:
    return {"role": "user", "content": "u", "tokens": tokens}


def text(tokens: int = 10) -> Msg:
    return {"role": "assistant", "content": "a", "tokens": tokens}


def call(*ids: str, tokens: int = 10) -> Msg:
    calls = [{"id": i, "name": "shell", "arguments": json.dumps({"cmd": "ls"})} for i in ids]
    return {"role": "assistant", "content": "", "tool_calls": calls, "tokens": tokens}


def result(call_id: str, tokens: int = 10, is_error: bool = False) -> Msg:
    return {
        "role": "tool",
        "tool_call_id": call_id,
        "tool_name": "shell",
        "content": "ok",
        "is_error": is_error,
        "tokens": tokens,
    }


def numbered(messages: list[Msg], start: int = 1) -> list[Msg]:
    return [dict(m, seq=start + k) for k, m in enumerate(messages)]


# --- choose_cut: the rule on small, hand-built conversations -------------------------------


def test_small_conversation_has_nothing_to_compact() -> None:
    conv = numbered([user(), text(), user(), text()])
    assert choose_cut(conv, keep_recent_tokens=1000) == 0


def test_kept_tail_is_shortest_turn_suffix_holding_keep_recent() -> None:
    conv = numbered([user(100), text(100), user(100), text(100), user(100), text(100)])
    # Suffix from index 4 holds 200 < 250; from index 2 it holds 400 >= 250.
    assert choose_cut(conv, keep_recent_tokens=250) == 2
    assert choose_cut(conv, keep_recent_tokens=200) == 4
    assert choose_cut(conv, keep_recent_tokens=0) == 4


def test_cut_never_lands_between_call_and_result() -> None:
    # A user message arrives while a tool result is outstanding (seen in imported sessions):
    # index 2 is a user message but cutting there would orphan result x.
    conv = numbered([user(50), call("x"), user(10), result("x", 500), text(10), user(10), text(10)])
    assert turn_boundaries(conv) == [0, 5]
    cut = choose_cut(conv, keep_recent_tokens=100)
    assert cut == 0  # index 5 holds 20 tokens only; index 2 is unsafe
    assert choose_cut(conv, keep_recent_tokens=20) == 5


def test_multi_result_calls_stay_whole() -> None:
    conv = numbered(
        [user(10), call("a", "b", "c"), result("a", 300), result("b"), result("c"), text(), user(5)]
    )
    cut = choose_cut(conv, keep_recent_tokens=5)
    assert cut == 6
    live = [summary_message("s", tokens=5), *conv[cut:]]
    assert validate_conversation(live) == []


def test_huge_last_turn_still_compacts_what_lies_before_it() -> None:
    conv = numbered([text(30), user(10), text(10), user(10), call("x"), result("x", 50_000), text(10)])
    assert choose_cut(conv, keep_recent_tokens=20_000) == 3


def test_huge_turn_after_only_a_summary_is_nothing_to_compact() -> None:
    conv = [summary_message("earlier", tokens=400), *numbered([user(10), call("x"), result("x", 50000)], 10)]
    assert choose_cut(conv, keep_recent_tokens=20_000) == 0


def test_second_compaction_includes_previous_summary() -> None:
    conv = [summary_message("earlier", tokens=400), *numbered([user(500), text(500), user(500), text(500)], 10)]
    cut = choose_cut(conv, keep_recent_tokens=1000)
    assert cut == 3  # summary + first turn go into the new summary
    assert choose_cut([summary_message("new", tokens=300), *conv[cut:]], keep_recent_tokens=1000) == 0


def test_conversation_without_user_messages_is_one_turn() -> None:
    conv = numbered([text(5000), call("x"), result("x", 5000), text(5000)])
    assert choose_cut(conv, keep_recent_tokens=10) == 0


def test_negative_keep_recent_is_rejected() -> None:
    with pytest.raises(ValueError):
        choose_cut([user()], keep_recent_tokens=-1)


def test_missing_token_counts_are_estimated_from_content() -> None:
    conv = [
        {"role": "user", "content": "x" * 4000},
        {"role": "assistant", "content": "y"},
        {"role": "user", "content": "z" * 4000},
        {"role": "assistant", "content": "w"},
    ]
    assert choose_cut(conv, keep_recent_tokens=900) == 2


# --- auto-compaction trigger ---------------------------------------------------------------


def test_needs_auto_compaction_at_threshold() -> None:
    policy = AutoCompactPolicy(context_window=100_000, threshold=0.85)
    assert not needs_auto_compaction(84_999, policy)
    assert needs_auto_compaction(85_000, policy)
    assert not needs_auto_compaction(10**9, AutoCompactPolicy(context_window=None))


@pytest.mark.parametrize(
    "kwargs", [{"threshold": 0.0}, {"threshold": 1.5}, {"context_window": 0}, {"keep_recent_tokens": -5}]
)
def test_policy_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(CompactionConfigError):
        AutoCompactPolicy(**kwargs)


# --- validate_conversation -----------------------------------------------------------------


def test_validator_accepts_valid_and_pending_tail() -> None:
    conv = numbered(
        [user(), call("a", "b"), result("a"), result("b", is_error=True), text(), user(), call("c")]
    )
    assert validate_conversation(conv) == []
    assert validate_conversation([summary_message("s"), *conv]) == []


@pytest.mark.parametrize(
    ("conv", "problem"),
    [
        ([user(), result("x")], "no preceding call"),
        ([user(), call("x"), result("x"), result("x")], "second result"),
        ([user(), call("x"), text(), result("x")], "has no result"),
        ([user(), call("x"), user()], "has no result"),
        ([user(), call("x"), result("x"), call("x"), result("x")], "duplicate tool call id"),
        ([user(), {"role": "tool", "content": "?", "tokens": 1}], "without tool_call_id"),
        ([user(), summary_message("s")], "summary is not the first"),
    ],
)
def test_validator_reports_each_problem(conv: list[Msg], problem: str) -> None:
    problems = validate_conversation(numbered(conv))
    assert any(problem in p for p in problems), problems


def test_validator_checks_seq_order() -> None:
    conv = numbered([user(), text(), user()])
    conv[2]["seq"] = 1
    assert any("does not follow" in p for p in validate_conversation(conv))


# --- property: compaction keeps every live list valid, ordered, and converges ----------------


@st.composite
def conversations(draw: st.DrawFn) -> tuple[list[Msg], list[int], int]:
    """A valid conversation, the batch sizes it is appended in, and keep_recent_tokens."""
    ids = itertools.count()
    messages: list[Msg] = []
    sizes = st.integers(1, 3000)
    kinds = draw(st.lists(st.sampled_from(["user", "user", "text", "call", "call"]), min_size=1, max_size=40))
    for kind in kinds:
        if kind == "user":
            messages.append(user(draw(sizes)))
        elif kind == "text":
            messages.append(text(draw(sizes)))
        else:
            call_ids = [f"c{next(ids)}" for _ in range(draw(st.integers(1, 3)))]
            messages.append(call(*call_ids, tokens=draw(sizes)))
            for cid in call_ids:
                messages.append(result(cid, draw(sizes), is_error=draw(st.booleans())))
    if draw(st.booleans()):  # the agent is still waiting on a call when the operator compacts
        messages.append(call(f"c{next(ids)}", tokens=draw(sizes)))
    seq0 = 1
    if draw(st.booleans()):  # an existing compaction: the live list opens with its summary
        messages.insert(0, summary_message("earlier summary", seq=1, tokens=draw(sizes)))
        seq0 = 2
    for k, m in enumerate(messages[1:] if seq0 == 2 else messages):
        m["seq"] = seq0 + k
    batches = draw(st.lists(st.integers(1, 12), min_size=1, max_size=len(messages)))
    keep = draw(st.sampled_from([0, 1, 500, 2000, 5000, 20_000]) | st.integers(0, 30_000))
    return messages, batches, keep


def expected_cut(live: list[Msg], keep: int) -> int:
    """The rule, restated naively (quadratic) as an oracle for choose_cut."""

    def safe(b: int) -> bool:
        calls_before = {c["id"] for m in live[:b] for c in m.get("tool_calls") or ()}
        return not any(m.get("tool_call_id") in calls_before for m in live[b:] if m["role"] == "tool")

    for b in range(len(live) - 1, 0, -1):
        if live[b]["role"] == "user" and safe(b) and sum(m["tokens"] for m in live[b:]) >= keep:
            return 0 if all(m.get("kind") == "summary" for m in live[:b]) else b
    return 0


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations())
def test_compaction_always_leaves_a_valid_ordered_live_list(case: tuple[list[Msg], list[int], int]) -> None:
    messages, batches, keep = case
    assert validate_conversation(messages) == []
    live: list[Msg] = []
    appended = 0
    compactions = 0
    for size in itertools.chain(batches, itertools.repeat(12)):
        if appended >= len(messages):
            break
        live.extend(messages[appended : appended + size])
        appended += size
        # Compact until there is nothing left to compact (an operator pressing the button
        # repeatedly, or auto-compaction re-checking after its own pass).
        for attempt in range(3):
            cut = choose_cut(live, keep)
            assert cut == expected_cut(live, keep)
            if cut == 0:
                break
            assert attempt == 0, "a second pass with no new messages must find nothing to compact"
            assert live[cut]["role"] == "user"
            live = [summary_message(f"summary {compactions}", tokens=300), *live[cut:]]
            compactions += 1
            assert validate_conversation(live) == []
    # Order kept: the live messages are exactly a suffix of everything appended, in seq order.
    kept = [m for m in live if m.get("kind") != "summary"]
    originals = [m for m in messages[:appended] if m.get("kind") != "summary"]
    assert kept == originals[len(originals) - len(kept) :]
    assert validate_conversation(live) == []


def _turns(n: int) -> list[dict]:
    out: list[dict] = []
    for t in range(n):
        out += [{"role": "user", "content": f"turn {t}", "tokens": 100},
                {"role": "assistant", "content": "", "tokens": 10,
                 "tool_calls": [{"id": f"c{t}", "name": "shell", "arguments": "{}"}]},
                {"role": "tool", "tool_call_id": f"c{t}", "content": "ok", "tokens": 50}]
    return out


def test_cut_for_turns_keeps_the_last_whole_turns() -> None:
    from sessionscope.compaction.policy import cut_for_turns

    messages = _turns(5)
    assert cut_for_turns(messages, 2) == 9
    assert cut_for_turns(messages, 5) == 0  # keeping every turn compacts nothing
    assert cut_for_turns(messages, 9) == 0


def test_nothing_to_compact_explains_a_single_turn_without_contradiction() -> None:
    from sessionscope.compaction.policy import choose_cut, nothing_to_compact

    one = _turns(1)  # 160 tokens live, keep 30: still one turn, nothing can be cut
    assert choose_cut(one, 30) == 0
    message, suggestion = nothing_to_compact(one, 30)
    assert suggestion is None and "single turn" in message and "within" not in message


def test_nothing_to_compact_suggests_a_keep_that_compacts_the_oldest_turn() -> None:
    from sessionscope.compaction.policy import choose_cut, cut_for_turns, nothing_to_compact

    messages = _turns(4)
    assert choose_cut(messages, 10_000) == 0
    message, suggestion = nothing_to_compact(messages, 10_000)
    assert "keep_recent_tokens=10000 keeps all 640 live tokens (4 turns" in message
    assert suggestion == {"keep_recent_tokens": 480, "keep_recent_turns": 3}
    assert choose_cut(messages, suggestion["keep_recent_tokens"]) == 3
    assert cut_for_turns(messages, suggestion["keep_recent_turns"]) == 3
