"""Deep links with odd keys, the breadcrumb keeping the list's filters, back and forward."""

from __future__ import annotations

from urllib.parse import quote, urlparse

import pytest
from playwright.sync_api import Page, expect

from tests.browser.rows import click_row

pytestmark = pytest.mark.browser

ODD_KEY = "a:b/c %2F #x ?y z 🚀"


def enc(key: str) -> str:
    return quote(key, safe="-_.!~*'()")


@pytest.mark.parametrize(
    "suffix", [ODD_KEY, "100% sure?", "#only-a-hash", "agent:main:telegram:-100/thread 7", "é/ü/日本"]
)
def test_odd_keys_open_from_a_deep_link_and_survive_reload(page: Page, rpc, ns: str, suffix: str) -> None:
    key = suffix if suffix == ODD_KEY else f"{ns} {suffix}"
    rpc.seed(key, agent=f"{ns}-bot", messages=2)
    assert page.goto("/").ok
    assert page.evaluate("k => encodeURIComponent(k)", key) == enc(key)
    page.goto(f"/sessions/{enc(key)}")
    expect(page.locator("h1.detail-title")).to_have_text(key)
    expect(page.locator(".breadcrumb .crumb-current")).to_have_text(key)
    expect(page.locator(".timeline > li.msg").first).to_contain_text(f"message 0 of {key}")
    expect(page.locator(".timeline > li.msg").last).to_contain_text(f"message 1 of {key}")
    page.reload()
    expect(page.locator("h1.detail-title")).to_have_text(key)


def test_list_to_detail_with_back_and_forward(page: Page, rpc, ns: str) -> None:
    key = f"{ns} {ODD_KEY}"
    rpc.seed(key, agent=f"{ns}-bot", messages=2)
    rpc.seed(f"{ns}:plain", agent=f"{ns}-bot", messages=2)
    page.goto(f"/sessions?agent={ns}-bot&sort=key&order=desc")
    expect(page.locator("tr.row")).to_have_count(2)
    click_row(page, page.locator(f"tr.row[data-key='{key}'] td[data-col=agent]"))
    expect(page.locator("h1.detail-title")).to_have_text(key)
    assert urlparse(page.url).path == f"/sessions/{enc(key)}"

    page.go_back()
    expect(page.locator("tr.row")).to_have_count(2)
    expect(page.locator("select[name=agent]")).to_have_value(f"{ns}-bot")
    expect(page.locator("th[data-col=key]")).to_have_attribute("aria-sort", "descending")
    page.go_forward()
    expect(page.locator("h1.detail-title")).to_have_text(key)

    # the breadcrumb returns to the list with its filters and sort, even after a reload
    page.reload()
    page.locator(".breadcrumb a").click()
    expect(page.locator("tr.row")).to_have_count(2)
    assert urlparse(page.url).query == f"agent={ns}-bot&sort=key&order=desc"


def test_key_link_in_a_row_is_a_real_link(page: Page, rpc, ns: str) -> None:
    key = f"{ns}/link?x=1#frag"
    rpc.seed(key, agent=f"{ns}-bot", messages=1)
    page.goto(f"/sessions?agent={ns}-bot")
    link = page.locator("tr.row a.row-link")
    expect(link).to_have_attribute("href", f"/sessions/{enc(key)}")
    link.click()
    expect(page.locator("h1.detail-title")).to_have_text(key)


def test_deep_link_without_tenant_resolves_or_offers_the_tenants(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:elsewhere"
    rpc.seed(key, agent=f"{ns}-bot", messages=2, tenant=f"{ns}-t")
    page.goto(f"/sessions/{enc(key)}")  # no ?tenant=: the server finds the one tenant that holds it
    expect(page.locator("h1.detail-title")).to_have_text(key)
    twice = f"{ns}:twice"
    for tenant in (f"{ns}-a", f"{ns}-b"):
        rpc.seed(twice, agent=f"{ns}-bot", messages=2, tenant=tenant)
    page.goto(f"/sessions/{enc(twice)}")
    expect(page.locator("[data-state=ambiguous] a[data-tenant]")).to_have_count(2)
    page.locator(f"a[data-tenant='{ns}-b']").click()
    expect(page.locator("h1.detail-title")).to_have_text(twice)
    assert f"tenant={ns}-b" in page.url
