"""Browser test fixtures: a real sessionscope server on loopback, a real store (SQLite, then
PostgreSQL), Chromium.

The server runs as a subprocess (`sessionscope serve --no-auth`) against a temporary database and
is seeded only through the RPC, so these tests exercise exactly what the dashboard sees.
Set SESSIONSCOPE_BROWSER_URL to run the tests against a server that is already running.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.chromium import CHROMIUM, free_port, launch_chromium

SERVER_START_TIMEOUT_S = 60
SRC = Path(__file__).resolve().parents[2] / "src"
expect.set_options(timeout=10_000)


class RpcFailure(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.error = error


class Rpc:
    """A tiny JSON-RPC client for seeding and checking the store behind the browser."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=60)
        self.ids = itertools.count(1)

    def __call__(self, method: str, **params: Any) -> Any:
        response = self.client.post(
            "/rpc", json={"jsonrpc": "2.0", "id": next(self.ids), "method": method, "params": params}
        )
        body = response.json()
        if "error" in body:
            raise RpcFailure(body["error"])
        return body["result"]

    def error(self, method: str, **params: Any) -> dict[str, Any]:
        try:
            self(method, **params)
        except RpcFailure as failure:
            return failure.error
        raise AssertionError(f"{method} succeeded; an error was expected")

    def seed(
        self,
        key: str,
        *,
        agent: str,
        channel: str = "web",
        messages: int = 4,
        label: str | None = None,
        tenant: str | None = None,
        extra: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Create a session with `messages` alternating user/assistant messages (plus `extra`)."""
        batch: list[dict[str, Any]] = [
            {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} of {key}"}
            for i in range(messages)
        ] + list(extra or [])
        params: dict[str, Any] = {"key": key, "agent": agent, "channel": channel}
        if label is not None:
            params["label"] = label
        if tenant is not None:
            params["tenant"] = tenant
        result = None
        for start in range(0, len(batch), 1000):
            result = self("session.append", **params, messages=batch[start : start + 1000])
        return result or {}

    def close(self) -> None:
        self.client.close()


def _wait_until_up(url: str, proc: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"the server exited with {proc.returncode}:\n{proc.stderr.read().decode()[-4000:]}"
            )
        try:
            if httpx.get(f"{url}/sessions", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server at {url} did not come up within {SERVER_START_TIMEOUT_S} s")


@pytest.fixture(scope="session")
def server_url(dialect: str, database_url_factory: Any) -> Iterator[str]:
    """One server per database: every dashboard test runs on SQLite and on PostgreSQL."""
    external = os.environ.get("SESSIONSCOPE_BROWSER_URL")
    if external:
        _wait_until_up(external, None)
        yield external.rstrip("/")
        return
    db = database_url_factory(dialect, "browser")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))
    cmd = [
        sys.executable,
        "-c",
        "from sessionscope.cli import app; app()",
        "serve",
        "--db",
        str(db),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-auth",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


@pytest.fixture(scope="session")
def rpc(server_url: str) -> Iterator[Rpc]:
    client = Rpc(server_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    with sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()


class Watch:
    """What a page did that a test may want to assert on: RPC methods called, dialogs, errors."""

    def __init__(self, page: Page) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.page_errors: list[str] = []
        page.on("request", self._on_request)
        page.on("dialog", self._on_dialog)
        page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda err: self.page_errors.append(str(err)))

    def _on_request(self, request: Any) -> None:
        if request.url.endswith("/rpc") and request.method == "POST":
            body = json.loads(request.post_data or "{}")
            for call in body if isinstance(body, list) else [body]:
                self.calls.append((call.get("method", ""), call.get("params") or {}))

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)

    def params(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]


@pytest.fixture
def page(browser: Browser, server_url: str) -> Iterator[Page]:
    context = browser.new_context(
        base_url=server_url, accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(10_000)
    pg = context.new_page()
    pg.watch = Watch(pg)  # type: ignore[attr-defined]
    yield pg
    watch: Watch = pg.watch  # type: ignore[attr-defined]
    context.close()
    assert not watch.page_errors, f"uncaught errors in the page: {watch.page_errors}"
    assert not watch.dialogs, f"unexpected alert/confirm/prompt: {watch.dialogs}"


@pytest.fixture
def ns() -> str:
    """A unique namespace for this test's agents and keys, so tests share one store safely."""
    return f"t{uuid.uuid4().hex[:8]}"
