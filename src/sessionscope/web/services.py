"""What RPC methods need from the running server beyond the store: settings and lookups."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from sessionscope.compaction import CompactionSettings, load_compaction_settings
from sessionscope.compaction.service import AutoCompactor
from sessionscope.errors import ConfigError
from sessionscope.ingest.many import GroupWriter
from sessionscope.store import Database, sessions
from sessionscope.web.cpu_pool import CpuPool, workers_for

DEBUG_ENV = "SESSIONSCOPE_DEBUG"
# The address clients reach this server by (behind a proxy, say), for the links it hands out:
# ServerConfig.extra["public_url"] or this variable. Never taken from a request's headers.
PUBLIC_URL_ENV = "SESSIONSCOPE_PUBLIC_URL"


def _debug_from_env() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class ServerConfig:
    database: str | None = None
    config_path: str | None = None
    auth: bool = True
    max_body_bytes: int = 8 * 1024 * 1024
    # Check every RPC result against its declared model (a mismatch answers -32603 and is
    # logged): always in the test suite, and at run time with SESSIONSCOPE_DEBUG=1.
    validate_results: bool = field(default_factory=_debug_from_env)
    extra: dict[str, Any] = field(default_factory=dict)


def config_to_env(config: ServerConfig) -> str:
    """The whole configuration as one environment value, so every worker process gets the same."""
    return json.dumps(dataclasses.asdict(config))


def config_from_env(value: str) -> ServerConfig:
    return ServerConfig(**json.loads(value))


def public_url(config: ServerConfig) -> str | None:
    """The configured public base URL (no trailing slash), or None; ConfigError when unusable."""
    value = config.extra.get("public_url") or os.environ.get(PUBLIC_URL_ENV, "").strip() or None
    if value is None:
        return None
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
        raise ConfigError(f"{PUBLIC_URL_ENV} / public_url: {value!r} is not an http(s) base URL")
    return value.rstrip("/")


class Services:
    def __init__(self, db: Database, config: ServerConfig) -> None:
        self.db = db
        self.config = config
        self.public_url = public_url(config)
        # Auto-compaction's background worker; the server starts it (web/housekeeping.py). While
        # it is not running (the CLI's in-process store) auto-compaction runs after each write.
        self.compactor = AutoCompactor(db)
        # The OTLP receiver's writes: requests that are ready together share one transaction.
        self.otlp_writer = GroupWriter(self, source="otlp")
        # Decoding OTLP requests, on other cores (web/cpu_pool.py); stopped with the server.
        self.cpu_pool = CpuPool(workers_for(config.extra))

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one Services per server, agents are few
    def _settings(self, agent: str | None) -> CompactionSettings:
        return load_compaction_settings(self.config.config_path, agent)

    def compaction_settings(self, agent: str | None) -> CompactionSettings:
        return self._settings(agent)

    async def session_agent(self, ctx: Any, key: str, tenant: str | None) -> str:
        row = await sessions.get(self.db, ctx.caller.scope, key, tenant)
        return row["agent"]
