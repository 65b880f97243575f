"""Alembic migrations, run in-process on the store's own async engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from sessionscope.store.database import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(connection: Any | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    def run(sync_conn: Any) -> None:
        command.upgrade(alembic_config(sync_conn), revision)

    async with database.engine.connect() as conn:
        await conn.execution_options(sessionscope_write=True)
        async with conn.begin():
            await conn.run_sync(run)
