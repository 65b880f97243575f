"""Appending messages: idempotent, one transaction per batch, counters moved in the same one.

Messages are prepared (ids, times, token counts) before the write. An append to an existing
session is a single trip to the database: one call on SQLite's writer thread, one statement on
PostgreSQL. Each batch queues its range for the search index (store.search_index).
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope import jsontext
from sessionscope.clock import not_after_now, now_ms, parse_client_time
from sessionscope.keys import folded_label
from sessionscope.store import search_index
from sessionscope.store import sessions as session_store
from sessionscope.store.database import Database
from sessionscope.store.schema import EVENT_KIND
from sessionscope.tokenizer import count_texts, message_text

PREVIEW_CHARS = 200
OUTPUT_ROLES = frozenset({"assistant"})


def prepare_messages(batch: Sequence[Mapping[str, Any]], received_at: int) -> list[dict[str, Any]]:
    """Normalise a batch before the write transaction: ids, times and token counts (CPU work)."""
    prepared, texts = prepare_uncounted(batch, received_at)
    count_into(prepared, texts)
    return prepared


def prepare_uncounted(batch: Sequence[Mapping[str, Any]], received_at: int
                      ) -> tuple[list[dict[str, Any]], list[str]]:
    """prepare_messages but for the o200k_base counts, which may be left to another process
    (ingest/worker.py): a message that needs one keeps `tokens` None, and its text
    (tokenizer.message_text) is in the second list, in order, for count_into.

    An event message (a source record kept for the record) is no context: it counts 0 tokens."""
    texts: list[str] = []
    prepared = []
    for m in batch:
        ts = m.get("timestamp")
        calls = m.get("tool_calls") or None
        tokens = 0 if m.get("message_kind") == EVENT_KIND else m.get("tokens")
        if tokens is None:
            texts.append(message_text(m))
        prepared.append({
            "msg_id": m.get("id") or uuid.uuid4().hex,
            "role": m["role"],
            "content": m.get("content") or "",
            "tool_calls": jsontext.compact(calls) if calls else None,
            "n_tool_calls": len(calls or ()),
            "tool_call_id": m.get("tool_call_id"),
            "tool_name": m.get("tool_name"),
            "is_error": bool(m.get("is_error")),
            "ts": parse_client_time(ts, "timestamp", ts if isinstance(ts, int) and ts else received_at),
            "tokens": None if tokens is None else int(tokens),
            # The parts beside the text (docs/item-model.md); inline, as this runs per message.
            "reasoning": m.get("reasoning") or None,
            "reasoning_tokens": int(rt) if (rt := m.get("reasoning_tokens")) is not None else None,
            "kind": m.get("message_kind") or None,
            "stop_reason": m.get("stop_reason") or None,
            "attachments": jsontext.compact(att) if (att := m.get("attachments")) else None,
        })
    return prepared, texts


def count_into(prepared: Iterable[dict[str, Any]], texts: Sequence[str]) -> None:
    """Fill the counts prepare_uncounted left out: `texts` are those of its messages whose
    `tokens` is None, in their order."""
    if not texts:
        return
    counts = iter(count_texts(texts))
    for m in prepared:
        if m["tokens"] is None:
            m["tokens"] = next(counts)


def raw_copies(batch: Sequence[Mapping[str, Any]], prepared: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(msg_id, JSON) of each message that came with its client's `raw` copy.

    prepare_messages assigns ids to messages without one; raws pair with them by position."""
    return [(p["msg_id"], jsontext.compact(m["raw"]))
            for m, p in zip(batch, prepared, strict=True) if m.get("raw") is not None]



# conversation: the session's resets before the message; a message id is unique within it.
MESSAGE_COLUMNS = ("session_id", "seq", "conversation", "msg_id", "role", "content", "tool_calls", "tool_call_id", "tool_name",
                   "is_error", "ts", "tokens", "reasoning", "reasoning_tokens", "kind", "stop_reason", "attachments")


def insert_sql(db: Database) -> str:
    return f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES ({db.placeholders(len(MESSAGE_COLUMNS))})"


_PG_ARRAY_TYPES = {"session_id": "bigint", "seq": "bigint", "conversation": "bigint", "msg_id": "varchar", "role": "varchar",
                   "content": "text", "tool_calls": "text", "tool_call_id": "varchar", "tool_name": "varchar",
                   "is_error": "boolean", "ts": "bigint", "tokens": "integer", "reasoning": "text",
                   "reasoning_tokens": "integer", "kind": "varchar", "stop_reason": "varchar", "attachments": "text"}


def _insert_unnest_sql() -> str:
    """PostgreSQL: a batch as one INSERT of unnested column arrays (one statement, one round trip)."""
    arrays = ", ".join(f"${i}::{_PG_ARRAY_TYPES[c]}[]" for i, c in enumerate(MESSAGE_COLUMNS, start=1))
    return f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) SELECT * FROM unnest({arrays})"


ID_CHUNK = 500


@dataclass(frozen=True)
class _BatchSQL:
    """The statements of one stored batch, in the driver's own parameter style."""

    find: str
    set_label: str
    # How this dialect stores a batch's new rows: _insert_sqlite or _insert_postgresql.
    insert_rows: Callable[..., list[dict[str, Any]]]
    insert: str
    # SQLite: the ids of a batch already stored, looked up before the insert.
    existing: str | None
    # PostgreSQL: the insert skips stored ids itself; this takes a batch's rows back when it did.
    insert_new: str | None
    take_back: str | None
    index: str  # queues rows (session_id, seq first..last) for the search index
    # SQLite: stores search rows (rowid, words) of messages whose words came prepared (`words`)
    index_words: str | None
    counters: str  # session_store.bump's UPDATE for an append, compiled for the driver
    counter_params: tuple[str, ...]
    raw: str


_APPEND_DELTAS = ("live_messages", "live_tokens", "message_count", "msg_input_tokens", "msg_output_tokens",
                  "next_seq", "tool_calls", "error_count")
_APPEND_VALUES = ("preview", "updated_at")


@functools.lru_cache(maxsize=4)
def _batch_sql(db: Database) -> _BatchSQL:
    sid, first, last = db.placeholders(3).split(", ")
    # SQLite only (PostgreSQL appends with _postgresql_append): BEGIN IMMEDIATE holds the lock.
    find = (f"SELECT id, next_seq, updated_at, label, live_tokens, resets FROM sessions "
            f"WHERE tenant = {sid} AND key = {first}")
    set_label = f"UPDATE sessions SET label = {sid}, folded_label = {first} WHERE id = {last}"
    counters = session_store.bump_statement(_APPEND_DELTAS, _APPEND_VALUES).compile(dialect=db.engine.dialect)
    # A retried append finds its raw copies stored already; those are skipped like the messages.
    conversation = db.placeholders(4).split(", ")[3]
    raw = (f"INSERT INTO message_raw (session_id, msg_id, raw, conversation) "
           f"VALUES ({sid}, {first}, {last}, {conversation}) ON CONFLICT DO NOTHING")
    common: dict[str, Any] = {"find": find, "set_label": set_label, "counters": str(counters),
              "counter_params": tuple(counters.positiontup or ()), "raw": raw,
              "index": search_index.queue_statement(db)}
    if db.is_sqlite:
        ids = db.placeholders(ID_CHUNK + 2).split(", ")[2:]
        return _BatchSQL(
            insert_rows=_insert_sqlite, insert=insert_sql(db), index_words=search_index.SQLITE_INDEX_WORDS,
            existing=f"SELECT msg_id FROM messages WHERE session_id = {sid} AND conversation = {first} "
                     f"AND msg_id IN ({', '.join(ids)})",
            insert_new=None, take_back=None,
            **common,
        )
    # No lookup query on PostgreSQL: the planner, going by statistics taken while a session was
    # small, would scan the session's messages instead of probing its unique key. The
    # unique index arbitrates ON CONFLICT by itself, with no plan to go wrong.
    return _BatchSQL(
        insert_rows=_insert_postgresql, insert=_insert_unnest_sql(), existing=None, index_words=None,
        insert_new=_insert_unnest_sql() + " ON CONFLICT (session_id, conversation, msg_id) DO NOTHING RETURNING msg_id",
        take_back=f"DELETE FROM messages WHERE session_id = {sid} AND seq BETWEEN {first} AND {last}",
        **common,
    )


@dataclass(frozen=True)
class _Stored:
    first_seq: int
    fresh: list[dict[str, Any]]
    # The session's live tokens after the batch, when the write learnt them for free (SQLite's
    # hot path): the auto-compaction policy then needs no read of its own.
    live_tokens: int | None = None

    def result(self, sent: int) -> dict[str, Any]:
        return {"appended": len(self.fresh), "duplicates": sent - len(self.fresh),
                "last_seq": self.first_seq + len(self.fresh) - 1, "live_tokens": self.live_tokens}


def message_row(session_id: int, seq: int, conversation: int, m: Mapping[str, Any]) -> tuple[Any, ...]:
    """A prepared message as the values of MESSAGE_COLUMNS, in their order (every insert uses this)."""
    return (session_id, seq, conversation, m["msg_id"], m["role"], m["content"], m["tool_calls"], m["tool_call_id"],
            m["tool_name"], m["is_error"], m["ts"], m["tokens"], m["reasoning"], m["reasoning_tokens"], m["kind"],
            m["stop_reason"], m["attachments"])


def _rows(session_id: int, first_seq: int, conversation: int, batch: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [message_row(session_id, first_seq + offset, conversation, m) for offset, m in enumerate(batch)]


def _columns(session_id: int, first_seq: int, conversation: int, batch: list[dict[str, Any]]
             ) -> tuple[list[Any], ...]:
    return tuple(list(column) for column in zip(*_rows(session_id, first_seq, conversation, batch), strict=True))


def _first_of_each_id(batch: list[dict[str, Any]], stored: set[str]) -> list[dict[str, Any]]:
    """The messages whose id is not in `stored` and not repeated earlier in the batch."""
    seen = set(stored)
    fresh = []
    for m in batch:
        if m["msg_id"] not in seen:
            seen.add(m["msg_id"])
            fresh.append(m)
    return fresh


def _insert_sqlite(cursor: Any, sql: _BatchSQL, session_id: int, first_seq: int, conversation: int,
                   prepared: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [m["msg_id"] for m in prepared]
    stored: set[str] = set()
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start:start + ID_CHUNK]
        padded = chunk + [chunk[-1]] * (ID_CHUNK - len(chunk))  # one statement shape for all sizes
        cursor.execute(sql.existing, (session_id, conversation, *padded))
        stored.update(r[0] for r in cursor.fetchall())
    fresh = _first_of_each_id(prepared, stored)
    if fresh:
        cursor.executemany(sql.insert, _rows(session_id, first_seq, conversation, fresh))
    return fresh


def _insert_postgresql(cursor: Any, sql: _BatchSQL, session_id: int, first_seq: int, conversation: int,
                       prepared: list[dict[str, Any]]) -> list[dict[str, Any]]:
    batch = _first_of_each_id(prepared, set())
    cursor.execute(sql.insert_new, _columns(session_id, first_seq, conversation, batch))
    inserted = {r[0] for r in cursor.fetchall()}
    if len(inserted) == len(batch):
        return batch
    # A retry that held stored ids left holes in the seqs: take the rows back, insert the new ones.
    fresh = [m for m in batch if m["msg_id"] in inserted]
    cursor.execute(sql.take_back, (session_id, first_seq, first_seq + len(batch) - 1))
    if fresh:
        cursor.execute(sql.insert, _columns(session_id, first_seq, conversation, fresh))
    return fresh


def _counter_values(fresh: list[dict[str, Any]], updated_at: int) -> dict[str, Any]:
    """The parameters of the append's counter UPDATE (bump_statement) for the stored messages."""
    values: dict[str, Any] = {f"d_{name}": amount for name, amount in append_deltas(fresh).items()}
    last = fresh[-1]
    # A message may carry any valid time; the session's updated_at (sort order, retention) never
    # moves past the server's clock.
    return values | {"v_updated_at": max(updated_at, not_after_now(max(m["ts"] for m in fresh))),
                     "v_preview": (last["content"] or (last["tool_name"] or ""))[:PREVIEW_CHARS]}


def _store_batch(dbapi: Any, sql: _BatchSQL, session_id: int, first_seq: int, conversation: int, updated_at: int,
                 prepared: list[dict[str, Any]], raws: list[tuple[str, str]]) -> _Stored:
    """The ingest hot path, on the driver connection in one call: store the messages whose ids
    are new to the live conversation (a repeated id counts once), with consecutive seqs, index
    them, move the session's counters and keep the raw copies. Returns the messages stored."""
    cursor = dbapi.cursor()
    try:
        fresh = sql.insert_rows(cursor, sql, session_id, first_seq, conversation, prepared)
        if fresh:
            if sql.index_words and all("words" in m for m in fresh):
                # Words found while the batch was prepared (an import's worker process): indexed
                # here, in the batch's transaction, rather than queued for the indexer.
                cursor.executemany(sql.index_words, [(search_index.rowid_of(session_id, first_seq + offset), m["words"])
                                                     for offset, m in enumerate(fresh)])
            else:
                cursor.execute(sql.index, (session_id, first_seq, first_seq + len(fresh) - 1))
            values = _counter_values(fresh, updated_at) | {"session_id": session_id}
            cursor.execute(sql.counters, tuple(values[name] for name in sql.counter_params))
        if raws:
            cursor.executemany(sql.raw, [(session_id, msg_id, raw, conversation) for msg_id, raw in raws])
        return _Stored(first_seq, fresh)
    finally:
        cursor.close()


def _append_on_sqlite_driver(dbapi: Any, sql: _BatchSQL, tenant: str, key: str, label: str | None,
                             prepared: list[dict[str, Any]], raws: list[tuple[str, str]]) -> _Stored | None:
    """SQLite: an append's whole transaction when the session exists; None when it does not."""
    cursor = dbapi.cursor()
    try:
        cursor.execute(sql.find, (tenant, key))
        found = cursor.fetchone()
        if found is None:
            return None
        session_id, next_seq, updated_at, stored_label, live_tokens, conversation = found
        if label is not None and label != stored_label:
            cursor.execute(sql.set_label, (label, folded_label(label), session_id))
    finally:
        cursor.close()
    stored = _store_batch(dbapi, sql, int(session_id), int(next_seq), int(conversation), int(updated_at), prepared,
                          raws)
    return dataclasses.replace(stored, live_tokens=int(live_tokens) + sum(m["tokens"] for m in stored.fresh))


async def _append_to_existing_sqlite(db: Database, tenant: str, key: str, label: str | None,
                                     prepared: list[dict[str, Any]], raws: list[tuple[str, str]]) -> _Stored | None:
    return await db.write_on_driver(_append_on_sqlite_driver, _batch_sql(db), tenant, key, label, prepared, raws)


_PG_BATCH_COLUMNS = MESSAGE_COLUMNS[3:]  # session_id, seq and conversation come from the locked session row


@functools.lru_cache(maxsize=4)
def _postgresql_append(labelled: bool) -> tuple[str, tuple[str, ...]]:
    """PostgreSQL: an append to an existing session as one statement, so one round trip and its
    own transaction: lock the session, insert the batch after its last seq, queue it for the
    search index and move the session's counters. NO KEY UPDATE, the lock an UPDATE of the row
    takes anyway, serialises appends without blocking the search indexer (store.search_index).

    Returns the statement for asyncpg and the order of its parameters."""
    from sqlalchemy.dialects import postgresql

    values = _APPEND_VALUES + (("label", "folded_label") if labelled else ())
    counters = session_store.bump_statement(_APPEND_DELTAS, values, row="(SELECT id FROM locked)")
    arrays = ", ".join(f"CAST(:{c} AS {_PG_ARRAY_TYPES[c]}[])" for c in _PG_BATCH_COLUMNS)
    names = ", ".join(_PG_BATCH_COLUMNS)
    statement = text(
        "WITH locked AS (SELECT id, next_seq, resets FROM sessions WHERE tenant = :tenant AND key = :key "
        "FOR NO KEY UPDATE), "
        f"stored AS (INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) "
        f"SELECT locked.id, locked.next_seq + batch.n - 1, locked.resets, {', '.join('batch.' + c for c in _PG_BATCH_COLUMNS)} "
        f"FROM locked, unnest({arrays}) WITH ORDINALITY AS batch({names}, n)), "
        "queued AS (INSERT INTO search_backlog (session_id, first_seq, last_seq) "
        "SELECT id, next_seq, next_seq + :count - 1 FROM locked), "
        f"counted AS ({counters.text} RETURNING next_seq) "
        "SELECT next_seq FROM counted"
    )
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect())
    return str(compiled), tuple(compiled.positiontup or ())


async def _append_to_existing_postgresql(db: Database, tenant: str, key: str, label: str | None,
                                         prepared: list[dict[str, Any]],
                                         raws: list[tuple[str, str]]) -> _Stored | None:
    """None when the session does not exist yet, or when the batch needs the general path: raw
    copies to keep, or ids already stored (the unique index refuses the whole statement)."""
    from asyncpg.exceptions import UniqueViolationError

    batch = _first_of_each_id(prepared, set())
    if raws or not batch:
        return None
    sql, order = _postgresql_append(label is not None)
    # updated_at: the statement keeps the stored one when it is later.
    params = _counter_values(batch, 0) | {"tenant": tenant, "key": key, "v_label": label,
                                          "v_folded_label": folded_label(label), "count": len(batch)}
    params |= {c: [m[c] for m in batch] for c in _PG_BATCH_COLUMNS}
    try:
        next_seq = await db.run_statement(sql, *(params[name] for name in order))
    except UniqueViolationError:
        return None
    if next_seq is None:
        return None
    return _Stored(int(next_seq) - len(batch), batch)


async def index_for_search(db: Database, conn: AsyncConnection, session_id: int, first_seq: int,
                           last_seq: int) -> None:
    """Queue messages written by other means (bulk loaders) for search, as appends do."""
    await conn.exec_driver_sql(_batch_sql(db).index, (session_id, first_seq, last_seq))


def append_deltas(fresh: list[dict[str, Any]]) -> dict[str, int]:
    """How an appended batch moves the session's counters."""
    out_tokens = sum(m["tokens"] for m in fresh if m["role"] in OUTPUT_ROLES)
    in_tokens = sum(m["tokens"] for m in fresh) - out_tokens
    return {
        "next_seq": len(fresh), "message_count": len(fresh), "live_messages": len(fresh),
        "msg_input_tokens": in_tokens, "msg_output_tokens": out_tokens, "live_tokens": in_tokens + out_tokens,
        "tool_calls": sum(m["n_tool_calls"] for m in fresh),
        "error_count": sum(1 for m in fresh if m["is_error"]),
    }


async def insert_messages(db: Database, conn: AsyncConnection, row: Row, prepared: list[dict[str, Any]],
                          raws: list[tuple[str, str]] | None = None) -> dict[str, int]:
    """Insert into a locked session row's live conversation; ids already stored there (or repeated
    in the batch) are skipped."""
    stored = await db.run_on_driver(conn, _store_batch, _batch_sql(db), int(row.id), int(row.next_seq),
                                    int(row.resets), int(row.updated_at), prepared, raws or [])
    return stored.result(len(prepared))


async def append_prepared(db: Database, tenant: str, key: str, agent: str, channel: str, label: str | None,
                          prepared: list[dict[str, Any]], raws: list[tuple[str, str]]) -> dict[str, Any]:
    """Store prepared messages (prepare_messages) in one transaction; ids already stored are
    skipped. The ingest service (sessionscope.ingest) is the one caller: it validates, counts
    tokens and wakes the search indexer around this. `created` says the session is new."""
    to_existing = _append_to_existing_sqlite if db.is_sqlite else _append_to_existing_postgresql
    stored = await to_existing(db, tenant, key, label, prepared, raws)
    if stored is not None:
        return stored.result(len(prepared)) | {"created": False}
    # The first append creates the session (and its tenant, agent and facet rows) in the same
    # transaction as its messages.
    async with db.write() as conn:
        row = await session_store.ensure(db, conn, tenant, key, agent, channel, label, now_ms())
        result: dict[str, Any] = await insert_messages(db, conn, row, prepared, raws)
    return result | {"created": int(row.next_seq) == 1}
