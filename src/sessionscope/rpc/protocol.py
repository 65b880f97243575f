"""JSON-RPC 2.0 framing: parse, validate, dispatch, and one mapping from errors to codes."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from sessionscope.errors import (
    Forbidden,
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    SessionscopeError,
    TooLarge,
)
from sessionscope.rpc import auditing
from sessionscope.rpc.registry import METHODS, Context, Method

log = logging.getLogger("sessionscope.rpc")

MAX_BATCH = 100

# Called after every call of a registered method with (name, seconds, response object); the
# Prometheus metrics (web/metrics.py) count and time every method here, in one place.
OBSERVERS: list[Callable[[str, float, dict[str, Any]], None]] = []


def error_object(exc: SessionscopeError) -> dict[str, Any]:
    """The one mapping from the error tree to a JSON-RPC error object: the class's code."""
    err: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.data is not None:
        err["data"] = exc.data
    return err


def response(request_id: Any, *, result: Any = None, error: SessionscopeError | None = None) -> dict[str, Any]:
    if error is not None:
        return {"jsonrpc": "2.0", "id": request_id, "error": error_object(error)}
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def validation_error(exc: ValidationError) -> InvalidParams:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "params"
    return InvalidParams(field, first["msg"])


def validate_results(ctx: Context) -> bool:
    """On in the test suite (always) and under the debug setting: see ServerConfig.validate_results."""
    config = getattr(ctx.services, "config", None)
    return bool(getattr(config, "validate_results", False))


def check_result(method: Method, result: Any) -> None:
    """A result that does not match its declared model is a server bug: -32603, logged."""
    try:
        method.result.model_validate(result)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "result"
        log.error("result of %s does not match %s: %s", method.name, method.result.__name__, exc)
        raise InternalError(f"internal error: the result of {method.name} does not match its model "
                            f"({where}: {first['msg']})") from None


def _valid_id(request_id: Any) -> bool:
    return request_id is None or (isinstance(request_id, (str, int, float)) and not isinstance(request_id, bool))


async def call(ctx: Context, request: Any) -> dict[str, Any] | None:
    """One request object to one response object (None for a notification)."""
    if not isinstance(request, dict):
        return response(None, error=InvalidRequest("invalid request: expected a JSON object"))
    request_id = request.get("id")
    is_notification = "id" not in request
    if request.get("jsonrpc") != "2.0" or not _valid_id(request_id):
        return response(None if not _valid_id(request_id) else request_id,
                        error=InvalidRequest('invalid request: needs "jsonrpc": "2.0", a string method and a '
                                             "string or number id"))
    name = request.get("method")
    if not isinstance(name, str):
        return response(request_id, error=InvalidRequest("invalid request: method must be a string"))
    method = METHODS.get(name)
    if method is None:
        result = response(request_id, error=MethodNotFound(f"unknown method: {name[:100]!r}"))
        return None if is_notification else result
    raw_params = request.get("params", {})
    if raw_params is None:
        raw_params = {}
    if not isinstance(raw_params, dict):
        err = InvalidParams("params", "must be an object (by-name)")
        return None if is_notification else response(request_id, error=err)
    params = None
    failure: SessionscopeError | None = None
    started = time.perf_counter()
    try:
        if ctx.caller.role not in method.roles:
            raise Forbidden(f"forbidden: role {ctx.caller.role!r} may not call {name}")
        params = await method.resolve(ctx, method.params.model_validate(raw_params))
        result = await method.handler(ctx, params)
        if validate_results(ctx):
            check_result(method, result)
        out = response(request_id, result=result)
    except ValidationError as exc:
        out = response(request_id, error=validation_error(exc))
    except SessionscopeError as exc:
        failure = exc
        out = response(request_id, error=exc)
    except Exception:
        log.exception("internal error in %s", name)
        failure = InternalError(f"internal error while running {name}")
        out = response(request_id, error=failure)
    if method.audit and (params is not None or failure is not None):
        await auditing.record_call(ctx, method, raw_params, params, out.get("result"), failure)
    for observe in OBSERVERS:
        observe(name, time.perf_counter() - started, out)
    return None if is_notification else out


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"the key {twice[:100]!r} appears twice in one object")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: valid JSON text, but no store keeps it
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def loads(body: bytes) -> Any:
    """Strict JSON: no NaN or Infinity (they cannot be stored and read back), no duplicate keys
    (two parsers could read two different requests from one body), nesting within the C parser's
    limit. ParseError names what is wrong."""
    try:
        return json.loads(body, object_pairs_hook=_unique_keys, parse_constant=_no_constant,
                          parse_float=_finite)
    except RecursionError:
        raise ParseError("parse error: the body is nested too deeply") from None
    except UnicodeDecodeError:
        raise ParseError("parse error: the body is not UTF-8") from None
    except ValueError as exc:
        detail = str(exc) if not isinstance(exc, json.JSONDecodeError) else "the body is not valid JSON"
        raise ParseError(f"parse error: {detail}") from None


async def handle(ctx: Context, body: bytes) -> Any:
    """A whole HTTP body to the response payload (a dict, a list, or None for nothing)."""
    try:
        payload = loads(body)
    except ParseError as exc:
        return response(None, error=exc)
    if isinstance(payload, list):
        if not payload:
            return response(None, error=InvalidRequest("invalid request: empty batch"))
        if len(payload) > MAX_BATCH:
            err = TooLarge(f"request too large: a batch holds at most {MAX_BATCH} calls, got {len(payload)}",
                           {"max_batch": MAX_BATCH})
            return response(None, error=err)
        results = [await call(ctx, item) for item in payload]
        answered = [r for r in results if r is not None]
        return answered or None
    return await call(ctx, payload)
