"""Fixtures: every store test runs on SQLite and on PostgreSQL, through a real server on loopback.

Each test gets its own tenant, so tests share one server per database without seeing each
other's sessions.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, Self

import httpx
import pytest
import uvicorn

from sessionscope.client import Client
from sessionscope.web.app import create_app
from sessionscope.web.connections import PROTOCOL, uvicorn_config
from sessionscope.web.services import ServerConfig

# Every RPC result is checked against its declared model in the test suite (ServerConfig reads
# this when it is made, here and in every server subprocess).
os.environ["SESSIONSCOPE_DEBUG"] = "1"

PG_ADMIN_DSN = os.environ.get("SESSIONSCOPE_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_TEST_DB = os.environ.get("SESSIONSCOPE_TEST_PG_DB", "sessionscope_test")  # one name per concurrent run
DIALECTS = ["sqlite", "postgresql"]


def _run_alone(coroutine_function: Any) -> Any:
    """Run a coroutine on a loop of its own thread: a caller may hold a running loop already
    (Playwright's sync API keeps one in the main thread, where asyncio.run would refuse)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine_function()).result()


def postgres_available() -> str | None:
    """None if reachable, else the reason."""
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        await conn.close()

    try:
        _run_alone(probe)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"


def fresh_postgres_database(name: str) -> str:
    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    _run_alone(create)
    return PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"


def skip_or_fail_postgres(reason: str) -> None:
    message = f"PostgreSQL not reachable ({reason}); PostgreSQL tests skipped"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} -- under CI=true this is a failure", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def database_url_factory(tmp_path_factory: pytest.TempPathFactory) -> Any:
    created: dict[str, str] = {}

    def make(dialect: str, name: str = "main") -> str:
        if (dialect, name) in created:
            return created[(dialect, name)]
        if dialect == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db')}/{name}.db"
        else:
            reason = postgres_available()
            if reason:
                skip_or_fail_postgres(reason)
            url = fresh_postgres_database(f"{PG_TEST_DB}_{name}")
        created[(dialect, name)] = url
        return url

    return make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    """uvicorn in a background thread, serving a real app on a loopback port."""

    def __init__(self, config: ServerConfig, protocol: Any = PROTOCOL) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The server's own uvicorn settings (header timeout, connection caps), as `serve` runs it.
        self.server = uvicorn.Server(uvicorn_config(create_app(config), host="127.0.0.1", port=self.port,
                                                    protocol=protocol, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session", params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def database_url(dialect: str, database_url_factory: Any) -> str:
    return database_url_factory(dialect)


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[RunningServer]:
    with RunningServer(ServerConfig(database=database_url, auth=False)) as running:
        yield running


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


class RPC:
    """Test helper: raw JSON-RPC calls with this test's tenant filled in."""

    def __init__(self, url: str, tenant: str) -> None:
        self.url = url
        self.tenant = tenant
        self.http = httpx.Client(timeout=60)
        self.client = Client(url, http=self.http)
        self.database_url = ""

    def raw(self, payload: Any, **kwargs: Any) -> httpx.Response:
        return self.http.post(f"{self.url}/rpc", json=payload, **kwargs)

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
        response = self.raw(body)
        assert response.status_code == 200, response.text
        return response.json()

    def __call__(self, method: str, **params: Any) -> Any:
        params.setdefault("tenant", self.tenant)
        answer = self.request(method, params)
        assert "error" not in answer, answer
        return answer["result"]

    def error(self, method: str, **params: Any) -> dict[str, Any]:
        params.setdefault("tenant", self.tenant)
        answer = self.request(method, params)
        assert "error" in answer, answer
        return answer["error"]

    def append(self, key: str, messages: list[dict[str, Any]], agent: str = "main", channel: str = "web",
               **extra: Any) -> Any:
        return self("session.append", key=key, agent=agent, channel=channel, messages=messages, **extra)


@pytest.fixture
def rpc(server: RunningServer, tenant: str, database_url: str) -> Iterator[RPC]:
    helper = RPC(server.url, tenant)
    helper.database_url = database_url
    yield helper
    helper.http.close()


def conversation(turns: int, prefix: str = "") -> list[dict[str, Any]]:
    """A valid conversation with a tool call in every other turn, ids stable per (prefix, index)."""
    out: list[dict[str, Any]] = []
    for t in range(turns):
        out.append({"id": f"{prefix}u{t}", "role": "user",
                    "content": f"Turn {t}: please check /srv/app/file{t}.py and ticket TCK-{1000 + t}."})
        if t % 2:
            call = f"{prefix}call{t}"
            out.append({"id": f"{prefix}a{t}c", "role": "assistant", "content": "",
                        "tool_calls": [{"id": call, "name": "read_file", "arguments": f'{{"path": "/srv/{t}"}}'}]})
            out.append({"id": f"{prefix}t{t}", "role": "tool", "content": f"contents of file {t} " * 20,
                        "tool_call_id": call, "tool_name": "read_file"})
        out.append({"id": f"{prefix}a{t}", "role": "assistant",
                    "content": f"Decision: we keep retry limit {t + 2}. " + "Details follow. " * 30})
    return out


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many tests ran on each database, so a CI log shows PostgreSQL really ran."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            pg_only = "postgres_only" in getattr(report, "keywords", {})
            for name in DIALECTS:
                if (f"[{name}" in nodeid or f"-{name}]" in nodeid or f"-{name}-" in nodeid
                        or (pg_only and name == "postgresql")):
                    counts.setdefault(name, {}).setdefault(outcome, 0)
                    counts[name][outcome] += 1
    for name in DIALECTS:
        parts = ", ".join(f"{n} {o}" for o, n in sorted(counts.get(name, {}).items())) or "none ran"
        terminalreporter.write_line(f"{name} tests: {parts}")


# The security tests' server with auth on (defined there, registered here for every module).
from tests.security_helpers import auth_server  # noqa: E402, F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: sync Playwright keeps an event loop running on the main thread for
    the rest of the session, which would break later tests that call asyncio.run()."""
    items.sort(key=lambda item: "/browser/" in str(item.path))
