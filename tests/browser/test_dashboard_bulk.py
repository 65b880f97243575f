"""The bulk bar: Reset / Delete behind confirmation dialogs (cancel, Esc, confirm) and Export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def select_rows(page: Page, keys: list[str]) -> None:
    for key in keys:
        page.locator(f"tr.row[data-key='{key}'] input[type=checkbox]").check()


def history_len(rpc, key: str) -> int:
    return len(rpc("session.history", key=key)["messages"])


def test_bulk_reset_cancel_escape_and_confirm(page: Page, rpc, ns: str) -> None:
    keys = [f"{ns}:r{i}" for i in range(3)]
    for key in keys:
        rpc.seed(key, agent=f"{ns}-bulk", messages=4)
    page.goto(f"/sessions?agent={ns}-bulk&sort=key&order=asc")
    expect(page.locator("tr.row")).to_have_count(3)
    expect(page.locator(".bulk-bar")).to_be_hidden()
    select_rows(page, keys[:2])
    bar = page.locator(".bulk-bar")
    expect(bar).to_be_visible()
    expect(bar.locator(".bulk-count")).to_have_text("2 sessions selected")

    dialog = page.locator("dialog[open]")
    bar.get_by_role("button", name="Reset Selected").click()
    expect(dialog).to_be_visible()
    expect(dialog.locator("h2")).to_have_text("Reset 2 sessions?")
    expect(dialog).to_contain_text("clears the conversation history of the 2 selected sessions")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert [history_len(rpc, k) for k in keys] == [4, 4, 4]

    bar.get_by_role("button", name="Reset Selected").click()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert [history_len(rpc, k) for k in keys] == [4, 4, 4]

    bar.get_by_role("button", name="Reset Selected").click()
    dialog.get_by_role("button", name="Reset 2 sessions").click()
    expect(page.locator("#toast")).to_have_text("Reset 2 sessions.")
    expect(bar).to_be_hidden()
    assert [history_len(rpc, k) for k in keys] == [0, 0, 4]
    assert [rpc("session.status", key=k)["session"]["resets"] for k in keys] == [1, 1, 0]


def test_bulk_delete_with_select_all_cancel_then_confirm(page: Page, rpc, ns: str) -> None:
    keys = [f"{ns}:d{i}" for i in range(3)]
    for key in keys:
        rpc.seed(key, agent=f"{ns}-bulk")
    page.goto(f"/sessions?agent={ns}-bulk")
    expect(page.locator("tr.row")).to_have_count(3)
    page.locator("input[data-select-all]").check()
    bar = page.locator(".bulk-bar")
    expect(bar.locator(".bulk-count")).to_have_text("3 sessions selected")

    dialog = page.locator("dialog[open]")
    bar.get_by_role("button", name="Delete Selected").click()
    expect(dialog.locator("h2")).to_have_text("Delete 3 sessions?")
    expect(dialog).to_contain_text("permanently removes the 3 selected sessions")
    expect(dialog).to_contain_text("cannot be undone")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    for key in keys:
        assert rpc("session.status", key=key)["session"]["key"] == key

    # unselect one row: the select-all box turns indeterminate, and only two are deleted
    page.locator(f"tr.row[data-key='{keys[2]}'] input[type=checkbox]").uncheck()
    assert page.locator("input[data-select-all]").evaluate("el => el.indeterminate")
    bar.get_by_role("button", name="Delete Selected").click()
    dialog.get_by_role("button", name="Delete 2 sessions").click()
    expect(page.locator("#toast")).to_have_text("Deleted 2 sessions.")
    expect(page.locator("tr.row")).to_have_count(1)
    for key in keys[:2]:
        assert rpc.error("session.status", key=key)["code"] == -32001
    assert rpc("session.status", key=keys[2])["session"]["key"] == keys[2]


def test_export_selected_downloads_one_jsonl_file(page: Page, rpc, ns: str, tmp_path: Path) -> None:
    keys = [f"{ns}:e{i}" for i in range(3)]
    for i, key in enumerate(keys):
        rpc.seed(key, agent=f"{ns}-bulk", messages=2 + i)
    page.goto(f"/sessions?agent={ns}-bulk")
    expect(page.locator("tr.row")).to_have_count(3)
    select_rows(page, keys[:2])
    with page.expect_download() as info:
        page.locator(".bulk-bar").get_by_role("button", name="Export Selected").click()
    download = info.value
    assert download.suggested_filename.endswith(".jsonl")
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines() if line.strip()]
    headers = [line for line in lines if line["type"] == "session"]
    assert sorted(h["key"] for h in headers) == sorted(keys[:2])
    assert all(h["version"] == 1 and h["agent"] == f"{ns}-bulk" for h in headers)
    messages = [line for line in lines if line["type"] == "message"]
    assert len(messages) == 2 + 3
    assert {m["content"] for m in messages} >= {f"message 0 of {keys[0]}", f"message 2 of {keys[1]}"}
