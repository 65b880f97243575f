"""The web boundary: who is calling, which requests are answered at all, and how errors look.

Every request passes `Boundary` before any endpoint runs. It

- refuses, without auth, any `Host` that is not a loopback name (DNS rebinding);
- refuses a state change (any method but GET/HEAD/OPTIONS) whose `Origin` is another site;
- resolves the caller once (a Bearer token or the dashboard cookie, through web/auth.py; the
  local admin under --no-auth) and puts it on the scope, where `caller(request)` reads it or
  raises the failure it met;
- caps the requests in flight that carry no valid credentials, so half-sent anonymous bodies
  cannot pile up.

Errors: endpoints raise the classes of sessionscope.errors and `error_response` renders them, the
one HTTP mapping of the tree (status from the class). The body's shape follows the route's
protocol: a JSON-RPC envelope on /rpc, a google.rpc.Status on /v1/traces (registered by
web/otlp.py), and `{"ok": false, "status", "code", "error", "data"}` everywhere else.

Bodies: `read_body` enforces a byte limit and a time limit while the body streams in.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from sessionscope.errors import (
    ClientDisconnected,
    Forbidden,
    InternalError,
    InvalidRequest,
    NoRoute,
    RequestTimeout,
    SessionscopeError,
    TooLarge,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from sessionscope.rpc.registry import ADMIN, Caller
from sessionscope.store import Scope

CALLER_KEY = "sessionscope.caller"
AUTH_ERROR_KEY = "sessionscope.auth_error"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths that never need a caller: no token lookup for every static file the dashboard loads.
NO_CALLER_PREFIXES = ("/static/", "/healthz", "/login", "/auth/")
# Requests in flight without valid credentials (a login, a refused call); past this, 503.
MAX_ANONYMOUS_IN_FLIGHT = 64
# A body must arrive whole within this many seconds (a slowloris body is cut off, 408).
BODY_TIMEOUT_S = 30.0
LOCAL_ADMIN = Caller(scope=Scope.everything(), role=ADMIN, token_name="local")

Renderer = Callable[[Request, SessionscopeError], Response]


class MethodNotAllowed(InvalidRequest):
    status = 405


# ---- errors ----------------------------------------------------------------------------------------

def json_bytes(payload: Any) -> bytes:
    # The standard encoder: it also writes a lone surrogate echoed from a request, or an int past
    # 64 bits, which orjson refuses.
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8",
                                                                                                  "surrogatepass")


def plain_error(request: Request, exc: SessionscopeError) -> Response:
    body: dict[str, Any] = {"ok": False, "status": exc.status, "code": exc.code, "error": exc.message}
    if exc.data is not None:
        body["data"] = exc.data
    return Response(json_bytes(body), status_code=exc.status, media_type="application/json")


def error_response(request: Request, exc: SessionscopeError) -> Response:
    """The one HTTP mapping of the error tree: the status is the class's, the shape the route's."""
    renderers: dict[str, Renderer] = getattr(request.app.state, "error_renderers", {})
    # A route's own shape, else the app's default ("*"), else the plain JSON shape.
    response = (renderers.get(request.url.path) or renderers.get("*", plain_error))(request, exc)
    if isinstance(exc, TooManyRequests) and isinstance(exc.data, dict) and exc.data.get("retry_after"):
        response.headers["retry-after"] = str(exc.data["retry_after"])
    if isinstance(exc, (RequestTimeout, TooLarge, ClientDisconnected)):
        response.headers["connection"] = "close"  # the rest of the body is never read
    return response


async def _on_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SessionscopeError)
    return error_response(request, exc)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: SessionscopeError
    if exc.status_code == 404:
        error = NoRoute(exc.detail)
    elif exc.status_code == 405:
        error = MethodNotAllowed(exc.detail)
    else:
        error = InvalidRequest(exc.detail)
    return error_response(request, error)


async def _on_crash(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware logs the traceback after this answer is sent.
    return error_response(request, InternalError("internal error; the server log has the details"))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    SessionscopeError: _on_error, HTTPException: _on_http_exception, Exception: _on_crash,
}


# ---- bodies ----------------------------------------------------------------------------------------

def require_json(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType("unsupported media type: send the body as Content-Type: application/json")


async def read_body(request: Request, limit: int, timeout_s: float | None = None) -> bytes:
    """The whole body, refused with TooLarge as soon as it passes `limit` bytes (so a huge body
    never sits in memory) and with RequestTimeout when it does not arrive within `timeout_s`."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request too large: the body limit is {limit} bytes", {"max_bytes": limit})
    chunks: list[bytes] = []
    size = 0
    budget = timeout_s if timeout_s is not None else _body_timeout(request)
    try:
        async with asyncio.timeout(budget):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"request too large: the body limit is {limit} bytes", {"max_bytes": limit})
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(f"request timeout: the body did not arrive within {budget:g} s") from None
    except ClientDisconnect:
        raise ClientDisconnected("the client disconnected while sending the body") from None
    return b"".join(chunks)


def _body_timeout(request: Request) -> float:
    services = getattr(request.app.state, "services", None)
    return float(services.config.extra.get("body_timeout_s", BODY_TIMEOUT_S)) if services else BODY_TIMEOUT_S


# ---- the caller ------------------------------------------------------------------------------------

def caller(request: Request) -> Caller:
    """The caller Boundary resolved, or the reason there is none (Unauthorized or Forbidden)."""
    found = request.scope.get(CALLER_KEY)
    if found is not None:
        return found
    raise request.scope.get(AUTH_ERROR_KEY) or Unauthorized("unauthorized: no credentials")


@functools.lru_cache(maxsize=256)  # asked on every request, with a handful of distinct values
def is_loopback_host(host_header: str) -> bool:
    host = urlsplit(f"//{host_header}").hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def foreign_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return False  # not a browser's cross-site request: browsers send Origin on every unsafe one
    return origin == "null" or urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()


class Boundary:
    """Pure ASGI middleware (no buffering of bodies or responses); see the module docstring."""

    def __init__(self, app: Any, authenticate: Callable[[Request], Any] | None,
                 max_anonymous: int = MAX_ANONYMOUS_IN_FLIGHT) -> None:
        self.app = app
        self.authenticate = authenticate  # None: --no-auth, every loopback caller is the local admin
        self.max_anonymous = max_anonymous
        self.anonymous = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        refusal = self._refusal(request)
        if refusal is not None:
            await error_response(request, refusal)(scope, receive, send)
            return
        if not scope["path"].startswith(NO_CALLER_PREFIXES):
            await self._resolve(request)
        if CALLER_KEY in scope or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        if self.anonymous >= self.max_anonymous:
            busy = Unavailable("server busy: too many unauthenticated requests in flight; retry later")
            await error_response(request, busy)(scope, receive, send)
            return
        self.anonymous += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.anonymous -= 1

    def _refusal(self, request: Request) -> SessionscopeError | None:
        if self.authenticate is None and not is_loopback_host(request.headers.get("host", "")):
            return Forbidden("forbidden: without auth this server answers only loopback host names "
                             "(localhost, 127.0.0.1, [::1])")
        if request.method not in SAFE_METHODS and foreign_origin(request):
            return Forbidden("forbidden: a request that changes state must come from this site (Origin)")
        return None

    async def _resolve(self, request: Request) -> None:
        if self.authenticate is None:
            request.scope[CALLER_KEY] = LOCAL_ADMIN
            return
        try:
            request.scope[CALLER_KEY] = await self.authenticate(request)
        except SessionscopeError as exc:
            request.scope[AUTH_ERROR_KEY] = exc


def install(app: Starlette, authenticate: Callable[[Request], Any] | None,
            renderers: dict[str, Renderer], max_anonymous: int = MAX_ANONYMOUS_IN_FLIGHT) -> None:
    """Boundary around the app; the exception handlers go to Starlette(exception_handlers=...)."""
    app.state.error_renderers = renderers
    app.add_middleware(Boundary, authenticate=authenticate, max_anonymous=max_anonymous)
