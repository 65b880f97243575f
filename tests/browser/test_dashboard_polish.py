"""Polish: markdown-free previews, one cost precision, one scroll container, toasts clear of the
content, body-sized headings in compaction markers, errors announced assertively."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def test_previews_strip_markdown_and_costs_share_one_precision(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:md"
    rpc.seed(key, agent=f"{ns}-polish", messages=0, extra=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "## Plan\n**ingest-worker** uses `retry()` — see [docs](http://x)"},
    ])
    rpc("session.record", key=key, execution={"model": "gpt-4o", "cost_usd": 0.086,
                                               "usage": {"input_tokens": 10, "output_tokens": 5}})
    page.goto(f"/sessions?agent={ns}-polish")
    row = page.locator(f"tr.row[data-key='{key}']")
    expect(row.locator(".preview")).to_have_text("Plan ingest-worker uses retry() — see docs")
    expect(row.locator("[data-col=cost_usd]")).to_have_text("$0.08600")


def test_one_scroll_container_and_the_toast_clear_of_content(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:scroll"
    rpc.seed(key, agent=f"{ns}-polish2", messages=120)
    page.goto(f"/sessions/{quote(key, safe='')}")
    expect(page.locator(".timeline > li.msg")).to_have_count(100)
    scroll = page.evaluate("() => [document.scrollingElement.scrollHeight, innerHeight]")
    assert scroll[0] <= scroll[1], f"the page scrolls as well as the conversation: {scroll}"
    box = page.locator(".conversation").evaluate("el => el.scrollHeight > el.clientHeight")
    assert box
    page.get_by_role("button", name="Refresh").click()
    page.evaluate("() => import('/static/dom.js').then((m) => m.notify('Saved a thing.'))")
    toast = page.locator("#toast").bounding_box()
    header = page.locator(".app-header").bounding_box()
    assert toast and header and toast["y"] + toast["height"] <= header["y"] + header["height"]


def test_errors_are_announced_in_an_assertive_region(page: Page, rpc, ns: str) -> None:
    page.goto(f"/sessions?agent={ns}-none")
    expect(page.locator("#toast-error")).to_have_attribute("aria-live", "assertive")
    page.evaluate("() => import('/static/dom.js').then((m) => m.notify('It broke.', { kind: 'error' }))")
    expect(page.get_by_role("alert").filter(has_text="It broke.")).to_be_visible()
    expect(page.locator("#toast")).to_be_hidden()
    page.evaluate("() => import('/static/dom.js').then((m) => m.notify('Fine again.'))")
    expect(page.locator("#toast[role=status]")).to_have_text("Fine again.")
    expect(page.locator("#toast-error")).to_be_hidden()


def test_headings_in_a_compaction_summary_are_body_sized(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:marker"
    words = " ".join(f"word{i}" for i in range(60))
    rpc.seed(key, agent=f"{ns}-polish3", messages=0, extra=[
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} {words}"} for i in range(16)
    ])
    assert rpc("session.compact", key=key, keep_recent_tokens=200)["compacted"]
    page.goto(f"/sessions/{quote(key, safe='')}")
    marker = page.locator(".compaction-marker .marker-summary").first
    expect(marker).to_be_visible()
    sizes = marker.evaluate("""el => {
        const h = document.createElement('h2'); h.textContent = 'Summary'; el.prepend(h);
        return [getComputedStyle(h).fontSize, getComputedStyle(el).fontSize];
    }""")
    assert sizes[0] == sizes[1], sizes
