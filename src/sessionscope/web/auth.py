"""Authentication for the web app: Bearer tokens for programs, an HttpOnly cookie for the dashboard.

`install(app, config)` adds /login, /auth/login and /auth/logout and sends dashboard pages to
/login when there is no session cookie. `authenticate` is called once per request, by the
Boundary middleware (web/middleware.py), when auth is on.

The cookie names a server-side login session (store.login_sessions), never the token itself:
logout revokes it, it expires, and revoking the token ends it. HttpOnly (no script reads it),
SameSite=Strict (no other site sends it), Secure over https. A login link (/login?token=...)
only shows "Log in as NAME" (POST /auth/identify); the login itself waits for that click, so a
cross-site link cannot silently log a victim in as someone else. A cookie-authenticated RPC call must also come from this origin
(`Origin` equal to the Host) and carry `X-Sessionscope-CSRF: 1`, which no cross-site form can set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sessionscope.errors import Forbidden, InvalidParams, ParseError, TooManyRequests, Unauthorized
from sessionscope.rpc.protocol import loads
from sessionscope.rpc.registry import Caller
from sessionscope.store import api_tokens, login_sessions
from sessionscope.web.login_limit import LoginLimiter, client_address, trusted_proxies
from sessionscope.web.middleware import read_body
from sessionscope.web.services import ServerConfig

STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "sessionscope_session"
CSRF_HEADER = "x-sessionscope-csrf"
CSRF_VALUE = "1"
LOGIN_PATH = "/login"
# Paths of dashboard pages: without a session cookie they redirect to the login page.
PAGE_PREFIXES = ("/sessions",)
MAX_LOGIN_BODY = 4096


def caller_for(info: api_tokens.TokenInfo) -> Caller:
    return Caller(scope=info.scope, role=info.role, token_id=info.id, token_name=info.name)


def _same_origin(request: Request, *, required: bool) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return not required
    host = request.headers.get("host", "")
    return origin != "null" and urlsplit(origin).netloc.lower() == host.lower()


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("unauthorized: the Authorization header must be 'Bearer <token>'")
    return token.strip()


async def authenticate(request: Request) -> Caller:
    """The caller behind a request, or Unauthorized (HTTP 401) / Forbidden (HTTP 403)."""
    db = request.app.state.services.db
    token = bearer_token(request)
    if token is not None:
        info = await api_tokens.verify(db, token)
        if info is None:
            raise Unauthorized("unauthorized: this token is unknown or revoked")
        return caller_for(info)
    return await cookie_caller(request)


async def cookie_caller(request: Request) -> Caller:
    """The caller behind the session cookie of a dashboard request (Origin and CSRF header
    checked), or Unauthorized / Forbidden."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthorized("unauthorized: send 'Authorization: Bearer <token>' or log in at /login")
    info = await login_sessions.resolve(request.app.state.services.db, cookie)
    if info is None:
        raise Unauthorized("unauthorized: your session has ended; log in again")
    if not _same_origin(request, required=True):
        raise Forbidden("forbidden: a cookie-authenticated call must come from this site (Origin)")
    if request.headers.get(CSRF_HEADER) != CSRF_VALUE:
        raise Forbidden(f"forbidden: a cookie-authenticated call needs the header {CSRF_HEADER}: {CSRF_VALUE}")
    return caller_for(info)


# ---- pages and endpoints -------------------------------------------------------------------------

def _auth_on(request: Request) -> bool:
    return bool(request.app.state.services.config.auth)


def _safe_next(value: str | None) -> str:
    """Only a local path: never `//host` or a scheme, so the login cannot redirect off-site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/sessions"
    return value


async def login_page(request: Request) -> Response:
    if not _auth_on(request):
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return FileResponse(STATIC_DIR / "login.html", headers={"cache-control": "no-store"})


async def _presented_token(request: Request) -> api_tokens.TokenInfo:
    """The token a login body presents, verified; raises the error to answer instead."""
    if not _same_origin(request, required=False):
        raise Forbidden("forbidden: log in from this site")
    body = await read_body(request, MAX_LOGIN_BODY)  # the limit holds while the body streams in
    try:
        sent = loads(body)
    except ParseError:
        sent = None
    token = sent.get("token") if isinstance(sent, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise InvalidParams("token", 'send {"token": "<your token>"}')
    limiter: LoginLimiter = request.app.state.login_limiter
    address = client_address(request, request.app.state.trusted_proxies)
    # Counting the attempt before the lookup closes the check-then-record race: of concurrent
    # failures, at most the limit get to verify.
    wait = limiter.attempt(address)
    if wait is not None:
        raise TooManyRequests(f"too many failed logins from this address; try again in {wait} s", wait)
    info = await api_tokens.verify(request.app.state.services.db, token.strip())
    if info is None:
        raise Unauthorized("this token is unknown or revoked")
    limiter.succeeded(address)
    return info


def _identity(info: api_tokens.TokenInfo) -> dict[str, Any]:
    return {"ok": True, "role": info.role, "tenant": info.tenant, "token_name": info.name}


async def identify(request: Request) -> Response:
    """POST {"token": "..."}: whose token this is, so a login link can ask "Log in as NAME?"
    before logging in. Sets nothing."""
    info = await _presented_token(request)
    return JSONResponse(_identity(info), headers={"cache-control": "no-store"})


async def login(request: Request) -> Response:
    """POST {"token": "..."}: on a valid token, start a login session and set its cookie."""
    info = await _presented_token(request)
    session_id = await login_sessions.create(request.app.state.services.db, info)
    response = JSONResponse(_identity(info), headers={"cache-control": "no-store"})
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict", path="/",
                        max_age=login_sessions.LIFETIME_MS // 1000, secure=request.url.scheme == "https")
    return response


async def logout(request: Request) -> Response:
    """End the login session and clear its cookie: JSON for fetch, else a redirect to the login
    page (plain forms)."""
    if not _same_origin(request, required=False):
        raise Forbidden("forbidden: log out from this site")
    await login_sessions.revoke(request.app.state.services.db, request.cookies.get(SESSION_COOKIE))
    if "application/json" in request.headers.get("accept", ""):
        response: Response = JSONResponse({"ok": True})
    else:
        response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


class LoginRedirect:
    """Dashboard pages without a session cookie go to /login (when auth is on)."""

    def __init__(self, app: Any, config: ServerConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.config.auth and scope["method"] in ("GET", "HEAD"):
            path = scope["path"]
            if any(path == p or path.startswith(p + "/") for p in PAGE_PREFIXES):
                request = Request(scope)
                if not request.cookies.get(SESSION_COOKIE):
                    target = path + (f"?{request.url.query}" if request.url.query else "")
                    response = RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}", status_code=303)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


ROUTES = [
    Route(LOGIN_PATH, login_page, methods=["GET"]),
    Route("/auth/identify", identify, methods=["POST"]),
    Route("/auth/login", login, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
]


def install(app: Starlette, config: ServerConfig) -> None:
    app.router.routes[:0] = ROUTES
    app.state.login_limiter = LoginLimiter()
    app.state.trusted_proxies = trusted_proxies(config)
    app.add_middleware(LoginRedirect, config=config)
