"""What RPC methods need from the running server beyond the store: settings and lookups."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from sessionscope.compaction import CompactionSettings, load_compaction_settings
from sessionscope.compaction.service import AutoCompactor
from sessionscope.store import Database, sessions


@dataclass
class ServerConfig:
    database: str | None = None
    config_path: str | None = None
    auth: bool = True
    max_body_bytes: int = 8 * 1024 * 1024
    extra: dict[str, Any] = field(default_factory=dict)


class Services:
    def __init__(self, db: Database, config: ServerConfig) -> None:
        self.db = db
        self.config = config
        # Auto-compaction's background worker; the server starts it (web/housekeeping.py). While
        # it is not running (the CLI's in-process store) auto-compaction runs after each write.
        self.compactor = AutoCompactor(db)

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one Services per server, agents are few
    def _settings(self, agent: str | None) -> CompactionSettings:
        return load_compaction_settings(self.config.config_path, agent)

    def compaction_settings(self, agent: str | None) -> CompactionSettings:
        return self._settings(agent)

    async def session_agent(self, ctx: Any, key: str, tenant: str | None) -> str:
        row = await sessions.get(self.db, ctx.caller.scope, key, tenant)
        return row["agent"]
