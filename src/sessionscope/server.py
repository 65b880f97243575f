"""Running the server with uvicorn: the configuration is loaded and checked before binding.

`load_config` refuses unsafe combinations and a bad config file (one line naming the file, the
field and the problem); `run_server` hands the same ServerConfig to one process or, through one
environment variable, to every worker of `--workers N`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from pathlib import Path

import uvicorn

from sessionscope.compaction import validate_config_file
from sessionscope.errors import ConfigError, SessionscopeError
from sessionscope.store.database import resolve_url
from sessionscope.web.app import create_app
from sessionscope.web.connections import serving_options
from sessionscope.web.services import ServerConfig, config_from_env, config_to_env

# What every worker builds its app from: the ServerConfig as JSON (see app_from_env).
SERVER_CONFIG_ENV = "SESSIONSCOPE_SERVER_CONFIG"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config(*, db: str | None, host: str, no_auth: bool, config: str | None) -> ServerConfig:
    """The server's configuration, checked whole before anything binds or forks."""
    if no_auth and not is_loopback(host):
        raise SessionscopeError(f"--no-auth is only allowed on a loopback address, not {host!r}")
    if config is not None:
        if not Path(config).is_file():
            raise ConfigError(f"{config}: no such config file")
        config = str(Path(config).resolve())  # workers may not share the cwd's meaning
    validate_config_file(config)
    return ServerConfig(database=resolve_url(db), config_path=config, auth=not no_auth)


def run_server(*, db: str | None, host: str, port: int, no_auth: bool, config: str | None, workers: int) -> None:
    server_config = load_config(db=db, host=host, no_auth=no_auth, config=config)
    url = server_config.database or ""
    print(f"sessionscope serving {url.split('://')[0]} store on http://{host}:{port}/sessions", flush=True)
    if not no_auth:
        print(login_hint(url, host, port), flush=True)
    if workers > 1:
        os.environ[SERVER_CONFIG_ENV] = config_to_env(server_config)
        uvicorn.run("sessionscope.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                    **serving_options())
        return
    uvicorn.run(create_app(server_config), host=host, port=port, **serving_options())


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
    """For multi-process serving: each worker builds its app from the configuration run_server set."""
    value = os.environ.get(SERVER_CONFIG_ENV)
    if not value:
        raise ConfigError(f"{SERVER_CONFIG_ENV} is not set: start workers with `sessionscope serve --workers N`")
    return create_app(config_from_env(value))
