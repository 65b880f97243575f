"""Opening a store: engine, SQLite settings, write transactions and dialect differences."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import platformdirs
from sqlalchemy import CursorResult, Table, event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Insert

from sessionscope import search_words
from sessionscope.errors import SessionscopeError
from sessionscope.store.checkpoint import (
    FALLBACK_AUTOCHECKPOINT_PAGES,
    JOURNAL_SIZE_LIMIT_BYTES,
    WalCheckpointer,
)

DATABASE_URL_ENV = "SESSIONSCOPE_DATABASE_URL"
log = logging.getLogger("sessionscope.store")
T = TypeVar("T")

SQLITE_JOURNAL_MODE = "WAL"
SQLITE_SYNCHRONOUS = "NORMAL"
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 16 * 1024
SQLITE_MMAP_BYTES = 0  # mmap pages count toward RSS; the OS page cache serves reads anyway
# Idle connections kept for read_on_driver on SQLite (taken from the pool, which still serves
# everything else): a hot read then skips the pool's checkout and its reset on return, a trip to
# aiosqlite's thread each, which cost as much as a whole page of status (bench/core.py).
SQLITE_KEPT_READERS = 2


SQLITE_HEADER = b"SQLite format 3\x00"
MAKE_ONE = ("make one with `sessionscope serve`, `sessionscope import FILE` or `sessionscope demo`, "
            "or pass the --db of an existing one")


class StoreUnavailable(SessionscopeError):
    """The store named by --db, the env var or the default path cannot be opened as asked."""


def default_database_path() -> Path:
    """The one default store, shared by the CLI, the server and the demo."""
    return Path(platformdirs.user_data_dir("sessionscope")) / "sessionscope.db"


def _given(db: str | None) -> tuple[str | None, str]:
    """The value and how the user gave it, for error messages that name the input."""
    if db:
        return db, "--db"
    value = os.environ.get(DATABASE_URL_ENV)
    return (value, DATABASE_URL_ENV) if value else (None, "the default store")


def resolve_url(db: str | None = None) -> str:
    """`db` may be a URL or a file path; otherwise the env var, otherwise the user data dir."""
    value, source = _given(db)
    if not value:
        return f"sqlite+aiosqlite:///{default_database_path()}"
    if "://" not in value:
        return f"sqlite+aiosqlite:///{Path(value).expanduser().resolve()}"
    scheme, rest = value.split("://", 1)
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return f"postgresql+asyncpg://{rest}"
    raise StoreUnavailable(f"{source} {_safe(value)!r}: unsupported database {scheme!r}; use a SQLite file path "
                           "or a postgresql://user@host/dbname URL")


def _safe(value: str) -> str:
    """The value with any password hidden."""
    if "://" not in value or "@" not in value:
        return value
    scheme, rest = value.split("://", 1)
    auth, at, host = rest.rpartition("@")
    return f"{scheme}://{auth.split(':', 1)[0]}{':***' if ':' in auth else ''}{at}{host}"


def _check_sqlite_file(path: Path, source: str, create: bool) -> None:
    """Refuse, in one line each, what SQLite would report as a bare 'unable to open database file'."""
    if path.is_dir():
        raise StoreUnavailable(f"{source} {str(path)!r} is a directory, not a store file; "
                               f"pass a file path such as {path / 'sessionscope.db'}")
    if not path.exists():
        if not create:
            raise StoreUnavailable(f"no store at {path}: {MAKE_ONE}")
        if source == "the default store":
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.parent.is_dir():
            raise StoreUnavailable(f"{source} {str(path)!r}: the directory {path.parent} does not exist; "
                                   "create it first or pass another path")
        return
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as error:
        raise StoreUnavailable(f"{source} {str(path)!r}: cannot read it ({error.strerror})") from None
    if head and head != SQLITE_HEADER:
        raise StoreUnavailable(f"{source} {str(path)!r} is not a SQLite store (some other file); "
                               "pass the path of a sessionscope store")


def _search_document(content: str | None) -> str:
    return search_words.document(content or "")


def _configure_sqlite(engine: AsyncEngine, autocheckpoint_pages: int | None) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below), so the driver must not.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA journal_mode={SQLITE_JOURNAL_MODE}")
        cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.execute("PRAGMA temp_store=MEMORY")
        # The search index's words come from Python's rule (search_words), not from FTS5's.
        dbapi_connection.create_function("search_document", 1, _search_document, deterministic=True)
        if autocheckpoint_pages is not None:
            cursor.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint_pages}")
            cursor.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT_BYTES}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes can fail with SQLITE_BUSY without
        # waiting; writers take the lock up front so they queue on busy_timeout instead.
        writing = conn.get_execution_options().get("sessionscope_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


class Database:
    """An async engine plus the few places where SQLite and PostgreSQL differ."""

    def __init__(self, engine: AsyncEngine, checkpointer: WalCheckpointer | None = None) -> None:
        self.engine = engine
        self._checkpointer = checkpointer
        self.dialect = engine.dialect.name
        # SQLite has one writer at a time. Queueing writers here, instead of in SQLite's busy
        # handler (which sleeps in steps of up to 100 ms), keeps concurrent appends fast.
        self._sqlite_writer = asyncio.Lock() if self.is_sqlite else None
        # A connection kept for write_on_driver, so its hot writes skip the pool's checkout
        # and reset (each a trip to aiosqlite's thread).
        self._writer_conn: AsyncConnection | None = None
        self._writer_driver: Any = None  # its aiosqlite connection
        self._readers: list[tuple[AsyncConnection, Any]] = []  # idle, for read_on_driver
        # Where the store is (a file path, or a URL without its password), for messages; and
        # whether opening it made it or upgraded it, which the commands that may do so report.
        self.location = ""
        self.created = False
        self.upgraded_from: str | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """One read transaction, one snapshot: a commit that lands meanwhile is not seen. (A
        SQLite transaction is one; PostgreSQL's default, READ COMMITTED, gives each statement
        the newest commit, so a page and its rows or its total could disagree.)"""
        async with self.engine.connect() as conn:
            if not self.is_sqlite:
                await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: everything inside commits together or not at all."""
        if self._sqlite_writer is None:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
            return
        async with self._sqlite_writer, self.engine.connect() as conn:
            await conn.execution_options(sessionscope_write=True)
            async with conn.begin():
                yield conn

    def insert_ignore(self, table: Table) -> Insert:
        """INSERT that silently skips rows colliding with a unique constraint."""
        if self.is_sqlite:
            return sqlite.insert(table).on_conflict_do_nothing()
        return postgresql.insert(table).on_conflict_do_nothing()

    def upsert_add(self, table: Table, keys: list[str], column: str, amount: Any) -> Insert:
        """INSERT a counter row, or add `amount` to it when it exists."""
        module = sqlite if self.is_sqlite else postgresql
        stmt = module.insert(table)
        return stmt.on_conflict_do_update(index_elements=keys, set_={column: table.c[column] + amount})

    async def run_on_driver(self, conn: AsyncConnection, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(dbapi_connection, *args)` inside `conn`'s transaction, as one unit.

        For aiosqlite that is a single trip to its worker thread instead of a few per statement,
        which is most of the cost of a small write; elsewhere it runs under SQLAlchemy's greenlet
        bridge with the same DB-API connection interface.
        """
        driver = await _driver_of(conn)
        if self.is_sqlite and hasattr(driver, "_execute") and hasattr(driver, "_conn"):
            return await driver._execute(fn, driver._conn, *args)
        return await conn.run_sync(lambda sync_conn: fn(sync_conn.connection.dbapi_connection, *args))

    async def write_on_driver(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(dbapi_connection, *args)` as one write transaction of its own.

        On SQLite the BEGIN IMMEDIATE, the work and the COMMIT (or ROLLBACK) happen in a single
        trip to the driver thread, so a cancelled request still ends its transaction there.
        """
        if self._sqlite_writer is None:
            async with self.write() as conn:
                return await self.run_on_driver(conn, fn, *args)
        async with self._sqlite_writer:
            if self._writer_conn is None:
                self._writer_conn = await self.engine.connect()
                self._writer_driver = await _driver_of(self._writer_conn)
            driver = self._writer_driver
            return await driver._execute(_sqlite_transaction, driver._conn, fn, *args)

    async def read_on_driver(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(dbapi_connection, *args)`, the hot reads (a list page, a status page), as fast
        as each database allows.

        On SQLite: one read transaction (one snapshot), its BEGIN, reads and ROLLBACK in a single
        trip to the driver thread, where `read()` takes one trip for each, on a connection kept
        for these reads. On PostgreSQL the statements run in autocommit, each its own snapshot: a
        REPEATABLE READ transaction (`read()`) added its BEGIN and COMMIT, 0.2-0.5 ms a call, to
        reads whose later statements are bounded by the first one's row (a status page's messages
        by its session's next_seq). Whatever must be one snapshot (store.check) uses `read()`."""
        if not self.is_sqlite:
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await self.run_on_driver(conn, fn, *args)
        if self._readers:
            conn, driver = self._readers.pop()
        else:
            conn = await self.engine.connect()
            driver = await _driver_of(conn)
        try:
            # Even when this task is cancelled the driver thread finishes the read, ROLLBACK
            # included, before it runs anything queued after it: the connection stays reusable.
            return await driver._execute(_sqlite_read, driver._conn, fn, *args)
        finally:
            if len(self._readers) < SQLITE_KEPT_READERS:
                self._readers.append((conn, driver))
            else:
                await conn.close()

    async def run_statement(self, sql: str, *args: Any) -> Any:
        """PostgreSQL: one statement as its own transaction, straight on asyncpg (one round trip,
        no BEGIN and COMMIT of their own). Returns the first column of the first row, or None."""
        async with self.engine.connect() as conn:
            return await (await _driver_of(conn)).fetchval(sql, *args)

    def placeholders(self, count: int) -> str:
        """Driver-level parameter markers, for the few hot statements that skip SQL compilation."""
        style = self.engine.dialect.paramstyle
        if style == "qmark":
            return ", ".join("?" * count)
        if style in ("numeric_dollar", "numeric"):
            mark = "$" if style == "numeric_dollar" else ":"
            return ", ".join(f"{mark}{i}" for i in range(1, count + 1))
        return ", ".join(["%s"] * count)

    async def close(self) -> None:
        while self._readers:
            await self._readers.pop()[0].close()
        if self._writer_conn is not None:
            await self._writer_conn.close()
            self._writer_conn = self._writer_driver = None
        await self.engine.dispose()
        if self._checkpointer is not None:
            self._checkpointer.stop()


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the one row an INSERT stored."""
    key = result.inserted_primary_key
    if key is None:  # only an INSERT of several rows at once has none
        raise RuntimeError("the statement stored no single row")
    return int(key[0])


async def _driver_of(conn: AsyncConnection) -> Any:
    """The driver's own connection (aiosqlite or asyncpg) under `conn`."""
    driver = (await conn.get_raw_connection()).driver_connection
    if driver is None:  # typed optional by SQLAlchemy; only a detached connection has none
        raise RuntimeError("the database connection has no driver connection")
    return driver


def _sqlite_transaction(dbapi: Any, fn: Callable[..., T], *args: Any) -> T:
    dbapi.execute("BEGIN IMMEDIATE")
    try:
        result = fn(dbapi, *args)
    except BaseException:
        dbapi.execute("ROLLBACK")
        raise
    dbapi.execute("COMMIT")
    return result


def _sqlite_read(dbapi: Any, fn: Callable[..., T], *args: Any) -> T:
    dbapi.execute("BEGIN")
    try:
        return fn(dbapi, *args)
    finally:
        dbapi.execute("ROLLBACK")


IDLE_PING_SECONDS = 5.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Test a pooled connection before use only when it has sat idle, so a restarted server or a
    dropped connection is noticed and replaced. pool_pre_ping would cost every request two round
    trips (asyncpg pings with BEGIN and ROLLBACK); a busy connection proves itself anyway."""
    @event.listens_for(engine.sync_engine, "checkin")
    def on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as error:
            # The pool discards this connection and checks out another.
            raise exc.DisconnectionError(f"stale pooled connection: {error}") from error


async def open_database(db: str | None = None, *, migrate: bool = True, create: bool = True,
                        pool_size: int = 5) -> Database:
    """Open the store named by `db`. With `create=False` the store must already exist with the
    current schema: nothing is created or migrated (read-only commands must not leave an empty
    store behind a typo), and a missing one is StoreUnavailable saying how to make one."""
    url = resolve_url(db)
    value, source = _given(db)
    checkpointer = None
    if url.startswith("sqlite"):
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=10)
        path = engine.url.database
        if path and path != ":memory:" and not path.startswith("file:"):
            _check_sqlite_file(Path(path), source, create)
            checkpointer = WalCheckpointer(path)
        _configure_sqlite(engine, FALLBACK_AUTOCHECKPOINT_PAGES if checkpointer else None)
    else:
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=10)
        _ping_when_idle(engine)
    database = Database(engine, checkpointer)
    database.location = (engine.url.database or "") if url.startswith("sqlite") else _safe(value or url)
    try:
        await _probe(database, database.location, source, create)
        if migrate and create:
            from sessionscope.store.migrate import HEAD_REVISION, current_revision, upgrade

            before = await current_revision(database)
            await upgrade(database)
            database.created = before is None
            database.upgraded_from = before if before not in (None, HEAD_REVISION) else None
    except BaseException:
        await engine.dispose()
        raise
    if checkpointer is not None:
        checkpointer.start()  # after the migrations: they may have created the file
    if not database.is_sqlite:
        await _check_autovacuum(database)
    return database


async def _probe(database: Database, value: str, source: str, create: bool) -> None:
    """Connect once, so a missing PostgreSQL database or a refused connection is one line; without
    `create`, also require the project's tables at the current revision."""
    from sessionscope.store.migrate import HEAD_REVISION, current_revision

    name = _safe(value)
    try:
        async with database.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
    except exc.DBAPIError as error:
        raise StoreUnavailable(_connect_problem(database, name, source, error.orig)) from None
    except OSError as error:
        raise StoreUnavailable(f"{source} {name!r}: cannot connect ({error.strerror or error}); "
                               "is the database server running?") from None
    if create:
        return
    revision = await current_revision(database)
    if revision is None:
        where = name if database.is_sqlite else f"{name} (the database has no sessionscope tables)"
        raise StoreUnavailable(f"no store at {where}: {MAKE_ONE}")
    if revision != HEAD_REVISION:
        raise StoreUnavailable(f"the store at {name} has an older schema ({revision}); upgrade it once with "
                               "`sessionscope serve` or `sessionscope import` on it")


def _connect_problem(database: Database, name: str, source: str, orig: Any) -> str:
    if database.is_sqlite:
        return f"{source} {name!r}: cannot open it as a SQLite store ({orig})"
    kind = type(orig).__name__
    cause = getattr(orig, "__cause__", None)
    kind = type(cause).__name__ if cause is not None else kind
    dbname = database.engine.url.database
    if "InvalidCatalogName" in kind or (dbname and f'database "{dbname}" does not exist' in str(orig)):
        return (f"{source} {name!r}: PostgreSQL database {dbname!r} does not exist; create it "
                f"(createdb {dbname}) or pass another database")
    first_line = str(orig).strip().splitlines()[0] if str(orig).strip() else kind
    return f"{source} {name!r}: cannot connect to PostgreSQL ({first_line})"


_warned_autovacuum_off: set[str] = set()


async def _check_autovacuum(db: Database) -> None:
    # Every append rewrites its session row; without (auto)vacuum the dead versions pile up and
    # the planner never sees tables grow, so appends and lists slow down over time.
    # Once a process for each server: tools that open the store many times would repeat it.
    server = db.engine.url.render_as_string(hide_password=True).rsplit("/", 1)[0]
    if server in _warned_autovacuum_off:
        return
    async with db.engine.connect() as conn:
        setting = (await conn.exec_driver_sql("SHOW autovacuum")).scalar()
    if setting != "on":
        _warned_autovacuum_off.add(server)
        log.warning("PostgreSQL autovacuum is off: run VACUUM ANALYZE regularly, or appends and lists "
                    "will slow down as sessions grow")
