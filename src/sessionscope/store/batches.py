"""Many sessions' messages and executions in one write transaction (the OTLP receiver's path),
and one session's executions inside an import's transaction (`store_executions`).

One OTLP export request carries spans of hundreds of sessions. A transaction per session cost
a dozen driver round trips each, which was most of the receiver's time; here a request is one
transaction (on SQLite one trip to the driver thread), each step a statement over all sessions
where the dialect allows it.

Time order. Exporters send from several workers, so a session's turns can arrive after later
ones. A batch older than a session's newest stored messages moves those messages (at most
REORDER_TAIL of them, none before the last compaction or reset, whose boundaries are seqs) to
fresh seqs after the batch's, so seq order stays time order. `created_at` moves back to a
batch's earliest time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from sessionscope.keys import folded_identity
from sessionscope.store import search_index
from sessionscope.store import sessions as session_store
from sessionscope.store.appends import MESSAGE_COLUMNS, append_deltas, insert_sql, message_row
from sessionscope.store.database import Database

REORDER_TAIL = 1_000
IN_CHUNK = 400  # values per IN list: far below either database's parameter limit
PREVIEW_CHARS = 200
# prepare_execution's fields, in the INSERT's column order.
EXECUTION_COLUMNS = ("exec_id", "started_at", "duration_ms", "model_ms", "model", "provider", "input_tokens",
                     "output_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens",
                     "cost_usd", "budget", "layers")
_EXEC_DELTAS = ("executions", "exec_input_tokens", "exec_output_tokens", "cache_read_tokens",
                "cache_write_tokens", "cost_usd")
_DELTAS = ("live_messages", "live_tokens", "message_count", "msg_input_tokens", "msg_output_tokens",
           "next_seq", "tool_calls", "error_count", *_EXEC_DELTAS)


@dataclass
class Batch:
    """One session's part of a request: prepared messages (appends.prepare_messages) in time
    order and prepared executions (executions.prepare_execution). `created_at` in ms."""

    key: str
    agent: str
    channel: str
    created_at: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Stored:
    key: str
    created: bool = False
    appended: int = 0
    duplicates: int = 0
    executions: int = 0
    moved: int = 0
    last_seq: int = 0
    live_tokens: int = 0


@dataclass
class _Session:
    id: int
    next_seq: int
    live_from_seq: int
    created_at: int
    live_tokens: int
    markers: int  # compactions + resets: a boundary that messages must not cross
    conversation: int  # its resets: new messages belong to this conversation


@dataclass(frozen=True)
class _SQL:
    lock: str
    # The counter UPDATE (session_store.bump_statement) of a batch with new messages, which sets
    # the preview and updated_at, and of one with only new executions, which does not.
    counters: tuple[str, tuple[str, ...]]
    run_counters: tuple[str, tuple[str, ...]]


def _q(sql: str, db: Database) -> str:
    """Write statements with `?` and run them in the driver's own style."""
    if db.is_sqlite:
        return sql
    parts = sql.split("?")
    return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))


@functools.lru_cache(maxsize=4)
def _sql(db: Database) -> _SQL:
    def compiled(values: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        statement = session_store.bump_statement(_DELTAS, values).compile(dialect=db.engine.dialect)
        return str(statement), tuple(statement.positiontup or ())

    return _SQL(lock="" if db.is_sqlite else " ORDER BY id FOR UPDATE",
                counters=compiled(("preview", "updated_at")), run_counters=compiled(()))


async def append_sessions(db: Database, tenant: str, batches: list[Batch], now: int) -> list[Stored]:
    """Store each batch in one transaction for all; ids already stored are skipped (and counted
    as duplicates), so a resent request adds nothing. `batches` have distinct keys."""
    if db.is_sqlite:
        return await db.write_on_driver(_write, db, tenant, batches, now)
    async with db.write() as conn:
        return await db.run_on_driver(conn, _write, db, tenant, batches, now)


def _write(dbapi: Any, db: Database, tenant: str, batches: list[Batch], now: int) -> list[Stored]:
    cursor = dbapi.cursor()
    try:
        found = _find(cursor, db, tenant, [b.key for b in batches])
        # Sorted: concurrent requests that create the same sessions on PostgreSQL wait in one order.
        # `whole`: the sessions inserted here, with their counters in the row: no UPDATE follows.
        created, whole = _create(cursor, db, tenant, sorted((b for b in batches if b.key not in found),
                                                            key=lambda b: b.key), now)
        found |= created
        old = [b for b in batches if b.key not in created]
        # A message id is unique in the live conversation, an execution id in the session.
        stored_ids = _stored_ids(cursor, db, [(found[b.key].id, found[b.key].conversation,
                                               [m["msg_id"] for m in b.messages]) for b in old], "messages", "msg_id")
        stored_runs = _stored_ids(cursor, db, [(found[b.key].id, None, [e["exec_id"] for e in b.executions])
                                               for b in old if b.executions], "executions", "exec_id")
        boundaries = _boundaries(cursor, db, [found[b.key] for b in old if found[b.key].markers])
        out: list[Stored] = []
        rows: list[tuple[Any, ...]] = []
        moves: list[tuple[int, int]] = []
        ranges: list[tuple[int, int, int]] = []
        vacated: list[tuple[int]] = []  # queued ranges whose messages all moved
        runs: list[tuple[Any, ...]] = []
        indexed: list[tuple[int, str]] = []  # SQLite: (rowid, words) of new messages, words found already
        earlier: list[tuple[int, int]] = []
        counters: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        for batch in batches:
            session = found[batch.key]
            result = Stored(batch.key, created=batch.key in created)
            fresh = _fresh(batch.messages, stored_ids.get(session.id, set()), "msg_id")
            result.duplicates = len(batch.messages) - len(fresh)
            moved = _tail(cursor, db, session, boundaries.get(session.id, 0), fresh) if fresh and not \
                result.created else []
            order: list[tuple[int, int, int, Any]] = sorted([(r[1], 0, i, r) for i, r in enumerate(moved)] +
                           [(m["ts"], 1, i, m) for i, m in enumerate(fresh)], key=lambda e: e[:3])
            seq = session.next_seq
            # Words found as the request was decoded (web/otlp.py, on SQLite): the new messages are
            # indexed in this transaction, not queued for the indexer.
            with_words = db.is_sqlite and all("words" in m for m in fresh)
            for _, source, _, item in order:
                if source == 0:
                    moves.append((seq, item[0]))
                else:
                    rows.append(message_row(session.id, seq, session.conversation, item))
                    if with_words:
                        indexed.append((search_index.rowid_of(session.id, seq), item["words"]))
                seq += 1
            if fresh:
                queued_moves = _queued_moves(cursor, db, session.id, moved, vacated)
                ranges.extend(_ranges(db, session, order, queued_moves, with_words))
            new_runs = _fresh(batch.executions, stored_runs.get(session.id, set()), "exec_id")
            runs.extend((session.id, *(e[c] for c in EXECUTION_COLUMNS)) for e in new_runs)
            deltas = _deltas(fresh, new_runs, len(moved))
            if (fresh or new_runs) and batch.key not in whole:
                values = {f"d_{k}": v for k, v in deltas.items()} | {"session_id": session.id}
                if fresh:
                    # A client's clock never moves updated_at past the server's.
                    values["v_updated_at"] = _newest(fresh, now)
                    values["v_preview"] = _preview(order[-1][3], cursor, db)
                counters[bool(fresh)].append(values)
            if batch.created_at < session.created_at:
                earlier.append((batch.created_at, session.id))
            result.appended, result.executions, result.moved = len(fresh), len(new_runs), len(moved)
            result.last_seq = seq - 1
            result.live_tokens = session.live_tokens + deltas["live_tokens"]
            out.append(result)
        if moves:
            cursor.executemany(_q("UPDATE messages SET seq = ? WHERE id = ?", db), moves)
        if rows:
            cursor.executemany(insert_sql(db), rows)
        if indexed:
            cursor.executemany(search_index.SQLITE_INDEX_WORDS, indexed)
        if vacated:
            cursor.executemany("DELETE FROM search_backlog WHERE id = ?", vacated)
        if ranges:
            cursor.executemany(search_index.queue_statement(db), ranges)
        if runs:
            cursor.executemany(_execution_insert(db), runs)
        sql = _sql(db)
        for (statement, params), changes in ((sql.counters, counters[True]), (sql.run_counters, counters[False])):
            if changes:
                cursor.executemany(statement, [tuple(v[name] for name in params) for v in changes])
        if earlier:
            cursor.executemany(_q("UPDATE sessions SET created_at = ? WHERE id = ?", db), earlier)
        return out
    finally:
        cursor.close()


def store_executions(dbapi: Any, db: Database, session_id: int, prepared: list[dict[str, Any]]) -> int:
    """One session's prepared executions, inside the caller's transaction on its driver
    connection (the block writer's, store/transfer.py): ids stored already or repeated are
    skipped, and the session's counters move by the new ones. Returns how many were new."""
    cursor = dbapi.cursor()
    try:
        stored = _stored_ids(cursor, db, [(session_id, None, [e["exec_id"] for e in prepared])], "executions",
                             "exec_id")
        fresh = _fresh(prepared, stored.get(session_id, set()), "exec_id")
        if fresh:
            cursor.executemany(_execution_insert(db), [(session_id, *(e[c] for c in EXECUTION_COLUMNS))
                                                       for e in fresh])
            statement, params = _sql(db).run_counters
            values = {f"d_{k}": v for k, v in _deltas([], fresh, 0).items()} | {"session_id": session_id}
            cursor.execute(statement, tuple(values[name] for name in params))
        return len(fresh)
    finally:
        cursor.close()


@functools.lru_cache(maxsize=4)
def _execution_insert(db: Database) -> str:
    columns = ("session_id", *EXECUTION_COLUMNS)
    return _q(f"INSERT INTO executions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", db)


def _find(cursor: Any, db: Database, tenant: str, keys: list[str]) -> dict[str, _Session]:
    found: dict[str, _Session] = {}
    for start in range(0, len(keys), IN_CHUNK):
        chunk = keys[start:start + IN_CHUNK]
        cursor.execute(_q(f"SELECT key, id, next_seq, live_from_seq, created_at, live_tokens, compactions + resets, "
                          f"resets "
                          f"FROM sessions WHERE tenant = ? AND key IN ({', '.join('?' * len(chunk))})"
                          f"{_sql(db).lock}", db), (tenant, *chunk))
        for key, *values in cursor.fetchall():
            found[key] = _Session(*(int(v) for v in values))
    return found


def _create(cursor: Any, db: Database, tenant: str, batches: list[Batch], now: int
            ) -> tuple[dict[str, _Session], set[str]]:
    """New sessions with their tenant, agent and facet rows, and the keys of those inserted here.
    An inserted row holds the counters of its batch's records (as the counters UPDATE would
    set them after a row of zeros: one write of the sessions row and its many indexes, not
    two). A session another server process created meanwhile (PostgreSQL) is found and locked
    instead, and its counters are updated as any stored session's."""
    created: dict[str, _Session] = {}
    facets: dict[tuple[str, str], int] = {}
    counters = ("next_seq", *(d for d in _DELTAS if d != "next_seq"), "total_tokens", "preview", "updated_at")
    insert = _q(f"INSERT INTO sessions (tenant, key, agent, channel, created_at, live_from_seq, compactions, resets, "
                f"folded_identity, {', '.join(counters)}) VALUES (?, ?, ?, ?, ?, 1, 0, 0, ?, "
                f"{', '.join('?' * len(counters))}) ON CONFLICT DO NOTHING RETURNING id", db)
    for batch in batches:
        row = _whole_row(batch, now)
        cursor.execute(insert, (tenant, batch.key, batch.agent, batch.channel, batch.created_at,
                                folded_identity(batch.key, batch.agent, batch.channel), *(row[c] for c in counters)))
        inserted = cursor.fetchone()
        if inserted is not None:
            created[batch.key] = _Session(int(inserted[0]), 1, 1, batch.created_at, 0, 0, 0)
            facets[(batch.agent, batch.channel)] = facets.get((batch.agent, batch.channel), 0) + 1
    if not created:
        return _find(cursor, db, tenant, [b.key for b in batches]), set()
    cursor.execute(_q("INSERT INTO tenants (id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING", db),
                   (tenant, now))
    cursor.executemany(_q("INSERT INTO agents (tenant, id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                          db), sorted({(tenant, agent, now) for agent, _ in facets}))
    cursor.executemany(_q("INSERT INTO facets (tenant, agent, channel, sessions) VALUES (?, ?, ?, ?) "
                          "ON CONFLICT (tenant, agent, channel) DO UPDATE SET sessions = facets.sessions + "
                          "excluded.sessions", db), [(tenant, a, c, n) for (a, c), n in sorted(facets.items())])
    missed = [b.key for b in batches if b.key not in created]
    return created | (_find(cursor, db, tenant, missed) if missed else {}), set(created)


def _whole_row(batch: Batch, now: int) -> dict[str, Any]:
    """A new session's counters after its batch: the counters UPDATE of `_write` applied to a
    row of zeros (next_seq 1, updated_at its created_at, no preview)."""
    fresh = _fresh(batch.messages, set(), "msg_id")
    deltas = _deltas(fresh, _fresh(batch.executions, set(), "exec_id"), 0)
    row = deltas | {"next_seq": 1 + deltas["next_seq"], "total_tokens": session_store.total_tokens(deltas),
                    "preview": None, "updated_at": batch.created_at}
    if fresh:
        last = max(enumerate(fresh), key=lambda e: (e[1]["ts"], e[0]))[1]  # the last in _write's order
        row["preview"] = _message_preview(last)
        row["updated_at"] = max(batch.created_at, _newest(fresh, now))
    return row


def _stored_ids(cursor: Any, db: Database, wanted: list[tuple[int, int | None, list[str]]], table: str,
                column: str) -> dict[int, set[str]]:
    """Of each (session, conversation or None for the whole session, ids), those stored already."""
    out: dict[int, set[str]] = {}
    if db.is_sqlite:
        for session_id, conversation, ids in wanted:
            within = "" if conversation is None else f"AND conversation = {int(conversation)} "
            for start in range(0, len(ids), IN_CHUNK):
                chunk = ids[start:start + IN_CHUNK]
                cursor.execute(f"SELECT {column} FROM {table} WHERE session_id = ? {within}AND {column} IN "
                               f"({', '.join('?' * len(chunk))})", (session_id, *chunk))
                out.setdefault(session_id, set()).update(r[0] for r in cursor.fetchall())
        return out
    triples = [(s, c, i) for s, c, ids in wanted for i in ids]
    if triples:
        within = "" if triples[0][1] is None else " AND t.conversation = w.conversation"
        cursor.execute(f"SELECT t.session_id, t.{column} FROM {table} t JOIN unnest($1::bigint[], $2::varchar[], "
                       f"$3::bigint[]) AS w(session_id, id, conversation) ON t.session_id = w.session_id "
                       f"AND t.{column} = w.id{within}",
                       ([p[0] for p in triples], [p[2] for p in triples], [p[1] for p in triples]))
        for session_id, item_id in cursor.fetchall():
            out.setdefault(int(session_id), set()).add(item_id)
    return out


def _boundaries(cursor: Any, db: Database, sessions: list[_Session]) -> dict[int, int]:
    """The seq of each session's last compaction or reset."""
    out: dict[int, int] = {}
    for table in ("compactions", "resets"):
        for start in range(0, len(sessions), IN_CHUNK):
            ids = [s.id for s in sessions[start:start + IN_CHUNK]]
            cursor.execute(_q(f"SELECT session_id, max(seq) FROM {table} WHERE session_id IN "
                              f"({', '.join('?' * len(ids))}) GROUP BY session_id", db), ids)
            for session_id, seq in cursor.fetchall():
                out[int(session_id)] = max(out.get(int(session_id), 0), int(seq))
    return out


def _tail(cursor: Any, db: Database, session: _Session, boundary: int, fresh: list[dict[str, Any]]
          ) -> list[tuple[int, int, int]]:
    """(id, ts, seq) of the stored messages that are newer than the batch and free to move."""
    low = max(session.live_from_seq, boundary + 1, session.next_seq - REORDER_TAIL)
    cursor.execute(_q("SELECT id, ts, seq FROM messages WHERE session_id = ? AND seq >= ? AND ts > ? ORDER BY seq",
                      db), (session.id, low, min(m["ts"] for m in fresh)))
    return [(int(r[0]), int(r[1]), int(r[2])) for r in cursor.fetchall()]


def _queued_moves(cursor: Any, db: Database, session_id: int, moved: list[tuple[int, int, int]],
                  vacated: list[tuple[int]]) -> set[int]:
    """SQLite: the ids of moved messages that are still queued for the search index (their old
    seqs in a queued range). They are queued again at their new seqs, for the indexer to index in
    the background (an indexed message's row moves with it, by trigger: migration 0012). A queued
    range whose messages all moved is added to `vacated`, to be dropped; one that keeps some stays
    as it is, as the seqs it leaves are below next_seq and never taken again."""
    if not moved or not db.is_sqlite:
        return set()
    cursor.execute("SELECT id, first_seq, last_seq FROM search_backlog WHERE session_id = ?", (session_id,))
    queued = cursor.fetchall()
    old_seqs = {m[2] for m in moved}
    vacated.extend((range_id,) for range_id, first, last in queued
                   if all(seq in old_seqs for seq in range(first, last + 1)))
    return {m[0] for m in moved if any(first <= m[2] <= last for _, first, last in queued)}


def _fresh(items: list[dict[str, Any]], stored: set[str], key: str) -> list[dict[str, Any]]:
    seen = set(stored)
    out = []
    for item in items:
        if item[key] not in seen:
            seen.add(item[key])
            out.append(item)
    return out


def _ranges(db: Database, session: _Session, order: list[tuple[Any, ...]], queued_moves: set[int],
            new_indexed: bool) -> list[tuple[int, int, int]]:
    """Search-index queue entries for the new messages. SQLite queues each run of new ones (but
    when `new_indexed`: their words came with them) and of moved ones not indexed yet
    (`queued_moves`; the indexed ones' rows moved with them); PostgreSQL the whole span, as its
    index skips messages it holds."""
    first = session.next_seq
    if db.is_sqlite:
        out, start = [], None
        for offset, entry in enumerate(order):
            unindexed = (entry[1] == 1 and not new_indexed) or (entry[1] == 0 and entry[3][0] in queued_moves)
            if unindexed and start is None:
                start = first + offset
            elif not unindexed and start is not None:
                out.append((session.id, start, first + offset - 1))
                start = None
        if start is not None:
            out.append((session.id, start, first + len(order) - 1))
        return out
    return [(session.id, first, first + len(order) - 1)]


def _deltas(fresh: list[dict[str, Any]], runs: list[dict[str, Any]], moved: int) -> dict[str, Any]:
    deltas: dict[str, Any] = dict.fromkeys(_DELTAS, 0)
    if fresh:
        deltas |= append_deltas(fresh)
    deltas["next_seq"] = len(fresh) + moved
    deltas["executions"] = len(runs)
    for name, column in (("exec_input_tokens", "input_tokens"), ("exec_output_tokens", "output_tokens"),
                         ("cache_read_tokens", "cache_read_tokens"), ("cache_write_tokens", "cache_write_tokens")):
        deltas[name] = sum(r[column] for r in runs)
    deltas["cost_usd"] = sum(r["cost_usd"] or 0.0 for r in runs)
    return deltas


def _preview(last: Any, cursor: Any, db: Database) -> str:
    """The last message's preview: a new one's text, or a moved one's read back."""
    if isinstance(last, dict):
        return _message_preview(last)
    cursor.execute(_q("SELECT content, tool_name FROM messages WHERE id = ?", db), (last[0],))
    content, tool_name = cursor.fetchone()
    return _message_preview({"content": content, "tool_name": tool_name})


def _message_preview(message: dict[str, Any]) -> str:
    return (message["content"] or (message["tool_name"] or ""))[:PREVIEW_CHARS]


def _newest(fresh: list[dict[str, Any]], now: int) -> int:
    """The session's updated_at after new messages: their newest time, never past the server's clock."""
    return min(now, max(m["ts"] for m in fresh))


assert MESSAGE_COLUMNS[:2] == ("session_id", "seq")  # the row tuples above follow this order
