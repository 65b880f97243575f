"""A big local import is read and validated in a worker process (ingest/worker.py): it must
store exactly what the in-process import stores, report the same source tally, and raise a bad
record's error in the importing process with what came before it stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sessionscope.cli.transport import LocalBackend, connect, import_files
from sessionscope.errors import InvalidParams
from sessionscope.importers import ImportResult, Tally, iter_records, without_skipped
from sessionscope.ingest import worker

FIXTURES = Path(__file__).parent / "fixtures"


def exported(backend: LocalBackend, keys: list[str], path: Path) -> list[dict[str, Any]]:
    backend.export(keys, None, str(path))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    # A message's received time is the importing clock's; everything else is the source's.
    for line in lines:
        line.pop("received_at", None)
    return lines


@pytest.mark.parametrize("fmt", ["claude-code", "codex", "openclaw"])
def test_the_worker_stores_what_the_in_process_import_stores(database_url_factory: Any, dialect: str,
                                                             tmp_path: Path, fmt: str) -> None:
    source = str(FIXTURES / fmt)
    here = connect(database_url_factory(dialect, f"here-{fmt}"), None, None, create=True)
    assert isinstance(here, LocalBackend)
    in_process = ImportResult(stats=None, tally=Tally())
    in_process.stats = here.import_records(without_skipped(iter_records(source, fmt, in_process.tally), in_process),
                                           None)
    there = connect(database_url_factory(dialect, f"worker-{fmt}"), None, None, create=True)
    assert isinstance(there, LocalBackend)
    progressed: list[int] = []
    by_worker = there.import_in_worker(source, fmt, None, progressed.append)

    assert vars(by_worker.stats) == vars(in_process.stats)
    assert by_worker.stats.messages > 0
    assert sum(progressed) > 0
    assert by_worker.tally.counts == in_process.tally.counts
    assert (by_worker.skipped_total, by_worker.skipped) == (in_process.skipped_total, in_process.skipped)
    keys = by_worker.stats.keys
    assert exported(there, keys, tmp_path / "worker.jsonl") == exported(here, keys, tmp_path / "here.jsonl")
    again = there.import_in_worker(source, fmt, None)  # a re-import adds nothing, as in process
    assert (again.stats.sessions, again.stats.messages, again.stats.executions) == (0, 0, 0)
    here.close()
    there.close()


def test_a_bad_record_in_the_worker_is_raised_here_after_what_came_before(database_url_factory: Any,
                                                                          dialect: str, tmp_path: Path) -> None:
    export = tmp_path / "two.jsonl"
    good = [{"type": "session", "key": "first", "agent": "a", "channel": "web"},
            {"type": "message", "id": "m1", "role": "user", "content": "hello"}]
    bad = [{"type": "session", "key": "second", "agent": "a", "channel": "web"},
           {"type": "message", "id": "m1", "role": "user", "content": "fine"},
           {"type": "message", "id": "m2", "role": "robot", "content": "not a role"}]
    export.write_text("".join(json.dumps(r) + "\n" for r in good + bad))
    backend = connect(database_url_factory(dialect, "worker-bad"), None, None, create=True)
    assert isinstance(backend, LocalBackend)
    with pytest.raises(InvalidParams) as raised:
        backend.import_in_worker(str(export), "jsonl", None)
    assert raised.value.data["field"] == "records.1.role"
    listed = backend.call("session.list", {"limit": 10})["sessions"]
    backend.close()
    assert [s["key"] for s in listed] == ["first"]  # the broken session is absent, not half-stored


def test_only_big_inputs_start_a_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        database_url_factory: Any, dialect: str) -> None:
    small = FIXTURES / "claude-code"
    assert not worker.worth_a_worker(small)
    monkeypatch.setattr(worker, "WORKER_MIN_BYTES", 1)
    assert worker.worth_a_worker(small)
    started: list[str] = []
    real = LocalBackend.import_in_worker

    def spy(self: LocalBackend, *args: Any, **kwargs: Any) -> ImportResult:
        started.append(args[0])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(LocalBackend, "import_in_worker", spy)
    backend = connect(database_url_factory(dialect, "worker-threshold"), None, None, create=True)
    result = import_files(backend, str(small), "claude-code", None)
    backend.close()
    assert started == [str(small)]
    assert result.stats.messages > 0


def test_the_worker_prepares_all_but_the_counts(database_url_factory: Any, dialect: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids, times and execution prices are the worker's; the importing process counts tokens
    and writes. When it prepared everything it was the slower of the two (issue 15)."""
    from sessionscope.store import appends, executions

    def not_here(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the importing process prepared records")

    for module, name in ((appends, "prepare_messages"), (appends, "prepare_uncounted"), (executions, "cost_usd")):
        monkeypatch.setattr(module, name, not_here, raising=False)
    backend = connect(database_url_factory(dialect, "worker-prepares"), None, None, create=True)
    assert isinstance(backend, LocalBackend)
    result = backend.import_in_worker(str(FIXTURES / "claude-code"), "claude-code", None)
    monkeypatch.undo()
    listed = backend.call("session.list", {"limit": 10})["sessions"]
    backend.close()
    assert result.stats.messages > 0 and result.stats.executions > 0
    assert all(s["total_tokens"] > 0 for s in listed if s["message_count"])


def test_the_worker_finds_the_search_words_and_the_index_matches_the_messages(database_url_factory: Any,
                                                                             dialect: str,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker finds each message's search words beside the parsing (search_words.document),
    and SQLite indexes them as the messages are written, queueing nothing; PostgreSQL queues
    them for its indexer. Either way the same query finds the same sessions as in process, and
    the index holds exactly the messages."""
    import asyncio

    from sessionscope.store import open_database, search_index
    from sessionscope.store.check import check, format_report

    source = str(FIXTURES / "claude-code")
    here = connect(database_url_factory(dialect, "words-here"), None, None, create=True)
    there = connect(database_url_factory(dialect, "words-worker"), None, None, create=True)
    assert isinstance(here, LocalBackend) and isinstance(there, LocalBackend)
    tally = ImportResult(stats=None, tally=Tally())
    here.import_records(without_skipped(iter_records(source, "claude-code", tally.tally), tally), None)
    if dialect == "sqlite":
        # The importing process must not find words itself: its SQLite connections' function
        # for it (store.database) now fails, which would set the ranges it indexes aside.
        from sessionscope.store import database

        def not_here(content: str | None) -> str:
            raise AssertionError("the importing process found search words")

        monkeypatch.setattr(database, "_search_document", not_here)
        there.close()
        there = connect(database_url_factory(dialect, "words-worker"), None, None, create=True)
        assert isinstance(there, LocalBackend)
    there.import_in_worker(source, "claude-code", None)

    async def queued_and_report(url: str) -> tuple[int, str]:
        db = await open_database(url)
        try:
            queued = await search_index.queued(db)
            report = await check(db)
            return queued, format_report(report) if not report.ok else ""
        finally:
            await db.close()

    if dialect == "sqlite":
        assert asyncio.run(queued_and_report(database_url_factory(dialect, "words-worker")))[0] == 0
    for word in ("file", "the", "error", "nothing-like-this"):
        assert ([s["key"] for s in there.call("session.list", {"query": word, "limit": 100})["sessions"]]
                == [s["key"] for s in here.call("session.list", {"query": word, "limit": 100})["sessions"]]), word
    assert there.call("session.list", {"query": "the", "limit": 1})["sessions"]
    assert asyncio.run(queued_and_report(database_url_factory(dialect, "words-worker")))[1] == ""
    here.close()
    there.close()
