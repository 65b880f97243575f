"""web/cpu_pool.py: an OTLP request's decoding runs in a worker process once the pool is up;
until then, for small bodies, and after a worker died, in a thread; a worker's error reaches the
caller as its own class. And through a real server: a large export decoded in a worker process
is stored as the same sessions as one decoded in a thread."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import httpx
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sessionscope.errors import ConfigError, ImportFormatError
from sessionscope.web import cpu_pool
from sessionscope.web.otlp import TENANT_HEADER
from sessionscope.web.services import ServerConfig
from tests.conftest import RunningServer

BIG = cpu_pool.POOL_MIN_BYTES


async def _until_ready(pool: cpu_pool.CpuPool) -> None:
    deadline = time.monotonic() + 60
    while not pool.ready:
        assert time.monotonic() < deadline, "the worker processes did not start"
        await asyncio.sleep(0.05)


def _encoder_loaded() -> bool:
    from sessionscope import tokenizer

    return tokenizer.encoder.cache_info().currsize > 0


def _refuse(body: bytes) -> None:
    raise ImportFormatError(f"refused in {os.getpid()}")


def test_work_moves_to_a_process_once_the_pool_is_up_and_survives_a_dead_worker() -> None:
    async def main() -> None:
        pool = cpu_pool.CpuPool(1)
        try:
            assert await pool.run(BIG, os.getpid, overlapping=False) == os.getpid()
            assert not pool.ready and pool._pool is None  # one request at a time: no pool
            assert await pool.run(BIG, os.getpid) == os.getpid()  # starts the pool, runs in a thread
            await _until_ready(pool)
            worker = await pool.run(BIG, os.getpid)
            assert worker != os.getpid()
            assert await pool.run(BIG - 1, os.getpid) == os.getpid()  # small: in a thread
            try:
                await pool.run(BIG, _refuse, b"x")
            except ImportFormatError as exc:
                assert exc.message == f"refused in {worker}" and exc.status == 400
            else:
                raise AssertionError("the worker's error was not raised")
            os.kill(worker, signal.SIGKILL)
            await asyncio.sleep(0.5)
            assert await pool.run(BIG, os.getpid) == os.getpid()  # done in a thread, not lost
            await pool.run(BIG, os.getpid)  # starts a new pool
            await _until_ready(pool)
            assert await pool.run(BIG, os.getpid) not in (os.getpid(), worker)
        finally:
            pool.close(wait=True)

    asyncio.run(main())


def test_no_workers_means_threads_only() -> None:
    async def main() -> None:
        pool = cpu_pool.CpuPool(0)
        assert await pool.run(BIG * 10, os.getpid) == os.getpid()
        assert not pool.ready

    asyncio.run(main())


def _export(sessions: int, run: str) -> bytes:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("pool")
    for s in range(sessions):
        with tracer.start_as_current_span("chat", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.conversation.id": f"{run}/{s}",
            "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10 + s,
            "gen_ai.input.messages": f'[{{"role":"user","parts":[{{"type":"text","content":"q{s}"}}]}}]',
            "gen_ai.output.messages": f'[{{"role":"assistant","parts":[{{"type":"text","content":"a{s}"}}]}}]',
        }):
            pass
    provider.shutdown()
    return encode_spans(memory.get_finished_spans()).SerializeToString()


def test_a_large_export_decoded_in_a_worker_is_stored_like_one_decoded_in_a_thread(database_url: str) -> None:
    config = ServerConfig(database=database_url, auth=False, extra={"cpu_workers": 1})
    with RunningServer(config) as server:
        def post(body: bytes, tenant: str) -> None:
            answer = httpx.post(f"{server.url}/v1/traces", content=body, timeout=60,
                                headers={"content-type": "application/x-protobuf", TENANT_HEADER: tenant})
            assert answer.status_code == 200, answer.text

        def stored(tenant: str) -> list[Any]:
            out = []
            for s in range(300):
                answer = httpx.post(f"{server.url}/rpc", json={
                    "jsonrpc": "2.0", "id": 1, "method": "session.status",
                    "params": {"key": f"pool/{s}", "tenant": tenant}}).json()["result"]
                session = answer["session"]
                out.append(([(i["role"], i["content"], i.get("tokens")) for i in answer["items"]],
                            session["input_tokens"], session["executions"], session["created_at"]))
            return out

        body = _export(300, "pool")
        assert len(body) >= BIG
        services = _services(server)
        post(body, "pool-thread")  # alone: decoded in a thread, and no pool is started for it
        assert services.cpu_pool._pool is None
        services.otlp_writer._preparing += 1  # as if another request were being decoded
        try:
            post(body, "pool-thread")  # overlapping: starts the pool (and is decoded in a thread)
        finally:
            services.otlp_writer._preparing -= 1
        deadline = time.monotonic() + 60
        while not services.cpu_pool.ready:
            assert time.monotonic() < deadline, "the worker processes did not start"
            time.sleep(0.05)
        post(body, "pool-process")
        in_process = stored("pool-process")
        assert in_process == stored("pool-thread")
        assert [(role, content) for role, content, _ in in_process[7][0]] == [("user", "q7"),
                                                                                      ("assistant", "a7")]
        # The worker decoded but did not count: the o200k_base encoder (~70 MB) stays out of it.
        assert asyncio.run(_in_worker(services.cpu_pool, _encoder_loaded)) is False
        garbage = b"\x0a\xff\xff\xff\xff\x0f" + b"\x00" * BIG
        answer = httpx.post(f"{server.url}/v1/traces", content=garbage,
                            headers={"content-type": "application/x-protobuf"})
        assert answer.status_code == 400  # a worker's decoding error is the request's 400


async def _in_worker(pool: cpu_pool.CpuPool, fn: Any) -> Any:
    """fn in one of the server's worker processes (its pool, from this thread's own loop)."""
    assert pool.ready and pool._pool is not None
    return await asyncio.wrap_future(pool._pool.submit(fn))


def _services(server: RunningServer) -> Any:
    app: Any = server.server.config.loaded_app
    while not hasattr(app, "state"):
        app = app.app
    return app.state.services



def test_the_worker_count_is_checked_and_read_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv(cpu_pool.WORKERS_ENV, "3")
    assert cpu_pool.workers_for({}) == 3
    assert cpu_pool.workers_for({"cpu_workers": 0}) == 0  # the server's own setting first
    for bad in ("many", "-1", "1000"):
        monkeypatch.setenv(cpu_pool.WORKERS_ENV, bad)
        try:
            cpu_pool.workers_for({})
        except ConfigError as exc:
            assert cpu_pool.WORKERS_ENV in exc.message and repr(bad) in exc.message
        else:
            raise AssertionError(f"{bad!r} was taken")


def test_serving_processes_default_to_no_decoding_workers(monkeypatch: Any) -> None:
    from sessionscope.server import for_serving_processes

    monkeypatch.delenv(cpu_pool.WORKERS_ENV, raising=False)
    assert cpu_pool.workers_for(for_serving_processes(ServerConfig()).extra) == 0
    assert cpu_pool.workers_for(for_serving_processes(ServerConfig(extra={"cpu_workers": 3})).extra) == 3
    monkeypatch.setenv(cpu_pool.WORKERS_ENV, "2")
    assert cpu_pool.workers_for(for_serving_processes(ServerConfig()).extra) == 2
