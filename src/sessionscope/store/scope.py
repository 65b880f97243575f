"""Tenant scope: every store query is built from one, so no caller can forget tenancy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.sql.elements import ColumnClause

from sessionscope.errors import Forbidden, InvalidParams, NotFound

if TYPE_CHECKING:
    from sessionscope.store.database import Database

DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class Scope:
    """The tenants a caller may touch; `tenants=None` means every tenant (admin)."""

    tenants: frozenset[str] | None = None

    @classmethod
    def everything(cls) -> Scope:
        return cls(None)

    @classmethod
    def tenant(cls, tenant: str) -> Scope:
        return cls(frozenset({tenant}))

    @property
    def is_global(self) -> bool:
        return self.tenants is None

    def resolve(self, tenant: str | None) -> str:
        """The one tenant a single-session call acts on."""
        if tenant is None:
            if self.tenants is None or DEFAULT_TENANT in self.tenants or len(self.tenants) != 1:
                tenant = DEFAULT_TENANT
            else:
                tenant = next(iter(self.tenants))
        self.check(tenant)
        return tenant

    def check(self, tenant: str) -> None:
        if self.tenants is not None and tenant not in self.tenants:
            raise Forbidden(f"forbidden: this caller may not access tenant {tenant!r}")

    def filter(self, column: ColumnClause | ColumnElement, tenant: str | None) -> ColumnElement[bool]:
        """WHERE clause for listing calls: one named tenant, or every tenant in scope."""
        if tenant is not None:
            self.check(tenant)
            return column == tenant
        if self.tenants is None:
            return true()
        return column.in_(sorted(self.tenants))


async def resolve_tenant(db: Database, scope: Scope, keys: Sequence[str]) -> str:
    """The tenant a call on existing sessions acts on when it names none: the one tenant in scope
    that holds the keys. A key held by several tenants in scope is InvalidParams listing them in
    `data.tenants`, as are keys spread over several tenants; a key none holds is NotFound."""
    if scope.tenants is not None and len(scope.tenants) == 1:
        return next(iter(scope.tenants))  # a one-tenant caller never names another
    from sessionscope.store.schema import sessions

    async with db.read() as conn:
        rows = (await conn.execute(
            select(sessions.c.key, sessions.c.tenant)
            .where(sessions.c.key.in_(list(dict.fromkeys(keys))), scope.filter(sessions.c.tenant, None))
            .limit(len(keys) * 4 + 4)  # enough to see every ambiguity that matters, never a table's worth
        )).all()
    if not rows:
        raise NotFound(keys[0])
    holders: dict[str, set[str]] = {}
    for key, tenant in rows:
        holders.setdefault(key, set()).add(tenant)
    for key, tenants in holders.items():
        if len(tenants) > 1:
            raise _ambiguous(f"key {key!r} exists in several tenants", tenants)
    tenants = {t for found in holders.values() for t in found}
    if len(tenants) > 1:
        raise _ambiguous("the keys are in different tenants; one call per tenant", tenants)
    return tenants.pop()


def _ambiguous(problem: str, tenants: set[str]) -> InvalidParams:
    error = InvalidParams("tenant", f"{problem} ({', '.join(sorted(tenants))}): pass tenant")
    error.data["tenants"] = sorted(tenants)
    return error
