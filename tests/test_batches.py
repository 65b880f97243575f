"""store/batches.py, the OTLP receiver's many-sessions write: a request leaves the search index
to the background indexer, also when an earlier turn moves stored messages to later seqs, and
the indexer then indexes every message exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from sessionscope.store import appends, batches, open_database, search_index

TENANT = "batches"
NOW = 1_900_000_000_000


@pytest.fixture
def url(dialect: str, database_url_factory: Any) -> str:
    return database_url_factory(dialect, "batches")


def _batch(key: str, second: int, content: str) -> batches.Batch:
    message = {"id": content, "role": "user", "content": content, "timestamp": f"2030-01-01T00:00:{second:02d}Z"}
    return batches.Batch(key, "a", "web", NOW, appends.prepare_messages([message], NOW))


async def _indexed(db: Any, key: str, word: str) -> int:
    """Search rows of `word` in the session, read from the index alone (not the queue)."""
    async with db.read() as conn:
        if db.is_sqlite:
            sql = (f"SELECT count(*) FROM message_search WHERE message_search MATCH :w AND "
                   f"{search_index.sqlite_session_of('rowid')} = (SELECT id FROM sessions WHERE key = :k)")
        else:
            sql = ("SELECT count(*) FROM message_search ms JOIN sessions s ON s.id = ms.session_id "
                   "WHERE ms.document @@ plainto_tsquery('simple', :w) AND s.key = :k")
        return int((await conn.execute(text(sql), {"w": word, "k": key})).scalar_one())


async def _fts_intact(db: Any) -> None:
    if db.is_sqlite:
        async with db.write() as conn:
            await conn.exec_driver_sql("INSERT INTO message_search(message_search, rank) VALUES ('integrity-check', 1)")


def test_requests_leave_indexing_to_the_indexer_and_moved_messages_are_indexed_once(url: str) -> None:
    key = f"moves-{url.rsplit('/', 1)[-1]}"

    async def main() -> None:
        db = await open_database(url)
        try:
            await search_index.drain(db)
            await batches.append_sessions(db, TENANT, [_batch(key, 30, "gamma")], NOW)
            # Earlier than gamma, so gamma (queued, not indexed yet) moves to a later seq.
            await batches.append_sessions(db, TENANT, [_batch(key, 20, "beta")], NOW)
            assert [await _indexed(db, key, w) for w in ("beta", "gamma")] == [0, 0]  # none in the request
            if db.is_sqlite:  # gamma's old range, all moved, is dropped: one range holds both now
                assert await search_index.queued(db) == 1
            await search_index.drain(db)
            assert [await _indexed(db, key, w) for w in ("beta", "gamma")] == [1, 1]
            # Earlier again: beta and gamma, indexed now, move; they must not be indexed twice.
            await batches.append_sessions(db, TENANT, [_batch(key, 10, "alpha")], NOW)
            assert await _indexed(db, key, "alpha") == 0
            await search_index.drain(db)
            assert [await _indexed(db, key, w) for w in ("alpha", "beta", "gamma")] == [1, 1, 1]
            await _fts_intact(db)
            async with db.read() as conn:
                rows = (await conn.execute(text(
                    "SELECT m.content FROM messages m JOIN sessions s ON s.id = m.session_id "
                    "WHERE s.key = :k ORDER BY m.seq"), {"k": key})).scalars().all()
            assert rows == ["alpha", "beta", "gamma"]
        finally:
            await db.close()

    asyncio.run(main())


def _with_words(batch: batches.Batch) -> batches.Batch:
    from sessionscope import search_words

    for message in batch.messages:
        message["words"] = search_words.document(message["content"])
    return batch


def test_words_found_beforehand_are_indexed_in_the_request_on_sqlite(url: str) -> None:
    key = f"words-{url.rsplit('/', 1)[-1]}"

    async def main() -> None:
        db = await open_database(url)
        try:
            await search_index.drain(db)
            await batches.append_sessions(db, TENANT, [_with_words(_batch(key, 30, "gamma"))], NOW)
            # Earlier: gamma, indexed already, moves to a later seq with its index row.
            await batches.append_sessions(db, TENANT, [_with_words(_batch(key, 20, "beta"))], NOW)
            # Without words (queued), then earlier again with words: the queued one moves, queued still.
            await batches.append_sessions(db, TENANT, [_batch(key, 25, "delta")], NOW)
            await batches.append_sessions(db, TENANT, [_with_words(_batch(key, 10, "alpha"))], NOW)
            found = [await _indexed(db, key, w) for w in ("alpha", "beta", "gamma", "delta")]
            # SQLite indexes what came with words in the request; PostgreSQL queues everything.
            assert found == ([1, 1, 1, 0] if db.is_sqlite else [0, 0, 0, 0])
            await search_index.drain(db)
            assert [await _indexed(db, key, w) for w in ("alpha", "beta", "gamma", "delta")] == [1, 1, 1, 1]
            await _fts_intact(db)
            async with db.read() as conn:
                rows = (await conn.execute(text(
                    "SELECT m.content FROM messages m JOIN sessions s ON s.id = m.session_id "
                    "WHERE s.key = :k ORDER BY m.seq"), {"k": key})).scalars().all()
            assert rows == ["alpha", "beta", "delta", "gamma"]
        finally:
            await db.close()

    asyncio.run(main())


COUNTERS = ("next_seq", "live_from_seq", "live_tokens", "message_count", "live_messages", "msg_input_tokens",
            "msg_output_tokens", "exec_input_tokens", "exec_output_tokens", "total_tokens", "cache_read_tokens",
            "cache_write_tokens", "tool_calls", "error_count", "executions", "cost_usd", "preview", "updated_at")


def _records(key: str, executions: bool) -> batches.Batch:
    from sessionscope.store.executions import prepare_execution

    messages = [
        {"id": "m2", "role": "assistant", "content": "the answer", "timestamp": "2030-01-01T00:00:20Z",
         "tool_calls": [{"id": "c1", "name": "lookup", "arguments": "{}"}]},
        {"id": "m1", "role": "user", "content": "the question", "timestamp": "2030-01-01T00:00:10Z"},
        {"id": "m1", "role": "user", "content": "the question", "timestamp": "2030-01-01T00:00:10Z"},  # repeated
        {"id": "m3", "role": "tool", "content": "failed", "timestamp": "2030-01-01T00:00:15Z", "tool_call_id": "c1",
         "is_error": True},
    ]
    runs = [prepare_execution({"id": "e1", "started_at": "2030-01-01T00:00:10Z", "duration_ms": 900,
                               "model": "gpt-4o", "provider": "openai",
                               "usage": {"input_tokens": 120, "output_tokens": 30, "cache_read_tokens": 20}})] if executions else []
    return batches.Batch(key, "a", "web", NOW - 5_000, appends.prepare_messages(messages, NOW), runs)


def test_a_session_created_with_its_records_has_the_counters_of_one_updated_after_them(url: str) -> None:
    """A new session's row is written whole (its counters in the INSERT); a stored one's counters
    move by an UPDATE. The same records must give the same counters either way."""
    suffix = url.rsplit("/", 1)[-1]

    async def main() -> None:
        db = await open_database(url)
        try:
            for executions in (False, True):
                whole, updated = f"whole-{executions}-{suffix}", f"updated-{executions}-{suffix}"
                # `updated` exists (no records) before its records come; `whole` is created by them.
                await batches.append_sessions(db, TENANT, [batches.Batch(updated, "a", "web", NOW - 5_000)], NOW)
                await batches.append_sessions(db, TENANT, [_records(whole, executions), _records(updated, executions)],
                                              NOW)
                async with db.read() as conn:
                    rows = {r[0]: tuple(r[1:]) for r in (await conn.execute(text(
                        f"SELECT key, {', '.join(COUNTERS)} FROM sessions WHERE tenant = :t AND key IN (:w, :u)"),
                        {"t": TENANT, "w": whole, "u": updated})).all()}
                assert rows[whole] == rows[updated]
                assert rows[whole][COUNTERS.index("message_count")] == 3
                assert rows[whole][COUNTERS.index("preview")] == "the answer"
                assert rows[whole][COUNTERS.index("total_tokens")] == (150 if executions else
                                                                       rows[whole][COUNTERS.index("live_tokens")])
        finally:
            await db.close()

    asyncio.run(main())
