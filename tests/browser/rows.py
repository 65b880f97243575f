"""Clicking a session row in the list, as a user does: anywhere on it."""

from __future__ import annotations

from playwright.sync_api import Locator, Page


def click_row(page: Page, cell: Locator) -> None:
    """Click a row's cell where no control is; the row link's overlay takes the click (hence
    `force`: the cell itself never receives it). First the list's late queries settle (agents,
    channels, tenants): the tenant filter appearing moves the rows, and a forced click at the
    place the cell had a moment before lands elsewhere (seen once in CI, under load)."""
    page.wait_for_load_state("networkidle")
    cell.click(force=True)
