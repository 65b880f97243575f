"""Deterministic extractive summarizer: no network, no model, byte-identical output per input.

Every message of the compacted span, whatever its role, yields candidate lines for one section:
the user's goal and requests, decisions, facts (tool results and tool calls included, each
attributed to the tool that produced it), errors with their fixes, and open tasks. A sentence
with no fact, request or decision in it yields nothing. Candidates of one template (the same
text but for its numbers) are merged, so thirty identical cron runs cost one line. The budget
is a ceiling, not a target: the summary is as long as what the span says, at most
`max_summary_tokens` and at most BUDGET_RATIO of the span. Identifiers that no kept line
mentions are listed last, most salient first, because an agent that still knows the exact
path or id can look the rest up again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sessionscope.compaction import extract
from sessionscope.compaction.extract import Entities

GOAL = "Goal and requests"
DECISIONS = "Decisions"
FACTS = "Facts and identifiers"
ERRORS = "Errors and fixes"
OPEN = "Open tasks"
FOCUS = "Focus"
EARLIER = "Earlier summary"
SECTION_ORDER = (FOCUS, GOAL, DECISIONS, FACTS, ERRORS, OPEN, EARLIER)
SECTIONS = (GOAL, DECISIONS, FACTS, ERRORS, OPEN)  # the ones every summarizer writes

MIN_BUDGET_TOKENS = 400
BUDGET_RATIO = 0.12  # the summary stays under 12% of its span, so reduction stays >= 85%
IDENTIFIER_SHARE = 0.3  # of the budget, kept back for the identifiers line at least,
MAX_IDENTIFIER_SHARE = 0.6  # and at most, however many there are
MAX_SENTENCE_CHARS = 320
MAX_FACT_CHARS = 360
PASTED_CHARS = 1500
SENTENCE_CHARS = 6000  # of one message, split into candidate sentences
MAX_SCAN_CHARS = 80_000  # of one user or assistant message, for identifiers
TOOL_HEAD_CHARS = 2500  # of a tool result: the command echo and first lines say what it was,
TOOL_TAIL_CHARS = 1000  # the last lines the verdict
TOOL_SCAN_CHARS = 40_000  # of one tool result (its head and tail), scanned for identifiers when read in full
SCAN_CHARS = 400_000  # of the span read in full per summary, newest first
SKIM_CHARS = 200  # of each older tool result beyond that, from its start and its end
WEAK_SCORE = 4.0
RESOLUTION_WINDOW = 12  # messages after an error in which we look for its fix


@dataclass(slots=True)
class Candidate:
    section: str
    text: str
    score: float
    pos: float  # conversation order; carried lines from an earlier summary are negative
    cost: int = 0
    similar: int = 0  # merged candidates of the same shape
    shape: str = field(default="", repr=False)


def estimate_tokens(text: str) -> int:
    # ~3.5 characters per o200k token across prose, code and paths; exact counts would cost
    # one BPE pass per candidate and the budget does not need them.
    return len(text) * 2 // 7 + 1


def summarize_offline(
    messages: Sequence[dict[str, Any]], instructions: str | None = None, max_summary_tokens: int = 4000
) -> str:
    input_tokens = sum(estimate_tokens(_message_text(m)) for m in messages)
    budget = min(max_summary_tokens, max(MIN_BUDGET_TOKENS, int(input_tokens * BUDGET_RATIO)))
    focus = extract.focus_pattern(instructions)
    entities = Entities()
    candidates = _merge_similar(list(_candidates(messages, focus, entities)))
    # Salient lines first; then the identifiers nobody restated; then what room is left goes to
    # the weaker lines (file contents, standing instructions), which can be read again.
    strong = [c for c in candidates if c.score >= WEAK_SCORE]
    tight = input_tokens * BUDGET_RATIO > max_summary_tokens  # the ceiling, not the span, sets the size
    share = _identifier_share(entities, budget) if tight else IDENTIFIER_SHARE
    chosen = _select(strong, budget - int(budget * share))
    kept_text = " ".join(c.text for c in chosen).lower()
    spent = sum(c.cost for c in chosen)
    # Paths and ids run ~2.5 characters per token, denser than prose.
    identifiers = entities.uncovered(kept_text, max(0, budget - spent) * 5 // 2)
    spent += sum(len(v) * 2 // 5 + 1 for v in identifiers)
    chosen += _select([c for c in candidates if c.score < WEAK_SCORE], budget - spent)
    compacted = sum(1 for m in messages if not extract.is_summary(m))
    return _render(chosen, identifiers, compacted, instructions if focus else None)


def _identifier_share(entities: Entities, budget: int) -> float:
    """The part of the budget kept back for the identifiers line when the ceiling binds.

    When the span names more than the budget holds, a bare identifier is the denser fact: ten
    paths in a list cost what one sentence about one of them costs, and the agent can read the
    file again but cannot guess its path. So the reserve grows with what there is to list.
    """
    demand = sum(len(v) * 2 // 5 + 1 for v in entities.uncovered("", budget * 5 // 2))
    return min(MAX_IDENTIFIER_SHARE, max(IDENTIFIER_SHARE, demand / max(1, budget)))


def extracted_facts(messages: Sequence[dict[str, Any]], limit_tokens: int = 1500) -> list[str]:
    """The lines the offline summarizer would keep, as a checklist for another summarizer."""
    entities = Entities()
    candidates = _merge_similar(list(_candidates(messages, None, entities)))
    chosen = sorted(_select(candidates, limit_tokens), key=lambda c: c.pos)
    kept_text = " ".join(c.text for c in chosen).lower()
    identifiers = entities.uncovered(kept_text, limit_tokens)
    return [c.text for c in chosen] + ([f"Identifiers: {', '.join(identifiers)}"] if identifiers else [])


def _message_text(m: dict[str, Any]) -> str:
    text = m.get("content") or ""
    for call in m.get("tool_calls") or ():
        text += " " + (call.get("name") or "") + " " + (call.get("arguments") or "")
    return text


def _candidates(
    messages: Sequence[dict[str, Any]], focus: re.Pattern[str] | None, entities: Entities
) -> Iterable[Candidate]:
    n = max(1, len(messages))
    users = [i for i, m in enumerate(messages) if m.get("role") == "user" and _informative_user(m)]
    # A pasted document (AGENTS.md, a log) is context, not the goal; the first short request is.
    short = [i for i in users if len(messages[i].get("content") or "") <= PASTED_CHARS]
    first_user = short[0] if short else users[0] if users else -1
    if messages and extract.is_summary(messages[0]):
        first_user = -1  # the goal is the earlier summary's; newer requests are requests
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    answered = {m.get("tool_call_id") for m in messages if m.get("role") == "tool"}
    calls = {c.get("id"): c for m in messages for c in m.get("tool_calls") or () if c.get("id")}
    used_fixes: set[tuple[int, int]] = set()
    framing = extract.boilerplate_keys(
        [(m.get("tool_name") or "tool", m.get("content") or "") for m in messages if m.get("role") == "tool"]
    )
    skip = {tool: frozenset(k for t, k in framing if t == tool) for tool, _ in framing}
    read = _read_in_full(messages)
    for i, m in enumerate(messages):
        role = m.get("role")
        recency = i / n
        if extract.is_summary(m):
            yield from _carried(m.get("content") or "", i, entities)
        elif role == "tool":
            skip_keys = skip.get(m.get("tool_name") or "tool", frozenset())
            yield from _tool_candidates(messages, i, calls, focus, entities, recency, used_fixes, skip_keys,
                                        full=i in read)
        elif role in ("user", "system"):
            if i != first_user and i not in read and not _asks_cheaply(m.get("content") or ""):
                continue  # skimmed: only constraints and decisions are looked for
            latest = (i == last_user and i != first_user and bool(users) and users[-1] == i
                      and _asks(m.get("content") or ""))
            yield from _user_candidates(m, i, focus, entities, recency, goal=i == first_user, latest=bool(latest))
        elif i in read or extract.DECISION.search(m.get("content") or "") is not None:
            pending = [c for c in m.get("tool_calls") or () if c.get("id") not in answered]
            yield from _assistant_candidates(m, i, focus, entities, recency, i > last_user, pending, used_fixes)


def _read_in_full(messages: Sequence[dict[str, Any]]) -> set[int]:
    """Messages read sentence by sentence and line by line, newest first, up to SCAN_CHARS.

    Older ones (only in very long spans) are skimmed: a tool result for an error, an assistant
    message for a decision, at a cost that does not grow with their size. This is what keeps a
    10,000-message compaction under a second.
    """
    read: set[int] = set()
    spent = 0
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        spent += min(len(m.get("content") or ""), TOOL_SCAN_CHARS)
        if spent > SCAN_CHARS:
            break
        read.add(i)
    return read


_NAMES_HINT = re.compile(r"[\d/@#`]|[A-Z]{2}|\w[._-]\w")


def _asks_cheaply(content: str) -> bool:
    """For a skimmed message: a constraint or a decision, found without an identifier scan."""
    return bool(extract.CONSTRAINT.search(content) or extract.DECISION.search(content))


def _asks(content: str) -> bool:
    """Names something or states a constraint: "could you clarify?" does neither."""
    return bool(extract.request_entities(content) or extract.CONSTRAINT.search(content)
                or extract.DECISION.search(content))


def _informative_user(m: dict[str, Any]) -> bool:
    content = extract.strip_tags(m.get("content") or "")
    if len(content.split()) < 5:
        return False  # "/Users/x/repo bash": context a harness sent, not something asked
    # Cheap tests only: this runs over every user message of the span.
    return len(content) >= 40 or bool(_NAMES_HINT.search(content) or extract.CONSTRAINT.search(content))


def _focus_bonus(text: str, focus: re.Pattern[str] | None) -> float:
    return 6.0 if focus is not None and focus.search(text) is not None else 0.0


def _user_candidates(
    m: dict[str, Any], i: int, focus: re.Pattern[str] | None, entities: Entities, recency: float,
    goal: bool, latest: bool,
) -> Iterable[Candidate]:
    content = extract.strip_tags(m.get("content") or "")
    system = m.get("role") != "user"
    # System prompts and pasted documents name much that the agent never needs again.
    weight = 1 if system or len(content) > PASTED_CHARS else 3
    if goal or latest:
        entities.add(content[:MAX_SCAN_CHARS], i, weight=weight)
        quoted = _clip(content, 2 * MAX_SENTENCE_CHARS)
        if goal:
            yield Candidate(GOAL, f'Goal: "{quoted}"', 100.0, i)
        else:
            yield Candidate(OPEN, f'Latest request: "{quoted}"', 90.0, i)
        return
    entities.add(content[SENTENCE_CHARS:MAX_SCAN_CHARS], i, weight=weight)
    for j, sentence in enumerate(extract.sentences(content, SENTENCE_CHARS)):
        found, named = entities.add(sentence, i, weight=weight)
        if weight == 1:
            # Standing instructions: only what names a concrete thing, and below the user's words.
            if named:
                who = "system" if system else "pasted"
                yield Candidate(FACTS, f'{who}: "{_clip(sentence)}"', 2.0 + recency, i + j / 1000)
            continue
        if not (named or extract.CONSTRAINT.search(sentence) or extract.DECISION.search(sentence)):
            continue  # "thanks", "could you clarify?": nothing an agent has to remember
        score = 8.0 + min(found, 3) * 0.8 + recency + _focus_bonus(sentence, focus)
        yield Candidate(GOAL, f'"{_clip(sentence)}"', score, i + j / 1000)


def _assistant_candidates(
    m: dict[str, Any], i: int, focus: re.Pattern[str] | None, entities: Entities, recency: float,
    tail: bool, pending: list[dict[str, Any]], used_fixes: set[tuple[int, int]],
) -> Iterable[Candidate]:
    for call in m.get("tool_calls") or ():
        entities.add(extract.arguments_values(call.get("arguments") or "")[:MAX_SCAN_CHARS], i, weight=2)
    content = m.get("content") or ""
    prose = extract.strip_code(content)
    entities.add(prose[SENTENCE_CHARS:MAX_SCAN_CHARS], i, weight=2)
    entities.add(extract.code_blocks(content)[:MAX_SCAN_CHARS], i, weight=1)  # code it wrote: weaker
    for j, sentence in enumerate(extract.sentences(prose, SENTENCE_CHARS)):
        found, _named = entities.add(sentence, i, weight=2)
        if (i, j) in used_fixes:
            continue  # already printed as the fix of its error
        bonus = _focus_bonus(sentence, focus)
        score = min(found, 3) * 0.8 + bonus
        pos = i + j / 1000
        if extract.DECISION.search(sentence):
            section, score = DECISIONS, score + 7.0 + recency
        elif extract.RESOLVED.search(sentence) and (found or extract.STATE_WORDS.search(sentence)):
            section, score = ERRORS, score + 6.0 + recency
        elif extract.NEXT_STEP.search(sentence) and tail:
            section, score = OPEN, score + 6.0 + 2 * recency
        elif found and not extract.NARRATION.match(sentence):
            state = extract.STATE_WORDS.search(sentence) is not None
            section, score = FACTS, score + 3.0 + (1.5 if state else 0.0) + recency
        elif bonus:
            section = FOCUS
        else:
            continue  # narration or chatter: says nothing once the step is over
        if bonus and section not in (FOCUS, OPEN):
            section = FOCUS
        yield Candidate(section, _clip(sentence), score, pos)
    for call in pending:
        text = f"Awaiting result: {extract.call_summary(call.get('name') or '?', call.get('arguments') or '', 120)}"
        yield Candidate(OPEN, text, 6.0 + recency, i + 0.999)


def _tool_candidates(
    messages: Sequence[dict[str, Any]], i: int, calls: dict[str, dict[str, Any]],
    focus: re.Pattern[str] | None, entities: Entities, recency: float, used_fixes: set[tuple[int, int]],
    skip_keys: frozenset[str], full: bool,
) -> Iterable[Candidate]:
    m = messages[i]
    content = extract.head_tail(m.get("content") or "", TOOL_HEAD_CHARS, TOOL_TAIL_CHARS)
    if not full:
        content = extract.head_tail(content, SKIM_CHARS, SKIM_CHARS)
        if not (m.get("is_error") or extract.has_error(content)):
            return
    tool = m.get("tool_name") or "tool"
    call = calls.get(m.get("tool_call_id") or "") or {}
    exploring = extract.is_exploring(tool, call.get("arguments") or "")
    # Outputs name the files and ids the agent goes on to use, a failed build's included (the
    # file it could not read, the version it ran); a skimmed one is looked at for its verdict only.
    whole = extract.head_tail(m.get("content") or "", TOOL_SCAN_CHARS * 3 // 4, TOOL_SCAN_CHARS // 4)
    if m.get("is_error") or (not exploring and extract.has_error(content)):
        leaves = extract.result_facts(content) if content.lstrip()[:1] in ("{", "[") else []
        line = "; ".join(leaves) if leaves else extract.error_line(content) or extract.flatten(content)
        if m.get("is_error") or line:
            if full:
                entities.add(extract.without_routine_logs(whole), i, weight=1)
            entities.add(line, i, weight=2)
            fix = _resolution(messages, i, tool, used_fixes)
            called = extract.call_summary(tool, call.get("arguments") or "", 60)
            text = f"{called} failed: {_clip(line, 240)} → {fix}"
            yield Candidate(ERRORS, text, 9.0 + recency + _focus_bonus(text, focus), i)
            return
    facts = extract.result_facts(content, skip_keys, limit=3 if exploring else 7)
    entities.add(extract.without_routine_logs(whole) if full else "\n".join(facts), i, weight=1)
    mutating = extract.MUTATING.search(tool) is not None
    if not facts and not mutating:
        return
    weight = sum(extract.leaf_weight(f) for f in facts)
    if not facts:
        text = f"{extract.call_summary(tool, call.get('arguments') or '', 80)} → {_clip(content, 60) or 'ok'}"
        yield Candidate(FACTS, text, 5.0 + recency, i)
        return
    joined = "; ".join(facts)
    prefix = extract.call_summary(tool, call.get("arguments") or "", 60) if mutating else f"`{tool}`"
    text = _clip(f"{prefix} returned {joined}", MAX_FACT_CHARS)
    score = 4.0 + min(weight, 6.0) * 0.6 + (1.0 if mutating else 0.0) + recency + _focus_bonus(text, focus)
    if exploring:
        score -= 1.0  # a file or listing the agent can read again
    yield Candidate(FOCUS if _focus_bonus(text, focus) else FACTS, text, score, i)


def _resolution(
    messages: Sequence[dict[str, Any]], i: int, tool: str, used_fixes: set[tuple[int, int]]
) -> str:
    window = range(i + 1, min(len(messages), i + 1 + RESOLUTION_WINDOW))
    # The agent saying how it fixed it beats any later success, which may be unrelated; the
    # success still says what the fixed call produced.
    said = None
    for k in window:
        m = messages[k]
        if m.get("role") == "user":
            break
        if m.get("role") == "assistant" and said is None:
            for j, sentence in enumerate(extract.sentences(extract.strip_code(m.get("content") or ""))):
                if extract.RESOLVED.search(sentence) and (k, j) not in used_fixes:
                    used_fixes.add((k, j))
                    said = "fix: " + _clip(sentence, 240)
                    break
    later = _later_success(messages, window, tool, _first_arg(messages, i), any_tool=said is not None)
    if said is not None:
        return f"{said} ({later})" if later else said
    return later or "unresolved"


def _first_arg(messages: Sequence[dict[str, Any]], i: int) -> str:
    """The first argument of the call that message i answers: what a retry repeats."""
    call_id = messages[i].get("tool_call_id")
    for m in messages[max(0, i - RESOLUTION_WINDOW) : i][::-1]:
        for call in m.get("tool_calls") or ():
            if call.get("id") == call_id:
                return extract.arguments_values(call.get("arguments") or "").split("\n", 1)[0]
    return ""


def _later_success(
    messages: Sequence[dict[str, Any]], window: range, tool: str, first_arg: str, any_tool: bool
) -> str | None:
    """What the retry (same tool, same first argument) or, after a stated fix, another tool returned."""
    for k in window:
        m = messages[k]
        if m.get("role") == "user":
            break
        name = m.get("tool_name") or "tool"
        retry = name == tool and _first_arg(messages, k) == first_arg
        other = any_tool and name != tool and not extract.EXPLORING.match(name)
        ok = m.get("role") == "tool" and not m.get("is_error") and (retry or other)
        content = extract.head_tail(m.get("content") or "")
        if ok and not extract.has_error(content):
            facts = extract.result_facts(content)
            said = f": {_clip('; '.join(facts), 200)}" if facts else ""
            return f"a later `{name}` call succeeded{said}"
    return None


def _carried(summary: str, i: int, entities: Entities) -> Iterable[Candidate]:
    """Lines of an earlier summary, back into the matching section so it does not nest."""
    section = EARLIER
    for j, raw in enumerate(summary.splitlines()):
        line = raw.strip()
        if not line or line.startswith(("# ", extract.SUMMARY_HEADER)):
            continue
        if line.startswith("## "):
            section = _section_for(line[3:])
            continue
        line = line.lstrip("-*• ").strip()
        if line.startswith("Identifiers:"):
            entities.add_listed(line[len("Identifiers:") :], i - 1)
            continue
        entities.add(line, i - 1, weight=3)
        yield Candidate(section, _clip(line, 2 * MAX_SENTENCE_CHARS), 10.0, -1000.0 + i + j / 10000)


def _section_for(header: str) -> str:
    h = header.lower()
    for prefix, section in (("goal", GOAL), ("request", GOAL), ("decision", DECISIONS), ("fact", FACTS),
                            ("error", ERRORS)):
        if h.startswith(prefix):
            return section
    # An earlier "open task" is history by now; so is anything we do not recognise.
    return FOCUS if h.startswith("focus") else EARLIER


def _clip(text: str, limit: int = MAX_SENTENCE_CHARS) -> str:
    text = extract.flatten(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _merge_similar(candidates: list[Candidate]) -> list[Candidate]:
    """One candidate per text shape: the first keeps its place, the others count as `similar`."""
    by_shape: dict[tuple[str, str], Candidate] = {}
    out: list[Candidate] = []
    for c in candidates:
        c.shape = extract.shape_key(c.text)
        first = by_shape.get((c.section, c.shape))
        if first is not None:
            first.similar += 1
            first.score = max(first.score, c.score)
            continue
        by_shape[(c.section, c.shape)] = c
        out.append(c)
    for c in out:
        if c.similar:
            c.text += f" (and {c.similar} similar)"
        c.cost = estimate_tokens(c.text) + 1
    return out


def _select(candidates: list[Candidate], budget: int) -> list[Candidate]:
    # Best first; conversation order breaks ties so the output never depends on sort stability.
    chosen: list[Candidate] = []
    covered: set[str] = set()
    total = 0
    for c in sorted(candidates, key=lambda c: (-c.score, c.pos)):
        named = extract.values(c.text)
        if c.section == FACTS and named and named <= covered:
            continue  # every identifier it names is already in a better line
        if total + c.cost <= budget:
            total += c.cost
            chosen.append(c)
            covered |= named
    return chosen


def _render(chosen: list[Candidate], identifiers: list[str], compacted: int, instructions: str | None) -> str:
    by_section: dict[str, list[Candidate]] = {s: [] for s in SECTION_ORDER}
    for c in chosen:
        by_section[c.section].append(c)
    lines = [f"{extract.SUMMARY_HEADER} {compacted} earlier messages (offline extractive summary)."]
    for section in SECTION_ORDER:
        items = sorted(by_section[section], key=lambda c: c.pos)
        extra = [f"Identifiers: {', '.join(identifiers)}"] if section == FACTS and identifiers else []
        if not items and not extra:
            continue
        title = (
            f'{section} (operator instructions: "{_clip(instructions, 200)}")'
            if section == FOCUS and instructions
            else section
        )
        lines.append("")
        lines.append(f"## {title}")
        lines.extend(f"- {c.text}" for c in items)
        lines.extend(f"- {e}" for e in extra)
    return "\n".join(lines) + "\n"
