"""The Python client: JSON-RPC over httpx, sync here and async in `sessionscope.aio`.

    from sessionscope.client import Client
    client = Client("http://127.0.0.1:8750", token)
    s = client.session("support:42", agent="helpdesk", channel="web")
    s.append({"role": "user", "content": "hi"})

`Client.call` is the raw method call the CLI uses; `Client.session` returns the handle of
`sessionscope.sdk`. Errors come back as the project's one exception tree (`sessionscope.errors`).
"""

from __future__ import annotations

import itertools
import random
import time
from typing import TYPE_CHECKING, Any, Self

import httpx

from sessionscope.errors import (
    Conflict,
    Forbidden,
    InvalidParams,
    NotFound,
    SessionscopeError,
    TooLarge,
    Unauthorized,
)

if TYPE_CHECKING:
    from sessionscope.sdk import Session

DEFAULT_TIMEOUT_S = 30.0
# Retries cover a restarting server or a flaky proxy: 4 attempts over about 1.5 s plus jitter.
DEFAULT_RETRIES = 3
BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 2.0
RETRY_STATUS = frozenset({500, 502, 503, 504})

_ERRORS: dict[int, type[SessionscopeError]] = {
    -32001: NotFound, -32003: Forbidden, -32009: Conflict, -32013: TooLarge, -32004: Unauthorized,
}


class RPCError(SessionscopeError):
    """An error answer the server gave; `code` is the JSON-RPC code."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message, data)
        self.code = code


class Unavailable(SessionscopeError):
    """The server could not be reached, or kept answering 5xx, after every retry."""


class _Retryable(Exception):
    """Internal: one attempt failed in a way a retry may fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def error_from(error: dict[str, Any]) -> SessionscopeError:
    code = int(error.get("code", -32000))
    message = str(error.get("message", "error"))
    data = error.get("data")
    cls = _ERRORS.get(code)
    if code == -32602 and isinstance(data, dict):
        exc: SessionscopeError = InvalidParams(str(data.get("field")), str(data.get("problem")))
        exc.message = message
        return exc
    if cls is NotFound and isinstance(data, dict):
        return NotFound(str(data.get("key")))
    if cls is not None:
        return cls(message, data)
    return RPCError(code, message, data)


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with full jitter, so many clients do not retry in lockstep."""
    return random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** attempt))


def payload(request_id: int, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


def decode(url: str, response: httpx.Response) -> Any:
    """One HTTP answer to a result, a typed error, or _Retryable for a 5xx."""
    if response.status_code == 401:
        raise Unauthorized("the server needs a valid token (--token or SESSIONSCOPE_TOKEN)")
    if response.status_code in RETRY_STATUS:
        raise _Retryable(f"{url} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise SessionscopeError(f"{url} answered HTTP {response.status_code} without JSON") from None
    if "error" in body:
        raise error_from(body["error"])
    return body["result"]


def auth_headers(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


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
        from sessionscope.sdk import Session

        return Session(self, key, agent=agent, channel=channel, tenant=tenant, label=label)

    def download(self, url: str, path: str) -> int:
        size = 0
        with self.http.stream("GET", url) as response, open(path, "wb") as out:
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


from sessionscope.aio import AsyncClient

__all__ = ["AsyncClient", "Client", "RPCError", "Unavailable", "error_from"]
