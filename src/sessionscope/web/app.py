"""The Starlette application: POST /rpc, GET /export/<token>, and the dashboard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import sessionscope.rpc.methods  # noqa: F401 - registers the methods
from sessionscope.errors import Forbidden, PageNotFound, SessionscopeError
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
    ctx = Context(db=services.db, caller=caller, services=services, base_url=str(request.base_url).rstrip("/"))
    payload = await protocol.handle(ctx, body)
    if payload is None:
        return Response(status_code=204)
    return json_response(payload)


async def export_download(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        tenant, keys = await exports.resolve_link(services.db, request.path_params["token"])
    except Forbidden as exc:
        raise PageNotFound(exc.message) from None
    filename = "session-export.jsonl"
    headers = {"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"}
    lines = export_lines(services.db, Scope.tenant(tenant), keys, tenant)
    return StreamingResponse(lines, media_type="application/x-ndjson", headers=headers)


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
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
                       {"/rpc": rpc_error, "/v1/traces": otlp.render_error},
                       int(config.extra.get("max_anonymous_in_flight", middleware.MAX_ANONYMOUS_IN_FLIGHT)))
    app.add_middleware(SecurityHeaders)
    return app
