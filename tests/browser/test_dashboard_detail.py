"""The session detail: lazy tabs, tool-call cards, compaction markers, actions, paging, not found."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
from playwright.sync_api import Page, expect

from tests.browser.rows import click_row

pytestmark = pytest.mark.browser

LAYERS = [
    {
        "name": "load-history",
        "start_ms": 0,
        "duration_ms": 30,
        "messages_in": 0,
        "messages_out": 40,
        "tokens_in": 0,
        "tokens_out": 9000,
        "error": None,
    },
    {
        "name": "compact",
        "start_ms": 30,
        "duration_ms": 250,
        "messages_in": 40,
        "messages_out": 12,
        "tokens_in": 9000,
        "tokens_out": 3000,
        "error": None,
    },
    {
        "name": "inject-memory",
        "start_ms": 280,
        "duration_ms": 60,
        "messages_in": 12,
        "messages_out": 13,
        "tokens_in": 3000,
        "tokens_out": 3500,
        "error": None,
    },
]
EXECUTION = {
    "started_at": "2026-11-26T06:00:00.000Z",
    "duration_ms": 420,
    "model": "gpt-4o",
    "provider": "openai",
    "usage": {
        "input_tokens": 1200,
        "output_tokens": 300,
        "cache_read_tokens": 800,
        "cache_write_tokens": 100,
    },
    "cost_usd": 0.25,
    "budget": {"window": 128000, "system": 2000, "tools": 3000, "context": 5000, "messages": 20000},
    "layers": LAYERS,
}


def enc(key: str) -> str:
    return quote(key, safe="-_.!~*'()")


def long_messages(n: int, key: str, words_per_message: int = 120) -> list[dict]:
    words = " ".join(f"word{j}" for j in range(words_per_message))
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} of {key}: {words}"}
        for i in range(n)
    ]


def test_tabs_lazy_load_context_and_metrics(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:tabs"
    rpc.seed(key, agent=f"{ns}-bot")
    rpc("session.record", key=key, execution=EXECUTION)
    page.goto(f"/sessions/{enc(key)}")
    expect(page.locator(".timeline .msg")).to_have_count(4)
    expect(page.get_by_role("tab", name="Conversation")).to_have_attribute("aria-selected", "true")
    page.wait_for_timeout(500)
    assert page.watch.count("session.context") == 0
    assert page.watch.count("session.metrics") == 0

    page.get_by_role("tab", name="Context State").click()
    panel = page.locator("#panel-context")
    expect(panel.locator(".segbar")).to_be_visible()
    assert page.watch.count("session.context") == 1
    assert page.watch.count("session.metrics") == 0
    legend = {
        li.get_attribute("data-segment"): li.locator(".legend-value").inner_text()
        for li in panel.locator(".legend li").all()
    }
    assert legend == {
        "system": "2,000",
        "tools": "3,000",
        "context": "5,000",
        "messages": "20,000",
        "free": "98,000",
    }
    widths = panel.locator(".seg").evaluate_all("segs => segs.map(s => parseFloat(s.style.width))")
    assert abs(sum(widths) - 100) < 0.01
    rows = panel.locator(".wf-row[data-row=layer]")
    expect(rows).to_have_count(3)
    slowest = panel.locator(".wf-row.is-slowest")
    expect(slowest).to_have_count(1)
    assert slowest.get_attribute("data-layer") == "compact"
    bar = panel.locator(".wf-row[data-layer='compact'] .wf-bar")
    left, width = bar.evaluate("b => [parseFloat(b.style.left), parseFloat(b.style.width)]")
    assert abs(left - 30 / 420 * 100) < 0.01 and abs(width - 250 / 420 * 100) < 0.01
    expect(panel.locator(".wf-row[data-layer='compact'] .wf-ms")).to_have_text("250 ms")
    expect(panel.locator(".wf-row[data-layer='compact'] .wf-msgs")).to_have_text("40 → 12 msgs")

    page.get_by_role("tab", name="Metrics").click()
    metrics = page.locator("#panel-metrics")
    expect(metrics.locator("[data-metric=input_tokens] dd")).to_have_text("1,200")
    expect(metrics.locator("[data-metric=output_tokens] dd")).to_have_text("300")
    expect(metrics.locator("[data-metric=cache_read_tokens] dd")).to_have_text("800")
    expect(metrics.locator("[data-metric=cost_usd] dd.stat-value")).to_have_text("$0.2500")
    expect(metrics.locator("[data-metric=cache_hit_rate] dd.stat-value")).to_have_text("38.1%")
    assert page.watch.count("session.metrics") == 1

    # switching back does not fetch again; the tab is in the URL, and a deep link loads only it
    page.get_by_role("tab", name="Context State").click()
    page.get_by_role("tab", name="Metrics").click()
    assert page.watch.count("session.context") == 1 and page.watch.count("session.metrics") == 1
    assert urlparse(page.url).path == f"/sessions/{enc(key)}/metrics"
    page.reload()
    expect(page.locator("#panel-metrics [data-metric=output_tokens] dd")).to_have_text("300")
    assert page.watch.count("session.context") == 1


def test_tool_call_cards_expand_with_pretty_input_output_and_errors(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:tools"
    rpc.seed(
        key,
        agent=f"{ns}-bot",
        messages=0,
        extra=[
            {"role": "user", "content": "read the hosts file, then run false"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_read",
                        "name": "read_file",
                        "arguments": json.dumps({"path": "/etc/hosts", "lines": 3}),
                    },
                    {"id": "call_bash", "name": "bash", "arguments": json.dumps({"cmd": "false"})},
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_read",
                "tool_name": "read_file",
                "content": "127.0.0.1 localhost",
            },
            {
                "role": "tool",
                "tool_call_id": "call_bash",
                "tool_name": "bash",
                "content": "exit status 1",
                "is_error": True,
            },
            {"role": "assistant", "content": "The command failed."},
        ],
    )
    page.goto(f"/sessions/{enc(key)}")
    cards = page.locator("details.tool-card")
    expect(cards).to_have_count(2)
    read = page.locator("details.tool-card[data-tool-name='read_file']")
    expect(read.locator("summary .tool-name")).to_have_text("read_file")
    expect(read.locator(".tool-input pre")).to_be_hidden()
    read.locator("summary").click()
    expect(read.locator(".tool-input pre")).to_be_visible()
    assert read.locator(".tool-input pre").inner_text() == json.dumps(
        {"path": "/etc/hosts", "lines": 3}, indent=2
    )
    expect(read.locator(".tool-output pre")).to_have_text("127.0.0.1 localhost")
    expect(read.locator(".tool-output time")).to_have_count(1)

    bash = page.locator("details.tool-card[data-tool-name='bash']")
    expect(bash).to_have_class("tool-card is-error")
    expect(bash.locator("summary .badge-error")).to_have_text("error")
    bash.locator("summary").click()
    expect(bash.locator(".tool-output h4")).to_have_text("Error")
    expect(bash.locator("pre.code-error")).to_have_text("exit status 1")
    # results are folded into their cards, not shown twice; every message carries a timestamp
    expect(page.locator("li.msg-tool")).to_have_count(0)
    expect(page.locator(".timeline > li.msg")).to_have_count(3)
    for msg in page.locator(".timeline > li.msg").all():
        expect(msg.locator(".msg-head time")).to_have_count(1)
    expect(page.locator("li.msg-user")).to_have_count(1)
    expect(page.locator("li.msg-assistant")).to_have_count(2)


def test_compaction_marker_dims_messages_and_restores(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:compacted"
    rpc.seed(key, agent=f"{ns}-bot", messages=0, extra=long_messages(16, key))
    result = rpc("session.compact", key=key, keep_recent_tokens=200, instructions="keep the numbers")
    compaction = result["compaction"]
    assert compaction and compaction["messages_compacted"] > 0
    n = compaction["messages_compacted"]
    page.goto(f"/sessions/{enc(key)}")
    marker = page.locator("li.compaction-marker")
    expect(marker).to_have_count(1)
    # The summary's markdown is rendered (sanitized on the server): its sections are headings.
    summary = marker.locator(".marker-summary")
    expect(summary.locator("h2").first).to_have_text("Goal and requests")
    first_request = compaction["summary"].split("## Goal and requests\n- ", 1)[1].split("\n", 1)[0]
    expect(summary.locator("li").first).to_have_text(first_request)
    expect(marker.locator(".marker-counts")).to_contain_text(f"{n} message")
    expect(marker.locator(".marker-counts")).to_contain_text(f"{compaction['tokens_before']:,}")
    expect(marker).to_contain_text("Instructions: keep the numbers")
    expect(page.locator(".timeline > li.msg.is-compacted")).to_have_count(n)
    expect(page.locator(".timeline > li.msg:not(.is-compacted)")).to_have_count(16 - n)
    opacity = page.locator(".timeline > li.msg.is-compacted").first.evaluate(
        "e => getComputedStyle(e).opacity"
    )
    assert float(opacity) < 1
    # the marker sits where the compaction happened (its seq), below every message it replaced
    order = page.locator(".timeline > li").evaluate_all(
        "els => els.map(e => e.dataset.kind || (e.classList.contains('is-compacted') ? 'old' : 'kept'))"
    )
    assert order.index("compaction") > max(i for i, kind in enumerate(order) if kind == "old")
    assert order[:n] == ["old"] * n

    marker.locator("details.marker-replaced > summary").click()
    expect(marker.locator(".replaced-list li.msg")).to_have_count(n)
    marker.get_by_role("button", name="Restore these messages").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("return to the live context")
    dialog.get_by_role("button", name="Restore").click()
    expect(page.locator("li.compaction-marker .badge-ok")).to_have_text("restored")
    expect(page.locator(".timeline > li.msg.is-compacted")).to_have_count(0)
    items = rpc("session.status", key=key)["items"]
    assert [i["restored"] for i in items if i["kind"] == "compaction"] == [True]
    assert not any(i.get("compacted") for i in items if i["kind"] == "message")


def test_detail_actions_compact_reset_export_delete(page: Page, rpc, ns: str, tmp_path: Path) -> None:
    key = f"{ns}:actions"
    # comfortably more than the default keep_recent_tokens (20,000), so the default compaction cuts
    rpc.seed(key, agent=f"{ns}-bot", messages=0, extra=long_messages(30, key, words_per_message=600))
    page.goto(f"/sessions?agent={ns}-bot&sort=key&order=asc")
    click_row(page, page.locator("tr.row td[data-col=agent]").first)
    expect(page.locator("h1.detail-title")).to_have_text(key)
    expect(page.locator(".info-bar [data-field=agent] dd")).to_have_text(f"{ns}-bot")
    expect(page.locator(".info-bar [data-field=message_count] dd")).to_have_text("30")
    for field in ("channel", "total_tokens", "created_at"):
        expect(page.locator(f".info-bar [data-field={field}] dd")).not_to_be_empty()

    dialog = page.locator("dialog[open]")
    page.get_by_role("button", name="Compact", exact=True).click()
    expect(dialog.locator("[data-preview-counts]")).to_contain_text("would be summarized")
    dialog.locator("textarea").fill("Keep the turn numbers.")
    dialog.get_by_role("button", name="Compact", exact=True).click()
    expect(dialog.locator("h2.dialog-title")).to_have_text("Session compacted")
    dialog.get_by_role("button", name="OK").click()
    expect(page.locator("li.compaction-marker")).to_have_count(1)
    expect(page.locator("li.compaction-marker")).to_contain_text("Instructions: Keep the turn numbers.")
    compactions = [i for i in rpc("session.status", key=key)["items"] if i["kind"] == "compaction"]
    assert [c["instructions"] for c in compactions] == ["Keep the turn numbers."]

    with page.expect_download() as info:
        page.get_by_role("button", name="Export JSONL").click()
    target = tmp_path / "one.jsonl"
    info.value.save_as(target)
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["type"] == "session" and lines[0]["key"] == key
    assert sum(1 for line in lines if line["type"] == "message") == 30
    assert sum(1 for line in lines if line["type"] == "compaction") == 1

    page.get_by_role("button", name="Reset", exact=True).click()
    expect(dialog.locator("h2")).to_have_text("Reset this session?")
    dialog.get_by_role("button", name="Cancel").click()
    assert rpc("session.history", key=key)["messages"]
    page.get_by_role("button", name="Reset", exact=True).click()
    dialog.get_by_role("button", name="Reset session").click()
    expect(page.locator("#toast")).to_have_text("The session was reset.")
    assert rpc("session.history", key=key)["messages"] == []
    # the cleared messages stay visible for audit, dimmed, above the reset marker
    expect(page.locator("#panel-conversation li.reset-marker")).to_have_count(1)
    expect(
        page.locator("#panel-conversation .timeline > li.msg:not(.is-compacted):not(.is-cleared)")
    ).to_have_count(0)

    page.get_by_role("button", name="Delete", exact=True).click()
    expect(dialog).to_contain_text("cannot be undone")
    dialog.get_by_role("button", name="Delete session").click()
    expect(page.locator("h1#list-title")).to_be_visible()
    assert urlparse(page.url).path == "/sessions"
    assert "agent=" in page.url and "sort=key" in page.url, "the list comes back with its filters"
    assert rpc.error("session.status", key=key)["code"] == -32001


def test_compact_reports_nothing_to_compact(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:tiny"
    rpc.seed(key, agent=f"{ns}-bot", messages=1)
    page.goto(f"/sessions/{enc(key)}")
    page.get_by_role("button", name="Compact", exact=True).click()
    dialog = page.locator("dialog[open]")
    expect(dialog.locator("[data-nothing]")).to_have_text("Nothing to compact")
    expect(dialog).to_contain_text("is a single turn")  # says why
    expect(dialog.get_by_role("button", name="Compact", exact=True)).to_be_disabled()
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)


def test_long_sessions_open_on_the_latest_page_and_load_older(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:long"
    rpc.seed(key, agent=f"{ns}-bot", messages=250)
    page.goto(f"/sessions/{enc(key)}")
    msgs = page.locator(".timeline > li.msg")
    expect(msgs).to_have_count(100)
    expect(msgs.last).to_contain_text(f"message 249 of {key}")
    status_calls = page.watch.params("session.status")
    assert len(status_calls) == 1 and status_calls[0]["limit"] <= 100

    page.get_by_role("button", name="Load older messages").click()
    expect(msgs).to_have_count(200)
    assert "before_seq" in page.watch.params("session.status")[-1]
    page.locator(".conversation").evaluate("el => { el.scrollTop = 0; }")
    expect(msgs).to_have_count(250)
    expect(msgs.first).to_contain_text(f"message 0 of {key}")
    expect(page.get_by_role("button", name="Load older messages")).to_be_hidden()
    seqs = msgs.evaluate_all("els => els.map(e => +e.dataset.seq)")
    assert seqs == sorted(seqs) and len(set(seqs)) == 250


def test_unknown_session_shows_not_found(page: Page, ns: str) -> None:
    page.goto(f"/sessions/{enc(ns + ':missing/one')}")
    expect(page.locator("[data-state=not-found] h1")).to_have_text("Session not found")
    expect(page.locator("[data-state=not-found] code")).to_have_text(f"{ns}:missing/one")
    page.get_by_role("link", name="Back to the session list").click()
    expect(page.locator("h1#list-title")).to_be_visible()


def test_roles_are_styled_apart(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:roles"
    rpc.seed(
        key,
        agent=f"{ns}-bot",
        messages=0,
        extra=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi *there*"},
            {"role": "assistant", "content": "Hello **you**\n\n- one\n- two"},
        ],
    )
    page.goto(f"/sessions/{enc(key)}")
    system, user, assistant = (page.locator(f"li.msg-{role}") for role in ("system", "user", "assistant"))
    style = "e => { const s = getComputedStyle(e); return [s.fontStyle, s.textAlign, s.borderLeftWidth, s.backgroundColor]; }"
    sys_style, user_style, asst_style = (loc.evaluate(style) for loc in (system, user, assistant))
    assert sys_style[0] == "italic" and sys_style[1] == "center"
    assert asst_style[2] == "3px" and asst_style[3] in ("rgba(0, 0, 0, 0)", "transparent")
    assert user_style[3] not in ("rgba(0, 0, 0, 0)", "transparent")
    expect(user.locator(".msg-body")).to_have_text("Hi *there*")  # user text is shown as typed
    expect(assistant.locator(".markdown strong")).to_have_text("you")
    expect(assistant.locator(".markdown li")).to_have_count(2)


def test_a_tool_result_on_a_newer_page_folds_into_its_call_when_older_items_load(
    page: Page, rpc, ns: str
) -> None:
    key = f"{ns}:split-call"
    filler = [{"role": "user", "content": f"filler {i}"} for i in range(20)]
    call = {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "c1", "name": "grep", "arguments": "{}"}],
    }
    result = {"role": "tool", "tool_call_id": "c1", "tool_name": "grep", "content": "3 matches"}
    tail = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"tail {i}"} for i in range(99)]
    rpc.seed(key, agent=f"{ns}-bot", messages=0, extra=[*filler, call, result, *tail])
    page.goto(f"/sessions/{enc(key)}")
    expect(page.locator(".timeline > li.msg")).to_have_count(100)
    orphan = page.locator("li.msg-tool details.tool-card[data-tool-name='grep']")
    expect(orphan).to_have_count(1)
    # Keyboard activation: while the timeline lays out, a card can sit over the button and
    # swallow a pointer click.
    page.get_by_role("button", name="Load older messages").press("Enter")
    expect(page.locator("li.msg-tool")).to_have_count(0)
    card = page.locator("li.msg-assistant details.tool-card[data-tool-name='grep']")
    expect(card).to_have_count(1)
    card.locator("summary").press("Enter")
    expect(card.locator(".tool-output pre")).to_have_text("3 matches")


def test_metrics_count_compactions_and_resets_and_budget_is_estimated_without_runs(
    page: Page, rpc, ns: str
) -> None:
    key = f"{ns}:counted"
    rpc.seed(key, agent=f"{ns}-bot", messages=0, extra=long_messages(16, key))
    assert rpc("session.compact", key=key, keep_recent_tokens=200)["compacted"]
    rpc("session.reset", key=key)
    rpc.seed(key, agent=f"{ns}-bot", messages=2)
    page.goto(f"/sessions/{enc(key)}?tab=metrics")
    metrics = page.locator("#panel-metrics")
    expect(metrics.locator("[data-metric=compactions] dd")).to_have_text("1")
    expect(metrics.locator("[data-metric=resets] dd")).to_have_text("1")
    expect(metrics.locator("[data-metric=executions] dd")).to_have_text("0")
    assert page.watch.count("session.context") == 0

    page.get_by_role("tab", name="Context State").click()
    panel = page.locator("#panel-context")
    expect(panel.locator(".card-head p")).to_contain_text("estimated")
    expect(panel.locator(".executions .state-empty")).to_contain_text("No executions recorded.")
    expect(panel.locator(".legend li[data-segment=messages] .legend-value")).not_to_have_text("0")


PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="


def test_reasoning_is_collapsed_images_are_thumbnails_and_injected_context_is_marked(
        page: Page, rpc, ns: str) -> None:
    key = f"{ns}:parts"
    rpc.seed(
        key,
        agent=f"{ns}-bot",
        messages=0,
        extra=[
            {"role": "user", "content": "<environment_context>cwd=/x</environment_context>",
             "message_kind": "injected"},
            {"role": "user", "content": "what is this?",
             "attachments": [{"mime_type": "image/png", "size": 70, "data": PNG_1PX},
                             {"mime_type": "image/svg+xml", "size": 900, "data": "PHN2Zz4="}]},
            {"role": "assistant", "content": "A pixel.", "reasoning": "It is one pixel wide.",
             "stop_reason": "length"},
        ],
    )
    page.goto(f"/sessions/{enc(key)}")
    injected = page.locator("li.msg-injected")
    expect(injected).to_have_count(1)
    expect(injected.locator(".badge")).to_have_text("injected")
    thumbs = page.locator("li.msg-user img.msg-thumb")
    expect(thumbs).to_have_count(1)  # the SVG is not shown inline
    assert thumbs.get_attribute("src").startswith("data:image/png;base64,")
    expect(page.locator("li.msg-user .msg-attachments .badge")).to_have_text("image/svg+xml, 900 bytes (not shown)")
    reasoning = page.locator("li.msg-assistant details.msg-reasoning")
    expect(reasoning).to_have_count(1)
    assert reasoning.get_attribute("open") is None  # collapsed
    expect(reasoning.locator("summary")).to_have_text("Reasoning (21 characters)")
    reasoning.locator("summary").click()
    expect(reasoning.locator(".msg-body")).to_have_text("It is one pixel wide.")
    expect(page.locator("li.msg-assistant .badge-stop")).to_have_text("length")
