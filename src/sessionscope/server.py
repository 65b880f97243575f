"""Running the server with uvicorn: the configuration is loaded and checked, the port bound, and
only then does it say where it serves.

`load_config` refuses unsafe combinations and a bad config file (one line naming the file, the
field and the problem); `bind` makes a busy or bad port one line, before any login link;
`run_server` hands the same ServerConfig to one process or, through one environment variable,
to every worker of `--workers N`, all serving on the bound socket.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import ipaddress
import os
import socket
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

from sessionscope.compaction import validate_config_file
from sessionscope.errors import ConfigError, SessionscopeError
from sessionscope.store.database import resolve_url
from sessionscope.web.app import create_app
from sessionscope.web.connections import serving_options
from sessionscope.web.cpu_pool import WORKERS_ENV, workers_for
from sessionscope.web.services import ServerConfig, config_from_env, config_to_env, public_url

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
    loaded = ServerConfig(database=resolve_url(db), config_path=config, auth=not no_auth)
    public_url(loaded)  # SESSIONSCOPE_PUBLIC_URL: refused here, before binding, when unusable
    workers_for(loaded.extra)  # SESSIONSCOPE_CPU_WORKERS, likewise
    return loaded


def check_address(host: str, port: int) -> None:
    """A port outside 1-65535 or a host that names nothing is one line, before anything else."""
    if not 1 <= port <= 65535:
        raise SessionscopeError(f"--port {port}: a port is a number from 1 to 65535 (default 8750)")
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise SessionscopeError(f"--host {host!r}: not an address or a name that resolves; "
                                "use 127.0.0.1 (this machine) or 0.0.0.0 (every interface)") from None


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is printed: a busy port is one error line,
    with no login link for a server that never ran. uvicorn serves on this socket."""
    check_address(host, port)
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restarts reuse the port
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise SessionscopeError(f"port {port} on {host} is already in use: stop the other server or "
                                    "pass another --port") from None
        if error.errno == errno.EACCES:
            raise SessionscopeError(f"--port {port}: not allowed for this user (ports below 1024 need "
                                    "privileges); pass a port above 1024") from None
        raise SessionscopeError(f"--host {host!r}: cannot listen there ({error.strerror}); use 127.0.0.1 "
                                "or an address of this machine") from None
    sock.set_inheritable(True)  # worker processes serve on it too
    return sock


# A server process holds many long-lived objects (the app, the tokenizer's tables, compiled
# statements) that every collection of the older generations walks again, and a request makes
# tens of thousands of short-lived ones: at Python's default gen-0 threshold (700) an OTLP request
# collected every few spans. Measured with bench/otlp_ingest.py, server CPU per span, 3
# alternating pairs: 197, 191, 180 us by default; 178, 160, 173 with these settings.
GC_THRESHOLDS = (20_000, 50, 100)


def tune_gc() -> None:
    """For a serving process, once its app is built: what is alive now is kept out of every
    later collection (gc.freeze, after a collection, so no garbage is frozen), and the
    youngest generation is collected less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def for_serving_processes(config: ServerConfig) -> ServerConfig:
    """The configuration of `serve --workers N` (N > 1): no decoding workers (web/cpu_pool.py)
    unless SESSIONSCOPE_CPU_WORKERS or the config asks, as N serving processes share the cores
    already."""
    if WORKERS_ENV not in os.environ:
        config.extra.setdefault("cpu_workers", 0)
    return config


def run_server(*, db: str | None, host: str, port: int, no_auth: bool, config: str | None, workers: int,
               sock: socket.socket | None = None) -> None:
    server_config = load_config(db=db, host=host, no_auth=no_auth, config=config)
    url = server_config.database or ""
    sock = sock or bind(host, port)
    location, sessions, made, token = asyncio.run(_prepare_store(url, bootstrap=not no_auth))
    state = "created it; " if made else ""
    print(f"store {location} ({state}{sessions:,} session{'s' if sessions != 1 else ''})", flush=True)
    print(f"sessionscope serving on http://{_shown(host)}:{port}/sessions", flush=True)
    if not no_auth:
        print(login_hint(token, host, port), flush=True)
    if workers > 1:
        os.environ[SERVER_CONFIG_ENV] = config_to_env(for_serving_processes(server_config))
        multi = uvicorn.Config("sessionscope.server:app_from_env", factory=True, workers=workers,
                               **serving_options())
        Multiprocess(multi, sockets=[sock]).run()
        return
    server = uvicorn.Server(uvicorn.Config(create_app(server_config), **serving_options()))
    tune_gc()
    server.run(sockets=[sock])


async def _prepare_store(url: str, *, bootstrap: bool) -> tuple[str, int, bool, str | None]:
    """Open (create or migrate) the store once: where it is, how many sessions it holds, whether
    it was just made, and on a store without tokens the first admin token."""
    from sqlalchemy import func, select

    from sessionscope.store import api_tokens, open_database
    from sessionscope.store.schema import sessions

    db = await open_database(url)
    try:
        async with db.read() as conn:
            count = (await conn.execute(select(func.count()).select_from(sessions))).scalar_one()
        token = await api_tokens.ensure_bootstrap(db) if bootstrap else None
        return db.location, int(count), db.created, token
    finally:
        await db.close()


def _shown(host: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"[{shown}]" if ":" in shown else shown


def login_hint(token: str | None, host: str, port: int) -> str:
    """The login link: with the store's first admin token, created just now (as Jupyter does)."""
    if token is None:
        return ("auth is on: log in with a token from `sessionscope token create` at "
                f"http://{_shown(host)}:{port}/login")
    return ("auth is on; created the first admin token. Log in (this link is shown once):\n"
            f"    http://{_shown(host)}:{port}/login?token={token}")


def app_from_env() -> object:
    """For multi-process serving: each worker builds its app from the configuration run_server set."""
    value = os.environ.get(SERVER_CONFIG_ENV)
    if not value:
        raise ConfigError(f"{SERVER_CONFIG_ENV} is not set: start workers with `sessionscope serve --workers N`")
    app = create_app(config_from_env(value))
    tune_gc()
    return app
