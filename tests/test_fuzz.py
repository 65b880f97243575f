"""Fuzzing the real server with hostile JSON-RPC: every answer is a JSON-RPC error or a valid result
(never a 500, an internal error or a hang), and no failing request changes the store.

Runs on its own store per database, seeded with known sessions so that many fuzzed calls hit real
keys (a bulk delete of one real and one missing key must delete nothing).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from sessionscope.rpc.protocol import MAX_BATCH
from sessionscope.rpc.registry import METHODS
from sessionscope.store import open_database
from sessionscope.store.schema import compactions, executions, facets, messages, resets, sessions
from sessionscope.web.services import ServerConfig
from tests.conftest import RunningServer

# At least 10,000 requests in all; PostgreSQL gets the smaller share to keep the run short.
CASES = {"sqlite": 8_000, "postgresql": 2_500}
REQUEST_TIMEOUT_S = 30
TENANTS = ["default", "fuzz-a", "fuzz-b"]
KEYS = ["k1", "k2", "a:b/c %2F #x ?y", "percent%_", "emoji 🚀"]
RAN: dict[str, int] = {}

SQL = ["' OR 1=1 --", "\"; DROP TABLE sessions; --", "%", "_", "%_%", "\\", "\\%", "*", "NEAR(a b)", "\"a\"",
       "'; SELECT pg_sleep(5); --", "a' UNION SELECT token_hash FROM api_tokens --", "$1", "?", ":name"]
CONTROL = ["a\x00b", "\x01", "line\nbreak", "\x7f", "tab\tkey", "\u2028", "\ud800", "\ufeff"]
BIG = {n: "x" * n for n in (513, 4_097, 70_000, 1_000_001)}


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth):
        value = [value] if i % 2 else {"n": value}
    return value


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40), st.sampled_from(SQL),
    st.sampled_from(CONTROL), st.sampled_from(KEYS), st.sampled_from(TENANTS),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8),
                                                                                          inner, max_size=3),
                      max_leaves=6)
# Cheap to build: many copies of one hostile key (up to past the 1000-key limit).
many_keys = st.tuples(st.sampled_from(KEYS + SQL + CONTROL), st.integers(0, 1_100)).map(lambda t: [t[0]] * t[1])
hostile = st.one_of(
    values, values, values, values, values, values,
    st.integers(min_value=10, max_value=200).map(nested),
    many_keys,
    st.sampled_from(list(BIG)).map(BIG.__getitem__),
)


@st.composite
def params(draw: st.DrawFn, method: str, big: bool = True) -> Any:
    """Mostly the method's own field names with hostile or plausible values; sometimes anything."""
    if method not in METHODS or draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(values, st.none()))
    fields = list(METHODS[method].params.model_fields)
    chosen = draw(st.lists(st.sampled_from(fields), unique=True, max_size=len(fields))) if fields else []
    out: dict[str, Any] = {}
    for name in chosen:
        if name == "key":
            out[name] = draw(st.one_of(st.sampled_from(KEYS), hostile))
        elif name == "keys":
            out[name] = draw(st.one_of(st.lists(st.sampled_from([*KEYS, "missing"]), min_size=1, max_size=3), hostile))
        elif name == "tenant":
            out[name] = draw(st.one_of(st.sampled_from(TENANTS), hostile))
        elif name in ("search", "query"):
            out[name] = draw(st.one_of(st.sampled_from(SQL), st.text(max_size=20), hostile))
        else:
            out[name] = draw(hostile if big else values)
    if draw(st.booleans()) and draw(st.booleans()):
        out[draw(st.text(max_size=10))] = draw(values)
    return out


@st.composite
def call(draw: st.DrawFn, big: bool = True) -> Any:
    method = draw(st.one_of(st.sampled_from(sorted(METHODS)), st.text(max_size=30), values))
    request: dict[str, Any] = {"jsonrpc": draw(st.sampled_from(["2.0", "2.0", "2.0", "1.0", None, 2])),
                               "method": method}
    if draw(st.integers(0, 9)):
        request["id"] = draw(st.one_of(st.integers(), st.text(max_size=10), st.none(), values))
    request["params"] = draw(params(method if isinstance(method, str) else "", big))
    if draw(st.integers(0, 19)) == 0:
        del request["jsonrpc"]
    return request


@st.composite
def body(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 99))
    if kind < 75:
        return json.dumps(draw(call()), ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if kind < 88:
        size = draw(st.sampled_from([0, 1, 2, 3, MAX_BATCH, MAX_BATCH + 1, MAX_BATCH + 50]))
        distinct = [draw(call(big=False)) for _ in range(min(size, 3))]
        batch = [distinct[i % len(distinct)] for i in range(size)] if size else []
        return json.dumps(batch).encode("utf-8", "surrogatepass")
    if kind < 94:
        return draw(st.binary(max_size=200))
    if kind < 98:
        text = json.dumps(draw(call()))
        return text[: draw(st.integers(0, len(text)))].encode()
    depth = draw(st.integers(60, 100_000))  # built as text: deeper than json.dumps can go
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"jsonrpc":"2.0","id":1,"params":', "}")]))
    return (opener * depth + "0" + closer * depth).encode()


def answers(response: httpx.Response) -> list[dict[str, Any]]:
    if response.status_code == 413:  # refused at the HTTP boundary while streaming: the envelope still
        assert response.json()["error"]["code"] == -32013, response.text[:300]
    else:
        assert response.status_code in (200, 204), (response.status_code, response.text[:300])
    if response.status_code == 204:
        return []
    payload = response.json()
    items = payload if isinstance(payload, list) else [payload]
    assert items, "an empty batch answer"
    for item in items:
        assert item.get("jsonrpc") == "2.0" and "id" in item, item
        assert ("result" in item) != ("error" in item), item
        if "error" in item:
            error = item["error"]
            assert isinstance(error["code"], int) and isinstance(error["message"], str) and error["message"]
            assert error["code"] != -32603, f"internal error: {error}"
    return items


FINGERPRINT = select(
    sessions.c.id, sessions.c.tenant, sessions.c.key, sessions.c.agent, sessions.c.channel, sessions.c.label,
    sessions.c.updated_at, sessions.c.next_seq, sessions.c.live_from_seq, sessions.c.active_compaction_id,
    sessions.c.message_count, sessions.c.live_tokens, sessions.c.total_tokens, sessions.c.resets,
    sessions.c.compactions, sessions.c.executions, sessions.c.tool_calls, sessions.c.cost_usd,
).order_by(sessions.c.id)
COUNTS = select(*(select(func.count()).select_from(t).scalar_subquery() for t in (messages, compactions, resets,
                                                                                   executions)),
                select(func.coalesce(func.sum(facets.c.sessions), 0)).scalar_subquery())


class Fuzzer:
    def __init__(self, url: str, database_url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S)
        self.loop = asyncio.new_event_loop()
        self.db = self.loop.run_until_complete(open_database(database_url, migrate=False, pool_size=1))

    def rpc(self, method: str, **params: Any) -> Any:
        answer = self.http.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
        assert "error" not in answer, answer
        return answer["result"]

    def seed(self) -> None:
        for tenant in TENANTS:
            for key in KEYS:
                self.rpc("session.append", tenant=tenant, key=key, agent="fuzz", channel="web",
                         messages=[{"id": f"m{i}", "role": "user", "content": f"seed {i} " * 30} for i in range(8)])

    def fingerprint(self) -> Any:
        """Every session's counters and boundaries plus the row count of each item table, read
        straight from the store (one round trip, so 10,000 cases stay quick)."""
        return self.loop.run_until_complete(self._fingerprint())

    async def _fingerprint(self) -> Any:
        async with self.db.read() as conn:
            found = (await conn.execute(FINGERPRINT)).all()
            counts = tuple((await conn.execute(COUNTS)).one())
        return [tuple(r) for r in found], counts

    def close(self) -> None:
        self.http.close()
        self.loop.run_until_complete(self.db.close())
        self.loop.close()


@pytest.fixture(scope="module")
def fuzz_server(dialect: str, database_url_factory: Any) -> Iterator[Fuzzer]:
    url = database_url_factory(dialect, "fuzz")
    with RunningServer(ServerConfig(database=url, auth=False)) as running:
        fuzzer = Fuzzer(running.url, url)
        fuzzer.seed()
        yield fuzzer
        fuzzer.close()


def test_hostile_requests(fuzz_server: Fuzzer, dialect: str) -> None:
    ran = 0
    failed = 0
    known: Any = None

    @settings(max_examples=CASES[dialect], deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(payload=body())
    def run(payload: bytes) -> None:
        nonlocal ran, failed, known
        # The fingerprint after a failing request is the one before the next: read it again only
        # when the last request succeeded (and so may have changed something).
        before = known if known is not None else fuzz_server.fingerprint()
        response = fuzz_server.http.post("/rpc", content=payload, headers={"content-type": "application/json"})
        items = answers(response)
        ran += 1
        known = None
        if items and all("error" in item for item in items):
            failed += 1
            known = fuzz_server.fingerprint()
            assert known == before, f"a failing request changed the store: {payload[:300]!r}"

    run()
    RAN[dialect] = ran
    print(f"\nfuzz cases run on {dialect}: {ran} ({failed} answered only with errors)")
    assert ran >= CASES[dialect] * 0.9


def test_oversized_body_is_a_clear_error(fuzz_server: Fuzzer) -> None:
    before = fuzz_server.fingerprint()
    huge = b'{"jsonrpc": "2.0", "id": 1, "method": "session.delete", "params": {"keys": ["' + b"k" * (9 << 20) + b'"]}}'
    response = fuzz_server.http.post("/rpc", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413  # refused at the HTTP boundary, before dispatch
    assert response.json()["error"]["code"] == -32013
    assert fuzz_server.fingerprint() == before
