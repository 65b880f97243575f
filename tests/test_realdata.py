"""The importers against the real transcripts in ../shared/realdata (issue 15).

Each source file is read again here, by a reader independent of the importers, and what the
store holds after the import is compared with it: token sums, error flags, reasoning text,
history. The shapes that the corpus lacks come from tests/fixtures/issue15 (see its README).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from sessionscope.importers import ImportResult, import_path, iter_records
from sessionscope.ingest import ingest_records
from sessionscope.pricing import cost_usd
from sessionscope.store import Scope, open_database
from sessionscope.store import conversation as conversation_store
from sessionscope.store.check import check, format_report
from sessionscope.store.schema import executions, messages, sessions
from sessionscope.store.transfer import export_lines

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
FIXTURES = Path(__file__).parent / "fixtures" / "issue15"
SOURCES = [("claude-code", REALDATA / "claude-code"), ("codex", REALDATA / "codex"),
           ("openclaw", REALDATA / "openclaw"), ("claude-code", FIXTURES / "claude-code"),
           ("codex", FIXTURES / "codex"), ("openclaw", FIXTURES / "openclaw")]
EVERYTHING = Scope.everything()

if not REALDATA.is_dir():  # CI lays shared/ beside the clone: missing there is a failure
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{REALDATA} is missing")
    pytest.skip(f"{REALDATA} is not here", allow_module_level=True)


# ---------------------------------------------------------------- the store, imported once per dialect


@dataclass
class Corpus:
    url: str
    results: list[tuple[str, Path, ImportResult]]
    checks: list[tuple[Path, str]]  # (source, check report) after each import


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def corpus(dialect: str, database_url_factory: Any) -> Corpus:
    url = database_url_factory(dialect, "realdata")

    async def load() -> Corpus:
        db = await open_database(url)
        found = Corpus(url, [], [])
        try:
            for fmt, path in SOURCES:
                found.results.append((fmt, path, await import_path(db, EVERYTHING, path, fmt)))
                found.checks.append((path, format_report(await check(db))))
        finally:
            await db.close()
        return found

    return run(load())


async def _rows(url: str, statement: Any) -> list[Any]:
    db = await open_database(url, migrate=False)
    try:
        async with db.read() as conn:
            return list((await conn.execute(statement)).all())
    finally:
        await db.close()


def rows(url: str, statement: Any) -> list[Any]:
    return run(_rows(url, statement))


def history(url: str, key: str, fmt: str = "openai") -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        db = await open_database(url, migrate=False)
        try:
            return await conversation_store.history(db, EVERYTHING, key, format=fmt)
        finally:
            await db.close()

    return run(read())


def export(url: str, keys: list[str]) -> list[dict[str, Any]]:
    async def read() -> bytes:
        db = await open_database(url, migrate=False)
        try:
            return b"".join([chunk async for chunk in export_lines(db, EVERYTHING, keys)])
        finally:
            await db.close()

    return [json.loads(line) for line in run(read()).splitlines() if line.strip()]


# ---------------------------------------------------------------- the sources, read again


@dataclass
class Facts:
    """What one source session holds, as this test reads it."""

    usage: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: set[str] = field(default_factory=set)  # tool call ids whose result is an error
    reasoning: list[str] = field(default_factory=list)  # blocks, in file order
    live_calls: list[str] = field(default_factory=list)  # tool call ids after the last compaction
    injected: int = 0


def _lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def claude_code_facts(root: Path) -> dict[str, Facts]:
    facts: dict[str, Facts] = defaultdict(Facts)
    for path in sorted(root.rglob("*.jsonl")):
        final: dict[tuple[str, str], dict[str, Any]] = {}  # (key, message.id) -> last line's usage
        legacy = None
        for obj in _lines(path):
            if obj.get("type") not in ("user", "assistant"):
                continue
            key = f"claude-code:{obj.get('sessionId')}"
            if obj.get("isSidechain"):
                agent = obj.get("agentId")
                if not agent:  # older versions: a sub-agent run is grouped by its root entry
                    if obj.get("parentUuid") is None or legacy is None:
                        legacy = obj.get("uuid")
                    agent = legacy
                key += f":sub-agent:{agent}"
            msg = obj.get("message") or {}
            parts = msg.get("content") if isinstance(msg.get("content"), list) else []
            if obj["type"] == "assistant":
                if msg.get("model") != "<synthetic>" and isinstance(msg.get("usage"), dict):
                    final[(key, msg.get("id") or obj.get("uuid"))] = msg["usage"]
                for part in parts:
                    if part.get("type") == "thinking" and part.get("thinking"):
                        facts[key].reasoning.append(part["thinking"])
                    if part.get("type") == "tool_use":
                        facts[key].live_calls.append(part["id"])
            else:
                facts[key].injected += bool(obj.get("isMeta"))
                for part in parts:
                    if part.get("type") == "tool_result" and part.get("is_error"):
                        facts[key].errors.add(part["tool_use_id"])
        for (key, _), u in final.items():
            split = u.get("cache_creation") or {}
            for name, value in (("input_tokens", u.get("input_tokens")), ("output_tokens", u.get("output_tokens")),
                                ("cache_read_tokens", u.get("cache_read_input_tokens")),
                                ("cache_write_tokens", u.get("cache_creation_input_tokens")),
                                ("cache_write_1h_tokens", split.get("ephemeral_1h_input_tokens"))):
                facts[key].usage[name] += int(value or 0)
    return facts


CODEX_INJECTED = ("# AGENTS.md instructions", "<environment_context>", "<user_instructions>", "<turn_aborted>",
                  "<INSTRUCTIONS>", "<user_shell_command>")
EXIT_LINE = re.compile(r"^Process exited with code (-?\d+)$", re.MULTILINE)


def codex_output_failed(output: Any) -> bool:
    """The exit code of a Codex call output: 0.58's JSON wrapper, or 0.104's header line."""
    if isinstance(output, dict):
        return output.get("success") is False
    if not isinstance(output, str):
        return False
    if output.startswith('{"output"'):
        code = json.loads(output).get("metadata", {}).get("exit_code")
        return isinstance(code, int) and code != 0
    found = EXIT_LINE.search(output.split("\nOutput:", 1)[0][:400])
    return bool(found and found.group(1) != "0")


def codex_facts(root: Path) -> dict[str, Facts]:
    facts: dict[str, Facts] = {}
    for path in sorted(root.rglob("rollout-*.jsonl")):
        lines = _lines(path)
        sid = next(o["payload"]["id"] for o in lines if o.get("type") == "session_meta")
        f = facts[f"codex:{sid}"] = Facts()
        last_total = None
        for obj in lines:
            payload = obj.get("payload") if isinstance(obj.get("payload"), dict) else {}
            kind = payload.get("type")
            if obj.get("type") == "compacted":
                f.live_calls = []
                f.injected += sum(codex_injected(i) for i in payload.get("replacement_history") or ())
            elif obj.get("type") == "event_msg" and kind == "token_count" and payload.get("info"):
                info = payload["info"]
                if info.get("total_token_usage") is not None and info["total_token_usage"] == last_total:
                    continue
                last_total = info.get("total_token_usage")
                last = info["last_token_usage"]
                cached = int(last.get("cached_input_tokens") or 0)
                f.usage["input_tokens"] += max(0, int(last.get("input_tokens") or 0) - cached)
                f.usage["output_tokens"] += int(last.get("output_tokens") or 0)
                f.usage["cache_read_tokens"] += cached
            elif obj.get("type") == "response_item":
                if kind == "reasoning":
                    for part in (payload.get("summary") or []) + (payload.get("content") or []):
                        if isinstance(part, dict) and part.get("text"):
                            f.reasoning.append(part["text"])
                elif kind in ("function_call", "custom_tool_call", "local_shell_call", "tool_search_call"):
                    f.live_calls.append(str(payload.get("call_id") or payload.get("id")))
                elif kind in ("function_call_output", "custom_tool_call_output") and \
                        codex_output_failed(payload.get("output")):
                    f.errors.add(payload["call_id"])
                else:
                    f.injected += codex_injected(payload)
    return facts


def codex_injected(item: dict[str, Any]) -> bool:
    """Context Codex wrote into the conversation: its own user messages, other agents' messages."""
    if item.get("type") == "agent_message":
        return True
    if item.get("type") != "message" or item.get("role") != "user":
        return False
    text = "\n".join(p.get("text") or "" for p in item.get("content") or [])
    return text.lstrip().startswith(CODEX_INJECTED)


def openclaw_facts(root: Path) -> dict[str, Facts]:
    facts: dict[str, Facts] = {}
    for index in sorted(root.rglob("sessions.json")):
        for key, entry in json.loads(index.read_text()).items():
            f = facts[key] = Facts()
            live = index.parent / f"{entry['sessionId']}.jsonl"
            archives = sorted(p for p in index.parent.glob("*.jsonl.reset.*"))
            for path in ([*archives, live] if key.endswith(":main") else [live]):
                for obj in _lines(path):
                    msg = obj.get("message") if obj.get("type") == "message" else None
                    if not isinstance(msg, dict):
                        continue
                    parts = msg.get("content") if isinstance(msg.get("content"), list) else []
                    if msg.get("role") == "assistant":
                        u = msg.get("usage") or {}
                        for name, source in (("input_tokens", "input"), ("output_tokens", "output"),
                                             ("cache_read_tokens", "cacheRead"), ("cache_write_tokens", "cacheWrite")):
                            f.usage[name] += int(u.get(source) or 0)
                        f.reasoning += [p["thinking"] for p in parts if p.get("type") == "thinking" and p["thinking"]]
                        f.live_calls += [p["id"] for p in parts if p.get("type") == "toolCall"]
                    if msg.get("role") == "toolResult" and msg.get("isError"):
                        f.errors.add(msg["toolCallId"])
    return facts


def all_facts() -> dict[str, Facts]:
    found: dict[str, Facts] = {}
    for root in (REALDATA, FIXTURES):
        found |= claude_code_facts(root / "claude-code")
        found |= codex_facts(root / "codex")
        found |= openclaw_facts(root / "openclaw")
    return found


FACTS = all_facts()
REAL_KEYS = sorted(k for k in FACTS if not k.startswith(("claude-code:7c1d0e2f", "codex:019cfe00", "agent:erin")))


# ---------------------------------------------------------------- what the store holds


def stored_usage(url: str) -> dict[str, dict[str, int]]:
    found = rows(url, select(sessions.c.key, func.sum(executions.c.input_tokens), func.sum(executions.c.output_tokens),
                             func.sum(executions.c.cache_read_tokens), func.sum(executions.c.cache_write_tokens),
                             func.sum(executions.c.cache_write_1h_tokens))
                 .join(executions, executions.c.session_id == sessions.c.id).group_by(sessions.c.key))
    names = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens")
    return {r[0]: {n: int(v or 0) for n, v in zip(names, r[1:], strict=True)} for r in found}


def stored_messages(url: str) -> dict[str, list[Any]]:
    found = rows(url, select(sessions.c.key, messages).join(messages, messages.c.session_id == sessions.c.id)
                 .order_by(sessions.c.key, messages.c.seq))
    grouped: dict[str, list[Any]] = defaultdict(list)
    for r in found:
        grouped[r.key].append(r)
    return grouped


# ---------------------------------------------------------------- each defect of issue 15


def test_check_is_clean_after_every_import(corpus: Corpus) -> None:
    for path, report in corpus.checks:
        assert report.startswith("ok:"), f"after importing {path}: {report}"


def test_claude_code_output_tokens_add_up_per_message_id(corpus: Corpus) -> None:
    """2.1.59 writes a tool result between two lines of one reply: its last line's usage counts."""
    usage = stored_usage(corpus.url)
    keys = [k for k in REAL_KEYS if k.startswith("claude-code:")]
    assert len(keys) == 21
    for key in keys:
        expected = {n: FACTS[key].usage[n] for n in ("input_tokens", "output_tokens", "cache_read_tokens",
                                                       "cache_write_tokens", "cache_write_1h_tokens")}
        assert usage.get(key, dict.fromkeys(expected, 0)) == expected, key
    # The example: 1e75cbed's reply msg_01NPFC7o... gives 24 then 157 output tokens.
    replies = rows(corpus.url, select(executions.c.output_tokens).join(sessions, sessions.c.id == executions.c.session_id)
                   .where(sessions.c.key == "claude-code:1e75cbed-074d-49db-862f-41e8be13a9e0"))
    assert 157 in [r[0] for r in replies] and 24 not in [r[0] for r in replies]


def test_one_hour_cache_writes_are_kept_and_priced_higher(corpus: Corpus) -> None:
    found = rows(corpus.url, select(executions).where(executions.c.cache_write_1h_tokens > 0))
    assert sum(r.cache_write_1h_tokens for r in found) == sum(f.usage["cache_write_1h_tokens"] for f in FACTS.values())
    priced = [r for r in found if r.cost_usd is not None]
    assert priced
    for r in priced:
        as_5m = cost_usd(r.model, r.provider, r.input_tokens, r.output_tokens, r.cache_read_tokens,
                         r.cache_write_tokens, 0)
        assert as_5m is not None and r.cost_usd > as_5m


def test_codex_error_flags_come_from_exit_codes(corpus: Corpus) -> None:
    stored = stored_messages(corpus.url)
    keys = [k for k in REAL_KEYS if k.startswith("codex:")]
    assert sum(len(FACTS[k].errors) for k in keys) == 36  # the count
    for key in keys:
        flagged = {m.tool_call_id for m in stored[key] if m.role == "tool" and m.is_error}
        assert flagged == FACTS[key].errors, key


def test_codex_058_output_wrapper_is_unwrapped(corpus: Corpus) -> None:
    stored = stored_messages(corpus.url)["codex:019a93b9-f380-7600-98ff-940e6b99603c"]
    tools = [m for m in stored if m.role == "tool"]
    assert tools and not any(m.content.startswith('{"output"') for m in tools)
    assert any(m.content == "ls: cannot access 'lib/ai': No such file or directory\n" and m.is_error for m in tools)


def test_reasoning_text_is_in_the_export_and_comes_back(corpus: Corpus, database_url_factory: Any,
                                                        dialect: str, tmp_path: Path) -> None:
    keys = [k for k in FACTS if FACTS[k].reasoning]
    lines = export(corpus.url, keys)
    by_key: dict[str, list[str]] = defaultdict(list)
    key = ""
    for line in lines:
        key = line["key"] if line["type"] == "session" else key
        if line["type"] == "message" and line.get("reasoning"):
            by_key[key].append(line["reasoning"])
    for key in keys:
        assert "\n\n".join(by_key[key]) == "\n\n".join(FACTS[key].reasoning), key
    assert sum(len(FACTS[k].reasoning) for k in REAL_KEYS if k.startswith("claude-code:")) == 50
    # The export imports back with its reasoning, attachments and kinds.
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    url = database_url_factory(dialect, "realdata_roundtrip")

    async def reimport() -> None:
        db = await open_database(url)
        try:
            await ingest_records(db, EVERYTHING, (r for r in iter_records(path, "jsonl") if isinstance(r, dict)),
                                 source="import")
        finally:
            await db.close()

    run(reimport())
    again = export(url, keys)
    parts = ("reasoning", "reasoning_tokens", "message_kind", "stop_reason", "attachments")
    assert [[line.get(p) for p in parts] for line in again if line["type"] == "message"] == \
        [[line.get(p) for p in parts] for line in lines if line["type"] == "message"]


def test_reasoning_is_a_thinking_block_in_anthropic_history(corpus: Corpus) -> None:
    key = "claude-code:7c1d0e2f-1111-2222-3333-444455556666"
    found = history(corpus.url, key, "anthropic")["messages"]
    blocks = [b for m in found if m["role"] == "assistant" for b in m["content"]]
    assert blocks[0] == {"type": "thinking", "thinking": "The user wants the screenshot read."}
    images = [b for m in found for b in m["content"] if b["type"] == "image"]
    assert images and images[0]["source"]["media_type"] == "image/png"


def test_codex_history_after_a_compaction_is_the_kept_context(corpus: Corpus) -> None:
    key = "codex:019c8a59-e9dd-71f0-9ae3-4079fe9726a9"
    path = next(REALDATA.rglob("rollout-*019c8a59-e9dd-71f0-9ae3-4079fe9726a9.jsonl"))
    lines = _lines(path)
    compacted = [o for o in lines if o.get("type") == "compacted"][-1]
    roles = {"user": "user", "assistant": "assistant", "developer": "system"}
    kept = [(roles[i["role"]], i["content"][0]["text"]) for i in compacted["payload"]["replacement_history"]
            if i.get("type") == "message"]
    found = history(corpus.url, key)["messages"]
    assert not any(m["content"].startswith(conversation_store.SUMMARY_PREFIX) for m in found
                   if isinstance(m.get("content"), str))
    assert [(m["role"], m["content"].split("\n", 1)[0]) for m in found[:len(kept)]] == \
        [(role, text.split("\n", 1)[0]) for role, text in kept]
    assert len(found) > len(kept)  # and what came after the compaction


def test_claude_code_summary_line_is_the_label(corpus: Corpus) -> None:
    [row] = rows(corpus.url, select(sessions).where(sessions.c.key == "claude-code:fe5e1c67-53e7-4862-81ae-d0e013e3270b"))
    assert (row.label, row.compactions) == ("Empty Repo Setup: CLAUDE.md Foundation Created", 0)
    first = history(corpus.url, row.key)["messages"][0]
    assert not first["content"].startswith(conversation_store.SUMMARY_PREFIX)


def test_injected_context_is_flagged(corpus: Corpus) -> None:
    stored = stored_messages(corpus.url)
    for key in REAL_KEYS:
        if key.startswith(("claude-code:", "codex:")):
            injected = [m for m in stored[key] if m.kind == "injected" and m.role == "user"]
            assert len(injected) == FACTS[key].injected, key
    assert sum(FACTS[k].injected for k in REAL_KEYS if k.startswith("claude-code:")) == 3


def test_openclaw_reset_archives_are_the_keys_earlier_history(corpus: Corpus) -> None:
    found = {r.key: r for r in rows(corpus.url, select(sessions).where(sessions.c.key.like("agent:erin:%")))}
    assert sorted(found) == ["agent:erin:main", "agent:erin:telegram:dm:7"]  # no session per archive
    main = found["agent:erin:main"]
    assert (main.resets, main.channel, main.message_count) == (2, "webchat", 9)
    # updated_at: the last line's time, not the import's clock.
    assert main.updated_at == 1772442010000  # 2026-03-02T09:00:10Z
    texts = [m.content for m in stored_messages(corpus.url)["agent:erin:main"]]
    assert texts[:2] == ["first hello", "hi (first)"] and texts[-3] == "third hello"
    assert [m["content"] for m in history(corpus.url, "agent:erin:main")["messages"]][:1] == ["third hello"]
    tally = next(r.tally for fmt, path, r in corpus.results if path == FIXTURES / "openclaw")
    assert tally.counts["(deleted transcript file)"] == {"skipped": 1}
    assert not rows(corpus.url, select(messages).where(messages.c.content == "deleted hello"))


def test_openclaw_thinking_images_and_stop_reasons(corpus: Corpus) -> None:
    stored = stored_messages(corpus.url)["agent:erin:main"]
    assert [m.stop_reason for m in stored if m.stop_reason] == ["length", "aborted"]
    [image] = [json.loads(m.attachments) for m in stored if m.attachments]
    assert image[0]["mime_type"] == "image/png" and image[0]["size"] == 70 and image[0]["data"]
    real = stored_messages(corpus.url)["agent:main:main"]
    assert [m.reasoning for m in real if m.reasoning] == FACTS["agent:main:main"].reasoning


def test_codex_turn_aborted_and_new_record_types(corpus: Corpus) -> None:
    stored = stored_messages(corpus.url)["codex:019cfe00-0000-7000-8000-0000000000ab"]
    [aborted] = [m for m in stored if m.stop_reason == "aborted"]
    assert (aborted.kind, aborted.content, aborted.tokens) == ("event", "turn aborted (interrupted)", 0)
    assert "turn aborted" not in json.dumps(history(corpus.url, "codex:019cfe00-0000-7000-8000-0000000000ab"))
    tally = next(r.tally for fmt, path, r in corpus.results if path == REALDATA / "codex").counts
    for kind in ("world_state", "response_item:tool_search_call", "response_item:tool_search_output",
                 "response_item:agent_message", "response_item:image_generation_call",
                 "inter_agent_communication_metadata", "response_item:reasoning", "response_item:web_search_call",
                 "event_msg:turn_aborted"):
        assert "skipped" not in tally[kind], kind
    assert tally["response_item:reasoning"] == {"mapped": 888}
    assert tally["response_item:web_search_call"] == {"mapped": 9}
    assert tally["event_msg:turn_aborted"] == {"mapped": 4}


def test_every_source_record_type_is_accounted_for(corpus: Corpus) -> None:
    for _, path, result in corpus.results:
        counted = sum(n for per in result.tally.counts.values() for n in per.values())
        files = [p for p in path.rglob("*") if p.is_file() and ".jsonl" in p.name]
        deleted = [p for p in files if ".jsonl.deleted." in p.name]
        lines = sum(1 for p in files if p not in deleted for raw in p.read_text().splitlines() if raw.strip())
        assert counted == lines + len(deleted), path  # every line once; a deleted file once


# ---------------------------------------------------------------- the bar: all of them


def test_every_real_session_matches_its_source(corpus: Corpus) -> None:
    """Token sums, error flags, reasoning text and history, session by session, for every session."""
    usage = stored_usage(corpus.url)
    stored = stored_messages(corpus.url)
    assert len(REAL_KEYS) == 48
    for key in REAL_KEYS:
        facts = FACTS[key]
        got = usage.get(key, {})
        for name, value in facts.usage.items():
            assert got.get(name, 0) == value, (key, name)
        assert {m.tool_call_id for m in stored[key] if m.role == "tool" and m.is_error} == facts.errors, key
        assert "\n\n".join(m.reasoning for m in stored[key] if m.reasoning) == "\n\n".join(facts.reasoning), key
        calls = [c["id"] for m in history(corpus.url, key)["messages"] for c in m.get("tool_calls") or ()]
        expected = list(dict.fromkeys(facts.live_calls))
        if key.startswith("claude-code:") and any(m.role == "assistant" for m in stored[key]):
            # Claude Code's live context starts at its last compact boundary.
            boundary = rows(corpus.url, select(sessions.c.live_from_seq).where(sessions.c.key == key))[0][0]
            live_ids = {c["id"] for m in stored[key] if m.seq >= boundary and m.tool_calls
                        for c in json.loads(m.tool_calls)}
            expected = [c for c in expected if c in live_ids]
        assert calls == expected, key


def test_the_import_command_prints_the_summary(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "sessionscope", "import", str(REALDATA / "codex" / ".codex"),
                           "--db", str(tmp_path / "cli.db")], capture_output=True, text=True, check=False,
                          env=os.environ | {"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "source records (mapped, kept raw, or skipped):" in lines
    summary = {line.split()[0]: line.split(None, 1)[1] for line in lines if line.startswith("  ")}
    assert summary["world_state"] == "5 kept raw"
    assert summary["response_item:reasoning"] == "888 mapped"
    assert summary["event_msg:token_count"] == "955 mapped, 958 skipped"
