"""A small JSON-RPC client for sessionscope servers (used by the CLI; the SDK builds on it)."""

from __future__ import annotations

import itertools
from typing import Any

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

DEFAULT_TIMEOUT_S = 30.0

_ERRORS: dict[int, type[SessionscopeError]] = {
    -32001: NotFound, -32003: Forbidden, -32009: Conflict, -32013: TooLarge, -32004: Unauthorized,
}


class RPCError(SessionscopeError):
    """An error answer the server gave; `code` is the JSON-RPC code."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message, data)
        self.code = code


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


class Client:
    """Synchronous client: `Client(url, token).call("session.list", {...})`."""

    def __init__(self, url: str, token: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 http: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = http or httpx.Client(timeout=timeout, headers=headers)
        self._ids = itertools.count(1)

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or {}}
        try:
            response = self.http.post(f"{self.url}/rpc", json=payload)
        except httpx.HTTPError as exc:
            raise SessionscopeError(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code == 401:
            raise Unauthorized("the server needs a valid token (--token or SESSIONSCOPE_TOKEN)")
        try:
            body = response.json()
        except ValueError:
            raise SessionscopeError(f"{self.url} answered HTTP {response.status_code} without JSON") from None
        if "error" in body:
            raise error_from(body["error"])
        return body["result"]

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
