"""Shared by the security tests: a real server with auth on (per database), and token helpers.

tests/conftest.py registers the fixture for every module.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sessionscope.store import api_tokens, open_database
from sessionscope.web.services import ServerConfig


def create_token_in_store(database_url: str, *, name: str, role: str, tenant: str | None = None) -> str:
    async def run() -> str:
        db = await open_database(database_url)
        try:
            return (await api_tokens.create(db, name=name, role=role, tenant=tenant))["token"]
        finally:
            await db.close()

    return asyncio.run(run())


class TokenClient:
    """Raw JSON-RPC over HTTP with one bearer token (or none)."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(timeout=60, headers=headers)
        self.ids = itertools.count(1)

    def post(self, payload: Any, **kwargs: Any) -> httpx.Response:
        return self.http.post(f"{self.url}/rpc", json=payload, **kwargs)

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.post({"jsonrpc": "2.0", "id": next(self.ids), "method": method, "params": params or {}})
        assert response.status_code == 200, response.text
        return response.json()

    def __call__(self, method: str, **params: Any) -> Any:
        answer = self.request(method, params)
        assert "error" not in answer, answer
        return answer["result"]

    def error(self, method: str, **params: Any) -> dict[str, Any]:
        answer = self.request(method, params)
        assert "error" in answer, answer
        return answer["error"]

    def close(self) -> None:
        self.http.close()


class AuthServer:
    def __init__(self, running: Any, database_url: str, admin_token: str) -> None:
        self.running = running
        self.url = running.url
        self.database_url = database_url
        self.admin_token = admin_token
        self.admin = TokenClient(self.url, admin_token)

    def token(self, role: str, tenant: str | None = None, name: str | None = None) -> str:
        params: dict[str, Any] = {"name": name or f"{role}-{uuid.uuid4().hex[:6]}", "role": role}
        if tenant is not None:
            params["tenant"] = tenant
        return self.admin("token.create", **params)["token"]

    def client(self, token: str | None) -> TokenClient:
        return TokenClient(self.url, token)


@pytest.fixture(scope="session")
def auth_server(database_url: str) -> Iterator[AuthServer]:
    from tests.conftest import RunningServer  # here: conftest imports this module

    admin = create_token_in_store(database_url, name="test-admin", role="admin")
    # Loopback is this server's trusted proxy: tests give each client its own X-Forwarded-For.
    config = ServerConfig(database=database_url, auth=True, extra={"trusted_proxies": ["127.0.0.1"]})
    with RunningServer(config) as running:
        server = AuthServer(running, database_url, admin)
        yield server
        server.admin.close()
