"""The key rule, shared by the RPC validators and `sessionscope check` (which reports stored keys
that break it): a non-empty string of at most MAX_KEY_BYTES UTF-8 bytes, valid Unicode, with no
control characters, bidi overrides and isolates included. Keys are stored and compared exactly
as sent: no case folding or Unicode normalization (two keys that look alike are two sessions)."""

from __future__ import annotations

import re

MAX_KEY_BYTES = 512

# Bidirectional overrides and isolates: they make a key or label read differently than it sorts.
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


# One regex scan in C: a per-character Python test was a quarter of an OTLP request's validation.
# C0, DEL and C1 (U+0080-U+009F, whose U+009B is a one-byte CSI: an ANSI escape to a terminal).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f" + "".join(sorted(BIDI)) + "]")


def folded_identity(key: str, agent: str, channel: str) -> str:
    """What `session.list`'s `search` looks in besides the label, case-folded: the search rule is
    "the case-folded term is a substring of the case-folded text", with Python's str.casefold
    (full Unicode case folding: "STRASSE" finds "straße", "ΣΟΦΟΣ" finds "σοφος" with its final ς)
    computed here on write, so SQLite and PostgreSQL compare the same strings."""
    return f"{key} {agent} {channel}".casefold()


def folded_label(label: str | None) -> str | None:
    return label.casefold() if label is not None else None


def folded_term(term: str) -> str:
    return term.casefold()


def no_control(value: str, what: str) -> str:
    if _FORBIDDEN.search(value):
        raise ValueError(f"{what} must not contain control characters (bidi overrides included)")
    return value


def check_key(value: str) -> str:
    if not value:
        raise ValueError("must be a non-empty string")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValueError(f"must be at most {MAX_KEY_BYTES} UTF-8 bytes")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return no_control(value, "a key")


