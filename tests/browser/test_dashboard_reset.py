"""Reset, visibly: after a reset the list, the info bar and the Context State tab show the live
conversation (empty), with the stored messages counted beside it."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

EXECUTION = {
    "started_at": "2026-11-26T06:00:00.000Z",
    "duration_ms": 420,
    "model": "gpt-4o",
    "provider": "openai",
    "usage": {"input_tokens": 1200, "output_tokens": 300},
    "budget": {"window": 128000, "system": 2000, "tools": 3000, "context": 5000, "messages": 20000},
    "layers": [],
}


def test_reset_from_detail_shows_live_conversation(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:reset-one"
    rpc.seed(key, agent=f"{ns}-reset", messages=60)
    rpc("session.record", key=key, execution=EXECUTION)
    page.goto(f"/sessions/{quote(key, safe='')}")
    info = page.locator(".info-bar [data-field=message_count] dd")
    expect(info).to_have_text("60")
    page.get_by_role("button", name="Reset", exact=True).click()
    page.locator("dialog[open]").get_by_role("button", name="Reset session").click()
    expect(info).to_have_text("0 live · 60 kept for audit")

    page.get_by_role("tab", name="Context State").click()
    budget = page.locator("#panel-context .budget")
    expect(budget).to_contain_text("no execution has run since the reset")
    expect(budget.locator(".legend [data-segment=system] .legend-value")).to_have_text("0")

    session = rpc("session.status", key=key)["session"]
    assert (session["live_messages"], session["message_count"], session["preview"]) == (0, 60, None)
    assert rpc("session.context", key=key)["budget"]["since_reset"] is True

    page.goto(f"/sessions?agent={ns}-reset")
    row = page.locator(f"tr.row[data-key='{key}']")
    expect(row.locator("[data-col=message_count]")).to_have_text("0 live · 60 kept for audit")
    expect(row.locator(".preview")).to_have_count(0)


def test_bulk_reset_refreshes_the_rows_it_touched(page: Page, rpc, ns: str) -> None:
    keys = [f"{ns}:b{i}" for i in range(3)]
    for key in keys:
        rpc.seed(key, agent=f"{ns}-bulkreset", messages=4)
    page.goto(f"/sessions?agent={ns}-bulkreset&sort=key&order=asc")
    rows = page.locator("tr.row")
    expect(rows).to_have_count(3)
    expect(rows.locator(".preview")).to_have_count(3)
    for key in keys[:2]:
        page.locator(f"tr.row[data-key='{key}'] input[type=checkbox]").check()
    page.locator(".bulk-bar").get_by_role("button", name="Reset Selected").click()
    page.locator("dialog[open]").get_by_role("button", name="Reset 2 sessions").click()
    for key in keys[:2]:
        row = page.locator(f"tr.row[data-key='{key}']")
        expect(row.locator("[data-col=message_count]")).to_have_text("0 live · 4 kept for audit")
        expect(row.locator(".preview")).to_have_count(0)
    untouched = page.locator(f"tr.row[data-key='{keys[2]}']")
    expect(untouched.locator("[data-col=message_count]")).to_have_text("4")
    expect(untouched.locator(".preview")).to_have_count(1)
    assert [rpc("session.status", key=k)["session"]["live_messages"] for k in keys] == [0, 0, 4]
