"""Retention: an optional per-tenant `retention_days`; a purge deletes sessions idle for longer.

The purge deletes in small transactions (`PURGE_BATCH` sessions each), oldest first, so a big
purge never holds the write lock for long and an interrupted one leaves every session whole.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from sessionscope.clock import now_ms, to_rfc3339
from sessionscope.store import sessions as session_store
from sessionscope.store.database import Database
from sessionscope.store.schema import sessions, tenants
from sessionscope.store.scope import Scope

DAY_MS = 24 * 60 * 60 * 1000
PURGE_BATCH = 200
PURGE_INTERVAL_S = 60 * 60


async def set_retention(db: Database, scope: Scope, tenant: str, days: int | None) -> dict[str, Any]:
    """Set (or clear, with None) how many days a tenant's idle sessions are kept."""
    scope.check(tenant)
    async with db.write() as conn:
        await conn.execute(db.insert_ignore(tenants).values(id=tenant, created_at=now_ms()))
        await conn.execute(update(tenants).where(tenants.c.id == tenant).values(retention_days=days))
    return {"tenant": tenant, "retention_days": days}


async def policies(db: Database, scope: Scope, tenant: str | None = None) -> list[dict[str, Any]]:
    """Every tenant in scope that has a retention period."""
    stmt = (select(tenants.c.id, tenants.c.retention_days)
            .where(scope.filter(tenants.c.id, tenant), tenants.c.retention_days.is_not(None))
            .order_by(tenants.c.id))
    async with db.read() as conn:
        return [{"tenant": r.id, "retention_days": int(r.retention_days)} for r in (await conn.execute(stmt)).all()]


async def purge(db: Database, scope: Scope, tenant: str | None = None, *, now: int | None = None
                ) -> list[dict[str, Any]]:
    """Delete every session whose updated_at is older than its tenant's retention; per tenant,
    the deleted keys and the cutoff."""
    now = now_ms() if now is None else now
    report = []
    for policy in await policies(db, scope, tenant):
        cutoff = now - policy["retention_days"] * DAY_MS
        deleted: list[str] = []
        while True:
            async with db.write() as conn:
                batch = (await conn.execute(
                    select(sessions).where(sessions.c.tenant == policy["tenant"], sessions.c.updated_at < cutoff)
                    .order_by(sessions.c.updated_at, sessions.c.id).limit(PURGE_BATCH).with_for_update()
                )).all()
                for row in batch:
                    await session_store.delete_one(db, conn, row)
            deleted.extend(row.key for row in batch)
            if len(batch) < PURGE_BATCH:
                break
        report.append(policy | {"cutoff": to_rfc3339(cutoff), "deleted": len(deleted), "keys": deleted})
    return report
