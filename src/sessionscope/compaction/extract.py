"""Text plumbing for the offline summarizer: sentences, cue phrases and identifiers.

Kept apart from offline.py so the scoring there reads as policy, and these patterns can be
tuned (and tested) on their own. Everything here is pure and order-preserving.
"""

from __future__ import annotations

import json
import re
from typing import Any

SUMMARY_HEADER = "Summary of"

# A sentence ends at . ! ? before a capital/quote/digit, or at a line break.
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[`A-Z0-9])|\s*\n\s*")
_BULLET = re.compile(r"^(?:[-*•>]+|\d{1,2}[.)])\s+")
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_SPACE = re.compile(r"\s+")

CONSTRAINT = re.compile(
    r"\b(?:must|never|always|only|don'?t|do not|avoid|without|should(?:n'?t)?|need(?:s)? to|required?|"
    r"make sure|ensure|no more than|at most|at least|deadline|by (?:monday|tuesday|wednesday|thursday|"
    r"friday|tomorrow|eod|end of day)|keep (?:it|the|to|under|below|within)|focus on|prefer|constraint|budget|"
    r"limit|cite|from now on|instead|has to|have to|before|due|freeze)\b",
    re.IGNORECASE,
)
DECISION = re.compile(
    r"\b(?:decided|decide|decision|we(?:'ll| will) (?:use|go|keep|switch|move|ship)|going with|go with|"
    r"chose|chosen|opted|settled on|switch(?:ed|ing)? to|instead of|conclusion|concluded|root cause|"
    r"the (?:fix|cause|problem|issue|culprit) (?:is|was)|turns out|agreed|approved|we should|recommend|"
    r"the plan is|confirmed|conclude)\b",
    re.IGNORECASE,
)
NEXT_STEP = re.compile(
    r"\b(?:next|todo|to-do|remaining|still (?:need|needs|have|has) to|pending|follow[- ]up|"
    r"then i(?:'ll| will)|i(?:'ll| will) (?:now|next|then)|not yet|left to do|plan to|open question)\b",
    re.IGNORECASE,
)
# Each alternative opens with a literal or a narrow class, so a miss costs one character test
# per position: this runs over every tool result of a 10,000-message session.
ERROR_TEXT = re.compile(
    r"Traceback \(most recent call last\)|(?:Error|Exception):|^FAILED\b|fatal:|error:|ERROR\b|panic:|"
    r"exit (?:code|status) [1-9]|command not found|No such file or directory|Permission denied|"
    r"(?<!\d)[1-9]\d* (?:failed|errors?)\b|timed out|"
    r"[45]\d\d (?:Not Found|Internal Server Error|Bad Request|Unauthorized|Forbidden|Bad Gateway|"
    r"Service Unavailable|Conflict|Too Many Requests)",
    re.MULTILINE,
)
# Narration ("Reading x.py", "Let me check") names things but concludes nothing.
NARRATION = re.compile(
    r"(?:let me|let['’]s|i['’]?ll|i am|i['’]m|i['’]ve|now|next,? i|there['’]s|here['’]s|reading|checking|looking|"
    r"running|opening|searching|listing|i (?:found|checked|looked|will|need|want|see))\b",
    re.IGNORECASE,
)
RESOLVED = re.compile(
    r"\b(?:fixed|fixes|resolved|solved|works now|working now|now works|now passes|passes now|"
    r"all (?:tests )?pass(?:ing)?|succeeded|successfully|the fix|workaround|by (?:adding|changing|"
    r"setting|removing|using|switching|updating|bumping|pinning|raising|lowering))\b",
    re.IGNORECASE,
)
# `key: value`, `key = value`, `"key": value` and nginx-style `key value;` settings.
# Cheap substring test before ERROR_TEXT: most tool results contain none of these.
_ERROR_HINTS = (
    "rror",
    "xception",
    "FAIL",
    "fail",
    "fatal",
    "panic",
    "exit ",
    "not found",
    "No such",
    "denied",
    "timed out",
    "Traceback",
)
_KEY_VALUE = re.compile(r"^\"?([A-Za-z_][\w.\-]{1,39})\"?(?:\s*[:=]\s*|\s+)\S")
_ERROR_FINAL_LINE = re.compile(r"^(?:[a-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception|Failure)\b")
_BOILERPLATE = re.compile(r"Traceback \(most recent|File \"|exit (?:code|status) \d+$|\.\.\.$|\^+$")
_CODE_LINE = re.compile(
    r"(?:def|class|return|import|from|if|elif|else|for|while|with|try|except|log\.|print)\b"
)

# One pass finds every identifier-like token; the group name says what kind it is.
# The leading (?<!\w) rejects mid-word positions in one test instead of one per alternative.
ENTITY = re.compile(
    r"""
    (?<!\w)(?:(?P<url>\bhttps?://[^\s<>"'`)\]\\]*[^\s<>"'`)\]\\.,;:!?])
    |(?P<email>\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z][\w-]*\b)
    |(?P<path>(?<![\w/.<])(?:~|\.{1,2})?/[\w@-][\w.@-]*(?:/[\w.@-]+)*
        |(?:\b|(?<![\w/.])\.(?=\w))[\w.@-]+/[\w.@-]+/[\w.@/-]*[\w]
        |(?:\b|(?<![\w/.])\.(?=\w))[\w.@-]+/[\w-]+\.[A-Za-z]{1,5}\b)
    |(?P<file>\b[\w-]+(?:\.[\w-]+)*\.(?:py|pyi|js|mjs|ts|tsx|jsx|json|jsonl|toml|ya?ml|md|rst|sql|go|rs
        |java|kt|c|h|cc|cpp|hpp|rb|php|sh|txt|log|cfg|ini|conf|env|html|css|lock|csv|xml|proto|tf)\b)
    |(?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
    |(?P<date>\b\d{4}-\d{2}-\d{2}(?:[T\ ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?\b
        |\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?\ \d{1,2}(?:,\ \d{4})?\b)
    |(?P<host>\b(?:\d{1,3}(?:\.\d{1,3}){3}|localhost|[a-z][\w-]*(?:\.[\w-]+)+):\d{2,5}\b
        |\b\d{1,3}(?:\.\d{1,3}){3}\b)
    |(?P<version>\bv?\d+\.\d+\.\d+(?:[-+][\w.]+)?\b|\bv\d+(?:\.\d+)?\b)
    |(?P<ticket>\b[A-Z][A-Z0-9]{1,9}-\d+\b|(?<![\w&])\#\d{2,}\b)
    |(?P<hash>\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b)
    |(?P<code>`[^`\n]{2,80}`)
    |(?P<name>\b[A-Z]{2,}[A-Z0-9]*(?:-[A-Za-z0-9]+)+\b|\b[A-Z][A-Z0-9]{2,}\b)
    |(?P<ident>\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b
        |\b[a-z]+(?:[A-Z][a-z0-9]+)+\b
        |\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+\b)
    |(?P<number>\$\d[\d,]*(?:\.\d+)?
        |\b\d[\d,]*(?:\.\d+)?\ ?(?:%|ms|s|sec|secs|seconds|min|mins|minutes|h|hrs|hours|days|KB|MB|GB|TB|KiB|MiB
        |GiB|k|tokens|rps|qps|rows|users|requests|x)(?![\w%])
        |\b\d{1,3}(?:,\d{3})+(?:\.\d+)?\b|\b\d+\.\d+\b|\b\d{3,}\b))
    """,
    re.VERBOSE,
)
# Kinds that identify something on their own; bare numbers need surrounding words to mean anything.
_STRONG = frozenset(
    {"url", "email", "path", "file", "uuid", "date", "host", "version", "ticket", "hash", "code", "ident"}
)
_TRAILING = ".,;:!?)'\""
# What a code span can hold that identifies something on its own (not its symbols and numbers).
_INNER_KINDS = frozenset({"url", "email", "path", "file", "uuid", "host", "version", "ticket", "hash"})
# An inline image or key in base64 matches the path pattern; no agent needs it verbatim.
_BLOB = re.compile(r"[A-Za-z0-9+]{41,}")
_ESCAPE = re.compile(r"\\[nrt\"]")
_BASE64_RUN_CHARS = 120  # no path or id runs this long without a dot, dash or underscore
_BASE64_RUN = re.compile(rf"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{{{_BASE64_RUN_CHARS},}}={{0,2}}")  # from a run's start
_SUBSUME_POOL = 200
# An identifier must have been seen at least this much to be listed: one path in a tool output
# is enough, one timestamp of a log stream or one code symbol of a file read is not.
MIN_SALIENCE = 1.0  # identifiers compared pairwise for containment (quadratic, so bounded)
RECENCY_WEIGHT = 1.0  # an identifier named last in the span outranks one named once more, long ago
_KIND_WEIGHT = {"ident": 0.25, "code": 0.4, "expression": 0.1, "date": 0.3, "name": 0.2, "number": 0.5}
_EXPRESSION = re.compile(r"[\s(={<]")

_STOPWORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "about",
        "focus",
        "keep",
        "kept",
        "summary",
        "summarize",
        "summarise",
        "please",
        "make",
        "sure",
        "include",
        "important",
        "details",
        "everything",
        "anything",
        "also",
        "more",
        "less",
        "messages",
        "conversation",
        "session",
        "especially",
        "mainly",
        "mostly",
        "only",
        "what",
        "that",
        "this",
        "those",
        "these",
        "from",
        "into",
        "onto",
        "over",
        "under",
        "any",
        "all",
        "our",
        "their",
        "them",
        "they",
        "you",
        "your",
        "are",
        "was",
        "were",
        "will",
        "would",
        "should",
        "could",
        "have",
        "has",
        "had",
        "not",
        "but",
        "how",
        "why",
        "when",
        "where",
        "which",
        "who",
    ]
)


def is_summary(message: dict[str, Any]) -> bool:
    return message.get("kind") == "summary"


def flatten(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def normalize(text: str) -> str:
    return flatten(text).lower().strip(_TRAILING + " ")


def code_blocks(text: str) -> str:
    return "\n".join(_FENCE.findall(text)) if "```" in text else ""


def strip_code(text: str) -> str:
    # Code blocks are what the agent wrote or read, not what it concluded; the files still exist.
    return _FENCE.sub(" ", text) if "```" in text else text


def sentences(text: str, limit: int = 6000) -> list[str]:
    out = []
    for part in _SENTENCE_SPLIT.split(text[:limit]):
        part = _BULLET.sub("", part.strip())
        if len(part) >= 3:
            out.append(part)
    return out


def head_tail(text: str, head: int = 1500, tail: int = 700) -> str:
    # Tool output: the command echo and first lines say what it was, the last lines the verdict.
    if len(text) <= head + tail:
        return text
    return text[:head] + "\n…\n" + text[-tail:]


def has_error(text: str) -> bool:
    """An error verdict in the output's first or last lines; a file that mentions errors is not one."""
    if len(text) > 900:
        text = text[:300] + "\n" + text[-600:]
    return any(h in text for h in _ERROR_HINTS) and ERROR_TEXT.search(text) is not None


def error_line(content: str) -> str | None:
    """The line that says what went wrong: the last exception-like line, not the traceback frame."""
    lines = [ln.strip() for ln in content.splitlines() if ln.strip()]
    meaningful = [ln for ln in lines if not _BOILERPLATE.match(ln)]
    for ln in reversed(meaningful):
        if _ERROR_FINAL_LINE.match(ln):
            return ln
    for ln in meaningful:
        if ERROR_TEXT.search(ln):
            return ln
    return meaningful[-1] if meaningful else None


def fact_lines(content: str, limit: int = 6) -> list[str]:
    """Lines of a tool result worth keeping: settings (`key: value`) and lines naming numbers."""
    picked: list[str] = []
    for ln in content.splitlines():
        ln = ln.strip()
        if not 6 <= len(ln) <= 160 or _CODE_LINE.match(ln):
            continue
        m = _KEY_VALUE.match(ln)
        if m is None:
            continue
        key = m.group(1)
        if "_" in key or "-" in key or "." in key or any(ch.isdigit() for ch in ln[m.end() - 1 :]):
            picked.append(ln)
            if len(picked) >= limit:
                break
    return picked


def focus_pattern(instructions: str | None) -> re.Pattern[str] | None:
    if not instructions:
        return None
    terms: dict[str, None] = {}
    for word in re.findall(r"[\w./:-]{3,}", instructions.lower()):
        word = word.strip(_TRAILING + "-/")
        if len(word) < 3 or word in _STOPWORDS:
            continue
        # Crude stemming so "migrations" also finds "migration" and "migrated".
        terms[word[: max(4, len(word) - 3)] if len(word) > 6 else word] = None
    if not terms:
        return None
    alternatives = "|".join(re.escape(t) for t in sorted(terms, key=lambda t: (-len(t), t)))
    return re.compile(rf"(?<![\w]){alternatives}", re.IGNORECASE)


def _scannable(text: str) -> str:
    """Text as an identifier scan should see it.

    An output that prints JSON (a .jsonl read with cat, an API's raw body) holds `\\n` and `\\"`
    escapes, which would glue an `n` to the next word and a backslash to the end of a URL; an
    inline image or key in base64 splits into dozens of bogus "paths" at its slashes.
    """
    if "\\" in text:
        text = _ESCAPE.sub(" ", text)
    if len(text) >= _BASE64_RUN_CHARS:
        text = _BASE64_RUN.sub(" ", text)
    return text


class Entities:
    """Identifiers seen in the conversation, with a salience score and first position."""

    def __init__(self) -> None:
        self._seen: dict[str, list[float]] = {}  # text -> [score, first position, last position, gain there]

    def add(self, text: str, pos: float, weight: int) -> tuple[int, int]:
        """Record the identifiers in text; returns how many, and how many make a request
        (a bare timestamp, a code span or an acronym does not)."""
        found = named = 0
        for m in ENTITY.finditer(_scannable(text)):
            kind = m.lastgroup or ""
            value = m.group().rstrip(_TRAILING).strip("`")
            if kind == "code":
                # `docs/SPEC.md` in backticks is a path first; only the rest is code.
                inner = ENTITY.match(value)
                if inner is not None and inner.end() == len(value):
                    kind = inner.lastgroup or kind
                else:
                    # `${base}/api/search?${qs}`, `pytest tests/test_x.py -k y`: the path or file
                    # inside a code span is named as much as the span itself.
                    found += self._add_inner(value, pos, weight)
                    if _EXPRESSION.search(value):
                        kind = "expression"  # `undo()`, `x = 1`: code to read again, not a name to keep
            if len(value) < 3 or (kind not in _STRONG and weight < 2) or (len(value) > 40 and _BLOB.search(value)):
                continue
            found += 1
            named += kind not in ("date", "code", "expression", "name")
            # Code symbols and timestamps are many and cheap to find again; paths, ids, urls,
            # versions and hashes are what an agent needs verbatim.
            self._gain(value, weight * _KIND_WEIGHT.get(kind, 1.0), pos)
        return found, named

    def _add_inner(self, code: str, pos: float, weight: int) -> int:
        found = 0
        for m in ENTITY.finditer(code):
            if m.lastgroup in _INNER_KINDS:
                found += 1
                self._gain(m.group().rstrip(_TRAILING), weight * _KIND_WEIGHT.get(m.lastgroup, 1.0), pos)
        return found

    def _gain(self, value: str, gain: float, pos: float) -> None:
        # Salience counts the messages that name a thing, at the strongest weight each named it:
        # a symbol repeated forty times in one file read is not forty times as needed.
        entry = self._seen.get(value)
        if entry is None:
            self._seen[value] = [gain, pos, pos, gain]
        elif int(entry[2]) != int(pos):
            entry[0] += gain
            entry[2] = pos
            entry[3] = gain
        elif gain > entry[3]:
            entry[0] += gain - entry[3]
            entry[3] = gain

    def add_listed(self, text: str, pos: float) -> None:
        for value in text.split(", "):
            value = value.strip()
            if value and value not in self._seen:
                self._seen[value] = [5.0, pos, pos, 5.0]

    def uncovered(self, kept_lower: str, char_budget: int) -> list[str]:
        """The most salient identifiers that no kept line mentions, in conversation order.

        A longer form (`/repo/apps/web/page.tsx`) also stands for the shorter ones it contains
        (`apps/web/page.tsx`, `page.tsx`): it takes their salience, and they are not listed twice.
        """
        # Salience is how often and how strongly it was named, plus how recently: what the span
        # ended on is what the agent goes on with.
        last = max((e[2] for e in self._seen.values()), default=0.0) or 1.0
        salience = {v: e[0] + RECENCY_WEIGHT * max(0.0, e[2]) / last for v, e in self._seen.items()
                    if e[0] >= MIN_SALIENCE}
        missing = [(v, self._seen[v]) for v in salience if v.lower() not in kept_lower]
        missing.sort(key=lambda ve: (-salience[ve[0]], -ve[1][2], ve[0]))
        top = missing[:_SUBSUME_POOL]
        score = {v: salience[v] for v, _ in top}
        for v, _ in top:
            for w, _ in top:
                if len(w) < len(v) and w in v:
                    score[v] += score[w] * 0.5
        top.sort(key=lambda ve: (-score[ve[0]], -ve[1][2], ve[0]))
        picked: list[tuple[float, str]] = []
        picked_text = ""
        spent = 0
        for value, entry in top + missing[_SUBSUME_POOL:]:
            if spent + len(value) + 2 > char_budget or value.lower() in picked_text:
                continue
            spent += len(value) + 2
            picked_text += "\n" + value.lower()
            picked.append((entry[1], value))
        return [v for _, v in sorted(picked)]


# ---------------------------------------------------------------- tool calls and results

# Tools that change something: their call is a state change worth keeping even when the
# result says only "ok". Reads, listings and searches can be repeated; their results can not.
MUTATING = re.compile(
    r"edit|write|patch|replace|create|update|delete|remove|deploy|rollback|roll_back|refund|apply|commit|"
    r"push|merge|restart|scale|send|post|insert|move|rename|close|assign|cancel|approve|set_",
    re.IGNORECASE,
)
EXPLORING = re.compile(r"^(?:read|cat|open|ls|list|glob|grep|rg|find|search_code|view|head|tail)", re.IGNORECASE)
# Keys whose short value says what state something is in.
STATE_KEYS = frozenset(
    {"status", "state", "result", "outcome", "error", "reason", "phase", "health", "verdict", "conclusion"}
)
_ARG_KEYS_SKIPPED = frozenset({"content", "old", "new", "old_string", "new_string", "text", "body", "patch", "diff"})
_MAX_LEAVES = 14
_MAX_LIST_ITEMS = 6
_MAX_LEAF_CHARS = 120
_SHAPE = re.compile(r"[^\s;,=:\"'()\[\]{}]*\d[^\s;,=:\"'()\[\]{}]*")
_LISTING_LINE = re.compile(
    r"^[\w.@/~-]+/[\w.@/-]*$|^[\w.-]+\.[A-Za-z]{1,5}$|^[\w.@/~-]+:\d+[:-]|^[-dlcbps][-rwxsStT@+.]{9,11}\s"
)
_FACT_HINT = re.compile(r"[\d/=:@$%]|[A-Z]{2}")  # a line with none of these names nothing
_TAG = re.compile(r"</?[A-Za-z][\w-]*>")
_ROUTINE_LOG = re.compile(r"^\[?\S*\d:\d\d\S*\]?\s+\[?(?:INFO|DEBUG|TRACE|info|debug|trace)\b")
_KV_LINE = re.compile(r"^([A-Za-z][\w .-]{0,30}?)\s*(?::|=)\s*(\S.{0,140})$")
STATE_WORDS = re.compile(
    r"\b(?:blocked|escalated|resolved|closed|merged|deployed|rolled back|reverted|failed|failing|passing|"
    r"succeeded|cancelled|canceled|approved|rejected|pending|on hold|in progress|done|completed|degraded|down)\b",
    re.IGNORECASE,
)


def shape_key(text: str) -> str:
    """Text with every token that holds a digit blanked: lines of one template share a shape."""
    return _SHAPE.sub("#", normalize(text))


_READ_COMMAND = re.compile(r"^\s*(?:cd \S+ && )?(?:cat|sed -n|head|tail|nl|ls|rg|grep|find|less|bat|wc|tree|git (?:show|diff|log))\b")


def is_exploring(tool: str, arguments: str) -> bool:
    """A read, a listing or a search (by tool name or by the shell command it ran)."""
    if EXPLORING.match(tool):
        return True
    first = arguments_values(arguments).split("\n", 1)[0]
    return _READ_COMMAND.match(first) is not None


def strip_tags(text: str) -> str:
    # Harnesses wrap context in <environment_context>-style tags; the tags say nothing.
    return _TAG.sub(" ", text) if "<" in text else text


def arguments_values(arguments: str) -> str:
    """A call's JSON arguments as their string values, one per line (escapes decoded)."""
    try:
        args = json.loads(arguments) if arguments else {}
    except ValueError:
        return arguments
    out: list[str] = []
    stack = [args]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
        elif node is not None:
            out.append(str(node))
    return "\n".join(out)


def boilerplate_keys(results: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """(tool, key) pairs of `key: value` lines that open most results of one tool.

    "Chunk ID: 3fa9b2", "Wall time: 6.03 seconds" head every result of some harnesses' shell
    tool; a key found in three or more results of one tool, with changing values, is framing.
    """
    seen: dict[tuple[str, str], set[str]] = {}
    for tool, content in results:
        for line in content[:600].splitlines()[:6]:
            m = _KV_LINE.match(line.strip())
            if m is not None:
                seen.setdefault((tool, m.group(1).strip().lower()), set()).add(m.group(2))
    return {k for k, vals in seen.items() if len(vals) >= 3 and k[1] not in STATE_KEYS}


def call_summary(name: str, arguments: str, limit: int = 100) -> str:
    """`tool` k=v ... from a call's JSON arguments, short scalars only (edit bodies are skipped)."""
    try:
        args = json.loads(arguments) if arguments else {}
    except ValueError:
        return f"`{name}` {flatten(arguments)[:limit]}"
    if not isinstance(args, dict):
        return f"`{name}` {flatten(str(args))[:limit]}"
    parts = []
    for key, value in args.items():
        if key in _ARG_KEYS_SKIPPED or isinstance(value, dict):
            continue
        if isinstance(value, list):
            value = " ".join(str(v) for v in value if not isinstance(v, dict | list))
        text = flatten(str(value))
        if text and len(text) <= limit:
            parts.append(f"{key}={text}")
    out = " ".join(parts)
    return f"`{name}` {out[:limit * 2]}".rstrip()


def result_facts(content: str, skip_keys: frozenset[str] = frozenset(), limit: int = 7) -> list[str]:
    """What a tool result says, as short `key=value` leaves (JSON) or its informative lines."""
    stripped = content.lstrip()
    if stripped[:1] in ("{", "[") and len(stripped) < 500_000:
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, dict | list):
            leaves: list[str] = []
            _json_leaves(doc, "", leaves)
            return leaves
    return _text_facts(content, skip_keys, limit)


def _json_leaves(node: Any, key: str, out: list[str]) -> None:
    if len(out) >= _MAX_LEAVES:
        return
    if isinstance(node, dict):
        for k, v in node.items():
            _json_leaves(v, str(k), out)
        return
    if isinstance(node, list):
        if node and all(not isinstance(v, dict | list) for v in node):
            text = ",".join(flatten(str(v)) for v in node[:8])
            if len(text) <= _MAX_LEAF_CHARS:
                out.append(f"{key}={text}")
            return
        for item in node[:_MAX_LIST_ITEMS]:
            _json_leaves(item, key, out)
        return
    if node is None or node == "" or isinstance(node, bool):
        return
    text = flatten(str(node))
    if len(text) <= _MAX_LEAF_CHARS:
        out.append(f"{key}={text}" if key else text)
    else:
        # A long string value (a description, a page): only its sentences that name something.
        out.extend(s for s in sentences(text, 2000) if ENTITY.search(s))


def _text_facts(content: str, skip_keys: frozenset[str], limit: int) -> list[str]:
    picked: list[tuple[float, int, str]] = []
    shapes: set[str] = set()
    for n, raw in enumerate(content.splitlines()):
        line = raw.strip()
        if len(line) < 4 or not _FACT_HINT.search(line) or _CODE_LINE.match(line) or _LISTING_LINE.match(line):
            continue
        if skip_keys and (kv := _KV_LINE.match(line)) and kv.group(1).strip().lower() in skip_keys:
            continue
        pieces = [line] if len(line) <= 200 else [s for s in sentences(line, 4000) if len(s) <= 240]
        for piece in pieces:
            score = _line_score(piece)
            if score <= 0:
                continue
            shape = shape_key(piece)
            if shape in shapes:
                continue
            shapes.add(shape)
            picked.append((score, n, piece))
    best = sorted(picked, key=lambda p: (-p[0], p[1]))[:limit]
    return [p[2] for p in sorted(best, key=lambda p: p[1])]


def without_routine_logs(content: str) -> str:
    """The output minus its INFO/DEBUG log lines, whose timestamps nobody needs again."""
    if "INFO" not in content and "DEBUG" not in content and "info" not in content:
        return content
    return "\n".join(ln for ln in content.splitlines()
                     if not _ROUTINE_LOG.match(ln.strip()) or STATE_WORDS.search(ln))


def _line_score(line: str) -> float:
    if _ROUTINE_LOG.match(line) and not STATE_WORDS.search(line):
        return 0.0  # an INFO line of a log stream: its timestamp and timing are not facts
    kv = _KV_LINE.match(line)
    if kv is not None and "(" in kv.group(2):
        return 0.0  # `log = logging.getLogger(...)`: code, not a setting
    score = 0.0
    for m in ENTITY.finditer(line):
        kind = m.lastgroup
        score += 0.1 if kind == "name" else 0.3 if kind in ("path", "file", "date", "code") else 1.0
    if kv is not None:
        score += 1.0
    if STATE_WORDS.search(line):
        score += 0.5
    # A line that only names files is a listing or a grep hit: the files are still there.
    return score if score >= 0.9 else 0.0


def values(text: str) -> set[str]:
    """The identifier-like values a line names (for coverage checks between lines)."""
    return {m.group().rstrip(_TRAILING) for m in ENTITY.finditer(text) if m.lastgroup in _STRONG - {"code"}}


def count_entities(sentence: str) -> int:
    return sum(1 for m in ENTITY.finditer(sentence) if m.lastgroup in _STRONG or m.lastgroup == "number")


def request_entities(sentence: str) -> int:
    """Identifiers that make a user sentence a request worth keeping; a bare timestamp does not."""
    return sum(1 for m in ENTITY.finditer(sentence) if m.lastgroup not in ("date", "code", "name"))


def leaf_weight(leaf: str) -> float:
    kv = _KV_LINE.match(leaf)
    key, value = (kv.group(1).strip(), kv.group(2)) if kv else ("", leaf)
    # A named setting or field says more than a bare line that happens to hold a number.
    weight = 1.5 if key in STATE_KEYS else 1.0 if key else 0.0
    for m in ENTITY.finditer(value or key):
        weight += 0.3 if m.lastgroup in ("path", "file", "date", "code") else 1.0
    return weight
