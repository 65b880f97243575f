"""Recording audited calls: the dispatcher calls `record_call` once per call of a method
registered with `audit=`, whatever its outcome, so no handler can forget to."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from pydantic import BaseModel

from sessionscope.errors import SessionscopeError
from sessionscope.rpc.registry import Context, Method
from sessionscope.store import audit

log = logging.getLogger("sessionscope.audit")


def _raw_keys(raw: dict[str, Any]) -> list[str]:
    """Best-effort keys of a call whose params never validated (e.g. a forbidden one)."""
    keys = raw.get("keys")
    if isinstance(keys, list):
        return [k for k in keys if isinstance(k, str)][: audit.MAX_KEYS_PER_ENTRY]
    key = raw.get("key")
    return [key] if isinstance(key, str) else []


def _target(ctx: Context, raw: dict[str, Any], params: BaseModel | None, result: Any
            ) -> tuple[str | None, list[str]]:
    """(tenant, keys) of a call: from the params model's `audit_target` when it has one."""
    if params is not None and hasattr(params, "audit_target"):
        return params.audit_target(result)
    # The resolved tenant when the call named none (see Method.resolve), else the one it named.
    named = getattr(params, "tenant", None) or raw.get("tenant")
    tenant = named if isinstance(named, str) else None
    with contextlib.suppress(SessionscopeError):  # a tenant the caller may not name: record the one it named
        tenant = ctx.caller.scope.resolve(tenant)
    if params is not None and hasattr(params, "all_keys"):
        try:
            return tenant, params.all_keys()
        except SessionscopeError:
            return tenant, []
    return tenant, _raw_keys(raw)


def _summary(result: Any) -> dict[str, Any] | None:
    if not isinstance(result, dict):
        return None
    small = {k: v for k, v in result.items() if isinstance(v, (bool, int, float)) or v is None}
    return small or None


async def record_call(ctx: Context, method: Method, raw: dict[str, Any], params: BaseModel | None,
                      result: Any = None, error: SessionscopeError | None = None) -> None:
    assert method.audit is not None
    tenant, keys = _target(ctx, raw, params, result)
    detail = {"message": error.message[:500]} if error is not None else _summary(result)
    try:
        await audit.record(
            ctx.db, action=method.audit, tenant=tenant, keys=keys,
            outcome=audit.outcome_for(error.code if error is not None else None),
            token_id=ctx.caller.token_id, token_name=ctx.caller.token_name, detail=detail,
        )
    except Exception:
        log.exception("could not write the audit entry for %s", method.name)
