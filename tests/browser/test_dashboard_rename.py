"""Rename: session.label sets or clears the label, from the detail page and from the CLI; audited."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def cli(server_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sessionscope.cli", *args, "--url", server_url],
                          capture_output=True, text=True, check=False, timeout=60)


def test_rename_from_the_detail_page_and_the_cli(page: Page, rpc, ns: str, server_url: str) -> None:
    key = f"{ns}:rename"
    rpc.seed(key, agent=f"{ns}-ren", messages=2)
    page.goto(f"/sessions/{quote(key, safe='')}")
    expect(page.locator(".detail-title")).to_have_text(key)
    page.get_by_role("button", name="Rename").click()
    box = page.get_by_role("textbox", name="Session label")
    expect(box).to_be_focused()
    box.fill("Ingest worker triage")
    box.press("Enter")
    expect(page.locator(".detail-title")).to_have_text("Ingest worker triage")
    expect(page.locator("[data-field=key]")).to_have_text(key)
    expect(page.locator(".crumb-current")).to_have_text("Ingest worker triage")
    assert rpc("session.status", key=key)["session"]["label"] == "Ingest worker triage"
    entry = rpc("audit.list", action="session.label")["entries"][0]
    assert entry["keys"] == [key] and entry["outcome"] == "ok"

    page.get_by_role("button", name="Rename").click()
    page.get_by_role("button", name="Clear label").click()
    expect(page.locator(".detail-title")).to_have_text(key)
    assert rpc("session.status", key=key)["session"]["label"] is None

    done = cli(server_url, "label", key, "From the CLI")
    assert done.returncode == 0, done.stderr
    assert rpc("session.status", key=key)["session"]["label"] == "From the CLI"
    page.goto(f"/sessions?agent={ns}-ren")
    expect(page.locator(f"tr.row[data-key='{key}'] .row-link")).to_have_text("From the CLI")
    done = cli(server_url, "label", key, "--clear")
    assert done.returncode == 0, done.stderr
    assert rpc("session.status", key=key)["session"]["label"] is None
    bad = cli(server_url, "label", key)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "--clear" in bad.stderr
    assert rpc.error("session.label", key=key, label="x" * 513)["data"]["field"] == "label"
