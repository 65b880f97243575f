"""Tenant scope: every store query is built from one, so no caller can forget tenancy."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, true
from sqlalchemy.sql.elements import ColumnClause

from sessionscope.errors import Forbidden

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
