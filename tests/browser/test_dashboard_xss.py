"""Nothing from a message, key, label, agent, channel or tool name can run in the dashboard."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from tests.browser.rows import click_row

pytestmark = pytest.mark.browser

FLAG = "window.__xss = (window.__xss || 0) + 1"
SCRIPT = f"<script>{FLAG}; alert('script')</script>"
IMG = f"<img src=x onerror=\"{FLAG}; alert('img')\">"
SVG = f'<svg onload="{FLAG}"></svg>'
JS_LINK = f"[click me](javascript:{FLAG})"
JS_LINK_2 = "<a href=\"javascript:alert('a')\">raw link</a>"
HTML_MD = f'**bold** <b onmouseover="{FLAG}">hover</b> <iframe src="javascript:alert(1)"></iframe> <style>*{{}}</style>'
ALL = f"{SCRIPT} {IMG} {SVG} {JS_LINK} {JS_LINK_2} {HTML_MD}"
CSP_DIRECTIVES = ["default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"]


def enc(key: str) -> str:
    return quote(key, safe="-_.!~*'()")


def assert_inert(page: Page) -> None:
    assert page.evaluate("window.__xss") is None
    main = page.locator("#main")
    for selector in (
        "script",
        "iframe",
        "svg",
        "img",
        "[onerror]",
        "[onload]",
        "[onmouseover]",
        "a[href^='javascript:' i]",
        "style",
    ):
        assert main.locator(selector).count() == 0, f"{selector} made it into the page"
    csp = [line for line in page.watch.console if "Content Security Policy" in line]
    assert not csp, f"something tried to run and the CSP had to stop it: {csp}"


def test_payloads_in_every_field_stay_text(page: Page, rpc, ns: str) -> None:
    key = f"{ns} {IMG}"
    agent = f"{ns}-{SVG}"
    label = f"{SCRIPT}label"
    tool = f"{ns}{IMG}"
    rpc.seed(
        key,
        agent=agent,
        channel=IMG,
        label=label,
        messages=0,
        extra=[
            {"role": "system", "content": ALL},
            {"role": "user", "content": ALL},
            {
                "role": "assistant",
                "content": ALL,
                "tool_calls": [{"id": "call_x", "name": tool, "arguments": json.dumps({"html": ALL})}],
            },
            {"role": "tool", "tool_call_id": "call_x", "tool_name": tool, "content": ALL, "is_error": True},
            {"role": "tool", "tool_call_id": "orphan", "tool_name": tool, "content": ALL},
            {"role": "assistant", "content": f"{ALL}\n\n```html\n{SCRIPT}\n```\n\n> {IMG}"},
        ],
    )
    rpc(
        "session.record",
        key=key,
        execution={
            "started_at": "2026-11-26T06:00:00.000Z",
            "duration_ms": 10,
            "model": SCRIPT,
            "provider": IMG,
            "usage": {"input_tokens": 1, "output_tokens": 1, "cache_read_tokens": 0, "cache_write_tokens": 0},
            "budget": {"window": 1000, "system": 10, "tools": 10, "context": 10, "messages": 10},
            "layers": [
                {
                    "name": IMG,
                    "start_ms": 0,
                    "duration_ms": 5,
                    "messages_in": 1,
                    "messages_out": 1,
                    "tokens_in": 1,
                    "tokens_out": 1,
                    "error": SCRIPT,
                }
            ],
        },
    )

    page.goto(f"/sessions?q={quote(ns)}")
    row = page.locator("tr.row").first
    expect(row.locator("a.row-link")).to_have_text(label)
    expect(row.locator("td[data-col=agent]")).to_have_text(agent)
    expect(row.locator("td[data-col=channel]")).to_have_text(IMG)
    expect(page.locator("select[name=agent] option", has_text=SVG)).to_have_count(1)
    expect(page.locator("select[name=channel] option", has_text=IMG)).to_have_count(1)
    assert_inert(page)

    click_row(page, row.locator("td[data-col=agent]"))
    expect(page.locator("h1.detail-title")).to_have_text(label)
    expect(page.locator(".detail-head [data-field=key]")).to_have_text(key)
    expect(page.locator("li.msg-user .msg-body")).to_have_text(ALL)
    expect(page.locator("li.msg-system .msg-body")).to_have_text(ALL)
    markdown = page.locator("li.msg-assistant .markdown").first
    expect(markdown.locator("strong")).to_have_text("bold")
    for card in page.locator("details.tool-card").all():
        card.locator("summary").click()
        expect(card.locator(".tool-name")).to_have_text(tool)
    expect(page.locator("details.tool-card .tool-input pre")).to_contain_text("<script>")
    for link in page.locator("#main .markdown a").all():
        link.click(modifiers=["Alt"])  # would navigate or run if a javascript: URL survived
    page.locator("li.msg-assistant .markdown b, li.msg-assistant .markdown").first.hover()
    assert_inert(page)

    page.get_by_role("tab", name="Context State").click()
    expect(page.locator(".wf-row[data-row=layer] .wf-name")).to_contain_text(IMG)
    page.get_by_role("tab", name="Metrics").click()
    expect(page.locator("[data-metric=tool_calls]")).to_be_visible()

    # compaction instructions are shown on the marker: they are text too
    page.get_by_role("tab", name="Conversation").click()
    page.get_by_role("button", name="Compact", exact=True).click()
    page.locator("dialog[open] textarea").fill(ALL)
    page.locator("dialog[open]").get_by_role("button", name="Preview again").click()
    expect(page.locator("dialog[open] [data-nothing]")).to_have_text("Nothing to compact")  # one turn
    page.keyboard.press("Escape")
    assert_inert(page)
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None


def test_pages_send_a_strict_content_security_policy(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:csp"
    rpc.seed(key, agent=f"{ns}-bot", messages=1)
    for path in ("/sessions", f"/sessions/{enc(key)}"):
        response = page.goto(path)
        assert response is not None and response.ok
        csp = response.headers.get("content-security-policy", "")
        for directive in CSP_DIRECTIVES:
            assert directive in csp, f"{path}: {directive!r} missing from {csp!r}"
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    # the shell has no inline script or style for the CSP to block
    expect(page.locator("h1.detail-title")).to_have_text(key)
    assert not [line for line in page.watch.console if "Content Security Policy" in line]
