"""Dashboard login sessions: what the session cookie names, instead of the API token itself.

Logging in with a token creates a row here; the cookie holds a fresh random id (`sl_` + 43
characters, 256 bits) of which only the SHA-256 hash is stored. A session ends at logout
(`revoke`), when it expires (LIFETIME_MS after login), or when its token is revoked: `resolve`
checks all three on every request. A copied cookie is therefore worth nothing after logout, and
the token never travels in a cookie.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import and_, delete, select, update

from sessionscope.clock import now_ms
from sessionscope.store.api_tokens import TokenInfo
from sessionscope.store.database import Database
from sessionscope.store.schema import api_tokens, login_sessions

SESSION_PREFIX = "sl_"
SESSION_BYTES = 32
LIFETIME_MS = 12 * 3600 * 1000  # a working day; log in again after
MAX_PRESENTED_CHARS = 128


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


async def create(db: Database, token: TokenInfo, lifetime_ms: int = LIFETIME_MS) -> str:
    """A new login session for a verified token; returns the id the cookie holds (shown once)."""
    session_id = SESSION_PREFIX + secrets.token_urlsafe(SESSION_BYTES)
    now = now_ms()
    async with db.write() as conn:
        # Expired sessions go as new ones come: the table stays the size of the live sessions.
        await conn.execute(delete(login_sessions).where(login_sessions.c.expires_at < now))
        await conn.execute(login_sessions.insert().values(
            id_hash=_hash(session_id), token_id=token.id, created_at=now, expires_at=now + lifetime_ms))
    return session_id


async def resolve(db: Database, session_id: str | None) -> TokenInfo | None:
    """The token behind a live login session, or None (unknown, logged out, expired, or its
    token revoked)."""
    if not session_id or len(session_id) > MAX_PRESENTED_CHARS or not session_id.startswith(SESSION_PREFIX):
        return None
    stmt = (
        select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.role, api_tokens.c.tenant)
        .select_from(login_sessions.join(api_tokens, api_tokens.c.id == login_sessions.c.token_id))
        .where(login_sessions.c.id_hash == _hash(session_id), login_sessions.c.revoked_at.is_(None),
               login_sessions.c.expires_at > now_ms(), api_tokens.c.revoked_at.is_(None))
    )
    async with db.read() as conn:
        row = (await conn.execute(stmt)).first()
    return None if row is None else TokenInfo(id=int(row.id), name=row.name, role=row.role, tenant=row.tenant)


async def revoke(db: Database, session_id: str | None) -> bool:
    """End one login session (logout); True if it was live."""
    if not session_id or len(session_id) > MAX_PRESENTED_CHARS:
        return False
    async with db.write() as conn:
        done = await conn.execute(update(login_sessions).where(
            and_(login_sessions.c.id_hash == _hash(session_id), login_sessions.c.revoked_at.is_(None))
        ).values(revoked_at=now_ms()))
    return bool(done.rowcount)
