"""Failures at a glance (issue 18 item 7): an error badge with its count on rows whose turns or
tool calls errored, a "Has errors" filter, and the content search's snippet, highlighted safely."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

TOOL_FAILED = [{"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "name": "sh", "arguments": "{}"}]},
               {"role": "tool", "content": "exit 1", "tool_call_id": "c1", "tool_name": "sh", "is_error": True},
               {"role": "assistant", "content": "that failed", "is_error": True}]


def test_error_badge_and_has_errors_filter(page: Page, rpc, ns: str) -> None:
    agent = f"{ns}-err"
    rpc.seed(f"{ns}:bad", agent=agent, messages=2, extra=TOOL_FAILED)
    rpc.seed(f"{ns}:ok", agent=agent, messages=2)
    page.goto(f"/sessions?agent={agent}&sort=key&order=asc")
    rows = page.locator("tr.row")
    expect(rows).to_have_count(2)
    expect(page.locator(f"tr.row[data-key='{ns}:bad'] [data-badge=errors]")).to_have_text("2 errors")
    expect(page.locator(f"tr.row[data-key='{ns}:ok'] [data-badge=errors]")).to_have_count(0)
    page.get_by_label("Has errors").check()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-key", f"{ns}:bad")
    expect(page).to_have_url(f"/sessions?agent={agent}&errors=1&sort=key&order=asc")
    expect(page.locator(".list-total")).to_have_text("1 session")
    assert rpc("session.status", key=f"{ns}:bad")["session"]["error_count"] == 2
    page.reload()
    expect(page.get_by_label("Has errors")).to_be_checked()
    expect(rows).to_have_count(1)


def test_content_search_shows_the_snippet_highlighted_as_text(page: Page, rpc, ns: str) -> None:
    word = f"zq{ns.replace('-', '')[:8]}"
    content = f"before <img src=x onerror=window.pwned=1> the {word} happened <b>bold</b> after"
    rpc.seed(f"{ns}:snip", agent=f"{ns}-snip", messages=2, extra=[{"role": "assistant", "content": content}])
    page.goto(f"/sessions?query={word}")
    snippet = page.locator(f"tr.row[data-key='{ns}:snip'] [data-snippet]")
    expect(snippet).to_contain_text(f"the {word} happened")
    expect(snippet.locator("mark")).to_have_text([word])
    expect(snippet).to_contain_text("<img src=x onerror=window.pwned=1>")  # shown as text
    assert snippet.locator("img, b").count() == 0
    assert page.evaluate("window.pwned === undefined")
