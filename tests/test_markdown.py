"""Markdown rendering is bounded and off the event loop (issue 14): past its size or time budget a
message is shown as escaped plain text, and the server answers other requests meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from sessionscope import markdown
from tests.conftest import RPC

# Under MAX_RENDER_CHARS, yet markdown-it needs seconds for it: only the time budget stops it.
SLOW = "![" * 49_000


def test_ordinary_markdown_renders_and_sanitizes() -> None:
    out = asyncio.run(markdown.render_many(["**bold** <script>x</script>", None]))
    assert out[0] is not None and "<strong>bold</strong>" in out[0] and "<script>" not in out[0]
    assert out[1] is None


def test_past_the_size_budget_a_message_is_escaped_plain_text() -> None:
    text = "<b>" + "![" * 500_000
    assert len(text) > markdown.MAX_RENDER_CHARS
    assert asyncio.run(markdown.render_many([text])) == ["<pre>&lt;b&gt;" + "![" * 500_000 + "</pre>"]


def test_past_the_time_budget_a_message_is_escaped_plain_text() -> None:
    out = asyncio.run(markdown.render_many(["*fine*", SLOW + "<i>"], budget_s=0.5))
    assert out[0] == "<p><em>fine</em></p>\n"
    assert out[1] == markdown.plain_html(SLOW + "<i>") == "<pre>" + SLOW + "&lt;i&gt;</pre>"
    # Remembered: read again, it is plain text at once, the other text still rendered.
    assert asyncio.run(markdown.render_many(["*x*", SLOW + "<i>"], budget_s=30)) == [
        "<p><em>x</em></p>\n", out[1]]
    # The worker that overran was replaced: the next call renders again.
    assert asyncio.run(markdown.render_many(["`code`"])) == ["<p><code>code</code></p>\n"]


def test_a_text_rendered_once_is_not_rendered_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 19: a page read again (the dashboard polling) costs no worker round trip.
    text = f"*kept* {time.time_ns()}"
    first = asyncio.run(markdown.render_many([text]))
    assert first[0] is not None and first[0].startswith("<p><em>kept</em>")

    def no_worker(self: Any, texts: list[str], budget_s: float) -> Any:
        raise AssertionError(f"rendered again: {texts}")

    monkeypatch.setattr(markdown._Pool, "_render", no_worker)
    assert asyncio.run(markdown.render_many([text])) == first


def test_a_text_that_fell_back_to_plain_text_is_not_kept_as_rendered() -> None:
    slow = SLOW + f"{time.time_ns()}"
    assert asyncio.run(markdown.render_many([slow], budget_s=0.2)) == [markdown.plain_html(slow)]
    assert markdown._digest(slow) not in markdown._the_pool().rendered


def test_kept_renders_stay_within_their_memory_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(markdown, "RENDERED_MEMORY_CHARS", 200)
    texts = [f"*{i}* {time.time_ns()}" for i in range(20)]
    asyncio.run(markdown.render_many(texts))
    pool = markdown._the_pool()
    assert 0 < pool.rendered_chars <= 200
    assert pool.rendered_chars == sum(len(h) for h in pool.rendered.values())


def test_the_server_renders_off_its_event_loop(rpc: RPC, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = SLOW + rpc.tenant  # a text overrunning the budget is remembered: one per test run
    rpc.append("md/1", [{"role": "assistant", "content": "a **fine** answer"},
                        {"role": "assistant", "content": slow}])

    def not_here(text: str) -> str:
        raise AssertionError("rendered in the server's own process")

    # The test server runs in this process: rendering here (on its loop) would fail the call.
    monkeypatch.setattr(markdown, "render_markdown", not_here)
    # The slow message takes about 2 s to render on this machine, and holds a worker for the whole
    # 1 s budget before it falls back to plain text (a 3 s budget let an idle machine finish it).
    monkeypatch.setattr(markdown, "RENDER_BUDGET_S", 1.0)
    finished: list[str] = []

    def read_status() -> None:
        items = rpc("session.status", key="md/1")["items"]
        assert items[0]["content_html"] == "<p>a <strong>fine</strong> answer</p>\n"
        assert items[1]["content_html"] == markdown.plain_html(slow)
        finished.append("status")

    reader = threading.Thread(target=read_status)
    reader.start()
    time.sleep(0.5)  # let the status call reach its rendering (not a measurement)
    assert httpx.get(f"{rpc.url}/healthz", timeout=30).status_code == 200
    finished.append("healthz")
    reader.join(timeout=60)
    assert finished == ["healthz", "status"]


def test_add_html_fills_messages_and_compactions() -> None:
    items: list[dict[str, Any]] = [
        {"kind": "message", "role": "user", "content": "*u*"},
        {"kind": "message", "role": "assistant", "content": "*a*"},
        {"kind": "compaction", "summary": "*s*"},
        {"kind": "reset"},
    ]
    asyncio.run(markdown.add_html(items))
    assert items[0]["content_html"] is None
    assert items[1]["content_html"] == "<p><em>a</em></p>\n"
    assert items[2]["summary_html"] == "<p><em>s</em></p>\n"
    assert "content_html" not in items[3]
