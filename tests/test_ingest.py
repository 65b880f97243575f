"""The ingest service's rules hold on every path: the same limits, real token counts, the audit
entry of a local import and export, and the auto-compaction policy outside session.append."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from sessionscope.cli.transport import connect
from sessionscope.errors import InvalidParams
from sessionscope.importers import iter_records
from sessionscope.ingest import ingest_records
from sessionscope.store import Scope, open_database
from sessionscope.tokenizer import count_message_tokens
from tests.conftest import RPC, conversation

FIXTURES = Path(__file__).parent / "fixtures"


def header(key: str, **extra: Any) -> dict[str, Any]:
    return {"type": "session", "key": key, "agent": "a", "channel": "web", **extra}


@pytest.mark.parametrize(("record", "field"), [
    ({"type": "message", "id": "m", "role": "robot", "content": "x"}, "records.0.role"),
    ({"type": "message", "id": "m", "role": "user", "content": "x" * 1_000_001}, "records.0.content"),
    ({"type": "message", "id": "m", "role": "assistant", "content": "",
      "tool_calls": [{"id": "", "name": "f", "arguments": "{}"}]}, "records.0.tool_calls.0.id"),
])
def test_session_import_and_append_refuse_the_same_records(rpc: RPC, record: dict[str, Any], field: str) -> None:
    imported = rpc.error("session.import", key="limits", records=[record])
    message = {k: v for k, v in record.items() if k != "type"}
    appended = rpc.error("session.append", key="limits", agent="a", channel="web", messages=[message])
    assert imported["code"] == appended["code"] == -32602
    assert imported["data"]["field"] == field
    assert appended["data"]["field"] == field.replace("records", "messages")
    assert imported["data"]["problem"] == appended["data"]["problem"]


def test_a_local_import_has_the_rpc_limits(database_url: str, tenant: str) -> None:
    async def run() -> None:
        db = await open_database(database_url)
        try:
            with pytest.raises(InvalidParams) as raised:
                await ingest_records(db, Scope.everything(), [header("k", label="L" * 600)], source="import",
                                     tenant=tenant)
            assert raised.value.data["field"] == "session.label"
            with pytest.raises(InvalidParams) as raised:
                await ingest_records(db, Scope.everything(), [header("k\n2")], source="import", tenant=tenant)
            assert raised.value.data["field"] == "session.key"
        finally:
            await db.close()

    asyncio.run(run())


def test_imported_transcripts_get_o200k_base_counts(rpc: RPC) -> None:
    records = [r for r in iter_records(str(FIXTURES / "claude-code"), "claude-code") if isinstance(r, dict)]
    backend = connect(None, rpc.url, None)
    backend.import_records(records, rpc.tenant)
    keys = [r["key"] for r in records if r["type"] == "session"]
    checked = 0
    for key in keys:
        for item in rpc("session.status", key=key, limit=1000)["items"]:
            if item["kind"] == "message" and item["message_kind"] == "event":
                assert item["tokens"] == 0, item  # a source record kept raw is not context
            elif item["kind"] == "message":
                assert item["tokens"] == count_message_tokens([item])[0], item
                checked += 1
    assert checked


def test_local_import_and_export_are_audited(database_url_factory: Any, dialect: str, tmp_path: Path) -> None:
    url = database_url_factory(dialect, "audited")
    backend = connect(url, None, None, create=True)  # an import makes its store
    backend.import_records([header("audited/1"), *({"type": "message", **m} for m in conversation(2))], None)
    backend.export(["audited/1"], None, str(tmp_path / "out.jsonl"))
    entries = backend.call("audit.list", {"limit": 10})["entries"]
    backend.close()
    actions = [(e["action"], e["keys"], e["token_name"]) for e in entries]
    assert ("session.import", ["audited/1"], "cli") in actions
    assert ("session.export", ["audited/1"], "cli") in actions


def test_a_local_import_auto_compacts_like_an_append(database_url_factory: Any, dialect: str,
                                                     tmp_path: Path) -> None:
    config = tmp_path / "sessionscope.toml"
    config.write_text('[agents.a.compaction]\ncontext_window = 4000\nthreshold = 0.85\nkeep_recent_tokens = 800\n')
    url = database_url_factory(dialect, "auto-import")
    backend = connect(url, None, None, str(config), create=True)
    long = conversation(40, "long-")
    stats = backend.import_records([header("long"), *({"type": "message", **m} for m in long)], "default")
    assert stats.messages == len(long)
    listed = backend.call("session.compactions", {"key": "long", "tenant": "default"})["compactions"]
    backend.close()
    assert [c["reason"] for c in listed] == ["auto-threshold"]
