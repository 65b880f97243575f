"""JSON-RPC 2.0 framing: parse, validate, dispatch, and one mapping from errors to codes."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError

from sessionscope.errors import Forbidden, SessionscopeError, TooLarge
from sessionscope.rpc import auditing
from sessionscope.rpc.registry import METHODS, Context

log = logging.getLogger("sessionscope.rpc")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

MAX_BATCH = 100

# Called after every call of a registered method with (name, seconds, response object); the
# Prometheus metrics (web/metrics.py) count and time every method here, in one place.
OBSERVERS: list[Callable[[str, float, dict[str, Any]], None]] = []


def error_object(code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return err


def response(request_id: Any, *, result: Any = None, error: dict[str, Any] | None = None) -> dict[str, Any]:
    if error is not None:
        return {"jsonrpc": "2.0", "id": request_id, "error": error}
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def validation_error(exc: ValidationError) -> dict[str, Any]:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "params"
    problem = first["msg"]
    return error_object(INVALID_PARAMS, f"invalid params: {field}: {problem}", {"field": field, "problem": problem})


def _valid_id(request_id: Any) -> bool:
    return request_id is None or (isinstance(request_id, (str, int, float)) and not isinstance(request_id, bool))


async def call(ctx: Context, request: Any) -> dict[str, Any] | None:
    """One request object to one response object (None for a notification)."""
    if not isinstance(request, dict):
        return response(None, error=error_object(INVALID_REQUEST, "invalid request: expected a JSON object"))
    request_id = request.get("id")
    is_notification = "id" not in request
    if request.get("jsonrpc") != "2.0" or not _valid_id(request_id):
        return response(None if not _valid_id(request_id) else request_id,
                        error=error_object(INVALID_REQUEST, 'invalid request: needs "jsonrpc": "2.0", a string '
                                           "method and a string or number id"))
    name = request.get("method")
    if not isinstance(name, str):
        return response(request_id, error=error_object(INVALID_REQUEST, "invalid request: method must be a string"))
    method = METHODS.get(name)
    if method is None:
        result = response(request_id, error=error_object(METHOD_NOT_FOUND, f"unknown method: {name[:100]!r}"))
        return None if is_notification else result
    raw_params = request.get("params", {})
    if raw_params is None:
        raw_params = {}
    if not isinstance(raw_params, dict):
        err = error_object(INVALID_PARAMS, "invalid params: params must be an object (by-name)",
                           {"field": "params", "problem": "must be an object"})
        return None if is_notification else response(request_id, error=err)
    params = None
    failure: SessionscopeError | None = None
    started = time.perf_counter()
    try:
        if ctx.caller.role not in method.roles:
            raise Forbidden(f"forbidden: role {ctx.caller.role!r} may not call {name}")
        params = await method.resolve(ctx, method.params.model_validate(raw_params))
        result = await method.handler(ctx, params)
        out = response(request_id, result=result)
    except ValidationError as exc:
        out = response(request_id, error=validation_error(exc))
    except SessionscopeError as exc:
        failure = exc
        out = response(request_id, error=error_object(exc.code, exc.message, exc.data))
    except Exception:
        log.exception("internal error in %s", name)
        failure = SessionscopeError(f"internal error while running {name}")
        failure.code = INTERNAL_ERROR
        out = response(request_id, error=error_object(INTERNAL_ERROR, failure.message))
    if method.audit and (params is not None or failure is not None):
        await auditing.record_call(ctx, method, raw_params, params, out.get("result"), failure)
    for observe in OBSERVERS:
        observe(name, time.perf_counter() - started, out)
    return None if is_notification else out


def _loads(body: bytes) -> Any:
    # orjson is the fast path; it refuses a few inputs the standard parser takes (integers past
    # 64 bits, say), and those keep the standard parser's meaning.
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


async def handle(ctx: Context, body: bytes) -> Any:
    """A whole HTTP body to the response payload (a dict, a list, or None for nothing)."""
    try:
        payload = _loads(body)
    except (ValueError, RecursionError):
        # RecursionError: pathological nesting; the C parser gives up before Python would.
        return response(None, error=error_object(PARSE_ERROR, "parse error: the body is not valid JSON"))
    if isinstance(payload, list):
        if not payload:
            return response(None, error=error_object(INVALID_REQUEST, "invalid request: empty batch"))
        if len(payload) > MAX_BATCH:
            err = TooLarge(f"request too large: a batch holds at most {MAX_BATCH} calls, got {len(payload)}")
            return response(None, error=error_object(err.code, err.message, {"max_batch": MAX_BATCH}))
        results = [await call(ctx, item) for item in payload]
        answered = [r for r in results if r is not None]
        return answered or None
    return await call(ctx, payload)
