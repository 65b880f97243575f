"""GET /metrics: RPC requests and latency by method, ingest counts, store gauges, compactions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sessionscope.web.services import ServerConfig
from tests.conftest import RPC, RunningServer, conversation
from tests.security_helpers import AuthServer


@pytest.fixture(scope="module")
def metrics_server(dialect: str, database_url_factory: Any) -> Iterator[RunningServer]:
    """A server on a store of its own, so the store gauges can be checked exactly."""
    url = database_url_factory(dialect, "metrics")
    config = ServerConfig(database=url, auth=False, extra={"metrics_refresh_s": 0})
    with RunningServer(config) as running:
        yield running


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(f"{url}/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_rpc_calls_ingest_and_compactions_are_counted(metrics_server: RunningServer, tenant: str) -> None:
    rpc = RPC(metrics_server.url, tenant)
    before = scrape(metrics_server.url)
    rpc.append("m1", conversation(12))
    rpc.append("m1", conversation(12))  # a retry: nothing new is stored
    rpc.append("m2", [{"role": "user", "content": "hi"}])
    rpc.error("session.status", key="missing")
    assert rpc("session.compact", key="m1", keep_recent_tokens=200)["compacted"]
    rpc("session.reset", keys=["m2"])
    after = scrape(metrics_server.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    appended = len(conversation(12)) + 1
    assert delta("sessionscope_rpc_requests_total", method="session.append", code="0") == 3
    assert delta("sessionscope_rpc_requests_total", method="session.status", code="-32001") == 1
    assert delta("sessionscope_rpc_request_duration_seconds_count", method="session.append") == 3
    assert delta("sessionscope_rpc_request_duration_seconds_sum", method="session.append") > 0
    assert delta("sessionscope_messages_appended_total", source="rpc") == appended
    assert delta("sessionscope_compactions_total", reason="manual") == 1
    assert delta("sessionscope_resets_total") == 1

    # The gauges are read from the store, exactly (this server's store is its own).
    listing = rpc.request("session.list", {"limit": 500})["result"]
    assert value(after, "sessionscope_sessions_stored") == listing["total"]
    assert value(after, "sessionscope_messages_stored") == sum(s["message_count"] for s in listing["sessions"])
    assert value(after, "sessionscope_messages_stored") - value(before, "sessionscope_messages_stored") == appended
    rpc.http.close()


def test_otlp_spans_are_counted(metrics_server: RunningServer, tenant: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from tests.test_otlp_receiver import agent_turn, provider_for

    before = scrape(metrics_server.url)
    exporter = OTLPSpanExporter(endpoint=f"{metrics_server.url}/v1/traces",
                                headers={"x-sessionscope-tenant": tenant})
    provider = provider_for(exporter)
    agent_turn(provider.get_tracer("test"), "otel:metrics")
    provider.force_flush()
    provider.shutdown()
    httpx.post(f"{metrics_server.url}/v1/traces", content=b"\xff garbage",
               headers={"content-type": "application/x-protobuf"})
    after = scrape(metrics_server.url)
    assert value(after, "sessionscope_otlp_spans_total") - value(before, "sessionscope_otlp_spans_total") == 5
    assert value(after, "sessionscope_messages_appended_total", source="otlp") - value(
        before, "sessionscope_messages_appended_total", source="otlp") == 4
    assert value(after, "sessionscope_otlp_requests_total", status="200") - value(
        before, "sessionscope_otlp_requests_total", status="200") == 1
    assert value(after, "sessionscope_otlp_requests_total", status="400") - value(
        before, "sessionscope_otlp_requests_total", status="400") == 1


def test_metrics_need_an_admin_token_when_auth_is_on(auth_server: AuthServer, tenant: str) -> None:
    assert httpx.get(f"{auth_server.url}/metrics").status_code == 401
    agent = auth_server.token("agent", tenant)
    forbidden = httpx.get(f"{auth_server.url}/metrics", headers={"authorization": f"Bearer {agent}"})
    assert forbidden.status_code == 403
    ok = httpx.get(f"{auth_server.url}/metrics", headers={"authorization": f"Bearer {auth_server.admin_token}"})
    assert ok.status_code == 200 and "sessionscope_sessions_stored" in ok.text


def test_the_search_queue_gauge_counts_unindexed_ranges(dialect: str, database_url_factory: Any) -> None:
    import asyncio

    from sessionscope.store import open_database, search_index
    from sessionscope.web.metrics import StoreCollector

    url = database_url_factory(dialect, "metrics_queue")

    async def gauge_before_and_after_indexing() -> tuple[float, float]:
        db = await open_database(url)
        try:
            async with db.write() as conn:  # three appended ranges the indexer has not reached
                for first in (1, 101, 201):
                    await conn.exec_driver_sql(search_index.queue_statement(db), (987654, first, first + 99))
            collector = StoreCollector()
            await collector.refresh(db)
            queued = {m.name: m.samples[0].value for m in collector.collect()}["sessionscope_search_queue_ranges"]
            await search_index.drain(db)
            await collector.refresh(db)
            drained = {m.name: m.samples[0].value for m in collector.collect()}["sessionscope_search_queue_ranges"]
            return queued, drained
        finally:
            await db.close()

    assert asyncio.run(gauge_before_and_after_indexing()) == (3, 0)
