"""Alembic migrations build exactly the schema that store/schema.py describes, on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sessionscope.store import open_database
from sessionscope.store.schema import metadata

# Search structures are created by raw SQL in the migrations (FTS5 tables, expression indexes,
# PostgreSQL's generated search_head); SQLAlchemy's metadata does not describe them.
SEARCH_OBJECTS = ("session_search", "message_search", "ix_message_search", "search_backlog", "search_failed",
                  "ix_sessions_search_trgm", "ix_sessions_search_walk", "search_head")


def _is_search_object(diff: Any) -> bool:
    if isinstance(diff, tuple):
        obj = diff[3] if diff[0] in ("add_column", "remove_column") else diff[1]
    else:
        obj = diff
    name = getattr(obj, "name", "") or ""
    return any(name.startswith(prefix) for prefix in SEARCH_OBJECTS)


def _is_dropped_on_postgresql(diff: Any) -> bool:
    """Migration 0005 drops the messages -> sessions foreign key on PostgreSQL (see its notes)."""
    return (isinstance(diff, tuple) and diff[0] == "add_fk" and diff[1].parent.name == "messages"
            and [c.name for c in diff[1].columns] == ["session_id"])


def test_migrations_match_schema(database_url_factory: Any, dialect: str) -> None:
    url = database_url_factory(dialect, "migrations")

    async def differences() -> list[Any]:
        db = await open_database(url)
        try:
            async with db.engine.connect() as conn:
                return await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
        finally:
            await db.close()

    diffs = [d for d in asyncio.run(differences()) if not _is_search_object(d)]
    if dialect == "postgresql":
        assert [d for d in diffs if _is_dropped_on_postgresql(d)], "the messages foreign key is back"
        diffs = [d for d in diffs if not _is_dropped_on_postgresql(d)]
    assert diffs == []


def test_head_revision_constant_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    from sessionscope.store.migrate import HEAD_REVISION, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_a_store_at_head_opens_without_alembic(tmp_path: Any) -> None:
    import subprocess
    import sys

    path = tmp_path / "store.db"

    async def create() -> None:
        db = await open_database(str(path))
        await db.close()

    asyncio.run(create())
    code = ("import asyncio, sys\n"
            "from sessionscope.store import open_database\n"
            f"db = asyncio.run(open_database({str(path)!r}))\n"
            "print('alembic' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_0008_and_0009_on_a_store_with_data(database_url_factory: Any, dialect: str) -> None:
    """A store with data before migration 0008: each message and raw copy gets the number of
    resets before it, the ids of an earlier conversation are free again afterwards, and 0009
    case-folds the session's search text."""
    from sqlalchemy import text

    from sessionscope.ingest import append_messages
    from sessionscope.store import Scope
    from sessionscope.store.migrate import upgrade

    url = database_url_factory(dialect, "migrations_0008")
    message = ("INSERT INTO messages (session_id, seq, msg_id, role, content, is_error, ts, tokens) "
               "VALUES (:sid, :seq, :mid, 'user', :content, false, 1, 1)")

    async def scenario() -> Any:
        db = await open_database(url, migrate=False)
        try:
            await upgrade(db, "0007_login_sessions")
            async with db.write() as conn:
                await conn.execute(text(
                    "INSERT INTO sessions (tenant, key, agent, channel, label, created_at, updated_at, next_seq, "
                    "live_from_seq, live_tokens, message_count, live_messages, msg_input_tokens, msg_output_tokens, "
                    "exec_input_tokens, exec_output_tokens, total_tokens, cache_read_tokens, cache_write_tokens, "
                    "tool_calls, compactions, resets, executions, cost_usd) VALUES ('t', 'K', 'a', 'web', 'Straße', 1, 1, 6, "
                    "6, 1, 3, 1, 3, 0, 0, 0, 3, 0, 0, 0, 0, 2, 0, 0)"))
                sid = (await conn.execute(text("SELECT id FROM sessions WHERE key = 'K'"))).scalar_one()
                for seq, mid in ((1, "m1"), (3, "m2"), (5, "m3")):
                    await conn.execute(text(message), {"sid": sid, "seq": seq, "mid": mid, "content": mid})
                for seq in (2, 4):
                    await conn.execute(text("INSERT INTO resets (session_id, seq, item_id, ts) "
                                            "VALUES (:sid, :seq, :item, 1)"),
                                       {"sid": sid, "seq": seq, "item": f"reset-{seq}"})
                await conn.execute(text("INSERT INTO message_raw (session_id, msg_id, raw) VALUES "
                                        "(:sid, 'm2', '{\"v\": 2}')"), {"sid": sid})
            await upgrade(db)
            async with db.read() as conn:
                stored = (await conn.execute(text(
                    "SELECT msg_id, conversation FROM messages ORDER BY seq"))).all()
                raws = (await conn.execute(text("SELECT msg_id, conversation FROM message_raw"))).all()
                folded = (await conn.execute(text("SELECT folded_identity, folded_label FROM sessions"))).one()
            await append_messages(db, Scope.everything(), key="K", agent="a", channel="web", tenant="t",
                                  batch=[{"id": "m1", "role": "user", "content": "m1 again"}])
            again = await append_messages(db, Scope.everything(), key="K", agent="a", channel="web", tenant="t",
                                          batch=[{"id": "m3", "role": "user", "content": "m3 again"}])
            return stored, raws, again, folded
        finally:
            await db.close()

    stored, raws, again, folded = asyncio.run(scenario())
    assert tuple(folded) == ("k a web", "strasse")  # migration 0009 folds the sessions it finds
    assert [tuple(r) for r in stored] == [("m1", 0), ("m2", 1), ("m3", 2)]
    assert [tuple(r) for r in raws] == [("m2", 1)]
    assert again["duplicates"] == 1  # m3 is in the live conversation


def test_0012_reindexes_a_store_with_data_by_the_word_rule(database_url_factory: Any, dialect: str) -> None:
    """A store indexed by the databases' own tokenizers before 0012: afterwards every message is
    found by the one word rule (search_words), which the old index did not follow ("STRASSE"
    finding "Straße"), and `check` finds the index complete."""
    from sqlalchemy import text

    from sessionscope.store import Scope, listing, search_index
    from sessionscope.store.check import check, format_report
    from sessionscope.store.migrate import upgrade

    url = database_url_factory(dialect, "migrations_0012")

    async def scenario() -> Any:
        db = await open_database(url, migrate=False)
        try:
            await upgrade(db, "0011_execution_model_ms")
            # The pre-0012 indexer, as it stood, indexing in the database's own words.
            old_index = ("INSERT INTO message_search(rowid, content) SELECT id, content FROM messages"
                         if db.is_sqlite else
                         "INSERT INTO message_search (message_id, chunk, session_id, document) "
                         "SELECT id, 0, session_id, to_tsvector('simple', content) FROM messages")
            async with db.write() as conn:
                await conn.execute(text(
                    "INSERT INTO sessions (tenant, key, agent, channel, created_at, updated_at, next_seq, "
                    "live_from_seq, live_tokens, message_count, live_messages, msg_input_tokens, "
                    "msg_output_tokens, exec_input_tokens, exec_output_tokens, total_tokens, cache_read_tokens, "
                    "cache_write_tokens, tool_calls, compactions, resets, executions, cost_usd, folded_identity) "
                    "VALUES ('t', 'a', 'x', 'web', 1, 1, 2, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, "
                    "'a x web')"))
                sid = (await conn.execute(text("SELECT id FROM sessions WHERE key = 'a'"))).scalar_one()
                await conn.execute(text(
                    "INSERT INTO messages (session_id, seq, msg_id, role, content, is_error, ts, tokens) "
                    "VALUES (:sid, 1, 'm1', 'user', 'Die Straße ist lang', false, 1, 1)"), {"sid": sid})
                await conn.execute(text("DELETE FROM search_backlog"))
                await conn.execute(text(old_index))
            await upgrade(db)
            queued = await search_index.queued(db)
            page = await listing.list_sessions(db, Scope.everything(), query="STRASSE")
            report = await check(db)
            return queued, [s["key"] for s in page["sessions"]], format_report(report)
        finally:
            await db.close()

    queued, keys, report = asyncio.run(scenario())
    assert queued >= 1  # 0012 queued the stored messages for the indexer
    assert keys == ["a"]
    assert "search" not in report, report
