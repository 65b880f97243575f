"""Keyboard and accessibility: one tab stop per row (its key a real link stretched over the row),
shortcuts (/ j k Enter Esc) listed in a ? overlay."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.rows import click_row

pytestmark = pytest.mark.browser


def test_rows_have_one_tab_stop_and_shortcuts_move_between_them(page: Page, rpc, ns: str) -> None:
    keys = [f"{ns}:k{i}" for i in range(3)]
    for key in keys:
        rpc.seed(key, agent=f"{ns}-kb", messages=2)
    page.goto(f"/sessions?agent={ns}-kb&sort=key&order=asc")
    rows = page.locator("tr.row")
    expect(rows).to_have_count(3)
    stops = rows.first.evaluate(
        "tr => [...tr.querySelectorAll('a, input, button, [tabindex]')].filter(el => el.tabIndex >= 0).length")
    assert stops == 1
    assert rows.first.get_attribute("tabindex") is None
    link = rows.first.locator("a.row-link")
    expect(link).to_have_attribute("href", f"/sessions/{ns}%3Ak0")

    page.locator("body").press("j")
    expect(page.locator(f"tr.row[data-key='{keys[0]}'] a.row-link")).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.locator(f"tr.row[data-key='{keys[2]}'] a.row-link")).to_be_focused()
    page.keyboard.press("k")
    focused = page.locator(f"tr.row[data-key='{keys[1]}'] a.row-link")
    expect(focused).to_be_focused()
    page.keyboard.press(" ")
    expect(page.locator(f"tr.row[data-key='{keys[1]}'] input[type=checkbox]")).to_be_checked()
    expect(page.locator(".bulk-count")).to_have_text("1 session selected")

    page.keyboard.press("Enter")
    expect(page.locator("h1.detail-title")).to_have_text(keys[1])
    page.keyboard.press("Escape")
    expect(rows).to_have_count(3)
    page.locator("body").press("/")
    expect(page.locator("input[name=q]")).to_be_focused()
    page.keyboard.press("Escape")
    page.locator("body").press("?")
    overlay = page.locator("dialog[data-dialog=shortcuts]")
    expect(overlay).to_be_visible()
    for shortcut in ("/", "j", "k", "Enter", "Esc"):
        expect(overlay.locator("kbd", has_text=shortcut).first).to_be_visible()
    page.keyboard.press("Escape")
    expect(overlay).to_have_count(0)

    # a click anywhere on the row opens it: the link covers the row
    click_row(page, page.locator(f"tr.row[data-key='{keys[2]}'] td[data-col=channel]"))
    expect(page.locator("h1.detail-title")).to_have_text(keys[2])
