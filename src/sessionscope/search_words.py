"""The word rule of `session.list`'s `query` (full-text search over message content), one rule
for both databases.

Each database used to split and fold text its own way: SQLite's FTS5 `unicode61` folded simple
case and stripped diacritics, PostgreSQL's `simple` configuration lowercased by the server's
locale. So "STRASSE" found "straße" on neither, "İstanbul" on one, "cafe" found "café" on one.
Here Python decides, and both databases only store and compare the words it gives:

- A word is a maximal run of letters, digits and combining marks (Unicode categories L, N and M,
  by the running Python's Unicode data). Everything else separates words, the underscore
  included: "read_file" is the words "read" and "file", "a@b.com" is "a", "b" and "com".
- Words are compared by full Unicode case folding (`str.casefold`), then NFC composition:
  "STRASSE" finds "straße", "ΣΟΦΟΣ" finds "σοφος", "ﬁle" finds "FILE", a decomposed "é" finds a
  composed one. Diacritics are kept: "cafe" does not find "café".
- A word longer than MAX_WORD_CHARS is cut to its first MAX_WORD_CHARS characters, in the text
  and in the query alike, so that no word can pass PostgreSQL's lexeme limit.
- A message matches a query when it holds every word of the query. A query with no word (only
  punctuation) matches nothing.

SQLite indexes the words joined by spaces in an FTS5 table with the `ascii` tokenizer, which
splits at the spaces and changes nothing else (no non-ASCII folding); PostgreSQL stores them as
lexemes with array_to_tsvector and queries them as quoted lexemes, so neither database's parser or
dictionary sees the text.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

MAX_WORD_CHARS = 100


# A word, cut at MAX_WORD_CHARS by the regex itself (findall returns the group): in ASCII text,
# letters and digits (lowercased first). The C regex engine does all of it: a Python loop over
# the words cost three times as much as finding them, and indexing runs on every message.
_ASCII_WORD = re.compile(f"([a-z0-9]{{1,{MAX_WORD_CHARS}}})[a-z0-9]*")


@functools.cache
def _word() -> re.Pattern[str]:
    """Any text: letters and digits are re's `\\w` (whose "_" the callers replace first);
    combining marks are added by range. Built on first use: reading the Unicode table takes a
    few hundredths of a second."""
    marks: list[str] = []
    start = None
    for point in (*range(0x30000), *range(0xE0000, 0xE1000)):  # beyond: no marks assigned
        mark = unicodedata.category(chr(point))[0] == "M"
        if mark and start is None:
            start = point
        elif not mark and start is not None:
            marks.append(_range(start, point - 1))
            start = None
    word = "[\\w" + "".join(marks) + "]"
    return re.compile(f"({word}{{1,{MAX_WORD_CHARS}}}){word}*")


def _range(first: int, last: int) -> str:
    return re.escape(chr(first)) if first == last else f"{re.escape(chr(first))}-{re.escape(chr(last))}"


def _folded(text: str) -> str:
    # ASCII folds by lower(), and NFC leaves it as it is: the common case skips both passes.
    return text.lower() if text.isascii() else unicodedata.normalize("NFC", text.casefold())


def fold(word: str) -> str:
    """One word as the index holds it."""
    return _folded(word)[:MAX_WORD_CHARS]


def words(text: str) -> list[str]:
    """The distinct words of `text`, folded, in order of first appearance."""
    if text.isascii():
        return list(dict.fromkeys(_ASCII_WORD.findall(text.lower())))
    folded = _folded(text)
    return list(dict.fromkeys(_word().findall(folded.replace("_", " ") if "_" in folded else folded)))


def document(text: str) -> str:
    """What SQLite's index holds for a message: its words, separated by spaces."""
    return " ".join(words(text))


def spans(text: str, wanted: Iterable[str]) -> list[tuple[int, int]]:
    """Where in `text` the words of `wanted` (folded) stand: (start, end) offsets."""
    wanted = set(wanted)
    return [m.span() for m in _word().finditer(text.replace("_", " ")) if fold(m.group()) in wanted]
