"""JSONL export and import: streamed in pages, so memory stays flat for any session size."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope.clock import now_ms, parse_client_time, to_rfc3339
from sessionscope.errors import InvalidParams
from sessionscope.store import sessions as session_store
from sessionscope.store import wire
from sessionscope.store.appends import insert_messages, prepare_messages, raw_copies
from sessionscope.store.database import Database
from sessionscope.store.executions import insert_executions, prepare_execution
from sessionscope.store.schema import compactions, executions, messages, resets, sessions
from sessionscope.store.scope import Scope
from sessionscope.tokenizer import MESSAGE_OVERHEAD_TOKENS, count_tokens

EXPORT_PAGE = 2_000
FORMAT_VERSION = 1


def _line(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)


async def export_lines(db: Database, scope: Scope, keys: Sequence[str], tenant: str | None = None
                       ) -> AsyncIterator[bytes]:
    """Yield the JSONL of each session: header, items in seq order, executions."""
    tenant = scope.resolve(tenant)
    for key in keys:
        async with db.read() as conn:
            row = await session_store.find(conn, tenant, key)
            markers = (await conn.execute(
                select(compactions).where(compactions.c.session_id == row.id).order_by(compactions.c.seq)
            )).all()
            marker_resets = (await conn.execute(
                select(resets).where(resets.c.session_id == row.id).order_by(resets.c.seq)
            )).all()
        yield _line({"type": "session", "version": FORMAT_VERSION, "key": row.key, "tenant": row.tenant,
                     "agent": row.agent, "channel": row.channel, "label": row.label,
                     "created_at": to_rfc3339(row.created_at)})
        # Compactions and resets are few; messages are paged and merged with them by seq.
        others = sorted([(int(c.seq), wire.compaction_item(c)) for c in markers]
                        + [(int(r.seq), wire.reset_item(r)) for r in marker_resets], key=lambda p: p[0])
        pending = 0
        last_seq = 0
        live_from = int(row.live_from_seq)
        reset_seq = max((int(r.seq) for r in marker_resets if r.seq < live_from), default=0)
        while True:
            async with db.read() as conn:
                # On the driver: rows come back as its plain tuples, with no per-row processing.
                page = await db.run_on_driver(conn, _fetch_all, _page_sql(db), (row.id, last_seq, EXPORT_PAGE))
            if not page:
                break
            chunk = []
            for m in page:
                while pending < len(others) and others[pending][0] < m[MESSAGE_SEQ]:
                    chunk.append(_item_line(others[pending][1]))
                    pending += 1
                item = wire.message_item(m, live_from, reset_seq=reset_seq, kind_field="type")
                if m[RAW_COLUMN] is not None:
                    item["raw"] = orjson.Fragment(m[RAW_COLUMN])  # stored as JSON text: embedded as is
                chunk.append(_line(item))
            last_seq = int(page[-1][MESSAGE_SEQ])
            yield b"".join(chunk)
        yield b"".join(_item_line(item) for _, item in others[pending:])
        last_started, last_id = -1, 0
        while True:
            async with db.read() as conn:
                page = (await conn.execute(
                    select(executions).where(
                        executions.c.session_id == row.id,
                        (executions.c.started_at > last_started)
                        | ((executions.c.started_at == last_started) & (executions.c.id > last_id)),
                    ).order_by(executions.c.started_at, executions.c.id).limit(EXPORT_PAGE)
                )).all()
            if not page:
                break
            yield b"".join(_line({"type": "execution", **wire.execution(e)}) for e in page)
            last_started, last_id = int(page[-1].started_at), int(page[-1].id)


MESSAGE_SEQ = [c.name for c in messages.columns].index("seq")
RAW_COLUMN = len(messages.columns)  # the client's raw copy follows the message columns


def _fetch_all(dbapi: Any, sql: str, params: tuple[Any, ...]) -> list[Any]:
    cursor = dbapi.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


@functools.lru_cache(maxsize=4)
def _page_sql(db: Database) -> str:
    columns = ", ".join(f"m.{c.name}" for c in messages.columns)
    a, b, c = db.placeholders(3).split(", ")
    return (f"SELECT {columns}, r.raw FROM messages m LEFT JOIN message_raw r "
            f"ON r.session_id = m.session_id AND r.msg_id = m.msg_id "
            f"WHERE m.session_id = {a} AND m.seq > {b} ORDER BY m.seq LIMIT {c}")


def _item_line(item: dict[str, Any]) -> bytes:
    return _line({"type": item.pop("kind"), **item})


# ---- import --------------------------------------------------------------------------------------

IMPORT_BATCH = 1_000


@dataclass
class ImportStats:
    sessions: int = 0
    messages: int = 0
    duplicates: int = 0
    compactions: int = 0
    resets: int = 0
    executions: int = 0


async def import_records(
    db: Database,
    scope: Scope,
    records: Iterable[dict[str, Any]],
    *,
    tenant: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportStats:
    """Store a record stream (docs/item-model.md). Each session block is one transaction,
    streamed in batches, so an interrupted import leaves every session whole or absent."""
    stats = ImportStats()
    stream = iter(records)
    record = next(stream, None)
    while record is not None:
        if record.get("type") != "session":
            raise InvalidParams("type", "each block must start with a session header")
        header = record
        async with db.write() as conn:
            writer = _SessionWriter(db, conn, stats)
            await writer.start(header, scope.resolve(tenant or header.get("tenant")))
            batch: list[dict[str, Any]] = []
            record = next(stream, None)
            while record is not None and record.get("type") != "session":
                batch.append(record)
                if len(batch) >= IMPORT_BATCH:
                    await writer.write(batch)
                    if progress:
                        progress(len(batch))
                    batch = []
                record = next(stream, None)
            await writer.write(batch)
            await writer.flush_executions()
            if progress and batch:
                progress(len(batch))
            await recount_live(conn, writer.session_id)
    return stats


class _SessionWriter:
    """Writes one session block inside the caller's transaction."""

    def __init__(self, db: Database, conn: AsyncConnection, stats: ImportStats) -> None:
        self.db = db
        self.conn = conn
        self.stats = stats
        self.tenant = ""
        self.key = ""
        self.session_id = 0
        self.seq_offset: int | None = None
        self.executions: list[dict[str, Any]] = []

    async def start(self, header: dict[str, Any], tenant: str) -> None:
        key = header.get("key")
        if not isinstance(key, str) or not key:
            raise InvalidParams("key", "a session header needs a non-empty key")
        created = header.get("created_at")
        row = await session_store.ensure(
            self.db, self.conn, tenant, key, header.get("agent") or "unknown",
            header.get("channel") or "unknown", header.get("label"),
            parse_client_time(created, "created_at", now_ms()),
        )
        self.tenant, self.key, self.session_id = tenant, key, int(row.id)
        if int(row.next_seq) == 1:
            self.stats.sessions += 1

    async def _row(self) -> Row:
        return await session_store.find(self.conn, self.tenant, self.key)

    async def write(self, batch: list[dict[str, Any]]) -> None:
        run: list[dict[str, Any]] = []
        for record in batch:
            kind = record.get("type")
            if kind == "message":
                run.append(record)
                continue
            if kind == "execution":
                # Executions are not seq-ordered: buffered, they no longer cut message runs short.
                self.executions.append(record)
                continue
            await self._messages(run)
            run = []
            await self._other(record)
        await self._messages(run)
        if len(self.executions) >= IMPORT_BATCH:
            await self.flush_executions()

    async def flush_executions(self) -> None:
        if self.executions:
            prepared = [prepare_execution(record) for record in self.executions]
            self.stats.executions += await insert_executions(self.conn, await self._row(), prepared)
            self.executions = []

    async def _messages(self, batch: list[dict[str, Any]]) -> None:
        if not batch:
            return
        row = await self._row()
        if self.seq_offset is None and batch[0].get("seq") is not None:
            self.seq_offset = int(row.next_seq) - int(batch[0]["seq"])
        prepared = prepare_messages(batch, now_ms())
        result = await insert_messages(self.db, self.conn, row, prepared, raw_copies(batch, prepared))
        self.stats.messages += result["appended"]
        self.stats.duplicates += result["duplicates"]

    async def _other(self, record: dict[str, Any]) -> None:
        row = await self._row()
        kind = record.get("type")
        if kind == "reset":
            item_id = record.get("id") or f"reset-{record.get('seq')}"
            if not await self._exists(resets, item_id):
                ts = record.get("timestamp")
                await session_store.reset_one(self.conn, row, item_id, parse_client_time(ts, "timestamp", 0) or None)
                self.stats.resets += 1
        elif kind == "compaction":
            await self._compaction(row, record)
        else:
            raise InvalidParams("type", f"unknown record type {kind!r}")

    async def _exists(self, table: Any, item_id: str) -> bool:
        found = await self.conn.execute(
            select(table.c.id).where(table.c.session_id == self.session_id, table.c.item_id == item_id)
        )
        return found.first() is not None

    async def _boundary(self, record: dict[str, Any], seq: int) -> int:
        """The first kept seq: from our own export's seq, or a foreign format's kept message id."""
        first_kept = record.get("first_kept_seq")
        if first_kept is not None:
            offset = self.seq_offset if self.seq_offset is not None else seq - int(record.get("seq") or seq)
            return int(first_kept) + offset
        kept_id = record.get("first_kept_id")
        if kept_id:
            found = (await self.conn.execute(select(messages.c.seq).where(
                messages.c.session_id == self.session_id, messages.c.msg_id == kept_id))).scalar()
            if found is not None:
                return int(found)
        return seq

    async def _compaction(self, row: Row, record: dict[str, Any]) -> None:
        seq = int(row.next_seq)
        item_id = record.get("id") or f"compaction-{record.get('seq', seq)}"
        if await self._exists(compactions, item_id):
            return
        boundary = await self._boundary(record, seq)
        summary = record.get("summary") or ""
        ts = record.get("timestamp")
        restored = bool(record.get("restored"))
        inserted = await self.conn.execute(compactions.insert().values(
            session_id=row.id, seq=seq, item_id=item_id,
            ts=parse_client_time(ts, "timestamp", now_ms()),
            summary=summary, messages_compacted=int(record.get("messages_compacted") or 0),
            tokens_before=int(record.get("tokens_before") or 0), tokens_after=int(record.get("tokens_after") or 0),
            first_kept_seq=boundary, summarizer=record.get("summarizer") or "imported",
            instructions=record.get("instructions"), reason=record.get("reason") or "imported",
            restored=restored, prev_live_from_seq=int(row.live_from_seq),
            prev_compaction_id=row.active_compaction_id,
            summary_tokens=count_tokens(summary) + MESSAGE_OVERHEAD_TOKENS,
        ))
        values: dict[str, Any] = {}
        if not restored:
            values = {"live_from_seq": boundary, "active_compaction_id": inserted.inserted_primary_key[0]}
        await session_store.bump(self.conn, row.id, {"compactions": 1, "next_seq": 1}, **values)
        self.stats.compactions += 1


async def recount_live(conn: AsyncConnection, session_id: int) -> None:
    """Recompute the live-context counters from rows once an import has moved the boundary."""
    row = (await conn.execute(select(sessions).where(sessions.c.id == session_id))).one()
    count, tokens = (await conn.execute(
        select(func.count(), func.coalesce(func.sum(messages.c.tokens), 0))
        .where(messages.c.session_id == session_id, messages.c.seq >= row.live_from_seq)
    )).one()
    summary_tokens = 0
    if row.active_compaction_id is not None:
        summary_tokens = (await conn.execute(
            select(compactions.c.summary_tokens).where(compactions.c.id == row.active_compaction_id)
        )).scalar() or 0
    await conn.execute(sessions.update().where(sessions.c.id == session_id).values(
        live_messages=int(count), live_tokens=int(tokens) + int(summary_tokens)))
