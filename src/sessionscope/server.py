"""Running the server with uvicorn; refuses unsafe combinations before binding."""

from __future__ import annotations

import asyncio
import ipaddress
import os

import uvicorn

from sessionscope.errors import SessionscopeError
from sessionscope.store.database import DATABASE_URL_ENV, resolve_url
from sessionscope.web.app import create_app
from sessionscope.web.services import ServerConfig


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_server(*, db: str | None, host: str, port: int, no_auth: bool, config: str | None, workers: int) -> None:
    if no_auth and not is_loopback(host):
        raise SessionscopeError(f"--no-auth is only allowed on a loopback address, not {host!r}")
    url = resolve_url(db)
    config_obj = ServerConfig(database=url, config_path=config, auth=not no_auth)
    print(f"sessionscope serving {url.split('://')[0]} store on http://{host}:{port}/sessions", flush=True)
    if not no_auth:
        print(login_hint(url, host, port), flush=True)
    if workers > 1:
        os.environ[DATABASE_URL_ENV] = url
        os.environ["SESSIONSCOPE_NO_AUTH"] = "1" if no_auth else ""
        uvicorn.run("sessionscope.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level="warning", proxy_headers=False)
        return
    # proxy_headers=False: the app sees the real peer, and believes X-Forwarded-For only from
    # the proxies it is configured to trust (web.login_limit).
    uvicorn.run(create_app(config_obj), host=host, port=port, log_level="warning", proxy_headers=False)


def login_hint(url: str, host: str, port: int) -> str:
    """On a store without tokens, create an admin token and return its login link (as Jupyter does)."""
    from sessionscope.store import api_tokens, open_database

    async def bootstrap() -> str | None:
        db = await open_database(url)
        try:
            return await api_tokens.ensure_bootstrap(db)
        finally:
            await db.close()

    token = asyncio.run(bootstrap())
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    if token is None:
        return ("auth is on: log in with a token from `sessionscope token create` at "
                f"http://{shown}:{port}/login")
    return ("auth is on; created the first admin token. Log in (this link is shown once):\n"
            f"    http://{shown}:{port}/login?token={token}")


def app_from_env() -> object:
    """For multi-process serving: each worker builds its app from the environment."""
    return create_app(ServerConfig(database=os.environ.get(DATABASE_URL_ENV),
                                   auth=not os.environ.get("SESSIONSCOPE_NO_AUTH")))
