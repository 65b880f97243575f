"""Where to cut a live conversation, when to auto-compact, and what a valid live list is.

The cut rule (see choose_cut) only ever cuts at the start of a turn, so the kept tail opens
with a user message, and never inside a tool call → tool result span. After one compaction the
only turn boundary whose suffix holds keep_recent_tokens is the first kept message, which sits
right after the summary; choose_cut then returns 0, so repeated compaction without new messages
converges after one pass and can never loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sessionscope.compaction.settings import AutoCompactPolicy

Message = dict[str, Any]


def is_summary(message: Message) -> bool:
    return message.get("kind") == "summary"


def message_tokens(message: Message) -> int:
    tokens = message.get("tokens")
    if isinstance(tokens, int) and not isinstance(tokens, bool):
        return tokens
    # The store always counts; this estimate only serves callers that pass raw dicts.
    size = len(message.get("content") or "")
    for call in message.get("tool_calls") or ():
        size += len(call.get("name") or "") + len(call.get("arguments") or "")
    return size // 4 + 3


def _unsafe_cut_points(messages: Sequence[Message]) -> list[bool]:
    """unsafe[i] is True when cutting before index i would separate a tool call from a result."""
    n = len(messages)
    call_index: dict[str, int] = {}
    delta = [0] * (n + 2)
    for i, m in enumerate(messages):
        for call in m.get("tool_calls") or ():
            call_id = call.get("id")
            if call_id:
                call_index[call_id] = i
        if m.get("role") == "tool":
            c = call_index.get(m.get("tool_call_id") or "")
            if c is not None and c < i:
                # Cut points c+1 .. i (inclusive) would put the call before and the result after.
                delta[c + 1] += 1
                delta[i + 1] -= 1
    unsafe = [False] * (n + 1)
    depth = 0
    for i in range(n + 1):
        depth += delta[i]
        unsafe[i] = depth > 0
    return unsafe


def turn_boundaries(messages: Sequence[Message]) -> list[int]:
    """Indexes where a turn starts (a user message) and a cut is safe, ascending."""
    unsafe = _unsafe_cut_points(messages)
    return [i for i, m in enumerate(messages) if m.get("role") == "user" and not unsafe[i]]


def choose_cut(messages: Sequence[Message], keep_recent_tokens: int) -> int:
    """Index of the first message that stays live; messages[:cut] are summarized.

    The kept tail is the shortest suffix that starts on a turn boundary and holds at least
    keep_recent_tokens. 0 means nothing to compact: the conversation is smaller than that,
    no boundary qualifies, or only an earlier summary lies before the chosen boundary (a
    summary of a summary alone gains nothing and is how compaction loops begin).
    """
    if keep_recent_tokens < 0:
        raise ValueError("keep_recent_tokens must be >= 0")
    suffix = 0
    boundaries = set(turn_boundaries(messages))
    chosen = 0
    for i in range(len(messages) - 1, -1, -1):
        suffix += message_tokens(messages[i])
        if i in boundaries and suffix >= keep_recent_tokens:
            chosen = i
            break
    if chosen == 0:
        return 0
    if all(is_summary(m) for m in messages[:chosen]):
        return 0
    return chosen


def needs_auto_compaction(live_tokens: int, policy: AutoCompactPolicy) -> bool:
    """True when the live context has reached threshold × context_window.

    The store must still run choose_cut: when it returns 0 (one huge recent turn), nothing is
    compacted and the next check after a later append decides again, so nothing loops.
    """
    if policy.context_window is None:
        return False
    return live_tokens >= policy.threshold * policy.context_window


def validate_conversation(messages: Sequence[Message]) -> list[str]:
    """Problems that would make this live list unusable as model context; [] when valid.

    - a tool result needs an earlier call with its id in this same list, answered once;
    - a call may lack its result only in the trailing exchange (the agent is still running it);
    - seq, where present, strictly increases;
    - a summary message may only come first.
    """
    problems: list[str] = []
    open_calls: dict[str, int] = {}
    answered: set[str] = set()
    last_seq: int | None = None
    for i, m in enumerate(messages):
        seq = m.get("seq")
        if isinstance(seq, int):
            if last_seq is not None and seq <= last_seq:
                problems.append(f"message {i}: seq {seq} does not follow seq {last_seq}")
            last_seq = seq
        if is_summary(m) and i != 0:
            problems.append(f"message {i}: summary is not the first message")
        role = m.get("role")
        if role == "tool":
            call_id = m.get("tool_call_id")
            if not call_id:
                problems.append(f"message {i}: tool result without tool_call_id")
            elif call_id in answered:
                problems.append(f"message {i}: second result for tool call {call_id}")
            elif call_id not in open_calls:
                problems.append(f"message {i}: tool result {call_id} has no preceding call")
            else:
                del open_calls[call_id]
                answered.add(call_id)
            continue
        if open_calls and role in ("user", "assistant"):
            # A new turn or step began while calls were still unanswered.
            for call_id, at in sorted(open_calls.items(), key=lambda kv: kv[1]):
                problems.append(f"message {at}: tool call {call_id} has no result")
            open_calls.clear()
        for call in m.get("tool_calls") or ():
            call_id = call.get("id")
            if not call_id:
                problems.append(f"message {i}: tool call without id")
            elif call_id in open_calls or call_id in answered:
                problems.append(f"message {i}: duplicate tool call id {call_id}")
            else:
                open_calls[call_id] = i
    return problems


def cut_for_turns(messages: Sequence[Message], keep_recent_turns: int) -> int:
    """Like choose_cut, but the kept tail is the last `keep_recent_turns` whole turns."""
    if keep_recent_turns < 1:
        raise ValueError("keep_recent_turns must be >= 1")
    boundaries = turn_boundaries(messages)
    if len(boundaries) < keep_recent_turns:
        return 0
    chosen = boundaries[-keep_recent_turns]
    if chosen == 0 or all(is_summary(m) for m in messages[:chosen]):
        return 0
    return chosen


def nothing_to_compact(
    messages: Sequence[Message], keep_recent_tokens: int, keep_recent_turns: int | None = None
) -> tuple[str, dict[str, int] | None]:
    """Why choose_cut (or cut_for_turns) found nothing, and a smaller keep that would compact.

    The suggestion keeps as much as possible: the tail from the earliest turn boundary that has
    something other than a summary before it. None when the live context is a single turn.
    """
    total = sum(message_tokens(m) for m in messages)
    usable = [b for b in turn_boundaries(messages) if b > 0 and not all(is_summary(m) for m in messages[:b])]
    turns = len([b for b in turn_boundaries(messages) if not is_summary(messages[b])])
    asked = (f"keep_recent_turns={keep_recent_turns}" if keep_recent_turns is not None
             else f"keep_recent_tokens={keep_recent_tokens}")
    if not usable:
        single = (f"nothing to compact: the live context ({total} tokens) is a single turn, and compaction "
                  "only cuts at the start of a turn")
        return single, None
    first = usable[0]
    suggestion = {
        "keep_recent_tokens": sum(message_tokens(m) for m in messages[first:]),
        "keep_recent_turns": len([b for b in usable if b >= first]),
    }
    message = (f"nothing to compact: {asked} keeps all {total} live tokens ({turns} turns, and a cut only "
               "falls at the start of a turn); "
               f"keep_recent_tokens={suggestion['keep_recent_tokens']} or keep_recent_turns="
               f"{suggestion['keep_recent_turns']} would compact the oldest turn")
    return message, suggestion
