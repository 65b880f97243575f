"""The Starlette application: POST /rpc, GET /export/<token>, and the dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import sessionscope.rpc.methods  # noqa: F401 - registers the methods
from sessionscope.errors import Forbidden, NoRoute, PageNotFound, SessionscopeError
from sessionscope.rpc import protocol
from sessionscope.rpc.registry import Context
from sessionscope.store import Database, Scope, exports, open_database
from sessionscope.store.transfer import export_lines
from sessionscope.tokenizer import encoder
from sessionscope.web import auth, housekeeping, metrics, middleware, otlp
from sessionscope.web.services import ServerConfig, Services

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
_SECURITY_HEADER_BYTES = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]


def json_response(payload: Any, status: int = 200) -> Response:
    try:
        body = orjson.dumps(payload)
    except TypeError:  # a lone surrogate echoed from the request (its id, say), or an int past 64 bits
        body = middleware.json_bytes(payload)
    return Response(body, status_code=status, media_type="application/json")


def rpc_error(request: Request, exc: SessionscopeError) -> Response:
    """/rpc's errors before dispatch (credentials, media type, body size) as a JSON-RPC envelope."""
    return json_response(protocol.response(None, error=exc), exc.status)


async def rpc_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    caller = middleware.caller(request)  # before the body: an anonymous caller never gets it read
    middleware.require_json(request)
    body = await middleware.read_body(request, services.config.max_body_bytes)
    ctx = Context(db=services.db, caller=caller, services=services, base_url=link_base(request, services))
    payload = await protocol.handle(ctx, body)
    if payload is None:
        return Response(status_code=204)
    return json_response(payload)


def link_base(request: Request, services: Services) -> str:
    """Where the links this server hands out (session.export) point: the configured public URL,
    else the address the connection reached (the socket's, never the `Host` or `X-Forwarded-*`
    headers, which any client may forge to send a link and its secret elsewhere)."""
    if services.public_url is not None:
        return services.public_url
    host, port = request.scope.get("server") or ("127.0.0.1", 8750)
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if request.scope.get("scheme") == "https" else "http"
    return f"{scheme}://{host}:{port}"


async def export_download(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        sessions, filename = await exports.resolve_link(services.db, request.path_params["token"])
    except Forbidden as exc:
        raise PageNotFound(exc.message) from None
    headers = {"content-disposition": content_disposition(filename), "cache-control": "no-store"}
    # A session deleted while it streams ends the body with an error line (store.transfer).
    return StreamingResponse(_export_stream(services.db, sessions), media_type="application/x-ndjson",
                             headers=headers)


def content_disposition(filename: str) -> str:
    """An ASCII `filename` for old clients and the RFC 6266 UTF-8 `filename*` beside it."""
    ascii_name = "".join(ch if " " <= ch < "\x7f" and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def _export_stream(db: Database, sessions: list[tuple[str, str]]) -> AsyncIterator[bytes]:
    for tenant, group in itertools.groupby(sessions, key=lambda pair: pair[0]):
        async for line in export_lines(db, Scope.tenant(tenant), [key for _, key in group], tenant):
            yield line


async def dashboard(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers=SECURITY_HEADERS)


async def root(request: Request) -> Response:
    return RedirectResponse("/sessions")


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True})


class SecurityHeaders:
    """Adds the CSP and friends to every response, static files included."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(pair for pair in _SECURITY_HEADER_BYTES if pair[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


NOT_FOUND_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light dark">
  <title>Page not found · sessionscope</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/static/app.css">
</head>
<body>
  <header class="app-header">
    <a class="brand" href="/sessions">sessionscope</a>
    <nav class="app-nav" aria-label="Main"><a href="/sessions">Sessions</a></nav>
  </header>
  <main id="main" class="app-main">
    <div class="state state-empty" data-state="not-found">
      <h1 class="state-title">Page not found</h1>
      <p class="state-detail">There is no page at <code>{path}</code>.</p>
      <a href="/sessions">Go to the session list</a>
    </div>
  </main>
</body>
</html>
"""


def page_or_plain_error(request: Request, exc: SessionscopeError) -> Response:
    """The default error shape: a path no route serves (/agents, say), asked for by a browser, gets
    a 404 page in the dashboard's style; everything else the plain JSON shape. An error shape, not
    a catch-all route, so a known path with the wrong method still answers 405."""
    if isinstance(exc, NoRoute) and request.method in ("GET", "HEAD"):
        page = NOT_FOUND_PAGE.replace("{path}", html.escape(request.url.path))
        return HTMLResponse(page, status_code=404)
    return middleware.plain_error(request, exc)


def create_app(config: ServerConfig, database: Database | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = database or await open_database(config.database)
        app.state.services = Services(db, config)
        # Load the tokenizer now, off the event loop, rather than inside the first append.
        await asyncio.to_thread(encoder)
        tasks = [task for task in (housekeeping.start(db, config), housekeeping.start_indexer(db),
                                   housekeeping.start_compactor(app.state.services)) if task]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.to_thread(app.state.services.cpu_pool.close, wait=True)
            if database is None:
                await db.close()

    routes = [
        Route("/", root),
        Route("/rpc", rpc_endpoint, methods=["POST"]),
        Route("/export/{token}", export_download, methods=["GET"]),
        Route("/healthz", healthz),
        Route("/v1/traces", otlp.receive, methods=["POST"]),
        Route("/metrics", metrics.endpoint, methods=["GET"]),
        Route("/sessions", dashboard),
        Route("/sessions/{key:path}", dashboard),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=middleware.EXCEPTION_HANDLERS)
    auth.install(app, config)
    middleware.install(app, auth.authenticate if config.auth else None,
                       {"/rpc": rpc_error, "/v1/traces": otlp.render_error, "*": page_or_plain_error},
                       int(config.extra.get("max_anonymous_in_flight", middleware.MAX_ANONYMOUS_IN_FLIGHT)))
    app.add_middleware(SecurityHeaders)
    return app
