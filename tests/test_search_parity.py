"""`query` (full text over message content) finds the same messages on SQLite and PostgreSQL, by
one rule (sessionscope.search_words, documented in docs/security.md): words are runs of letters,
digits and combining marks, compared by Unicode case folding then NFC, diacritics kept.

Before this rule each database split and folded by its own: SQLite's unicode61 stripped
diacritics and folded only simple case, PostgreSQL's `simple` parser lowercased by locale."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionscope import search_words
from tests.conftest import RPC

# key -> the one message of that session
MESSAGES = {
    "de/strasse": "Wir treffen uns in der Straße",
    "de/upper": "DIE STRASSE IST LANG",
    "el/final-sigma": "ο ΣΟΦΟΣ είπε",
    "el/lower": "ο σοφος μίλησε",
    "tr/dotted": "İstanbul'a gidiyoruz",
    "tr/dotless": "ılık bir gün",
    "tr/ascii": "istanbul by night",
    "fr/composed": "un café noir",
    "fr/decomposed": "un cafe\u0301 au lait",
    "fr/plain": "a cafe downtown",
    "lig/fi": "the ﬁle was saved",
    "k/kelvin": "300 \u212a is warm",
    "code/snake": "call read_file on it",
    "mail/addr": "write to ops@example.com today",
    "url/link": "see https://docs.example.org/a-b?x=1",
    "cjk/tokyo": "東京タワー に 行く",
    "hi/hindi": "मुझे हिन्दी पसंद है",
    "emoji/party": "🎉 party time",
    "long/word": "x" + "a" * 150,
}

QUERIES = [
    "STRASSE", "straße", "Straße", "ΣΟΦΟΣ", "σοφος", "σοφοσ", "İSTANBUL", "istanbul", "ILIK", "ılık",
    "café", "CAFÉ", "cafe", "cafe\u0301", "FILE", "ﬁle", "300 k", "K", "read_file", "READ", "file",
    "ops@example.com", "EXAMPLE", "docs.example.org", "東京タワー", "हिन्दी", "पसंद", "🎉", "PARTY 🎉",
    "x" + "a" * 120, "!!!", "call on it", "cafe noir",
]


def by_rule(query: str) -> list[str]:
    """What the documented rule says `query` finds."""
    wanted = set(search_words.words(query))
    return sorted(k for k, text in MESSAGES.items() if wanted and wanted <= set(search_words.words(text)))


@pytest.fixture
def stored(rpc: RPC) -> RPC:
    for key, text in MESSAGES.items():
        rpc.append(key, [{"role": "user", "content": text}])
    return rpc


def found(rpc: RPC, query: str) -> list[str]:
    return sorted(s["key"] for s in rpc("session.list", query=query, limit=100)["sessions"])


def test_query_finds_what_the_rule_says_on_both_databases(stored: RPC) -> None:
    wrong = {q: (found(stored, q), by_rule(q)) for q in QUERIES if found(stored, q) != by_rule(q)}
    assert not wrong


@pytest.mark.parametrize(("query", "want"), [
    ("STRASSE", ["de/strasse", "de/upper"]),  # ß folds to ss
    ("σοφος", ["el/final-sigma", "el/lower"]),  # final ς folds to σ
    ("İSTANBUL", ["tr/dotted"]),  # İ folds to i + combining dot: not the ASCII i
    ("ılık", ["tr/dotless"]),  # dotless ı is its own letter
    ("café", ["fr/composed", "fr/decomposed"]),  # NFC: composed and decomposed é are one
    ("cafe", ["fr/plain"]),  # diacritics are kept
    ("FILE", ["code/snake", "lig/fi"]),  # the ﬁ ligature folds to fi; "_" separates words
    ("K", ["k/kelvin"]),  # the Kelvin sign folds to k
    ("ops@example.com", ["mail/addr"]),
    ("हिन्दी", ["hi/hindi"]),  # combining vowel signs belong to the word
    ("🎉", []),  # no word: matches nothing
    ("x" + "a" * 120, ["long/word"]),  # words are cut at MAX_WORD_CHARS, text and query alike
])
def test_query_examples_from_the_documented_rule(stored: RPC, query: str, want: list[str]) -> None:
    assert found(stored, query) == want


def test_the_snippet_marks_the_folded_match(stored: RPC) -> None:
    (row,) = stored("session.list", query="STRASSE", limit=100, search="de/strasse")["sessions"]
    snippet = row["snippet"]
    assert [snippet["text"][a:b] for a, b in snippet["highlights"]] == ["Straße"]


@pytest.mark.parametrize("density", [0.0, 2.0], ids=["dense", "sparse"])
@pytest.mark.parametrize("budgets", [(5000, 5000), (2, 5000), (2, 1)], ids=["few", "walk", "membership"])
def test_every_query_path_gives_the_first_matches_in_sort_order(rpc: RPC, budgets: tuple[int, int], density: float,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Each of the query's paths (store/listing.py: all matching sessions found then sorted; a
    walk of the sort index testing each; the membership test) pages through exactly the
    matching sessions in sort order, with a total that is exact, or a bound never below the rows
    returned. PostgreSQL finds the sessions holding the words by the session index or by the GIN
    index, as the query's density says (search_index.DENSE_FRACTION): both are run."""
    from sessionscope.store import listing, search_index

    texts = {}
    for i in range(40):
        words = ["common"] + (["even"] if i % 2 == 0 else []) + (["rare"] if i in (3, 31) else [])
        texts[f"q/{i:02d}"] = " ".join(words)
        # The words in a middle message, so that no path can lean on the first or the last.
        rpc.append(f"q/{i:02d}", [{"role": "user", "content": "hello"}, {"role": "assistant", "content": texts[f"q/{i:02d}"]},
                                  {"role": "user", "content": f"number {i}"}], agent=("a", "b")[i % 2])
    monkeypatch.setattr(listing, "QUERY_SESSIONS", budgets[0])
    monkeypatch.setattr(listing, "SCAN_BUDGET", budgets[1])
    monkeypatch.setattr(search_index, "DENSE_FRACTION", density)
    for query in ["common", "EVEN", "rare", "common even", "absent"]:
        for order in ["asc", "desc"]:
            for filters in [{}, {"agent": "b"}]:
                wanted = set(search_words.words(query))
                want = sorted((k for k, t in texts.items() if wanted <= set(t.split())
                               and (not filters or ("a", "b")[int(k[2:]) % 2] == filters["agent"])),
                              reverse=order == "desc")
                got, cursor = [], None
                while True:
                    page = rpc("session.list", query=query, sort="key", order=order, limit=3, **filters,
                               **({"cursor": cursor} if cursor else {}))
                    got += [s["key"] for s in page["sessions"]]
                    assert page["total"] >= len(page["sessions"])
                    if not page["total_capped"]:
                        assert page["total"] == len(want), (query, order, filters)
                    cursor = page["next_cursor"]
                    if not cursor:
                        break
                assert got == want, (query, order, filters)


def test_messages_moved_by_an_earlier_batch_are_found_at_their_new_place(rpc: RPC, database_url: str) -> None:
    """OTLP batches that arrive out of order move stored messages to later seqs (store/batches.py).
    On SQLite the index row of a message is numbered by its seq, so it must move with it: the
    snippet shows the moved message itself, and `check` finds the index in step."""
    from tests.test_otlp_decode import _post_json, _turn

    for n in (2, 3):
        assert _post_json(rpc, _turn(n)).status_code == 200
    rpc("session.list", query="answer")  # SQLite indexes what is queued before a search
    assert _post_json(rpc, _turn(0), _turn(1)).status_code == 200  # answers 2 and 3 move
    (row,) = rpc("session.list", query="ANSWER 3")["sessions"]
    assert row["key"] == "late" and row["snippet"]["text"] == "answer 3"
    # (A range "still queued" may be one the test server's own indexer holds at that moment.)
    index_problems = ("does not match", "neither indexed", "belong to no message")
    assert not [p for p in asyncio.run(_check(database_url)).problems
                if any(words in p["problem"] for words in index_problems)]


async def _check(url: str) -> Any:
    from sessionscope.store import open_database
    from sessionscope.store.check import check

    db = await open_database(url)
    try:
        return await check(db)
    finally:
        await db.close()


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=300))
@settings(max_examples=300, deadline=None)
def test_the_ascii_path_finds_the_words_the_general_rule_finds(text: str) -> None:
    """search_words.words takes a faster regex for ASCII text; it must find the same words."""
    general = search_words._word().findall(text.casefold().replace("_", " "))
    assert search_words.words(text) == list(dict.fromkeys(general))
