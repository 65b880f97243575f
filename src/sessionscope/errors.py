"""One exception tree for the whole project.

Every class carries its JSON-RPC `code` and its HTTP `status`. Two renderers read them and
nothing else maps errors: the RPC dispatcher (rpc/protocol.py) for /rpc, and the Starlette
exception handlers (web/middleware.py) for every other route. The client turns a code back into
its class with `class_for_code`, and the CLI prints `message`.
"""

from __future__ import annotations

from typing import Any, Self


class SessionscopeError(Exception):
    """An expected failure with a readable message (a server error when nothing more specific fits)."""

    code = -32000
    status = 500

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    @classmethod
    def from_wire(cls, message: str, data: Any = None) -> Self:
        """Rebuild an error from its wire form, whatever this class's own constructor takes."""
        exc = cls.__new__(cls)
        SessionscopeError.__init__(exc, message, data)
        return exc

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by its wire form, as subclasses' constructors take other arguments: an import
        # worker process (ingest/worker.py) raises its errors in the importing process.
        return type(self).from_wire, (self.message, self.data)


class ParseError(SessionscopeError):
    """The body is not valid JSON (or not in the declared encoding)."""

    code = -32700
    status = 400


class InvalidRequest(SessionscopeError):
    """The body is JSON but not a request this endpoint understands."""

    code = -32600
    status = 400


class UnsupportedMediaType(InvalidRequest):
    """A body sent with a Content-Type the endpoint does not take (no cross-site text/plain forms)."""

    status = 415


class MethodNotFound(SessionscopeError):
    """No method of that name."""

    code = -32601
    status = 404


class InvalidParams(SessionscopeError):
    """Invalid params; `data: {field, problem}`."""

    code = -32602
    status = 400

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"invalid params: {field}: {problem}", {"field": field, "problem": problem})


class ImportFormatError(InvalidParams, ValueError):
    """Input in a foreign format (a transcript, an OTLP export) that cannot be read.

    A ValueError too, so the importers' callers that catch ValueError keep working.
    """

    def __init__(self, message: str, field: str = "body") -> None:
        SessionscopeError.__init__(self, message, {"field": field, "problem": message})


class InternalError(SessionscopeError):
    """A server bug, logged server-side; never a traceback on the wire."""

    code = -32603
    status = 500


class Unavailable(SessionscopeError):
    """The store (or another dependency) failed; a retry may succeed."""

    code = -32603
    status = 503


class ConfigError(SessionscopeError, ValueError):
    """A configuration file or variable that cannot be used; the message names the file and field."""

    code = -32000
    status = 500


class NotFound(SessionscopeError):
    """Session not found (also one that exists only in another tenant); `data: {key}`."""

    code = -32001
    status = 404

    def __init__(self, key: str) -> None:
        super().__init__(f"session not found: {key!r}", {"key": key})


class PageNotFound(NotFound):
    """A route or an export link that does not exist (no session key to name)."""

    def __init__(self, message: str) -> None:
        SessionscopeError.__init__(self, message)


class NoRoute(PageNotFound):
    """A path no route serves: a browser asking for it gets the dashboard's 404 page."""


class Forbidden(SessionscopeError):
    """The caller's role or tenant does not allow this."""

    code = -32003
    status = 403


class Unauthorized(SessionscopeError):
    """No valid credentials at all; HTTP 401 so the dashboard can send the user to the login page."""

    code = -32004
    status = 401


class Conflict(SessionscopeError):
    """A concurrent change, or an order the operation needs (restore the newest first)."""

    code = -32009
    status = 409


class TooLarge(SessionscopeError):
    """Over a size limit (body, batch, inflated body)."""

    code = -32013
    status = 413


class TooManyRequests(SessionscopeError):
    """Too many attempts; `data: {retry_after}` seconds."""

    code = -32029
    status = 429

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message, {"retry_after": retry_after} if retry_after is not None else None)


class RequestTimeout(SessionscopeError):
    """The client sent its body too slowly."""

    code = -32008
    status = 408


class ClientDisconnected(SessionscopeError):
    """The client went away while sending its body; nothing is answered to it."""

    code = -32000
    status = 400


def _tree(cls: type[SessionscopeError]) -> list[type[SessionscopeError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_tree(sub))
    return out


def class_for_code(code: int) -> type[SessionscopeError] | None:
    """The class a JSON-RPC code stands for: the most general one that carries it."""
    for cls in _tree(SessionscopeError):  # parents before children: -32000 is the base itself
        if cls.code == code and "code" in vars(cls):
            return cls
    return None


def all_error_classes() -> list[type[SessionscopeError]]:
    return _tree(SessionscopeError)
