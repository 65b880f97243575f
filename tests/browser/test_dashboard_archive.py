"""Archive (issue 18 item 6): a row menu (archive, delete) with confirmations, the list's Archived
filter, and the detail page's Archived badge and Unarchive action; each change checked in the store."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def test_row_menu_archives_and_deletes_with_confirmation(page: Page, rpc, ns: str) -> None:
    agent = f"{ns}-arc"
    keys = [f"{ns}:a{i}" for i in range(3)]
    for key in keys:
        rpc.seed(key, agent=agent, messages=2)
    page.goto(f"/sessions?agent={agent}&sort=key&order=asc")
    rows = page.locator("tr.row")
    expect(rows).to_have_count(3)
    # Still one tab stop per row: the menu button is reached from the row's link.
    stops = rows.first.evaluate(
        "tr => [...tr.querySelectorAll('a, input, button, [tabindex]')].filter(el => el.tabIndex >= 0).length")
    assert stops == 1

    # Mouse: the menu button, then Archive, then the confirmation.
    first = page.locator(f"tr.row[data-key='{keys[0]}']")
    button = first.locator("button[aria-haspopup=menu]")
    expect(button).to_have_attribute("aria-expanded", "false")
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    menu = page.get_by_role("menu")
    expect(menu.get_by_role("menuitem")).to_have_text(["Archive…", "Delete…"])
    expect(menu.get_by_role("menuitem", name="Archive…")).to_be_focused()
    menu.get_by_role("menuitem", name="Archive…").click()
    dialog = page.locator("dialog[data-dialog=confirm]")
    expect(dialog).to_contain_text("nothing is deleted")
    dialog.get_by_role("button", name="Archive session").click()
    expect(rows).to_have_count(2)
    status = rpc("session.status", key=keys[0])["session"]
    assert status["archived_at"] is not None and status["message_count"] == 2
    assert [s["key"] for s in rpc("session.list", agent=agent, archived="only")["sessions"]] == [keys[0]]

    # Keyboard: Shift+F10 on the focused row opens its menu; arrows move; Esc closes it.
    page.locator("body").press("j")
    link = page.locator(f"tr.row[data-key='{keys[1]}'] a.row-link")
    expect(link).to_be_focused()
    page.keyboard.press("Shift+F10")
    expect(page.get_by_role("menuitem", name="Archive…")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("menu")).to_have_count(0)
    expect(link).to_be_focused()
    expect(page.locator("h1#list-title")).to_be_visible()  # Esc closed the menu, nothing else
    page.keyboard.press("Shift+F10")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("menuitem", name="Delete…")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog).to_contain_text("cannot be undone")
    dialog.get_by_role("button", name="Cancel").click()  # cancelled: nothing happens
    expect(rows).to_have_count(2)
    assert rpc("session.status", key=keys[1])["session"]["key"] == keys[1]
    page.locator(f"tr.row[data-key='{keys[1]}'] button[aria-haspopup=menu]").click()
    page.get_by_role("menuitem", name="Delete…").click()
    dialog.get_by_role("button", name="Delete session").click()
    expect(rows).to_have_count(1)
    assert rpc.error("session.status", key=keys[1])["code"] == -32001

    # The Archived filter shows the archived session, with its badge and an Unarchive item.
    page.get_by_label("Archived", exact=True).select_option("only")
    expect(page).to_have_url(f"/sessions?agent={agent}&archived=only&sort=key&order=asc")
    expect(rows).to_have_count(1)
    expect(first.locator("[data-badge=archived]")).to_have_text("Archived")
    # The agent filter counts what it would list under the archived filter in force.
    agent_filter = page.get_by_label("Agent", exact=True)
    expect(agent_filter.locator(f"option[value='{agent}']")).to_have_text(f"{agent} (1)")
    first.locator("button[aria-haspopup=menu]").click()
    page.get_by_role("menuitem", name="Unarchive").click()
    expect(rows).to_have_count(0)
    assert rpc("session.status", key=keys[0])["session"]["archived_at"] is None
    page.get_by_label("Archived", exact=True).select_option("include")
    expect(rows).to_have_count(2)
    expect(agent_filter.locator(f"option[value='{agent}']")).to_have_text(f"{agent} (2)")
    entries = rpc("audit.list", action="session.archive")["entries"]
    assert entries[0]["keys"] == [keys[0]] and entries[0]["outcome"] == "ok"


def test_detail_page_shows_archived_and_unarchives(page: Page, rpc, ns: str, server_url: str) -> None:
    key = f"{ns}:det"
    rpc.seed(key, agent=f"{ns}-arcd", messages=2)
    page.goto(f"/sessions/{quote(key, safe='')}")
    expect(page.locator(".detail-title")).to_have_text(key)
    expect(page.locator("[data-badge=archived]")).to_have_count(0)
    page.get_by_role("button", name="Archive", exact=True).click()
    page.locator("dialog[data-dialog=confirm]").get_by_role("button", name="Archive session").click()
    expect(page.locator(".title-row [data-badge=archived]")).to_have_text("Archived")
    assert rpc("session.status", key=key)["session"]["archived_at"] is not None
    page.get_by_role("button", name="Unarchive").click()
    expect(page.locator("[data-badge=archived]")).to_have_count(0)
    expect(page.get_by_role("button", name="Archive", exact=True)).to_be_visible()
    assert rpc("session.status", key=key)["session"]["archived_at"] is None

    # The CLI: archive, ls --archived, unarchive.
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sessionscope.cli", *args, "--url", server_url],
                              capture_output=True, text=True, check=False, timeout=60)
    done = cli("archive", key)
    assert done.returncode == 0 and "archived 1 session(s)" in done.stdout, done.stderr
    listed = cli("ls", "--archived", "--agent", f"{ns}-arcd", "--json")
    assert key in listed.stdout and cli("ls", "--agent", f"{ns}-arcd", "--json").stdout.count(key) == 0
    page.reload()
    expect(page.locator(".title-row [data-badge=archived]")).to_have_text("Archived")
    done = cli("unarchive", key)
    assert done.returncode == 0 and "unarchived 1 session(s)" in done.stdout, done.stderr
