"""Alembic migrations, run in-process on the store's own async engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from sessionscope.store.database import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions (tests/test_migrations.py checks it against Alembic).
# A store already there starts without importing Alembic, which is ~10 MB of server memory.
HEAD_REVISION = "0013_search_walk_index"


def alembic_config(connection: Any | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def current_revision(database: Database) -> str | None:
    try:
        async with database.engine.connect() as conn:
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except DBAPIError:  # no alembic_version table yet: a new store
        return None


async def upgrade(database: Database, revision: str = "head") -> None:
    if revision == "head" and await current_revision(database) == HEAD_REVISION:
        return

    def run(sync_conn: Any) -> None:
        from alembic import command

        command.upgrade(alembic_config(sync_conn), revision)

    async with database.engine.connect() as conn:
        await conn.execution_options(sessionscope_write=True)
        async with conn.begin():
            await conn.run_sync(run)
