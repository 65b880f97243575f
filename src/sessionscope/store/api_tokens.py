"""API tokens: random, shown once, stored only as a SHA-256 hash, each with a role and a tenant.

A token is `ss_` plus 43 url-safe characters (32 random bytes, 256 bits). The store keeps the
hash; `verify` turns a presented token into a `TokenInfo` whose scope every query then uses.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, select, update

from sessionscope.clock import now_ms, to_rfc3339
from sessionscope.errors import InvalidParams
from sessionscope.store.database import Database, inserted_id
from sessionscope.store.schema import api_tokens
from sessionscope.store.scope import Scope

TOKEN_PREFIX = "ss_"
TOKEN_BYTES = 32  # 256 bits of randomness
ROLES = ("viewer", "operator", "agent", "admin")
GLOBAL_ROLES = frozenset({"admin"})
# last_used_at is written at most this often per token, so verifying is a read, not a write.
LAST_USED_RESOLUTION_MS = 60_000
MAX_PRESENTED_CHARS = 256


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: str
    tenant: str | None

    @property
    def scope(self) -> Scope:
        return Scope.everything() if self.tenant is None else Scope.tenant(self.tenant)


def generate() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _public(row: Row) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "name": row.name,
        "role": row.role,
        "tenant": row.tenant,
        "created_at": to_rfc3339(row.created_at),
        "last_used_at": to_rfc3339(row.last_used_at),
        "revoked_at": to_rfc3339(row.revoked_at),
    }


def check_role_tenant(role: str, tenant: str | None) -> None:
    """Admins see every tenant; every other role belongs to exactly one tenant."""
    if role not in ROLES:
        raise InvalidParams("role", f"must be one of {', '.join(ROLES)}")
    if role in GLOBAL_ROLES and tenant is not None:
        raise InvalidParams("tenant", "an admin token covers every tenant; leave tenant out")
    if role not in GLOBAL_ROLES and tenant is None:
        raise InvalidParams("tenant", f"a {role} token belongs to one tenant; give tenant")


async def create(db: Database, *, name: str, role: str, tenant: str | None = None) -> dict[str, Any]:
    """A new token; the result holds the token itself, which is never stored or shown again."""
    check_role_tenant(role, tenant)
    token = generate()
    async with db.write() as conn:
        inserted = await conn.execute(api_tokens.insert().values(
            name=name, token_hash=hash_token(token), role=role, tenant=tenant, created_at=now_ms(),
        ))
        row = (await conn.execute(
            select(api_tokens).where(api_tokens.c.id == inserted_id(inserted))
        )).one()
    return _public(row) | {"token": token}


async def list_tokens(db: Database, *, include_revoked: bool = False) -> list[dict[str, Any]]:
    stmt = select(api_tokens).order_by(api_tokens.c.id)
    if not include_revoked:
        stmt = stmt.where(api_tokens.c.revoked_at.is_(None))
    async with db.read() as conn:
        return [_public(r) for r in (await conn.execute(stmt)).all()]


async def revoke(db: Database, token_id: int) -> dict[str, Any]:
    """Revoke a token at once; revoking twice keeps the first time."""
    async with db.write() as conn:
        row = (await conn.execute(select(api_tokens).where(api_tokens.c.id == token_id))).first()
        if row is None:
            raise InvalidParams("id", f"no token with id {token_id}")
        if row.revoked_at is None:
            await conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=now_ms()))
        row = (await conn.execute(select(api_tokens).where(api_tokens.c.id == token_id))).one()
    return _public(row)


async def count_active(db: Database) -> int:
    async with db.read() as conn:
        found = await conn.execute(select(func.count()).select_from(api_tokens).where(
            api_tokens.c.revoked_at.is_(None)))
        return int(found.scalar() or 0)


async def verify(db: Database, token: str) -> TokenInfo | None:
    """The active token behind `token`, or None; marks it used (coarsely, see above)."""
    if not token or len(token) > MAX_PRESENTED_CHARS or not token.startswith(TOKEN_PREFIX):
        return None
    digest = hash_token(token)
    async with db.read() as conn:
        row = (await conn.execute(select(api_tokens).where(api_tokens.c.token_hash == digest))).first()
    # The lookup is by hash, so timing reveals nothing of the token; compare anyway for clarity.
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
        return None
    now = now_ms()
    if row.last_used_at is None or now - int(row.last_used_at) > LAST_USED_RESOLUTION_MS:
        async with db.write() as conn:
            await conn.execute(update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now))
    return TokenInfo(id=int(row.id), name=row.name, role=row.role, tenant=row.tenant)


async def ensure_bootstrap(db: Database, name: str = "bootstrap-admin") -> str | None:
    """On a store with no active token, create an admin token and return it (else None)."""
    if await count_active(db):
        return None
    return (await create(db, name=name, role="admin"))["token"]
