"""The session list: search, dropdowns, sorting, paging, row opening, states, no polling."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, urlparse

import pytest
from playwright.sync_api import Page, expect

from sessionscope.errors import InvalidParams, Unauthorized
from sessionscope.rpc import protocol
from tests.browser.rows import click_row

pytestmark = pytest.mark.browser


def enc(key: str) -> str:
    return quote(key, safe="-_.!~*'()")  # what encodeURIComponent produces


def row_keys(page: Page) -> list[str]:
    return page.locator("tr.row").evaluate_all("rows => rows.map(r => r.dataset.key)")


def query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def test_search_filters_as_you_type_debounced_and_kept_in_the_url(page: Page, rpc, ns: str) -> None:
    rpc.seed(f"{ns}:alpha:1", agent=f"{ns}-bot", channel="telegram")
    rpc.seed(f"{ns}:alpha:2", agent=f"{ns}-bot", channel="slack")
    rpc.seed(f"{ns}:beta:1", agent=f"{ns}-other", channel="slack")
    page.goto("/sessions")
    expect(page.locator("tr.row").first).to_be_visible()
    before = page.watch.count("session.list")

    page.locator("input[name=q]").press_sequentially(f"{ns}:alpha", delay=20)
    expect(page.locator("tr.row")).to_have_count(2)
    assert sorted(row_keys(page)) == [f"{ns}:alpha:1", f"{ns}:alpha:2"]
    page.wait_for_timeout(400)
    assert page.watch.count("session.list") == before + 1, "typing must be debounced into one call"
    assert page.watch.params("session.list")[-1]["search"] == f"{ns}:alpha"
    assert query(page)["q"] == [f"{ns}:alpha"]

    page.reload()
    expect(page.locator("input[name=q]")).to_have_value(f"{ns}:alpha")
    expect(page.locator("tr.row")).to_have_count(2)

    # the same box matches agent names too
    page.locator("input[name=q]").fill(f"{ns}-other")
    expect(page.locator("tr.row")).to_have_count(1)
    assert row_keys(page) == [f"{ns}:beta:1"]


def test_message_text_search_finds_sessions_by_what_was_said(page: Page, rpc, ns: str) -> None:
    word = f"zebra{ns.replace('-', '')}"
    rpc.seed(f"{ns}:said", agent=f"{ns}-bot", extra=[{"role": "user", "content": f"the {word} escaped again"}])
    rpc.seed(f"{ns}:silent", agent=f"{ns}-bot")
    page.goto("/sessions")
    expect(page.locator("tr.row").first).to_be_visible()

    page.locator("input[name=query]").press_sequentially(word, delay=20)
    expect(page.locator("tr.row")).to_have_count(1)
    assert row_keys(page) == [f"{ns}:said"]
    params = page.watch.params("session.list")[-1]
    assert params["query"] == word and "search" not in params
    assert query(page)["query"] == [word]

    page.reload()  # a deep link keeps the message search
    expect(page.locator("input[name=query]")).to_have_value(word)
    expect(page.locator("tr.row")).to_have_count(1)

    page.locator("input[name=query]").fill("nothing-says-this-word")
    page.locator("input[name=query]").press("Enter")
    expect(page.locator("tr.row")).to_have_count(0)
    expect(page.get_by_text("No sessions match these filters.")).to_be_visible()


def test_agent_and_channel_dropdowns_filter_and_default_to_all(page: Page, rpc, ns: str) -> None:
    a1, a2, tg, dc = f"{ns}-a1", f"{ns}-a2", f"{ns}-telegram", f"{ns}-discord"
    rpc.seed(f"{ns}:1", agent=a1, channel=tg)
    rpc.seed(f"{ns}:2", agent=a1, channel=dc)
    rpc.seed(f"{ns}:3", agent=a2, channel=tg)
    page.goto("/sessions")
    agent, channel = page.locator("select[name=agent]"), page.locator("select[name=channel]")
    expect(agent).to_have_value("")
    expect(agent.locator("option").first).to_have_text("All agents")
    expect(channel.locator("option").first).to_have_text("All channels")
    expect(agent.locator(f"option[value='{a1}']")).to_have_text(f"{a1} (2)")
    expect(channel.locator(f"option[value='{tg}']")).to_have_text(f"{tg} (2)")

    agent.select_option(a1)
    expect(page.locator("tr.row")).to_have_count(2)
    assert sorted(row_keys(page)) == [f"{ns}:1", f"{ns}:2"]
    assert query(page)["agent"] == [a1]

    channel.select_option(tg)
    expect(page.locator("tr.row")).to_have_count(1)
    assert row_keys(page) == [f"{ns}:1"]
    assert page.watch.params("session.list")[-1].items() >= {"agent": a1, "channel": tg}.items()

    page.reload()
    expect(page.locator("tr.row")).to_have_count(1)
    expect(agent).to_have_value(a1)
    expect(channel).to_have_value(tg)

    agent.select_option("")
    expect(page.locator("tr.row")).to_have_count(2)
    assert sorted(row_keys(page)) == [f"{ns}:1", f"{ns}:3"]
    assert "agent" not in query(page)


def test_sorting_is_done_by_the_server_and_kept_in_the_url(page: Page, rpc, ns: str) -> None:
    agent = f"{ns}-sort"
    for key, n in (("b", 2), ("c", 6), ("a", 4)):
        rpc.seed(f"{ns}:{key}", agent=agent, messages=n)
    page.goto(f"/sessions?agent={agent}")
    expect(page.locator("tr.row")).to_have_count(3)

    def counts() -> list[int]:
        return [int(t.replace(",", "")) for t in page.locator("td[data-col=message_count]").all_inner_texts()]

    header = page.locator("th[data-col=message_count]")
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(page.locator("td[data-col=message_count]").first).to_have_text("6")
    assert counts() == [6, 4, 2]
    assert query(page)["sort"] == ["message_count"]
    assert page.watch.params("session.list")[-1]["sort"] == "message_count"

    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("td[data-col=message_count]").first).to_have_text("2")
    assert counts() == [2, 4, 6]
    assert query(page)["order"] == ["asc"]

    page.locator("th[data-col=key] button").click()
    expect(page.locator("th[data-col=key]")).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("tr.row").first).to_have_attribute("data-key", f"{ns}:a")
    assert row_keys(page) == [f"{ns}:a", f"{ns}:b", f"{ns}:c"]

    page.reload()
    expect(page.locator("tr.row").first).to_have_attribute("data-key", f"{ns}:a")
    assert row_keys(page) == [f"{ns}:a", f"{ns}:b", f"{ns}:c"]
    for col in ("agent", "channel", "total_tokens", "cost_usd", "updated_at"):
        page.locator(f"th[data-col={col}] button").click()
        expect(page.locator(f"th[data-col={col}]")).not_to_have_attribute("aria-sort", "none")
        assert page.watch.params("session.list")[-1]["sort"] == col


def test_load_more_pages_with_the_cursor_and_shows_the_total(page: Page, rpc, ns: str) -> None:
    agent = f"{ns}-paging"
    for i in range(55):
        rpc.seed(f"{ns}:{i:02}", agent=agent, messages=1)
    page.goto(f"/sessions?agent={agent}")
    expect(page.locator("tr.row")).to_have_count(50)
    expect(page.locator(".list-shown")).to_have_text("Showing 50 of 55")
    expect(page.locator(".list-total")).to_have_text("55 sessions")
    page.get_by_role("button", name="Load more").click()
    expect(page.locator("tr.row")).to_have_count(55)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    assert page.watch.params("session.list")[-1].get("cursor")
    assert len(set(row_keys(page))) == 55


def test_row_click_opens_detail_but_the_checkbox_does_not(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:row"
    rpc.seed(key, agent=f"{ns}-bot")
    page.goto(f"/sessions?q={ns}")
    row = page.locator("tr.row").first
    row.locator("input[type=checkbox]").click()
    expect(page.locator(".bulk-bar")).to_be_visible()
    assert urlparse(page.url).path == "/sessions"
    click_row(page, row.locator("td[data-col=agent]"))
    expect(page).to_have_url(re.compile(re.escape(f"/sessions/{enc(key)}") + "$"))
    expect(page.locator("h1.detail-title")).to_have_text(key)

    page.go_back()
    expect(page.locator("input[name=q]")).to_have_value(ns)
    page.locator("tr.row a.row-link").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("h1.detail-title")).to_have_text(key)


def test_keyboard_tab_reaches_rows_with_visible_focus(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:kbd"
    rpc.seed(key, agent=f"{ns}-bot")
    page.goto(f"/sessions?q={ns}")
    expect(page.locator("tr.row")).to_have_count(1)
    page.locator("input[name=q]").focus()
    for _ in range(25):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.matches('tr.row a.row-link')"):
            break
    else:
        pytest.fail("Tab never reached a table row")
    # The ring is drawn on the row that holds the focused link (the link covers the row).
    outline = page.evaluate("getComputedStyle(document.activeElement.closest('tr')).outlineStyle")
    assert outline not in ("none", ""), "a focused row must show a focus ring"
    page.keyboard.press("Enter")
    expect(page.locator("h1.detail-title")).to_have_text(key)


def test_empty_loading_error_and_retry_states(page: Page, rpc, ns: str) -> None:
    page.goto(f"/sessions?q={ns}-nothing-matches")
    expect(page.locator(".state-empty")).to_contain_text("No sessions match these filters.")

    rpc.seed(f"{ns}:state", agent=f"{ns}-bot")
    held = []
    failing = {"on": True}

    def handler(route):
        body = route.request.post_data_json or {}
        if body.get("method") != "session.list":
            route.continue_()
        elif failing["on"]:
            route.fulfill(
                status=200,
                content_type="application/json",
                # the shape the server sends, made by its own serializer
                json=protocol.response(body.get("id"), error=InvalidParams("sort", "not one of the allowed columns")),
            )
        else:
            held.append(route)

    page.route("**/rpc", handler)
    page.goto(f"/sessions?q={ns}:state")
    expect(page.locator(".state-error")).to_contain_text("Could not load sessions.")
    expect(page.locator(".state-error")).to_contain_text("sort: not one of the allowed columns")
    failing["on"] = False
    page.get_by_role("button", name="Retry").click()
    expect(page.locator(".session-table")).to_have_attribute("aria-busy", "true")
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(50)
    expect(page.locator(".state-error")).to_have_count(0)
    held.pop().continue_()
    expect(page.locator("tr.row")).to_have_count(1)
    expect(page.locator(".session-table")).not_to_have_attribute("aria-busy", "true")
    page.unroute("**/rpc")


def test_the_list_never_polls_and_refreshes_on_demand(page: Page, rpc, ns: str) -> None:
    rpc.seed(f"{ns}:1", agent=f"{ns}-bot")
    page.goto(f"/sessions?agent={ns}-bot")
    expect(page.locator("tr.row")).to_have_count(1)
    page.wait_for_timeout(2500)
    assert page.watch.count("session.list") == 1
    rpc.seed(f"{ns}:2", agent=f"{ns}-bot")
    expect(page.locator("tr.row")).to_have_count(1)
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("tr.row")).to_have_count(2)
    assert page.watch.count("session.list") == 2


def test_tenant_filter_appears_when_several_tenants_exist(page: Page, rpc, ns: str) -> None:
    tenant = f"{ns}-tenant"
    rpc.seed(f"{ns}:default-tenant", agent=f"{ns}-bot")
    rpc.seed(f"{ns}:other-tenant", agent=f"{ns}-bot", tenant=tenant)
    page.goto("/sessions")
    select = page.locator("select[name=tenant]")
    expect(select).to_be_visible()
    select.select_option(tenant)
    expect(page.locator("tr.row")).to_have_count(1)
    assert row_keys(page) == [f"{ns}:other-tenant"]
    assert query(page)["tenant"] == [tenant]
    click_row(page, page.locator("tr.row").first.locator("td[data-col=agent]"))
    expect(page.locator("h1.detail-title")).to_have_text(f"{ns}:other-tenant")
    assert parse_qs(urlparse(page.url).query)["tenant"] == [tenant]


def test_the_tenant_filter_appearing_late_does_not_move_the_rows(page: Page, rpc, ns: str) -> None:
    # tenant.list answers after the rows (they come first); when it shows the filter, the rows
    # under the user's pointer must stay where they are (a click once landed on the wrong row).
    rpc.seed(f"{ns}:default-tenant", agent=f"{ns}-bot")
    rpc.seed(f"{ns}:other-tenant", agent=f"{ns}-bot", tenant=f"{ns}-tenant")
    held: list = []

    def handler(route) -> None:
        body = route.request.post_data_json or {}
        if isinstance(body, dict) and body.get("method") == "tenant.list":
            held.append(route)
        else:
            route.continue_()

    page.route("**/rpc", handler)
    page.goto(f"/sessions?q={ns}")
    expect(page.locator("tr.row")).to_have_count(2)
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "tenant.list was never asked"
    select = page.locator("select[name=tenant]")
    expect(select).not_to_be_visible()
    before = page.locator(".session-table").bounding_box()
    held.pop().continue_()
    expect(select).to_be_visible()
    after = page.locator(".session-table").bounding_box()
    assert before is not None and after is not None
    assert after["y"] == before["y"], f"the rows moved from y={before['y']} to y={after['y']}"
    page.unroute("**/rpc")


def test_an_unauthorized_rpc_sends_the_browser_to_login(page: Page, ns: str) -> None:
    page.route(
        "**/rpc",
        lambda route: route.fulfill(
            status=401,
            content_type="application/json",
            json=protocol.response(None, error=Unauthorized("unauthorized: your session has ended; log in again")),
        ),
    )
    # stand in for the login page, whatever the server's own does
    page.route("**/login?*", lambda route: route.fulfill(status=200, content_type="text/html", body="login"))
    page.goto(f"/sessions?agent={ns}")
    page.wait_for_url("**/login?next=*")
    assert query(page)["next"] == [f"/sessions?agent={ns}"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_theme_follows_the_system(browser, server_url: str, scheme: str) -> None:
    context = browser.new_context(base_url=server_url, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto("/sessions")
        expect(page.locator("h1#list-title")).to_be_visible()
        rgb = page.evaluate("getComputedStyle(document.body).backgroundColor")
        channels = [int(v) for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
        assert (sum(channels) / 3 > 128) == (scheme == "light"), rgb
    finally:
        context.close()
