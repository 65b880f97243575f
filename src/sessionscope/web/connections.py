"""Connection limits below the ASGI app, where a request has no headers yet.

uvicorn closes an idle keep-alive connection, but any byte restarts that wait, and a fresh
connection that never finishes its headers waits forever: 200 slowloris clients all stayed open.
`GuardedProtocol` gives every request HEADER_TIMEOUT_S from the connection (or the previous
response) to its last header line, however the bytes trickle in, and refuses new connections
while MAX_AWAITING_HEADERS already wait for theirs. Those are the connections nobody has
authenticated yet. Bodies get their own time limit in the app (web/middleware.read_body).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_S = 10.0
MAX_AWAITING_HEADERS = 256
KEEP_ALIVE_S = 5
# uvicorn answers 503 past this many open connections.
LIMIT_CONCURRENCY = 1024
PROTOCOL = "sessionscope.web.connections:GuardedProtocol"


class GuardedProtocol(HttpToolsProtocol):
    header_timeout_s = HEADER_TIMEOUT_S
    max_awaiting_headers = MAX_AWAITING_HEADERS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        # One set per server: the connections that have not finished a request's headers.
        if not hasattr(self.server_state, "awaiting_headers"):
            self.server_state.awaiting_headers = set()  # type: ignore[attr-defined]
        self._awaiting: set[GuardedProtocol] = self.server_state.awaiting_headers  # type: ignore[attr-defined]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self._awaiting) >= self.max_awaiting_headers:
            transport.close()
            return
        self._await_headers()

    def on_headers_complete(self) -> None:
        self._headers_done()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._await_headers()  # the next request on this keep-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._headers_done()
        self._awaiting.add(self)
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _headers_done(self) -> None:
        self._awaiting.discard(self)
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        self._awaiting.discard(self)
        if not self.transport.is_closing():
            self.transport.close()


def serving_options(protocol: Any = PROTOCOL) -> dict[str, Any]:
    """uvicorn's settings for every way the server runs (one process, workers, the tests)."""
    # proxy_headers=False: the app sees the real peer, and believes X-Forwarded-For only from
    # the proxies it is configured to trust (web.login_limit).
    return {"http": protocol, "timeout_keep_alive": KEEP_ALIVE_S, "limit_concurrency": LIMIT_CONCURRENCY,
            "log_level": "warning", "proxy_headers": False}


def uvicorn_config(app: Any, *, host: str, port: int, protocol: Any = PROTOCOL, **kwargs: Any) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, **{**serving_options(protocol), **kwargs})


def guarded(header_timeout_s: float, max_awaiting_headers: int = MAX_AWAITING_HEADERS) -> type[GuardedProtocol]:
    """A GuardedProtocol with other limits (tests use short ones)."""
    return type("GuardedProtocol", (GuardedProtocol,), {"header_timeout_s": header_timeout_s,
                                                         "max_awaiting_headers": max_awaiting_headers})
