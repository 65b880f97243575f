"""JSONL export, and the store side of import: a session's records written in one transaction.

Exports are streamed in pages, so memory stays flat for any session size. Imports come through
the ingest service (sessionscope.ingest), which validates and prepares the records and hands
them here in chunks."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope.clock import now_ms, parse_rfc3339, to_rfc3339
from sessionscope.errors import InvalidParams, NotFound, SessionscopeError
from sessionscope.store import batches as store_batches
from sessionscope.store import sessions as session_store
from sessionscope.store import wire
from sessionscope.store.appends import ID_CHUNK, insert_messages
from sessionscope.store.database import Database, inserted_id
from sessionscope.store.schema import compactions, executions, messages, resets, sessions
from sessionscope.store.scope import Scope
from sessionscope.tokenizer import MESSAGE_OVERHEAD_TOKENS, count_tokens

EXPORT_PAGE = 2_000
FORMAT_VERSION = 1


def _line(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)


def error_line(error: SessionscopeError) -> bytes:
    """The export stream's last line when it cannot go on (docs/item-model.md): a reader sees
    why the file ends there instead of a body cut short."""
    return _line({"type": "error", "error": {"code": error.code, "message": error.message, "data": error.data}})


def stream_error(last_chunk: bytes) -> dict[str, Any] | None:
    """The wire error ({code, message, data}) an export stream ended with (error_line), read
    from its last chunk; None when the stream is whole."""
    line = last_chunk.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    if not line.startswith(b'{"type":"error"'):
        return None
    error: dict[str, Any] = orjson.loads(line)["error"]
    return error


def _deleted_line(key: str) -> bytes:
    return error_line(NotFound.from_wire(f"session {key!r} was deleted during the export; this file is incomplete",
                                         {"key": key}))


async def _still_there(db: Database, row: Row) -> bool:
    """The exported session was not deleted (nor deleted and made again) while it was read."""
    async with db.read() as conn:
        found = (await conn.execute(select(sessions.c.id).where(
            sessions.c.id == row.id, sessions.c.tenant == row.tenant, sessions.c.key == row.key,
            sessions.c.created_at == row.created_at))).first()
    return found is not None


async def export_lines(db: Database, scope: Scope, keys: Sequence[str], tenant: str | None = None
                       ) -> AsyncIterator[bytes]:
    """Yield the JSONL of each session: header, items in seq order, executions.

    The pages are read one transaction each, so a session deleted meanwhile loses its rows
    between two pages: the stream then ends with an error line, never as if it were whole."""
    tenant = scope.resolve(tenant)
    for key in keys:
        try:
            async with db.read() as conn:
                row = await session_store.find(conn, tenant, key)
                markers = (await conn.execute(
                    select(compactions).where(compactions.c.session_id == row.id).order_by(compactions.c.seq)
                )).all()
                marker_resets = (await conn.execute(
                    select(resets).where(resets.c.session_id == row.id).order_by(resets.c.seq)
                )).all()
        except NotFound:
            yield _deleted_line(key)
            return
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
                ran = (await conn.execute(
                    select(executions).where(
                        executions.c.session_id == row.id,
                        (executions.c.started_at > last_started)
                        | ((executions.c.started_at == last_started) & (executions.c.id > last_id)),
                    ).order_by(executions.c.started_at, executions.c.id).limit(EXPORT_PAGE)
                )).all()
            if not ran:
                break
            yield b"".join(_line({"type": "execution", **wire.execution(e)}) for e in ran)
            last_started, last_id = int(ran[-1].started_at), int(ran[-1].id)
        if not await _still_there(db, row):
            yield _deleted_line(key)
            return


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
            f"ON r.session_id = m.session_id AND r.conversation = m.conversation AND r.msg_id = m.msg_id "
            f"WHERE m.session_id = {a} AND m.seq > {b} ORDER BY m.seq LIMIT {c}")


def _item_line(item: dict[str, Any]) -> bytes:
    return _line({"type": item.pop("kind"), **item})


# ---- import: one session's block of records, in one transaction ---------------------------------


@dataclass(frozen=True)
class Header:
    key: str
    agent: str
    channel: str
    label: str | None = None
    created_at: int | None = None  # epoch ms; only when the block creates the session


@dataclass
class Run:
    """Consecutive records of one kind, as the ingest service prepared them: "messages"
    (prepare_messages dicts, with `raws` their client copies), "compaction" or "reset" (one
    validated record), "executions" (prepare_execution dicts)."""

    kind: str
    rows: list[dict[str, Any]]
    raws: list[tuple[str, str]] = field(default_factory=list)


async def write_block(db: Database, tenant: str, header: Header, chunks: AsyncIterator[list[Run]]
                      ) -> dict[str, Any]:
    """Write a session's records in one transaction, creating the session on first use.

    Duplicates (message, compaction, reset and execution ids already stored) are skipped and
    not counted, so a block written twice reports nothing new the second time. A message is
    stored in the live conversation; its id is a duplicate when the live conversation holds it,
    or the conversation the block places it in: before the block's first reset record any of
    the session's conversations (the block restates history), after a reset record already
    stored that reset's conversation. Returns the
    IngestResult fields: created, appended, duplicates, compactions, resets, executions,
    last_seq, live_tokens."""
    async with db.write() as conn:
        row = await session_store.ensure(db, conn, tenant, header.key, header.agent, header.channel,
                                         header.label, header.created_at or now_ms())
        writer = _SessionWriter(db, conn, tenant, header.key, int(row.id))
        writer.out["created"] = int(row.next_seq) == 1
        writer.earlier = set(range(int(row.resets)))
        async for runs in chunks:
            for run in runs:
                await writer.write(run)
        live = await recount_live(conn, writer.session_id)
        final = await writer._row()
    return writer.out | {"last_seq": int(final.next_seq) - 1, "live_tokens": live}


class _SessionWriter:
    """Writes one session block inside the caller's transaction."""

    def __init__(self, db: Database, conn: AsyncConnection, tenant: str, key: str, session_id: int) -> None:
        self.db = db
        self.conn = conn
        self.tenant = tenant
        self.key = key
        self.session_id = session_id
        self.out: dict[str, Any] = {"created": False, "appended": 0, "duplicates": 0, "compactions": 0,
                                    "resets": 0, "executions": 0}
        # Earlier conversations whose ids also count as stored for the block's next messages.
        self.earlier: set[int] = set()

    async def _row(self) -> Row:
        return await session_store.find(self.conn, self.tenant, self.key)

    async def write(self, run: Run) -> None:
        if run.kind == "messages":
            rows, raws = await self._new_to_earlier(run)
            self.out["duplicates"] += len(run.rows) - len(rows)
            if rows:
                result = await insert_messages(self.db, self.conn, await self._row(), rows, raws)
                self.out["appended"] += result["appended"]
                self.out["duplicates"] += result["duplicates"]
        elif run.kind == "executions":
            self.out["executions"] += await self.db.run_on_driver(self.conn, store_batches.store_executions, self.db,
                                                                  self.session_id, run.rows)
        elif run.kind == "reset":
            await self._reset(run.rows[0])
        elif run.kind == "compaction":
            await self._compaction(await self._row(), run.rows[0])
        else:
            raise InvalidParams("type", f"unknown record type {run.kind!r}")

    async def _new_to_earlier(self, run: Run) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """The run's messages (and raw copies) whose ids `self.earlier` does not hold."""
        if not self.earlier:
            return run.rows, run.raws
        ids = list({m["msg_id"] for m in run.rows})
        stored: set[str] = set()
        for start in range(0, len(ids), ID_CHUNK):
            stored.update((await self.conn.execute(select(messages.c.msg_id).where(
                messages.c.session_id == self.session_id, messages.c.conversation.in_(sorted(self.earlier)),
                messages.c.msg_id.in_(ids[start:start + ID_CHUNK])))).scalars())
        if not stored:
            return run.rows, run.raws
        return ([m for m in run.rows if m["msg_id"] not in stored],
                [(msg_id, raw) for msg_id, raw in run.raws if msg_id not in stored])

    async def _reset(self, record: dict[str, Any]) -> None:
        item_id = record.get("id") or f"reset-{record.get('seq')}"
        stored = (await self.conn.execute(select(resets.c.seq).where(
            resets.c.session_id == self.session_id, resets.c.item_id == item_id))).scalar()
        if stored is not None:
            # A re-imported reset: the block's next messages are that reset's conversation.
            before = (await self.conn.execute(select(func.count()).where(
                resets.c.session_id == self.session_id, resets.c.seq < stored))).scalar_one()
            self.earlier = {int(before) + 1}
            return
        self.earlier = set()
        ts = record.get("timestamp")
        await session_store.reset_one(self.conn, await self._row(), item_id,
                                      parse_rfc3339(ts) if isinstance(ts, str) else None)
        self.out["resets"] += 1

    async def _exists(self, table: Any, item_id: str) -> bool:
        found = await self.conn.execute(
            select(table.c.id).where(table.c.session_id == self.session_id, table.c.item_id == item_id)
        )
        return found.first() is not None

    async def _boundary(self, record: dict[str, Any], seq: int) -> int:
        """The first kept seq: that of the message named by `first_kept_id` (the ingest service
        translates an export's first_kept_seq to it); with none, nothing was kept."""
        kept_id = record.get("first_kept_id")
        if kept_id:
            # An id may recur in several conversations: the newest is the one a compaction keeps.
            found = (await self.conn.execute(select(messages.c.seq).where(
                messages.c.session_id == self.session_id, messages.c.msg_id == kept_id)
                .order_by(messages.c.seq.desc()).limit(1))).scalar()
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
            ts=parse_rfc3339(ts) if isinstance(ts, str) else now_ms(),
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
            values = {"live_from_seq": boundary, "active_compaction_id": inserted_id(inserted)}
        await session_store.bump(self.conn, row.id, {"compactions": 1, "next_seq": 1}, **values)
        self.out["compactions"] += 1


async def recount_live(conn: AsyncConnection, session_id: int) -> int:
    """Recompute the live-context counters from rows once an import has moved the boundary;
    returns the live tokens."""
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
    live = int(tokens) + int(summary_tokens)
    await conn.execute(sessions.update().where(sessions.c.id == session_id).values(
        live_messages=int(count), live_tokens=live))
    return live
