"""The quickstarts' Python code runs as written, against a real server (and, for the Agents SDK,
a real Chat Completions server on loopback standing in for OpenAI)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RPC
from tests.test_openai_agents import FakeOpenAI, fake_openai  # noqa: F401 - fixture

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOC_URL = "http://127.0.0.1:8750"


def run_blocks(doc: str, url: str, tmp_path: Path) -> None:
    text = (DOCS / doc).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, doc
    for number, block in enumerate(blocks):
        assert DOC_URL in block, f"{doc} block {number} does not name the server URL"
        script = tmp_path / f"{doc}-{number}.py"
        script.write_text(block.replace(DOC_URL, url))
        runpy.run_path(str(script), run_name="__main__")


def test_sdk_quickstart(server: Any, tmp_path: Path) -> None:
    run_blocks("quickstart-sdk.md", server.url, tmp_path)
    rpc = RPC(server.url, "default")
    run = rpc("session.context", key="support:ticket-7")["executions"][-1]
    assert [layer["name"] for layer in run["layers"]] == ["history-window", "model-call"]
    assert rpc("session.metrics", key="support:ticket-8")["executions"] >= 1
    rpc.http.close()


def test_otlp_quickstart(server: Any, tmp_path: Path) -> None:
    run_blocks("quickstart-otlp.md", server.url, tmp_path)
    rpc = RPC(server.url, "default")
    roles = [item["role"] for item in rpc("session.status", key="otel:quickstart")["items"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    rpc.http.close()


def test_openai_agents_quickstart(server: Any, tmp_path: Path, fake_openai: FakeOpenAI,  # noqa: F811
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from agents import set_default_openai_api, set_default_openai_client, set_tracing_disabled
    from openai import AsyncOpenAI

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    set_tracing_disabled(True)
    set_default_openai_api("chat_completions")  # the fake speaks Chat Completions
    set_default_openai_client(AsyncOpenAI(base_url=fake_openai.base_url, api_key="test-key"), use_for_tracing=False)
    try:
        run_blocks("quickstart-openai-agents.md", server.url, tmp_path)
    finally:
        set_default_openai_api("responses")
    # The second run sent the first turn back from the store.
    sent = [m["content"] for m in fake_openai.last_messages()]
    assert sent[1:] == ["What city is the Golden Gate Bridge in?",
                        "ack: What city is the Golden Gate Bridge in? (2 messages seen)", "What state is it in?"]
