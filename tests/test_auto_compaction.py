"""Auto-compaction: an append that pushes the live context over the agent's threshold schedules a
compaction on the server's background worker; it commits later, cut by seq, and never inside
the append's request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionscope.compaction import validate_conversation
from sessionscope.web.services import ServerConfig
from tests.conftest import RPC, RunningServer, conversation
from tests.test_compaction_llm import FakeChatServer

WAIT_S = 20  # how long a test waits for the background worker before it fails


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeChatServer]:
    import threading

    server = FakeChatServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()


@pytest.fixture(scope="module")
def auto_server(database_url_factory: Any, dialect: str, tmp_path_factory: pytest.TempPathFactory,
                llm: FakeChatServer) -> Iterator[RunningServer]:
    config = Path(tmp_path_factory.mktemp("cfg")) / "sessionscope.toml"
    config.write_text(
        '[agents."tiny-window".compaction]\ncontext_window = 4000\nthreshold = 0.85\nkeep_recent_tokens = 800\n'
        '[agents."slow-llm".compaction]\ncontext_window = 4000\nthreshold = 0.85\nkeep_recent_tokens = 800\n'
        f'summarizer = "llm"\n[agents."slow-llm".compaction.llm]\nbase_url = "{llm.base_url}"\n'
        'model = "test-model"\ntimeout_s = 10\n'
        '[agents."broken".compaction]\ncontext_window = 4000\nthreshold = 7.0\n'
    )
    url = database_url_factory(dialect, "auto")
    with RunningServer(ServerConfig(database=url, auth=False, config_path=str(config))) as running:
        yield running


def wait_for_compactions(rpc: RPC, key: str, count: int = 1) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_S
    while True:
        listed = rpc("session.compactions", key=key)["compactions"]
        if len(listed) >= count or time.monotonic() > deadline:
            return listed
        time.sleep(0.05)


def test_append_over_threshold_schedules_a_compaction(auto_server: RunningServer, tenant: str) -> None:
    rpc = RPC(auto_server.url, tenant)
    results = [rpc.append("auto", conversation(3, f"b{i}-"), agent="tiny-window") for i in range(12)]
    triggered = [r["auto_compaction"] for r in results if r.get("auto_compaction")]
    assert triggered, "the context passed 85% of 4000 tokens but nothing was scheduled"
    assert triggered[0]["scheduled"] is True
    assert triggered[0]["threshold_tokens"] == 3400
    listed = wait_for_compactions(rpc, "auto")
    assert listed, "the scheduled compaction never committed"
    assert all(c["reason"] == "auto-threshold" for c in listed)
    history = rpc("session.history", key="auto")["messages"]
    assert validate_conversation(history) == []
    # A manual compaction right after records `manual`, or finds nothing to do; a background
    # compaction committing between its snapshot and its commit makes it a Conflict to retry.
    for _ in range(WAIT_S * 10):
        answer = rpc.request("session.compact", {"key": "auto", "tenant": tenant, "keep_recent_tokens": 100})
        if answer.get("error", {}).get("code") != -32009:
            break
        time.sleep(0.1)
    manual = answer["result"]
    if manual["compacted"]:
        assert manual["compaction"]["reason"] == "manual"


def test_other_agents_do_not_auto_compact(auto_server: RunningServer, tenant: str) -> None:
    rpc = RPC(auto_server.url, tenant)
    results = [rpc.append("plain", conversation(3, f"b{i}-"), agent="main") for i in range(12)]
    assert not any(r.get("auto_compaction") for r in results)
    assert rpc("session.metrics", key="plain")["compactions"] == 0


def test_appends_during_an_llm_compaction_are_answered_and_stay_live(
        auto_server: RunningServer, tenant: str, llm: FakeChatServer) -> None:
    """The LLM holds its answer until released; appends meanwhile must not wait for it, and
    they stay live after the compaction commits (the cut is by seq)."""
    rpc = RPC(auto_server.url, tenant)
    llm.release.clear()
    llm.mode = "sleep"
    try:
        scheduled = None
        for i in range(12):
            result = rpc.append("slow", conversation(3, f"s{i}-"), agent="slow-llm")
            if result.get("auto_compaction"):
                scheduled = i
                break
        assert scheduled is not None
        deadline = time.monotonic() + WAIT_S
        while not llm.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert llm.requests, "the worker never called the LLM"
        # The LLM is now holding the summariser: these appends complete before it answers.
        during = [rpc.append("slow", conversation(2, f"late{j}-"), agent="slow-llm") for j in range(3)]
        assert all(r["appended"] for r in during)
        assert rpc("session.compactions", key="slow")["compactions"] == []
        assert validate_conversation(rpc("session.history", key="slow")["messages"]) == []
    finally:
        llm.release.set()
        llm.mode = "ok"
    listed = wait_for_compactions(rpc, "slow")
    assert listed and listed[0]["summarizer"].startswith("llm:")
    history = rpc("session.history", key="slow")["messages"]
    assert validate_conversation(history) == []
    contents = [m.get("content") for m in history]
    late = conversation(2, "late2-")
    assert late[-1]["content"] in contents, "a message appended during the compaction left the live context"


def test_a_broken_compaction_config_never_fails_a_committed_append(auto_server: RunningServer, tenant: str) -> None:
    rpc = RPC(auto_server.url, tenant)
    result = rpc.append("broken", conversation(2, "x-"), agent="broken")
    assert result["appended"] == len(conversation(2, "x-"))
    again = rpc.append("broken", conversation(2, "x-"), agent="broken")
    assert again["duplicates"] == len(conversation(2, "x-"))
