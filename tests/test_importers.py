"""The transcript importers against hand-written fixtures in each format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionscope.importers import Skipped, detect_format, iter_records
from sessionscope.importers.base import ExecutionSpool, normalize_timestamp

FIXTURES = Path(__file__).parent / "fixtures"
OPENCLAW = FIXTURES / "openclaw"
CLAUDE = FIXTURES / "claude-code"
CODEX = FIXTURES / "codex"
TELE = OPENCLAW / "agents/main/sessions/5f0c1a2b-tele.jsonl"
CLAUDE_MAIN = CLAUDE / "projects/-home-bob-app/1d2e3f40-aaaa-bbbb-cccc-000000000001.jsonl"
CODEX_FILE = next(CODEX.rglob("rollout-*.jsonl"))


def sessions(path: Path, fmt: str | None = None) -> dict[str, list[dict]]:
    """Records grouped by session key, checking the stream shape on the way."""
    grouped: dict[str, list[dict]] = {}
    current: list[dict] | None = None
    for record in iter_records(path, fmt):
        if isinstance(record, Skipped):
            continue
        if record["type"] == "session":
            assert record["key"] not in grouped, "a session appears once"
            current = grouped[record["key"]] = [record]
            continue
        assert current is not None, "items come after their session header"
        assert "seq" not in record
        if record["type"] != "execution":
            assert all(r["type"] != "execution" for r in current), "executions come after every item"
        current.append(record)
    return grouped


def skipped(path: Path) -> list[tuple[str, int, str]]:
    return [(Path(s.file).name, s.line, s.reason) for s in iter_records(path) if isinstance(s, Skipped)]


def of(records: list[dict], kind: str) -> list[dict]:
    return [r for r in records if r["type"] == kind]


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (OPENCLAW, "openclaw"),
        (OPENCLAW / "agents/main/sessions", "openclaw"),
        (TELE, "openclaw"),
        (next(OPENCLAW.rglob("*.jsonl.reset.*")), "openclaw"),
        (CLAUDE, "claude-code"),
        (CLAUDE_MAIN, "claude-code"),
        (CODEX, "codex"),
        (CODEX_FILE, "codex"),
    ],
)
def test_detect_format(path: Path, expected: str) -> None:
    assert detect_format(path) == expected


def test_detect_format_of_our_export_and_of_unknown_files(tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    export.write_text(json.dumps({"type": "session", "version": 1, "key": "k", "tenant": "default"}) + "\n")
    assert detect_format(export) == "jsonl"
    other = tmp_path / "notes.jsonl"
    other.write_text('{"hello": 1}\n')
    with pytest.raises(ValueError, match="not a transcript"):
        detect_format(other)
    with pytest.raises(ValueError, match="no such file"):
        detect_format(tmp_path / "missing")


# ---------------------------------------------------------------- OpenClaw


def test_openclaw_sessions_come_from_sessions_json() -> None:
    found = sessions(OPENCLAW)
    assert set(found) == {"agent:main:telegram:dm:42", "agent:main:main"}
    tele = found["agent:main:telegram:dm:42"][0]
    assert (tele["agent"], tele["channel"], tele["label"]) == ("main", "telegram", "Alice (Telegram)")
    assert tele["created_at"] == "2026-02-09T08:00:00.000Z"  # the oldest archive's header
    main = found["agent:main:main"][0]
    assert (main["channel"], main["label"]) == ("webchat", "Main session")


def test_openclaw_reset_archive_comes_first_then_reset_item() -> None:
    records = sessions(OPENCLAW)["agent:main:telegram:dm:42"]
    kinds = [(r["type"], r.get("role")) for r in records[1:] if r["type"] != "execution"]
    assert kinds == [
        ("message", "user"),
        ("message", "assistant"),
        ("reset", None),
        ("message", "user"),
        ("message", "assistant"),
        ("message", "tool"),
        ("compaction", None),
        ("message", "user"),
        ("message", "assistant"),
        ("message", "tool"),
        ("message", "user"),
        ("message", "system"),  # the unknown 'mystery_entry', kept whole as an event
    ]
    assert records[1]["content"] == "old question"
    event = of(records, "message")[-1]
    assert (event["message_kind"], event["tool_name"]) == ("event", "mystery_entry")
    [reset] = of(records, "reset")
    assert reset["timestamp"] == "2026-02-10T09:00:00.000Z"  # from the archive's name


def test_openclaw_messages_tool_pairing_and_compaction() -> None:
    records = sessions(OPENCLAW)["agent:main:telegram:dm:42"]
    msgs = of(records, "message")
    user, assistant, result = msgs[2], msgs[3], msgs[4]
    assert user["content"] == "list my files"
    assert [a["mime_type"] for a in user["attachments"]] == ["image/png"]  # the image is an attachment
    assert assistant["content"] == "Running ls."  # the thinking part is not content
    assert assistant["reasoning"]  # ... but the turn's reasoning
    assert assistant["tool_calls"] == [{"id": "call_ls_1", "name": "bash", "arguments": '{"command":"ls"}'}]
    assert assistant["tokens"] == 40 and assistant["timestamp"] == "2026-02-10T09:00:09.250Z"
    assert (result["role"], result["tool_call_id"], result["tool_name"], result["content"]) == (
        "tool",
        "call_ls_1",
        "bash",
        "a.txt\nb.txt",
    )
    failed = msgs[7]
    assert (failed["tool_call_id"], failed["is_error"]) == ("call_rm_1", True)
    assert msgs[8]["content"] == "Remember: ask before deleting."  # custom_message joins the context
    assert msgs[8]["message_kind"] == "injected"  # ... as context an extension injected
    [compaction] = of(records, "compaction")
    assert compaction["summary"] == "Alice asked for her files; the assistant ran ls."
    assert compaction["tokens_before"] == 5000
    assert compaction["first_kept_id"] == result["id"]  # firstKeptEntryId -> that message
    assert compaction["messages_compacted"] == 2  # counted from the reset, up to the kept one
    assert (compaction["reason"], compaction["summarizer"], compaction["first_kept_seq"]) == (
        "imported",
        "openclaw",
        None,
    )


def test_openclaw_usage_becomes_executions() -> None:
    execs = of(sessions(OPENCLAW)["agent:main:telegram:dm:42"], "execution")
    assert [(e["model"], e["provider"], e["cost_usd"]) for e in execs] == [
        ("claude-sonnet-4-5", "anthropic", 0.0008),
        ("gpt-4o", "openai", 0.003),
        ("gpt-4o", "openai", 0.0016),
    ]
    assert execs[1]["usage"] == {
        "input_tokens": 1000,
        "output_tokens": 40,
        "cache_read_tokens": 200,
        "cache_write_tokens": 0,
        "cache_write_1h_tokens": 0,
    }
    assert execs[0]["usage"]["cache_write_tokens"] == 50


def test_openclaw_skipped_lines_name_file_and_line() -> None:
    assert skipped(OPENCLAW) == [
        ("5f0c1a2b-tele.jsonl", 8, skipped(OPENCLAW)[0][2]),
        ("5f0c1a2b-tele.jsonl", 12, "message entry without a message object"),
        (
            "5f0c1a2b-tele.jsonl",
            19,
            "message content of role 'toolResult' is neither text nor a list of parts",
        ),
        ("5f0c1a2b-tele.jsonl", 20, "expected a JSON object, got list"),
    ]
    assert skipped(OPENCLAW)[0][2].startswith("invalid JSON")


def test_openclaw_single_file_uses_the_index_beside_it() -> None:
    found = sessions(TELE)
    assert list(found) == ["agent:main:telegram:dm:42"]
    assert of(found["agent:main:telegram:dm:42"], "reset"), "the archives of that session come along"


# ---------------------------------------------------------------- Claude Code

MAIN_KEY = "claude-code:1d2e3f40-aaaa-bbbb-cccc-000000000001"


def test_claude_code_main_session() -> None:
    records = sessions(CLAUDE)[MAIN_KEY]
    header = records[0]
    # The summary line is Claude Code's title for the session: its label, not a compaction.
    assert (header["agent"], header["channel"], header["label"]) == (
        "claude-code", "cli", "Fixing the flaky login test")
    assert header["created_at"] == "2026-03-01T10:00:00.000Z"
    items = [r for r in records[1:] if r["type"] != "execution"]
    assert [(r["type"], r.get("role"), r.get("content")) for r in items] == [
        ("message", "user", "Why does test_login fail?"),
        ("message", "assistant", "Let me read it."),
        ("message", "tool", "def test_login(): assert login()"),
        ("message", "assistant", ""),
        ("message", "tool", "login() is in auth.py"),
        ("message", "user", "thanks, now fix it"),
        ("compaction", None, None),
        ("message", "user", "go on"),
        ("message", "assistant", "API Error: overloaded"),
        ("message", "system", items[-1]["content"]),  # the unknown 'hologram' entry, kept as an event
    ]
    # Three streamed lines of msg_01 merge into one reply with one tool call.
    assert items[1]["tool_calls"] == [
        {"id": "toolu_read1", "name": "Read", "arguments": '{"file_path":"/home/bob/app/test_login.py"}'}
    ]
    assert (items[2]["tool_call_id"], items[2]["tool_name"]) == ("toolu_read1", "Read")
    assert (items[4]["tool_call_id"], items[4]["tool_name"]) == ("toolu_task1", "Task")
    assert items[8]["is_error"] is True
    assert json.loads(items[-1]["content"])["type"] == "hologram"


def test_claude_code_compact_boundary_is_the_only_compaction() -> None:
    [boundary] = of(sessions(CLAUDE)[MAIN_KEY], "compaction")
    assert boundary["summary"].endswith("Summary: login() lives in auth.py.")
    assert (boundary["tokens_before"], boundary["summarizer"], boundary["messages_compacted"]) == (
        155025,
        "claude-code:manual",
        6,
    )
    assert boundary["timestamp"] == "2026-03-01T10:05:00.000Z"


def test_claude_code_usage_is_one_execution_per_reply() -> None:
    execs = of(sessions(CLAUDE)[MAIN_KEY], "execution")
    assert [e["usage"] for e in execs] == [
        {"input_tokens": 10, "output_tokens": 42, "cache_read_tokens": 0, "cache_write_tokens": 500,
         "cache_write_1h_tokens": 0},
        {"input_tokens": 3, "output_tokens": 30, "cache_read_tokens": 500, "cache_write_tokens": 40,
         "cache_write_1h_tokens": 0},
    ]  # the <synthetic> error reply is not billed
    assert {(e["model"], e["provider"]) for e in execs} == {("claude-sonnet-4-5-20250929", "anthropic")}


def test_claude_code_sidechains_are_their_own_sessions() -> None:
    found = sessions(CLAUDE)
    inline = found[MAIN_KEY + ":sub-agent:a1b2c3"]
    assert inline[0]["channel"] == "sub-agent"
    assert [(r["role"], r["content"]) for r in of(inline, "message")] == [
        ("user", "Find login()"),
        ("assistant", "login() is in auth.py"),
    ]
    assert of(inline, "execution")[0]["usage"]["input_tokens"] == 50
    from_file = found[MAIN_KEY + ":sub-agent:f00d"]
    msgs = of(from_file, "message")
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool"]
    assert (msgs[2]["tool_call_id"], msgs[2]["tool_name"], msgs[2]["is_error"]) == (
        "toolu_bash9",
        "Bash",
        True,
    )
    main_contents = [m["content"] for m in of(found[MAIN_KEY], "message")]
    assert "Find login()" not in main_contents
    assert len(found) == 3


def test_claude_code_skipped_lines() -> None:
    found = skipped(CLAUDE)
    assert [(name, line) for name, line, _ in found] == [
        (CLAUDE_MAIN.name, 12),
        (CLAUDE_MAIN.name, 18),
    ]
    assert found[0][2].startswith("invalid JSON")
    assert found[1][2] == "user entry without message content"


# ---------------------------------------------------------------- Codex

CODEX_KEY = "codex:0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"


def test_codex_rollout() -> None:
    records = sessions(CODEX)[CODEX_KEY]
    header = records[0]
    assert (header["agent"], header["channel"], header["label"], header["created_at"]) == (
        "codex",
        "cli",
        "/home/carol/proj",
        "2026-03-02T08:00:00.000Z",
    )
    items = [r for r in records[1:] if r["type"] != "execution"]
    assert [(r["type"], r.get("role")) for r in items] == [
        ("message", "system"),
        ("message", "user"),
        ("message", "user"),
        ("message", "assistant"),
        ("message", "tool"),
        ("message", "assistant"),
        ("message", "tool"),
        ("message", "assistant"),
        ("compaction", None),
        ("message", "user"),  # replacement_history: the live context Codex kept
        ("message", "user"),
        ("message", "system"),  # the unknown 'telepathy' record, kept whole as an event
    ]
    assert items[1]["message_kind"] == "injected"  # <environment_context> is not typed by Carol
    assert items[3]["content"] == "I'll run wc."
    assert items[3]["reasoning"] == "**Counting lines**"
    assert items[4]["content"] == "42 main.rs\n"  # the 0.58 JSON wrapper is unwrapped
    assert items[3]["tool_calls"] == [
        {"id": "call_wc1", "name": "shell", "arguments": '{"command":["wc","-l","main.rs"]}'}
    ]
    assert (items[4]["tool_call_id"], items[4]["tool_name"], items[4]["is_error"]) == (
        "call_wc1",
        "shell",
        False,
    )
    assert items[5]["tool_calls"][0]["name"] == "apply_patch"
    assert (items[6]["content"], items[6]["is_error"]) == ("patch rejected", True)
    compaction = items[8]
    assert compaction["summary"] == "Carol asked for the line count of main.rs: 42."
    assert (compaction["messages_compacted"], compaction["tokens_before"]) == (8, 3200)
    assert compaction["reason"] == "replacement_history"
    assert items[9]["content"] == "count the lines in main.rs"


def test_codex_token_counts_become_executions_once() -> None:
    execs = of(sessions(CODEX)[CODEX_KEY], "execution")
    # The repeated token_count and the info-less heartbeat add nothing; cached input is split out.
    assert [(e["usage"], e["model"], e["provider"]) for e in execs] == [
        (
            {"input_tokens": 2000, "output_tokens": 60, "cache_read_tokens": 1000, "cache_write_tokens": 0,
             "cache_write_1h_tokens": 0, "reasoning_tokens": 20},
            "gpt-5-codex",
            "openai",
        ),
        (
            {"input_tokens": 1200, "output_tokens": 15, "cache_read_tokens": 2000, "cache_write_tokens": 0,
             "cache_write_1h_tokens": 0, "reasoning_tokens": 0},
            "gpt-5-codex",
            "openai",
        ),
    ]


def test_codex_skipped_lines() -> None:
    found = skipped(CODEX)
    assert [(line, reason) for _, line, reason in found[:3]] == [
        (22, "response_item without an object payload"),
        (23, "message with unknown role 'wizard' or unreadable content"),
        (25, "token_count without last_token_usage"),
    ]
    assert found[3][1] == 26 and found[3][2].startswith("invalid JSON")


# ---------------------------------------------------------------- shared properties


@pytest.mark.parametrize("path", [OPENCLAW, CLAUDE, CODEX])
def test_two_parses_give_identical_ids(path: Path) -> None:
    first = [r for r in iter_records(path) if not isinstance(r, Skipped)]
    second = [r for r in iter_records(path) if not isinstance(r, Skipped)]
    assert first == second
    for records in sessions(path).values():
        ids = [r["id"] for r in records[1:]]
        assert len(ids) == len(set(ids)), "ids are unique within a session"


def test_ids_do_not_depend_on_where_the_files_live(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(OPENCLAW, tmp_path / "copy")
    original = [r["id"] for r in iter_records(OPENCLAW) if isinstance(r, dict) and "id" in r]
    moved = [r["id"] for r in iter_records(tmp_path / "copy") if isinstance(r, dict) and "id" in r]
    assert moved == original


def test_export_jsonl_passes_through(tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    lines = [
        {"type": "session", "version": 1, "key": "k", "tenant": "default", "agent": "a", "channel": "web"},
        {"type": "message", "seq": 1, "id": "m1", "role": "user", "content": "hi"},
        {"type": "bogus"},
    ]
    export.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    out = list(iter_records(export))
    assert out[:2] == lines[:2]
    assert out[2] == Skipped(str(export), 3, "unknown record type 'bogus'")


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        iter_records(OPENCLAW, "gemini")


def test_execution_spool_keeps_order_past_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sessionscope.importers.base.SPOOL_IN_MEMORY", 3)
    spool = ExecutionSpool()
    for n in range(10):
        spool.add({"type": "execution", "id": str(n)})
    assert [r["id"] for r in spool.drain()] == [str(n) for n in range(10)]
    assert list(spool.drain()) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-02-10T09:00:09.250Z", "2026-02-10T09:00:09.250Z"),
        ("2026-02-10T10:00:09.25+01:00", "2026-02-10T09:00:09.250Z"),
        ("2026-02-10T09:00:09", "2026-02-10T09:00:09.000Z"),
        ("2026-02-10T09:00:09.123456789Z", "2026-02-10T09:00:09.123Z"),
        (1770714009250, "2026-02-10T09:00:09.250Z"),
        (1770714009.25, "2026-02-10T09:00:09.250Z"),
        ("1770714009250", "2026-02-10T09:00:09.250Z"),
        (1770714009250000000, "2026-02-10T09:00:09.250Z"),
        ("yesterday", None),
        (None, None),
        (True, None),
    ],
)
def test_normalize_timestamp(value: object, expected: str | None) -> None:
    assert normalize_timestamp(value) == expected


@given(st.datetimes(timezones=st.timezones()))
def test_normalize_timestamp_round_trips_iso(moment) -> None:  # type: ignore[no-untyped-def]
    text = normalize_timestamp(moment.isoformat())
    assert text is not None and text.endswith("Z") and len(text) == 24
    assert normalize_timestamp(text) == text


def test_bench_generators_write_importable_transcripts(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "import_throughput", Path(__file__).parents[1] / "bench/import_throughput.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for fmt, writer in bench.WRITERS.items():
        path = writer(tmp_path, 30)
        assert detect_format(path) == fmt
        assert bench.measure(fmt, path)[:2] == (30, 0)
        executions = [r for r in iter_records(path) if isinstance(r, dict) and r["type"] == "execution"]
        assert len(executions) == 10


# ---------------------------------------------------------------- parts beside the text


def test_message_parts_are_validated_by_field() -> None:
    from sessionscope.errors import InvalidParams
    from sessionscope.ingest.models import validate_item

    good = {"type": "message", "role": "assistant", "content": "x", "reasoning": "why", "message_kind": "injected",
            "attachments": [{"mime_type": "image/png", "size": 3, "data": "AAAA"}], "stop_reason": "length"}
    assert validate_item(good, 0)["attachments"][0]["mime_type"] == "image/png"
    for bad, field in ((dict(good, message_kind="typed"), "records.0.message_kind"),
                       (dict(good, attachments=[{"mime_type": "text/html", "size": 1}]),
                        "records.0.attachments.0.mime_type")):
        with pytest.raises(InvalidParams) as error:
            validate_item(bad, 0)
        assert error.value.data["field"] == field


def test_image_attachments_keep_bytes_within_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionscope.importers import base

    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
    assert base.image_attachment("image/png", png) == {"mime_type": "image/png", "size": 70, "data": png}
    assert base.image_attachment("text/html", png) is None  # only image/* types
    assert base.image_attachment("image/png", "[REDACTED]")["data"] is None  # not base64: no bytes
    assert base.data_url_attachment(f"data:image/png;base64,{png}")["size"] == 70
    monkeypatch.setattr(base, "MAX_ATTACHMENT_BYTES", 10)
    assert base.image_attachment("image/png", png) == {"mime_type": "image/png", "size": 70, "data": None}
