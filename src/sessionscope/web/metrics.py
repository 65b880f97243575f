"""Prometheus metrics at GET /metrics (prometheus-client text format).

- RPC requests and latency by method, counted in one place: an observer of `protocol.call`.
- Ingest: messages appended (by source: rpc, otlp), OTLP spans received, compactions and resets.
- The store: sessions and messages stored, read from counters, never from a table scan per
  scrape. Sessions come from the small `facets` table; messages are a sum over
  `sessions.message_count`, cached for STORE_REFRESH_S so a tight scrape interval costs nothing.
  The search indexer's lag is the length of its queue (store.search_index), a table that stays
  near empty while a server runs.

Multi-process caveat: counters and histograms live in each server process. With
`sessionscope serve --workers N` a scrape reaches one worker and sees that worker's share. Set
PROMETHEUS_MULTIPROC_DIR to an empty directory before starting the server and every worker writes
its counters there; /metrics then sums them over the workers (prometheus-client's multiprocess
mode). The store gauges are read from the database, so any worker reports them whole.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from sessionscope.errors import Forbidden
from sessionscope.rpc import protocol
from sessionscope.rpc.registry import ADMIN, METHODS
from sessionscope.store import Database, search_index
from sessionscope.store.schema import facets, sessions
from sessionscope.web import middleware

STORE_REFRESH_S = 30.0
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# RPC calls run from ~1 ms reads to multi-second LLM compactions.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# Process-wide, as Prometheus expects of one process; each app's registry also carries them.
SHARED = CollectorRegistry(auto_describe=True)
RPC_REQUESTS = Counter("sessionscope_rpc_requests", "JSON-RPC calls by method and outcome code (0: ok).",
                       ["method", "code"], registry=SHARED)
RPC_LATENCY = Histogram("sessionscope_rpc_request_duration_seconds", "JSON-RPC call latency by method.",
                        ["method"], buckets=LATENCY_BUCKETS, registry=SHARED)
MESSAGES_APPENDED = Counter("sessionscope_messages_appended", "Messages newly stored, by ingest path.",
                            ["source"], registry=SHARED)
OTLP_SPANS = Counter("sessionscope_otlp_spans", "OTLP spans received at /v1/traces.", registry=SHARED)
OTLP_UNNAMED_SPANS = Counter(
    "sessionscope_otlp_spans_without_conversation",
    "OTLP spans with no gen_ai.conversation.id or session.id: grouped_by_trace (stored as the session "
    "trace:<trace id>) or ignored (their trace has no GenAI span).", ["outcome"], registry=SHARED)
OTLP_REQUESTS = Counter("sessionscope_otlp_requests", "OTLP export requests by HTTP status.", ["status"],
                        registry=SHARED)
COMPACTIONS = Counter("sessionscope_compactions", "Compactions made, by reason.", ["reason"], registry=SHARED)
RESETS = Counter("sessionscope_resets", "Sessions reset over RPC.", registry=SHARED)


# A labelled child looked up once: labels() costs more than the increment. Names are registered
# methods (or "unknown") and codes the server's own, so the sets are small.
@functools.lru_cache(maxsize=1024)
def _requests(name: str, code: str) -> Any:
    return RPC_REQUESTS.labels(name, code)


@functools.lru_cache(maxsize=256)
def _latency(name: str) -> Any:
    return RPC_LATENCY.labels(name)


def observe_call(name: str, seconds: float, out: dict[str, Any] | None) -> None:
    """protocol.call's observer: one place counts and times every RPC method."""
    if name not in METHODS:
        name = "unknown"  # unregistered names would make the label set unbounded
    error = (out or {}).get("error")
    _requests(name, str(error["code"]) if error else "0").inc()
    _latency(name).observe(seconds)
    result = (out or {}).get("result")
    if not isinstance(result, dict):
        return
    # Messages appended and compactions are counted by the ingest and compaction services,
    # whichever path wrote them.
    if name == "session.reset":
        RESETS.inc(result.get("reset", 0))


if observe_call not in protocol.OBSERVERS:
    protocol.OBSERVERS.append(observe_call)


class StoreCollector(Collector):
    """Sessions and messages stored, from values the /metrics handler refreshed (collect is sync)."""

    def __init__(self, refresh_s: float = STORE_REFRESH_S) -> None:
        self.refresh_s = refresh_s
        self.sessions = 0
        self.messages = 0
        self.messages_read_at = float("-inf")
        self.search_queue = 0
        self.search_set_aside = 0

    async def refresh(self, db: Database) -> None:
        async with db.read() as conn:
            self.sessions = int((await conn.execute(select(func.coalesce(func.sum(facets.c.sessions), 0)))).scalar()
                                or 0)
            if time.monotonic() - self.messages_read_at >= self.refresh_s:
                total = select(func.coalesce(func.sum(sessions.c.message_count), 0))
                self.messages = int((await conn.execute(total)).scalar() or 0)
                self.messages_read_at = time.monotonic()
        self.search_queue = await search_index.queued(db)
        self.search_set_aside = await search_index.set_aside(db)

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("sessionscope_sessions_stored", "Sessions in the store.", value=self.sessions)
        yield GaugeMetricFamily("sessionscope_messages_stored",
                                f"Messages in the store (refreshed at most every {self.refresh_s:g} s).",
                                value=self.messages)
        yield GaugeMetricFamily("sessionscope_search_queue_ranges",
                                "Appended message ranges not yet indexed for search.", value=self.search_queue)
        yield GaugeMetricFamily("sessionscope_search_ranges_set_aside",
                                "Message ranges the search indexer failed on and set aside (see `check`).",
                                value=self.search_set_aside)


def registry_for_app(refresh_s: float = STORE_REFRESH_S) -> tuple[CollectorRegistry, StoreCollector]:
    """One registry per app: the process's counters (or every worker's) plus this app's store."""
    registry = CollectorRegistry(auto_describe=True)
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Shared())
    store = StoreCollector(refresh_s)
    registry.register(store)
    return registry, store


class _Shared(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from SHARED.collect()


async def endpoint(request: Request) -> Response:
    """GET /metrics. With auth on it needs an admin token: the figures span every tenant."""
    caller = middleware.caller(request)
    if caller.role != ADMIN or not caller.scope.is_global:
        raise Forbidden("forbidden: /metrics needs an admin token")
    state = request.app.state
    if not hasattr(state, "metrics"):
        # ServerConfig.extra["metrics_refresh_s"] shortens the message-count cache (tests use 0).
        state.metrics = registry_for_app(float(state.services.config.extra.get("metrics_refresh_s", STORE_REFRESH_S)))
    registry, store = state.metrics
    await store.refresh(state.services.db)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
