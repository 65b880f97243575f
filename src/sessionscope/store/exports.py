"""Download links for session.export: random, short-lived, stored hashed, bound to keys."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence

from sqlalchemy import delete, select

from sessionscope.clock import now_ms
from sessionscope.errors import Forbidden
from sessionscope.store import sessions as session_store
from sessionscope.store.database import Database
from sessionscope.store.schema import api_tokens, export_links
from sessionscope.store.scope import Scope

EXPORT_LINK_TTL_MS = 5 * 60 * 1000


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_link(db: Database, scope: Scope, keys: Sequence[str], tenant: str | None,
                      created_by: int | None = None) -> str:
    """Checks every key exists now, so a bad key fails the RPC call rather than the download."""
    tenant = scope.resolve(tenant)
    token = secrets.token_urlsafe(32)
    async with db.write() as conn:
        for key in keys:
            await session_store.find(conn, tenant, key)
        await conn.execute(delete(export_links).where(export_links.c.expires_at < now_ms()))
        await conn.execute(export_links.insert().values(
            token_hash=_hash(token), tenant=tenant, keys=json.dumps(list(keys)),
            expires_at=now_ms() + EXPORT_LINK_TTL_MS, created_by=created_by,
        ))
    return token


async def resolve_link(db: Database, token: str) -> tuple[str, list[str]]:
    """A link dies with the API token that made it: revoking the token ends its links too."""
    async with db.read() as conn:
        row = (await conn.execute(
            select(export_links, api_tokens.c.revoked_at)
            .select_from(export_links.outerjoin(api_tokens, api_tokens.c.id == export_links.c.created_by))
            .where(export_links.c.token_hash == _hash(token))
        )).first()
    if row is None or row.expires_at < now_ms():
        raise Forbidden("this export link is unknown or has expired; export again")
    if row.created_by is not None and row.revoked_at is not None:
        raise Forbidden("this export link died with the token that made it; export again")
    return row.tenant, json.loads(row.keys)
