"""Tool cards say what happened before they are expanded: status, duration, one line of input
and of output; long outputs are cut with "Show all"."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

LONG = "\n".join(f"line {i}: " + "x" * 60 for i in range(200))


def test_collapsed_tool_cards_show_status_duration_and_previews(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:cards"
    rpc.seed(key, agent=f"{ns}-cards", messages=0, extra=[
        {"role": "user", "content": "look around", "timestamp": "2026-11-26T06:00:00.000Z"},
        {"role": "assistant", "content": "", "timestamp": "2026-11-26T06:00:01.000Z", "tool_calls": [
            {"id": "c_ls", "name": "ls", "arguments": '{"path": "/etc",\n "all": true}'},
            {"id": "c_cat", "name": "cat", "arguments": '{"path": "/var/log/big"}'},
            {"id": "c_rm", "name": "rm", "arguments": '{"path": "/"}'},
        ]},
        {"role": "tool", "tool_call_id": "c_ls", "tool_name": "ls", "content": "hosts\npasswd",
         "timestamp": "2026-11-26T06:00:02.500Z"},
        {"role": "tool", "tool_call_id": "c_cat", "tool_name": "cat", "content": LONG,
         "timestamp": "2026-11-26T06:00:01.340Z"},
        {"role": "tool", "tool_call_id": "c_rm", "tool_name": "rm", "content": "permission denied",
         "is_error": True, "timestamp": "2026-11-26T06:00:01.000Z"},
    ])
    page.goto(f"/sessions/{quote(key, safe='')}")
    ls = page.locator("details.tool-card[data-tool-name='ls']")
    expect(ls.locator("summary [data-status]")).to_have_text("ok")
    expect(ls.locator("summary .tool-duration")).to_have_text("1.5 s")
    expect(ls.locator(".tool-preview-args")).to_have_text('{"path":"/etc","all":true}')
    expect(ls.locator(".tool-preview-result")).to_have_text("→ hosts passwd")
    expect(ls.locator(".tool-preview-result")).to_be_visible()

    rm = page.locator("details.tool-card[data-tool-name='rm']")
    expect(rm.locator("summary [data-status=error]")).to_be_visible()
    expect(rm.locator("summary .badge-error")).to_have_text("error")
    expect(rm.locator(".tool-preview-result")).to_have_text("→ permission denied")
    expect(rm.locator(".tool-duration")).to_have_count(0)  # same time as the call: not known

    cat = page.locator("details.tool-card[data-tool-name='cat']")
    expect(cat.locator(".tool-duration")).to_have_text("340 ms")
    cat.locator("summary").click()
    out = cat.locator(".tool-output pre")
    expect(out).to_be_visible()
    cut = out.inner_text()
    assert cut.endswith("…") and len(cut) < len(LONG)
    cat.locator(".tool-output [data-action=show-all]").click()
    expect(out).to_have_text(LONG)
    expect(cat.locator(".tool-preview")).to_be_hidden()
