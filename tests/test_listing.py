"""session.list search: every path (walk, rare-term lookup, membership walk, short terms) gives
exactly the first matches in sort order, the same as filtering the whole table."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from sqlalchemy import event

from sessionscope.store import Scope, listing, open_database
from tests.conftest import RPC

AGENTS = ["main", "support", "ops-bot"]
CHANNELS = ["telegram", "slack", "discord"]


def seed(rpc: RPC) -> list[dict[str, Any]]:
    for i in range(60):
        agent, channel = AGENTS[i % 3], CHANNELS[(i // 3) % 3]
        key = f"agent:{agent}:{channel}:group:-100{i:03d}:topic:{i % 7}"
        rpc.append(key, [{"id": "1", "role": "user", "content": "x " * (i % 11 + 1)}], agent=agent,
                   channel=channel, label={0: "VIP", 5: "Café 50%"}.get(i % 10))
    return rpc("session.list", limit=500)["sessions"]


def expected(rows: list[dict[str, Any]], term: str, sort: str, order: str, **filters: str) -> list[str]:
    t = term.casefold()
    hits = [r for r in rows if any(t in (r[f] or "").casefold() for f in ("key", "agent", "channel", "label"))
            and all(r[k] == v for k, v in filters.items())]
    hits.sort(key=lambda r: (r[sort], r["key"]), reverse=order == "desc")
    return [r["key"] for r in hits]


@pytest.mark.parametrize("budgets", [(5000, 20000), (4, 20000), (1, 20000), (1, 2)],
                         ids=["walk", "walk-on", "rare", "membership"])
def test_every_search_path_matches_a_full_filter(rpc: RPC, budgets: tuple[int, int],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    rows = seed(rpc)
    monkeypatch.setattr(listing, "SCAN_BUDGET", budgets[0])
    monkeypatch.setattr(listing, "RARE_MATCHES", budgets[1])
    # Short terms (no trigram), non-ASCII ones and LIKE's own wildcards taken literally included.
    for term in ["support", "topic:3", "-100042", "vip", "ab", "t", "SLACK", "nothing-here", "fé", "_", "%",
                 "0%"]:
        for sort in ["key", "message_count"]:
            for order in ["asc", "desc"]:
                for filters in [{}, {"agent": "main"}, {"channel": "slack"}]:
                    want = expected(rows, term, sort, order, **filters)
                    got, cursor = [], None
                    while True:
                        page = rpc("session.list", search=term, sort=sort, order=order, limit=7,
                                   **filters, **({"cursor": cursor} if cursor else {}))
                        got += [s["key"] for s in page["sessions"]]
                        if page["total_capped"] is False:
                            assert page["total"] == len(want), (term, sort, filters)
                        cursor = page["next_cursor"]
                        if not cursor:
                            break
                    if sort == "key":
                        assert got == want, (term, sort, order, filters)
                    else:
                        assert sorted(got) == sorted(want), (term, sort, order, filters)


@pytest.mark.parametrize("sort", ["updated_at", "key"])
def test_capped_total_is_never_below_the_rows_returned(rpc: RPC, sort: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Old sessions without the term first, then recent ones holding it: the term is common in
    # this tenant yet absent from whatever rows a walk in storage order reaches first.
    for i in range(30):
        rpc.append(f"agent:main:web:dm:{i:03d}", [{"id": "1", "role": "user", "content": "hi"}])
    for i in range(30):
        rpc.append(f"agent:main:web:group:-10099{i:03d}", [{"id": "1", "role": "user", "content": "hi"}])
    monkeypatch.setattr(listing, "COUNT_SCAN", 20)
    monkeypatch.setattr(listing, "SCAN_BUDGET", 20)
    got: list[str] = []
    cursor = None
    while True:
        page = rpc("session.list", search="group:-10099", sort=sort, order="desc", limit=7,
                   **({"cursor": cursor} if cursor else {}))
        got += [s["key"] for s in page["sessions"]]
        assert page["total"] >= len(page["sessions"]), page["total"]
        if page["total_capped"]:
            # As exact as the bound allows: the matches among the first COUNT_SCAN rows in
            # sort order (all of them here, since the matches are the newest / highest keys).
            assert page["total"] >= 20, page["total"]
        else:
            assert page["total"] == 30
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(got) == 30


UNICODE_SESSIONS = {  # key: label
    "de/straße": None, "de/STRASSE-2": None, "de/plain": "Straßenbahn", "el/1": "ΣΟΦΟΣ", "el/2": "σοφος",
    "tr/ıspanak": None, "tr/İstanbul": None, "tr/ISPANAK": None, "lig/ﬁle": None, "k/Kelvin-\u212a": None,
}


@pytest.mark.parametrize("budgets", [(5000, 20000), (1, 20000), (1, 2)], ids=["walk", "rare", "membership"])
def test_search_folds_case_like_python_casefold_on_both_databases(rpc: RPC, budgets: tuple[int, int],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule (docs/security.md): the case-folded term is a substring of the case-folded key,
    agent, channel or label, with Python's str.casefold. Each dialect runs this same table."""
    for key, label in UNICODE_SESSIONS.items():
        rpc.append(key, [{"role": "user", "content": "x"}], agent="main", channel="web", label=label)
    monkeypatch.setattr(listing, "SCAN_BUDGET", budgets[0])
    monkeypatch.setattr(listing, "RARE_MATCHES", budgets[1])
    cases = {
        "STRASSE": ["de/STRASSE-2", "de/plain", "de/straße"], "straße": ["de/STRASSE-2", "de/plain", "de/straße"],
        "ß": ["de/STRASSE-2", "de/plain", "de/straße"],  # two characters once folded: the short-term path
        "σοφοσ": ["el/1", "el/2"], "ΣΟΦΟΣ": ["el/1", "el/2"], "σοφος": ["el/1", "el/2"],
        "ISPANAK": ["tr/ISPANAK"], "ıspanak": ["tr/ıspanak"],  # dotless ı is its own letter
        "istanbul": [], "İSTANBUL": ["tr/İstanbul"],  # İ folds to i + combining dot
        "FILE": ["lig/ﬁle"], "kelvin-k": ["k/Kelvin-\u212a"],
    }
    for term, want in cases.items():
        got = sorted(s["key"] for s in rpc("session.list", search=term, limit=100)["sessions"])
        assert got == want, term
        by_python = sorted(k for k, label in UNICODE_SESSIONS.items()
                           if term.casefold() in f"{k} main web {label or ''}".casefold())
        assert got == by_python, term


# A plan step that reads sessions rows in the walk's order, not the page's rows by id.
_ROW_READS = {"sqlite": r"(SCAN|SEARCH) sessions USING INDEX",
              "postgresql": r"\s*(->\s*)?(Seq Scan on sessions|Index Scan (Backward )?using (?!sessions_pkey)\S+ on sessions)"}
_WALK_INDEX = {"sqlite": "COVERING INDEX ix_sessions_search_walk",
               "postgresql": "Index Only Scan Backward using ix_sessions_search_walk"}


async def _search_plans(url: str, tenant: str, term: str) -> list[str]:
    """The query plan of every statement one search of the default list ran (PostgreSQL's after
    a VACUUM and with sequential scans off: this little table would be read whole otherwise)."""
    db = await open_database(url, migrate=False)
    ran: list[tuple[str, Any]] = []
    try:
        def record(conn: Any, cursor: Any, sql: str, params: Any, *_: Any) -> None:
            if sql.lstrip().upper().startswith("SELECT"):
                ran.append((sql, params))

        event.listen(db.engine.sync_engine, "before_cursor_execute", record)
        await listing.list_sessions(db, Scope.everything(), tenant=tenant, search=term, limit=5)
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
        async with db.engine.connect() as conn:
            if db.is_sqlite:
                return [row[3] for sql, params in ran
                        for row in (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)).all()]
            # As autovacuum leaves it: the pages all-visible, so an index-only scan reads no row.
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).exec_driver_sql("VACUUM sessions")
            await conn.exec_driver_sql("SET enable_seqscan = off")
            await conn.exec_driver_sql("SET enable_bitmapscan = off")
            return [row[0] for sql, params in ran
                    for row in (await conn.exec_driver_sql("EXPLAIN " + sql, params)).all()]
    finally:
        await db.close()


@pytest.mark.parametrize("term", ["support", "topic:3", "-100042"], ids=["common", "walk-on", "rare"])
def test_default_list_search_walks_index_pages_only(rpc: RPC, dialect: str, term: str) -> None:
    """Cold-cache tails (issue 19): each session the walk or the count tested was a read of its
    row, a random page on a cold cache (10,000 of them for a count). The walk and the count read
    ix_sessions_search_walk's entries alone; rows are read by id for the page (and, for a rare
    term, its matches)."""
    seed(rpc)
    plans = asyncio.run(_search_plans(rpc.database_url, rpc.tenant, term))
    row_reads = [p for p in plans if re.match(_ROW_READS[dialect], p)]
    # PostgreSQL's rare term: its matches come through the trigram index, each read from its row.
    if not (dialect == "postgresql" and term == "-100042"):
        assert row_reads == [], plans
    assert any(_WALK_INDEX[dialect] in p for p in plans), plans


@pytest.mark.parametrize("budgets", [(5000, 20000), (1, 20000)], ids=["walk", "rare"])
def test_search_finds_sessions_whose_text_is_too_long_for_an_index_entry(rpc: RPC, budgets: tuple[int, int],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL's walk index holds no text past 1,800 bytes (search_head is null, migration
    0013): those sessions are tested on their row, in the walk and in the count alike."""
    monkeypatch.setattr(listing, "SCAN_BUDGET", budgets[0])
    monkeypatch.setattr(listing, "RARE_MATCHES", budgets[1])
    long_label = "\u0390" * 512  # 1,024 bytes, 3,072 once case-folded
    for i in range(12):
        rpc.append(f"long/{i:02d}", [{"role": "user", "content": "x"}], label=long_label if i % 2 else None)
    for term, want in [("long/", 12), ("\u0390\u0390", 6), ("long/03", 1)]:
        page = rpc("session.list", search=term, limit=5)
        assert len(page["sessions"]) == min(5, want), term
        assert page["total"] == want and not page["total_capped"], (term, page["total"])


@pytest.mark.parametrize("budgets", [(1, 20000), (1, 2)], ids=["rare", "membership"])
def test_search_tests_the_trigram_indexs_candidates(rpc: RPC, budgets: tuple[int, int],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's trigram index keeps no positions (migration 0013): a session holding every
    trigram of the term, but not the term, is a candidate that the search must not return."""
    monkeypatch.setattr(listing, "SCAN_BUDGET", budgets[0])
    monkeypatch.setattr(listing, "RARE_MATCHES", budgets[1])
    for key in ["abc-then-bcd", "abcd", "xabcdx", "dcba"]:
        rpc.append(key, [{"role": "user", "content": "x"}])
    page = rpc("session.list", search="abcd", sort="key", order="asc", limit=10)
    assert [s["key"] for s in page["sessions"]] == ["abcd", "xabcdx"]
    assert page["total"] == 2
