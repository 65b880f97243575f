"""Recording audited calls: the dispatcher calls `record_call` once per call of a method
registered with `audit=`, whatever its outcome, so no handler can forget to.

A refused call (any error outcome) is recorded with bounded, validated fields under the caller's
own tenant: at most MAX_REFUSED_KEYS keys, each a valid session key, never a tenant the caller
merely named and may not access. Each caller (token) writes at most REFUSALS_PER_WINDOW refusal
entries per WINDOW_S seconds per server process; the rest are counted in the log, not stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from typing import Any

from pydantic import BaseModel

from sessionscope.errors import SessionscopeError
from sessionscope.rpc.models import _check_key, _check_name
from sessionscope.rpc.registry import Context, Method
from sessionscope.store import audit

log = logging.getLogger("sessionscope.audit")

MAX_REFUSED_KEYS = 20
MAX_TENANT_CHARS = 128
REFUSALS_PER_WINDOW = 30
WINDOW_S = 60.0


def _valid(check: Any, value: Any) -> bool:
    try:
        check(value)
    except ValueError:
        return False
    return True


def _raw_keys(raw: dict[str, Any]) -> list[str]:
    """Keys of a call whose params never validated (e.g. a forbidden one): only valid keys."""
    keys = raw.get("keys")
    if not isinstance(keys, list):
        keys = [raw.get("key")]
    return [k for k in keys[:MAX_REFUSED_KEYS] if isinstance(k, str) and _valid(_check_key, k)]


def _own_tenant(ctx: Context, raw: dict[str, Any]) -> str | None:
    """The tenant a call is filed under: one the caller may access, never merely one it named."""
    named = raw.get("tenant")
    if not (isinstance(named, str) and _valid(_check_name, named) and len(named) <= MAX_TENANT_CHARS):
        named = None
    try:
        return ctx.caller.scope.resolve(named)
    except SessionscopeError:
        return ctx.caller.scope.resolve(None) if not ctx.caller.scope.is_global else None


class _RefusalLimit:
    """Per caller, the times of its recent refusal entries (a sliding window)."""

    def __init__(self) -> None:
        self.recent: defaultdict[Any, deque[float]] = defaultdict(deque)
        self.dropped: defaultdict[Any, int] = defaultdict(int)
        self.lock = threading.Lock()

    def allow(self, caller: Any) -> bool:
        now = time.monotonic()
        with self.lock:
            times = self.recent[caller]
            while times and times[0] <= now - WINDOW_S:
                times.popleft()
            if len(times) >= REFUSALS_PER_WINDOW:
                self.dropped[caller] += 1
                if self.dropped[caller] in (1, 100, 10_000):
                    log.warning("audit: caller %s passed %d refusals in %g s; %d not recorded so far",
                                caller, REFUSALS_PER_WINDOW, WINDOW_S, self.dropped[caller])
                return False
            times.append(now)
            if len(self.recent) > 10_000:  # forget idle callers
                for idle in [c for c, t in self.recent.items() if not t]:
                    del self.recent[idle]
            return True


REFUSALS = _RefusalLimit()


def _target(ctx: Context, raw: dict[str, Any], params: BaseModel | None, result: Any
            ) -> tuple[str | None, list[str]]:
    """(tenant, keys) of a call: from the params model's `audit_target` when it has one."""
    if params is not None and hasattr(params, "audit_target"):
        return params.audit_target(result)
    # The resolved tenant when the call named none (see Method.resolve), else the one it named;
    # filed under one the caller may access, never merely one it named.
    named = getattr(params, "tenant", None) or raw.get("tenant")
    tenant = _own_tenant(ctx, {"tenant": named})
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
    if error is not None and not REFUSALS.allow((id(ctx.db), ctx.caller.token_id, ctx.caller.token_name)):
        return
    tenant, keys = _target(ctx, raw, params, result)
    if error is not None:
        keys = keys[:MAX_REFUSED_KEYS]
    detail = {"message": error.message[:500]} if error is not None else _summary(result)
    try:
        await audit.record(
            ctx.db, action=method.audit, tenant=tenant, keys=keys,
            outcome=audit.outcome_for(error.code if error is not None else None),
            token_id=ctx.caller.token_id, token_name=ctx.caller.token_name, detail=detail,
        )
    except Exception:
        log.exception("could not write the audit entry for %s", method.name)
