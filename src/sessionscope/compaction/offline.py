"""Deterministic extractive summarizer: no network, no model, byte-identical output per input.

Every sentence of the compacted messages becomes a scored candidate for one section; a token
budget is then filled section by section, best scores first, and each section is printed in
conversation order. Identifiers that no kept sentence mentions are listed on one line, because
an agent that still knows the exact path or id can look the rest up again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sessionscope.compaction import extract
from sessionscope.compaction.extract import Entities

REQUESTS = "Requests"
DECISIONS = "Decisions"
FACTS = "Facts & identifiers"
ERRORS = "Errors"
OPEN = "Open task / next steps"
FOCUS = "Focus"
EARLIER = "Earlier summary"
SECTION_ORDER = (FOCUS, REQUESTS, DECISIONS, FACTS, ERRORS, OPEN, EARLIER)
# Share of the budget each section may take before leftovers are handed out by score.
SECTION_SHARE = {
    FOCUS: 0.15,
    REQUESTS: 0.22,
    DECISIONS: 0.16,
    FACTS: 0.14,
    ERRORS: 0.12,
    OPEN: 0.09,
    EARLIER: 0.12,
}
IDENTIFIER_SHARE = 0.12

MIN_BUDGET_TOKENS = 400
BUDGET_RATIO = 0.2  # the summary aims at <= 20% of its input, so reduction stays >= 70-80%
MAX_SENTENCE_CHARS = 320
RESOLUTION_WINDOW = 12  # messages after an error in which we look for its fix


@dataclass(slots=True)
class Candidate:
    section: str
    text: str
    score: float
    pos: float  # conversation order; carried lines from an earlier summary are negative
    cost: int


def estimate_tokens(text: str) -> int:
    # ~3.5 characters per o200k token across prose, code and paths; exact counts would cost
    # one BPE pass per candidate and the budget does not need them.
    return len(text) * 2 // 7 + 1


def summarize_offline(
    messages: Sequence[dict[str, Any]], instructions: str | None = None, max_summary_tokens: int = 2000
) -> str:
    input_tokens = sum(estimate_tokens(_message_text(m)) for m in messages)
    budget = min(max_summary_tokens, max(MIN_BUDGET_TOKENS, int(input_tokens * BUDGET_RATIO)))
    focus = extract.focus_pattern(instructions)
    entities = Entities()
    candidates = list(_candidates(messages, focus, entities))
    chosen = _select(candidates, budget, has_focus=focus is not None)
    kept_text = " ".join(c.text for c in chosen).lower()
    identifiers = entities.uncovered(kept_text, int(budget * IDENTIFIER_SHARE) * 7 // 2)
    compacted = sum(1 for m in messages if not extract.is_summary(m))
    return _render(chosen, identifiers, compacted, instructions if focus else None)


def _message_text(m: dict[str, Any]) -> str:
    text = m.get("content") or ""
    for call in m.get("tool_calls") or ():
        text += " " + (call.get("name") or "") + " " + (call.get("arguments") or "")
    return text


def _candidates(
    messages: Sequence[dict[str, Any]], focus: re.Pattern[str] | None, entities: Entities
) -> Iterable[Candidate]:
    n = max(1, len(messages))
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    answered = {m.get("tool_call_id") for m in messages if m.get("role") == "tool"}
    for i, m in enumerate(messages):
        role = m.get("role")
        recency = i / n
        if extract.is_summary(m):
            yield from _carried(m.get("content") or "", i, entities)
        elif role == "tool":
            yield from _tool_candidates(messages, i, focus, entities, recency)
        elif role == "user" or role == "system":
            yield from _user_candidates(m, i, focus, entities, recency, latest=i == last_user)
        else:
            pending = [c for c in m.get("tool_calls") or () if c.get("id") not in answered]
            yield from _assistant_candidates(m, i, focus, entities, recency, i > last_user, pending)


def _sentence_score(sentence: str, entity_count: int, focus: re.Pattern[str] | None) -> tuple[float, bool]:
    hit = focus is not None and focus.search(sentence) is not None
    return min(entity_count, 3) * 0.8 + (6.0 if hit else 0.0), hit


def _user_candidates(
    m: dict[str, Any], i: int, focus: re.Pattern[str] | None, entities: Entities, recency: float, latest: bool
) -> Iterable[Candidate]:
    content = m.get("content") or ""
    who = "" if m.get("role") == "user" else "system: "
    quoted = ""
    if latest:
        quoted = _clip(content, 2 * MAX_SENTENCE_CHARS)
        text = f'Latest request: "{quoted}"'
        yield Candidate(OPEN, text, 100.0, i, estimate_tokens(text))
    for j, sentence in enumerate(extract.sentences(content)):
        found = entities.add(sentence, i, weight=3)
        if quoted and extract.flatten(sentence) in quoted:
            continue  # already quoted whole as the latest request
        score, _hit = _sentence_score(sentence, found, focus)
        if extract.CONSTRAINT.search(sentence):
            score += 3.0
        elif len(sentence) < 25 and not found:
            continue  # "ok", "thanks", "go ahead": no information to keep
        score += 3.0 + recency
        text = f'{who}"{_clip(sentence)}"'
        yield Candidate(REQUESTS, text, score, i + j / 1000, estimate_tokens(text))


def _assistant_candidates(
    m: dict[str, Any],
    i: int,
    focus: re.Pattern[str] | None,
    entities: Entities,
    recency: float,
    tail: bool,
    pending: list[dict[str, Any]],
) -> Iterable[Candidate]:
    for call in m.get("tool_calls") or ():
        entities.add(call.get("arguments") or "", i, weight=2)
    for j, sentence in enumerate(extract.sentences(extract.strip_code(m.get("content") or ""))):
        found = entities.add(sentence, i, weight=2)
        score, hit = _sentence_score(sentence, found, focus)
        pos = i + j / 1000
        if extract.DECISION.search(sentence):
            section, score = DECISIONS, score + 4.0 + recency
        elif extract.ERROR_TEXT.search(sentence):
            section, score = ERRORS, score + 2.0 + recency
        elif extract.NEXT_STEP.search(sentence):
            # Plans made long ago are history; only those after the last request are "open".
            section, score = (OPEN, score + 3.0 + 2 * recency) if tail else (DECISIONS, score + 1.0 + recency)
        elif found:
            section, score = FACTS, score + 1.0 + recency
        elif hit:
            section = FOCUS
        else:
            continue
        if extract.NARRATION.match(sentence):
            if not found:
                continue  # "Checking this next." says nothing once the step is over
            score -= 2.0
        if hit and section != FOCUS and section != OPEN:
            section = FOCUS
        text = _clip(sentence)
        yield Candidate(section, text, score, pos, estimate_tokens(text))
    if pending:
        for call in pending:
            text = f"Awaiting result: `{call.get('name')}` {_clip(call.get('arguments') or '', 120)}"
            yield Candidate(OPEN, text, 2.0 + recency, i + 0.999, estimate_tokens(text))


def _tool_candidates(
    messages: Sequence[dict[str, Any]],
    i: int,
    focus: re.Pattern[str] | None,
    entities: Entities,
    recency: float,
) -> Iterable[Candidate]:
    m = messages[i]
    content = extract.head_tail(m.get("content") or "")
    tool = m.get("tool_name") or "tool"
    error_line = extract.error_line(content) if m.get("is_error") or extract.has_error(content) else None
    if m.get("is_error") or error_line:
        line = error_line or extract.flatten(content)
        fix = _resolution(messages, i, tool)
        text = f"`{tool}` failed: {_clip(line, 200)} → {fix}"
        entities.add(line, i, weight=2)
        hit = focus is not None and focus.search(text) is not None
        score = 5.0 + recency + (6.0 if hit else 0.0)
        yield Candidate(ERRORS, text, score, i, estimate_tokens(text))
        return
    for j, line in enumerate(extract.fact_lines(content)):
        found = entities.add(line, i, weight=1)
        score, hit = _sentence_score(line, found, focus)
        text = f"{tool}: {_clip(line, 200)}"
        yield Candidate(FOCUS if hit else FACTS, text, score + recency, i + j / 1000, estimate_tokens(text))


def _resolution(messages: Sequence[dict[str, Any]], i: int, tool: str) -> str:
    window = messages[i + 1 : i + 1 + RESOLUTION_WINDOW]
    # The agent saying how it fixed it beats any later success, which may be unrelated.
    for m in window:
        if m.get("role") == "assistant":
            for sentence in extract.sentences(extract.strip_code(m.get("content") or "")):
                if extract.RESOLVED.search(sentence):
                    return "resolved: " + _clip(sentence, 200)
    for m in window:
        same_tool = m.get("role") == "tool" and m.get("tool_name") == tool and not m.get("is_error")
        if same_tool and not extract.has_error(extract.head_tail(m.get("content") or "")):
            return f"a later `{tool}` call succeeded"
    return "unresolved"


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
        text = _clip(line, 2 * MAX_SENTENCE_CHARS)
        yield Candidate(section, text, 6.0, -1000.0 + i + j / 10000, estimate_tokens(text))


def _section_for(header: str) -> str:
    h = header.lower()
    for prefix, section in (
        ("request", REQUESTS),
        ("decision", DECISIONS),
        ("fact", FACTS),
        ("error", ERRORS),
    ):
        if h.startswith(prefix):
            return section
    # An earlier "open task" is history by now; so is anything we do not recognise.
    return FOCUS if h.startswith("focus") else EARLIER


def _clip(text: str, limit: int = MAX_SENTENCE_CHARS) -> str:
    text = extract.flatten(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _select(candidates: list[Candidate], budget: int, has_focus: bool) -> list[Candidate]:
    sentence_budget = budget - int(budget * IDENTIFIER_SHARE)
    shares = dict(SECTION_SHARE)
    if not has_focus:
        shares[FOCUS] = 0.0
    # Best first; conversation order breaks ties so the output never depends on sort stability.
    ranked = sorted(candidates, key=lambda c: (-c.score, c.pos))
    seen: set[str] = set()
    unique: list[Candidate] = []
    for c in ranked:
        key = extract.normalize(c.text)
        if key not in seen:
            seen.add(key)
            unique.append(c)
    spent = {s: 0 for s in SECTION_ORDER}
    chosen: list[Candidate] = []
    rest: list[Candidate] = []
    total = 0
    for c in unique:
        cap = shares[c.section] * sentence_budget
        if spent[c.section] + c.cost <= cap:
            spent[c.section] += c.cost
            total += c.cost
            chosen.append(c)
        else:
            rest.append(c)
    for c in rest:  # leftovers go to the best remaining candidates, whatever their section
        if total + c.cost <= sentence_budget:
            total += c.cost
            chosen.append(c)
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
