"""Clicking a session row in the list, as a user does: anywhere on it."""

from __future__ import annotations

from playwright.sync_api import Locator, Page


def click_row(page: Page, cell: Locator) -> None:
    """Click a row's cell where no control is; the row link's overlay takes the click (hence
    `force`: the cell itself never receives it). First the list's late queries settle (agents,
    channels, tenants): a forced click does not wait for the page to be still, so anything that
    moved the rows meanwhile would send it elsewhere (seen once in CI, under load, when the
    tenant filter still sat in the toolbar and could wrap it)."""
    page.wait_for_load_state("networkidle")
    cell.click(force=True)
