"""The asyncio client: the same calls as `sessionscope.client.Client`, awaited.

    async with AsyncClient("http://127.0.0.1:8750", token) as client:
        s = client.session("support:42", agent="helpdesk", channel="web")
        await s.append({"role": "user", "content": "hi"})
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import weakref
from typing import Any, Self

import httpx

from sessionscope.client.protocol import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    Unavailable,
    _Retryable,
    auth_headers,
    backoff_delay,
    decode,
    own_url,
    payload,
)
from sessionscope.client.sdk import AsyncSession
from sessionscope.errors import SessionscopeError


class AsyncClient:
    """Asynchronous client on httpx.AsyncClient, usable from any event loop and any thread.

    An httpx pool belongs to the event loop that opened its connections: reused from another loop
    (each `asyncio.run`, `Runner.run_sync`, a thread with its own loop) it fails with "Event loop is
    closed" or hangs. So each running loop gets a pool of its own, made on first use and dropped
    with the loop. A caller that passes `http` owns that client and its loop.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 http: httpx.AsyncClient | None = None, retries: int = DEFAULT_RETRIES) -> None:
        self.url = url.rstrip("/")
        self.retries = retries
        self._given = http
        self._timeout = timeout
        self._headers = auth_headers(token)
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary())
        self._pools_lock = threading.Lock()
        self._ids = itertools.count(1)

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client of the running event loop."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        with self._pools_lock:
            pool = self._pools.get(loop)
            if pool is None or pool.is_closed:
                pool = self._pools[loop] = httpx.AsyncClient(timeout=self._timeout, headers=self._headers)
            return pool

    async def call(self, method: str, params: dict[str, Any] | None = None, *, retry: bool = False) -> Any:
        """Call one method. `retry=True` is for idempotent calls only (reads, appends with ids)."""
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(attempts):
            try:
                return await self._once(method, params)
            except _Retryable as exc:
                if attempt + 1 == attempts:
                    raise Unavailable(f"{exc.message} (after {attempts} attempt(s))") from None
                await asyncio.sleep(backoff_delay(attempt))
        raise AssertionError("unreachable")

    async def _once(self, method: str, params: dict[str, Any] | None) -> Any:
        try:
            response = await self.http.post(f"{self.url}/rpc", json=payload(next(self._ids), method, params))
        except httpx.TransportError as exc:
            raise _Retryable(f"cannot reach {self.url}: {exc}") from exc
        return decode(self.url, response)

    def session(self, key: str, *, agent: str = "main", channel: str = "sdk", tenant: str | None = None,
                label: str | None = None) -> AsyncSession:
        """A handle on one session; it is created on the first append."""
        return AsyncSession(self, key, agent=agent, channel=channel, tenant=tenant, label=label)

    def own_url(self, link: str) -> str:
        return own_url(self.url, link)

    async def download(self, url: str, path: str) -> int:
        size = 0
        async with self.http.stream("GET", self.own_url(url)) as response:
            if response.status_code != 200:
                raise SessionscopeError(f"export download failed: HTTP {response.status_code}")
            with open(path, "wb") as out:  # noqa: ASYNC230 - local chunk writes are short
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
                    size += len(chunk)
        return size

    async def aclose(self) -> None:
        """Close the running loop's pool (or the given client). Pools of loops that are gone
        hold no live connections to wait for; they are dropped."""
        if self._given is not None:
            await self._given.aclose()
            return
        loop = asyncio.get_running_loop()
        with self._pools_lock:
            pool = self._pools.pop(loop, None)
            self._pools.clear()
        if pool is not None:
            await pool.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
