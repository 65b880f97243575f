"""The Python client: JSON-RPC over httpx, sync here and async in `sessionscope.client.aio`.

    from sessionscope.client import Client
    client = Client("http://127.0.0.1:8750", token)
    s = client.session("support:42", agent="helpdesk", channel="web")
    s.append({"role": "user", "content": "hi"})

`Client.call` is the raw method call the CLI uses; `Client.session` returns the handle of
`sessionscope.client.sdk`. Errors come back as the project's one exception tree (`sessionscope.errors`).
"""

from __future__ import annotations

import itertools
import time
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
from sessionscope.client.sdk import Session
from sessionscope.errors import SessionscopeError


class Client:
    """Synchronous client: `Client(url, token).call("session.list", {...})`, or `.session(key)`."""

    def __init__(self, url: str, token: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 http: httpx.Client | None = None, retries: int = DEFAULT_RETRIES) -> None:
        self.url = url.rstrip("/")
        self.http = http or httpx.Client(timeout=timeout, headers=auth_headers(token))
        self.retries = retries
        self._ids = itertools.count(1)

    def call(self, method: str, params: dict[str, Any] | None = None, *, retry: bool = False) -> Any:
        """Call one method. `retry=True` is for idempotent calls only (reads, appends with ids)."""
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(attempts):
            try:
                return self._once(method, params)
            except _Retryable as exc:
                if attempt + 1 == attempts:
                    raise Unavailable(f"{exc.message} (after {attempts} attempt(s))") from None
                time.sleep(backoff_delay(attempt))
        raise AssertionError("unreachable")

    def _once(self, method: str, params: dict[str, Any] | None) -> Any:
        try:
            response = self.http.post(f"{self.url}/rpc", json=payload(next(self._ids), method, params))
        except httpx.TransportError as exc:
            raise _Retryable(f"cannot reach {self.url}: {exc}") from exc
        return decode(self.url, response)

    def session(self, key: str, *, agent: str = "main", channel: str = "sdk", tenant: str | None = None,
                label: str | None = None) -> Session:
        """A handle on one session; it is created on the first append."""
        return Session(self, key, agent=agent, channel=channel, tenant=tenant, label=label)

    def own_url(self, link: str) -> str:
        return own_url(self.url, link)

    def download(self, url: str, path: str) -> int:
        size = 0
        with self.http.stream("GET", self.own_url(url)) as response, open(path, "wb") as out:
            if response.status_code != 200:
                raise SessionscopeError(f"export download failed: HTTP {response.status_code}")
            for chunk in response.iter_bytes():
                out.write(chunk)
                size += len(chunk)
        return size

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
