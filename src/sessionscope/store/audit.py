"""The audit log: who (token id and name) did what (action, keys) to which tenant, when, and how it ended.

Entries are written by the RPC dispatcher for every method registered with `audit=`, and by the
server's retention purge; they are read newest first with a keyset cursor.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, select

from sessionscope.clock import now_ms, to_rfc3339
from sessionscope.errors import InvalidParams
from sessionscope.store.database import Database
from sessionscope.store.schema import audit_log
from sessionscope.store.scope import Scope

# An entry keeps at most this many keys (a bulk delete of more notes the full count in detail).
MAX_KEYS_PER_ENTRY = 1000
MAX_KEY_CHARS = 1024
OK = "ok"


def outcome_for(code: int | None) -> str:
    """`ok`, or `error <code>` for a JSON-RPC error code."""
    return OK if code is None else f"error {code}"


async def record(
    db: Database,
    *,
    action: str,
    tenant: str | None,
    keys: Sequence[str] = (),
    outcome: str = OK,
    token_id: int | None = None,
    token_name: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    kept = [str(k)[:MAX_KEY_CHARS] for k in list(keys)[:MAX_KEYS_PER_ENTRY]]
    info = dict(detail or {})
    if len(keys) > len(kept):
        info["keys_total"] = len(keys)
    async with db.write() as conn:
        await conn.execute(audit_log.insert().values(
            ts=now_ms(), token_id=token_id, token_name=token_name, tenant=tenant, action=action,
            keys=json.dumps(kept, ensure_ascii=False), outcome=outcome,
            detail=json.dumps(info, ensure_ascii=False) if info else None,
        ))


def _entry(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "time": to_rfc3339(row.ts),
        "token_id": None if row.token_id is None else int(row.token_id),
        "token_name": row.token_name,
        "tenant": row.tenant,
        "action": row.action,
        "keys": json.loads(row.keys),
        "outcome": row.outcome,
        "detail": json.loads(row.detail) if row.detail else None,
    }


async def list_entries(
    db: Database,
    scope: Scope,
    *,
    tenant: str | None = None,
    action: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first. A tenant-scoped caller sees only its tenants' entries (never global ones)."""
    where = [scope.filter(audit_log.c.tenant, tenant)]
    if action is not None:
        where.append(audit_log.c.action == action)
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 19 or int(cursor) > 2**63 - 1:
            raise InvalidParams("cursor", "is not a cursor returned by audit.list")
        where.append(audit_log.c.id < int(cursor))
    stmt = select(audit_log).where(and_(*where)).order_by(audit_log.c.id.desc()).limit(limit + 1)
    async with db.read() as conn:
        found = (await conn.execute(stmt)).all()
    more = len(found) > limit
    found = found[:limit]
    return {
        "entries": [_entry(r) for r in found],
        "next_cursor": str(found[-1].id) if more and found else None,
    }
