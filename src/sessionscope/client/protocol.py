"""What the sync and async clients share: the JSON-RPC envelope, retries, the error map, and the
steps that session calls are written in."""

from __future__ import annotations

import random
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

from sessionscope import errors
from sessionscope.errors import SessionscopeError, Unauthorized, class_for_code

DEFAULT_TIMEOUT_S = 30.0
# Retries cover a restarting server or a flaky proxy: 4 attempts over about 1.5 s plus jitter.
DEFAULT_RETRIES = 3
BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 2.0
RETRY_STATUS = frozenset({500, 502, 503, 504})

T = TypeVar("T")


class RPCError(SessionscopeError):
    """An error answer the server gave; `code` is the JSON-RPC code."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message, data)
        self.code = code


class Unavailable(errors.Unavailable):
    """The server could not be reached, or kept answering 5xx, after every retry."""


class _Retryable(Exception):
    """Internal: one attempt failed in a way a retry may fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def error_from(error: dict[str, Any]) -> SessionscopeError:
    """A JSON-RPC error object back to its class of the one tree (RPCError for a code it lacks)."""
    code = int(error.get("code", -32000))
    message = str(error.get("message", "error"))
    data = error.get("data")
    cls = class_for_code(code)
    if cls is None or cls is SessionscopeError:
        return RPCError(code, message, data)
    return cls.from_wire(message, data)


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


# ---- the steps of a session call -------------------------------------------------------------------
# A session call is written once, as a generator that yields what it needs sent (Request, Download)
# and receives each answer; a sync or an async driver sends the steps over its own transport.


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    params: dict[str, Any]
    retry: bool  # only for idempotent calls: reads, and writes that carry client-made ids


@dataclass(frozen=True, slots=True)
class Download:
    url: str
    path: str


Step = Request | Download
Steps = Generator[Step, Any, T]


class SyncTransport(Protocol):
    def call(self, method: str, params: dict[str, Any] | None = None, *, retry: bool = False) -> Any: ...
    def download(self, url: str, path: str) -> int: ...


class AsyncTransport(Protocol):
    async def call(self, method: str, params: dict[str, Any] | None = None, *, retry: bool = False) -> Any: ...
    async def download(self, url: str, path: str) -> int: ...


def run_steps(transport: SyncTransport, steps: Steps[T]) -> T:
    """Send a call's steps one after another; an error is raised inside the steps, where the
    call may handle it, and otherwise ends the call."""
    with closing(steps):
        answer: Any = None
        error: SessionscopeError | None = None
        while True:
            try:
                step = steps.throw(error) if error is not None else steps.send(answer)
            except StopIteration as done:
                return done.value
            error = None
            try:
                if isinstance(step, Request):
                    answer = transport.call(step.method, step.params, retry=step.retry)
                else:
                    answer = transport.download(step.url, step.path)
            except SessionscopeError as exc:  # the call's steps may handle it; if not, it ends the call
                error = exc


async def arun_steps(transport: AsyncTransport, steps: Steps[T]) -> T:
    """`run_steps`, awaited."""
    with closing(steps):
        answer: Any = None
        error: SessionscopeError | None = None
        while True:
            try:
                step = steps.throw(error) if error is not None else steps.send(answer)
            except StopIteration as done:
                return done.value
            error = None
            try:
                if isinstance(step, Request):
                    answer = await transport.call(step.method, step.params, retry=step.retry)
                else:
                    answer = await transport.download(step.url, step.path)
            except SessionscopeError as exc:  # the call's steps may handle it; if not, it ends the call
                error = exc


def own_url(base: str, link: str) -> str:
    """An export link on the client's own server (`base`): only its path is taken from the answer,
    so a link built from a forged Host header cannot send the download (and its secret) elsewhere."""
    parts, own = urlsplit(link), urlsplit(base)
    return f"{own.scheme}://{own.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")
