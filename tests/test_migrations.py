"""Alembic migrations build exactly the schema that store/schema.py describes, on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sessionscope.store import open_database
from sessionscope.store.schema import metadata

# Search structures are created by raw SQL in the migrations (FTS5 tables, expression indexes);
# SQLAlchemy's metadata does not describe them.
SEARCH_OBJECTS = ("session_search", "message_search", "ix_messages_content_fts", "ix_sessions_search_trgm")


def _is_search_object(diff: Any) -> bool:
    obj = diff[1] if isinstance(diff, tuple) else diff
    name = getattr(obj, "name", "") or ""
    return any(name.startswith(prefix) for prefix in SEARCH_OBJECTS)


def test_migrations_match_schema(database_url_factory: Any, dialect: str) -> None:
    url = database_url_factory(dialect, "migrations")

    async def differences() -> list[Any]:
        db = await open_database(url)
        try:
            async with db.engine.connect() as conn:
                return await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
        finally:
            await db.close()

    diffs = [d for d in asyncio.run(differences()) if not _is_search_object(d)]
    assert diffs == []
