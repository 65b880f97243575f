"""One exception tree for the whole project.

The RPC dispatcher maps each class to its JSON-RPC code; the CLI prints the message.
"""

from __future__ import annotations

from typing import Any


class SessionscopeError(Exception):
    code = -32000

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class InvalidParams(SessionscopeError):
    code = -32602

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"invalid params: {field}: {problem}", {"field": field, "problem": problem})


class NotFound(SessionscopeError):
    code = -32001

    def __init__(self, key: str) -> None:
        super().__init__(f"session not found: {key!r}", {"key": key})


class Forbidden(SessionscopeError):
    code = -32003


class Conflict(SessionscopeError):
    code = -32009


class TooLarge(SessionscopeError):
    code = -32013


class Unauthorized(SessionscopeError):
    """No valid credentials at all; the HTTP layer answers 401 so the dashboard can redirect."""

    code = -32004
