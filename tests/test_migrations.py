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
SEARCH_OBJECTS = ("session_search", "message_search", "ix_message_search", "search_backlog", "search_failed",
                  "ix_sessions_search_trgm")


def _is_search_object(diff: Any) -> bool:
    obj = diff[1] if isinstance(diff, tuple) else diff
    name = getattr(obj, "name", "") or ""
    return any(name.startswith(prefix) for prefix in SEARCH_OBJECTS)


def _is_dropped_on_postgresql(diff: Any) -> bool:
    """Migration 0005 drops the messages -> sessions foreign key on PostgreSQL (see its notes)."""
    return (isinstance(diff, tuple) and diff[0] == "add_fk" and diff[1].parent.name == "messages"
            and [c.name for c in diff[1].columns] == ["session_id"])


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
    if dialect == "postgresql":
        assert [d for d in diffs if _is_dropped_on_postgresql(d)], "the messages foreign key is back"
        diffs = [d for d in diffs if not _is_dropped_on_postgresql(d)]
    assert diffs == []


def test_head_revision_constant_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    from sessionscope.store.migrate import HEAD_REVISION, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_a_store_at_head_opens_without_alembic(tmp_path: Any) -> None:
    import subprocess
    import sys

    path = tmp_path / "store.db"

    async def create() -> None:
        db = await open_database(str(path))
        await db.close()

    asyncio.run(create())
    code = ("import asyncio, sys\n"
            "from sessionscope.store import open_database\n"
            f"db = asyncio.run(open_database({str(path)!r}))\n"
            "print('alembic' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
