"""Where a CLI command runs: against a local store file, or a running server (--url).

Both speak the same RPC method names, so each command is written once.
"""

from __future__ import annotations

import asyncio
import atexit
import os
from collections.abc import Callable, Iterable
from typing import Any

import sessionscope.rpc.methods  # noqa: F401 - registers the methods
from sessionscope.client import Client, error_from
from sessionscope.errors import SessionscopeError
from sessionscope.importers import ImportResult, read_records
from sessionscope.ingest import ImportStats, ingest_blocks, ingest_records, worker
from sessionscope.rpc import protocol
from sessionscope.rpc.registry import ADMIN, Caller, Context
from sessionscope.store import Database, Scope, audit, open_database, search_index
from sessionscope.store.scope import resolve_tenant
from sessionscope.store.transfer import export_lines, stream_error
from sessionscope.web.services import ServerConfig, Services

TOKEN_ENV = "SESSIONSCOPE_TOKEN"
URL_ENV = "SESSIONSCOPE_URL"


class LocalBackend:
    """Runs RPC methods in-process, as the store's owner (admin)."""

    def __init__(self, db_url: str | None, config_path: str | None = None, create: bool = False) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            self.db: Database = self.loop.run_until_complete(open_database(db_url, create=create))
        except BaseException:
            self.loop.close()
            raise
        self.services = Services(self.db, ServerConfig(database=db_url, config_path=config_path))
        self.caller = Caller(scope=Scope.everything(), role=ADMIN, token_name="cli")

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        ctx = Context(db=self.db, caller=self.caller, services=self.services)
        request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
        answer = self.run(protocol.call(ctx, request))
        assert answer is not None
        if "error" in answer:
            raise error_from(answer["error"])
        return answer["result"]

    def export(self, keys: list[str], tenant: str | None, path: str) -> int:
        # The RPC resolves an omitted tenant for session.export; this direct path does the same.
        found = tenant or self.run(resolve_tenant(self.db, self.caller.scope, keys))

        async def write() -> int:
            size = 0
            last = b""
            with open(path, "wb") as out:  # noqa: ASYNC230 - the CLI's own loop; nothing else waits on it
                async for chunk in export_lines(self.db, self.caller.scope, keys, found):
                    out.write(chunk)
                    size += len(chunk)
                    last = chunk or last
            if (ended := stream_error(last)) is not None:  # a session vanished: the file is incomplete
                raise error_from(ended)
            return size

        size = self.run(write())
        # Audited like session.export over RPC: a local export also takes data out of the store.
        self.run(audit.record(self.db, action="session.export", tenant=found, keys=keys,
                              token_name=self.caller.token_name, detail={"bytes": size}))
        return size

    def import_records(self, records: Iterable[dict[str, Any]], tenant: str | None,
                       progress: Callable[[int], None] | None = None) -> ImportStats:
        return self._ingest(ingest_records(self.services, self.caller.scope, records, source="import", tenant=tenant,
                                           progress=progress, actor=self.caller.token_name))

    def import_in_worker(self, path: str, fmt: str, tenant: str | None,
                         progress: Callable[[int], None] | None = None) -> ImportResult:
        """import_records of the files at `path`, read and validated by a worker process
        (ingest/worker.py) while this one writes."""
        with worker.PreparedFiles(path, fmt, keep_tokens=False) as files:
            stats = self._ingest(ingest_blocks(self.services, self.caller.scope, files.blocks(), source="import",
                                               tenant=tenant, progress=progress, actor=self.caller.token_name))
            files.result.stats = stats
            return files.result

    def _ingest(self, writing: Any) -> ImportStats:
        stats = self.run(writing)
        # No server may be running to index what the import queued for message search.
        self.run(search_index.drain(self.db))
        return stats

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.run(self.db.close())
        self.loop.close()


class RemoteBackend:
    def __init__(self, url: str, token: str | None) -> None:
        self.client = Client(url, token or os.environ.get(TOKEN_ENV))

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.client.call(method, params)

    def export(self, keys: list[str], tenant: str | None, path: str) -> int:
        params: dict[str, Any] = {"keys": keys}
        if tenant:
            params["tenant"] = tenant
        link = self.client.call("session.export", params)
        return self.client.download(link["url"], path)

    def import_records(self, records: Iterable[dict[str, Any]], tenant: str | None,
                       progress: Callable[[int], None] | None = None) -> ImportStats:
        from sessionscope.cli.remote_import import import_remote

        return import_remote(self.client, records, tenant, progress)

    def close(self) -> None:
        self.client.close()


def import_files(backend: LocalBackend | RemoteBackend, path: str, fmt: str, tenant: str | None,
                 progress: Callable[[int], None] | None = None) -> ImportResult:
    """`sessionscope import`: the files at `path` through the backend. A big local import is
    read in a worker process (ingest/worker.py); anything else in this one."""
    if isinstance(backend, LocalBackend) and worker.worth_a_worker(path):
        return backend.import_in_worker(path, fmt, tenant, progress)
    result, records = read_records(path, fmt)
    result.stats = backend.import_records(records, tenant, progress)
    return result


def connect(db: str | None, url: str | None, token: str | None, config: str | None = None, *,
            create: bool = False) -> LocalBackend | RemoteBackend:
    """The backend for a command. Only commands that make stores (import) pass `create`; the
    others refuse a missing store rather than leave an empty one behind a typo."""
    if db and url:
        raise SessionscopeError("give either --db (a local store) or --url (a running server), not both")
    url = url or (None if db else os.environ.get(URL_ENV))
    if url:
        return RemoteBackend(url, token)
    local = LocalBackend(db, config, create=create)
    # Commands end without closing their backend; the store's connections close at exit.
    atexit.register(local.close)
    return local
