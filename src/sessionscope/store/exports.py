"""Download links for session.export: random, short-lived, stored hashed, bound to keys."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Sequence

from sqlalchemy import delete, select

from sessionscope.clock import now_ms
from sessionscope.errors import Forbidden
from sessionscope.store import sessions as session_store
from sessionscope.store.database import Database
from sessionscope.store.schema import api_tokens, export_links
from sessionscope.store.scope import Scope

EXPORT_LINK_TTL_MS = 5 * 60 * 1000
FILENAME_KEY_CHARS = 80
FILENAME_HASH_CHARS = 8


def export_filename(keys: Sequence[str], at_ms: int | None = None) -> str:
    """One session: its key in safe characters (letters of any script, digits, `-_.`), plus a
    short hash of the key when it had to be cut. Several: `sessions-N-YYYYMMDD-HHMM.jsonl` (UTC)."""
    if len(keys) == 1:
        key = keys[0]
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key).strip(".") or "session"
        if len(safe) > FILENAME_KEY_CHARS:
            digest = hashlib.sha256(key.encode()).hexdigest()[:FILENAME_HASH_CHARS]
            safe = f"{safe[:FILENAME_KEY_CHARS - FILENAME_HASH_CHARS - 1]}-{digest}"
        return f"{safe}.jsonl"
    stamp = time.strftime("%Y%m%d-%H%M", time.gmtime((now_ms() if at_ms is None else at_ms) / 1000))
    return f"sessions-{len(keys)}-{stamp}.jsonl"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_link(db: Database, scope: Scope, sessions: Sequence[tuple[str, str]],
                      created_by: int | None = None) -> tuple[str, str]:
    """(token, filename) of one download for `sessions` ((tenant, key) pairs, any tenants).

    Checks every session exists now, so a bad key fails the RPC call rather than the download.
    The link stores the filename, so the download is named as the RPC said."""
    for tenant, _ in sessions:
        scope.check(tenant)
    token = secrets.token_urlsafe(32)
    filename = export_filename([key for _, key in sessions])
    # `keys` holds {sessions: [[tenant, key], ...], filename}: one link may span tenants.
    stored = {"sessions": [list(pair) for pair in sessions], "filename": filename}
    async with db.write() as conn:
        for tenant, key in sessions:
            await session_store.find(conn, tenant, key)
        await conn.execute(delete(export_links).where(export_links.c.expires_at < now_ms()))
        await conn.execute(export_links.insert().values(
            token_hash=_hash(token), tenant=sessions[0][0], keys=json.dumps(stored, ensure_ascii=False),
            expires_at=now_ms() + EXPORT_LINK_TTL_MS, created_by=created_by,
        ))
    return token, filename


async def resolve_link(db: Database, token: str) -> tuple[list[tuple[str, str]], str]:
    """((tenant, key) pairs, filename) of a live link.

    A link dies with the API token that made it: revoking the token ends its links too."""
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
    stored = json.loads(row.keys)
    if isinstance(stored, list):  # a link made before links could span tenants
        return [(row.tenant, key) for key in stored], export_filename(stored)
    return [(tenant, key) for tenant, key in stored["sessions"]], stored["filename"]
