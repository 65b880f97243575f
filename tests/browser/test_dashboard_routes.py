"""Per-tab routes: /sessions/:key/context and /sessions/:key/metrics, deep links, back/forward."""

from __future__ import annotations

from urllib.parse import quote, urlparse

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def enc(key: str) -> str:
    return quote(key, safe="-_.!~*'()")


def test_each_tab_has_its_own_path_with_back_and_forward(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:routes/a b"
    rpc.seed(key, agent=f"{ns}-routes", messages=2)
    base = f"/sessions/{enc(key)}"
    page.goto(f"{base}/metrics")
    expect(page.get_by_role("tab", name="Metrics")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-metrics [data-metric=resets] dd")).to_have_text("0")
    assert page.watch.count("session.context") == 0

    page.get_by_role("tab", name="Context State").click()
    expect(page.locator("#panel-context .segbar")).to_be_visible()
    assert urlparse(page.url).path == f"{base}/context"
    page.get_by_role("tab", name="Conversation").click()
    assert urlparse(page.url).path == base

    page.go_back()
    expect(page.get_by_role("tab", name="Context State")).to_have_attribute("aria-selected", "true")
    assert urlparse(page.url).path == f"{base}/context"
    page.go_back()
    expect(page.get_by_role("tab", name="Metrics")).to_have_attribute("aria-selected", "true")
    page.go_forward()
    expect(page.get_by_role("tab", name="Context State")).to_have_attribute("aria-selected", "true")
    assert page.watch.count("session.status") == 1, "switching tabs through history keeps the page"

    page.goto(f"{base}/context")
    expect(page.get_by_role("tab", name="Context State")).to_have_attribute("aria-selected", "true")
    page.goto(f"{base}?tab=metrics")  # the old query form still works, shown as the path form
    expect(page.get_by_role("tab", name="Metrics")).to_have_attribute("aria-selected", "true")
    assert urlparse(page.url).path == f"{base}/metrics"
    page.goto(f"{base}/nonsense")
    expect(page.locator(".state-error")).to_contain_text("This page does not exist.")
