"""The Compact dialog: a dry run first (cut, tokens, rendered summary), a keep the operator
chooses (tokens or turns), "Nothing to compact" with a smaller keep, and the marker drawn inline."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def turns(n: int, key: str, words: int = 500) -> list[dict]:
    """n user/assistant turns, each with a tool call, large enough that the default keep cuts."""
    text = " ".join(f"word{j}" for j in range(words))
    out: list[dict] = []
    for i in range(n):
        out += [
            {"role": "user", "content": f"Turn {i}: please check services/api/handler_{i}.py for {key}. {text}"},
            {"role": "assistant", "content": f"Reading handler_{i}.",
             "tool_calls": [{"id": f"c{i}", "name": "read_file",
                             "arguments": f'{{"path": "services/api/handler_{i}.py"}}'}]},
            {"role": "tool", "tool_call_id": f"c{i}", "tool_name": "read_file",
             "content": f"timeout_ms = {100 + i}\n{text}"},
            {"role": "assistant", "content": f"We decided to keep timeout_ms at {100 + i} ms in handler_{i}."},
        ]
    return out


def test_dry_run_preview_keep_choice_and_inline_marker(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:compact-dialog"
    rpc.seed(key, agent=f"{ns}-bot", messages=0, extra=turns(16, key))
    page.goto(f"/sessions/{quote(key, safe='')}")
    expect(page.locator("h1.detail-title")).to_have_text(key)

    page.get_by_role("button", name="Compact", exact=True).click()
    dialog = page.locator("dialog[open][data-dialog=compact]")
    counts = dialog.locator("[data-preview-counts]")
    # The dry run with the agent's default keep: where it cuts, tokens before and after.
    expect(counts).to_contain_text("would be summarized")
    expect(counts).to_contain_text("live tokens")
    # The summary is the server's sanitized HTML, not raw markdown.
    rendered = dialog.locator("[data-summary=rendered]")
    expect(rendered.locator("h2").first).to_have_text("Goal and requests")
    expect(rendered).not_to_contain_text("## ")
    assert rpc("session.compactions", key=key)["compactions"] == []  # a dry run writes nothing
    default_params = page.watch.params("session.compact")[-1]  # type: ignore[attr-defined]
    assert default_params.get("dry_run") is True and "keep_recent_tokens" not in default_params

    # A keep so large that nothing is compacted: the dialog says why and offers a smaller keep.
    dialog.locator("input[name=keep_amount]").fill("10000000")
    dialog.locator("input[name=keep_amount]").dispatch_event("change")
    expect(dialog.locator("[data-nothing]")).to_have_text("Nothing to compact")
    expect(dialog).to_contain_text("keep_recent_tokens=10000000 keeps all")
    expect(dialog.get_by_role("button", name="Compact", exact=True)).to_be_disabled()
    dialog.locator("[data-action=use-suggestion]").click()
    expect(dialog.locator("select[name=keep_mode]")).to_have_value("turns")
    expect(counts).to_contain_text("4 messages before message #5")

    # Keep the last two turns: the preview moves the cut, and that is what gets compacted.
    dialog.locator("input[name=keep_amount]").fill("2")
    dialog.locator("input[name=keep_amount]").dispatch_event("change")
    first_kept = 16 * 4 - 2 * 4 + 1
    expect(counts).to_contain_text(f"before message #{first_kept}")
    assert page.watch.params("session.compact")[-1]["keep_recent_turns"] == 2  # type: ignore[attr-defined]
    dialog.get_by_role("button", name="Compact", exact=True).click()

    result = page.locator("dialog[open][data-dialog=message]")
    expect(result.locator("h2").first).to_have_text("Session compacted")
    expect(result.locator("[data-summary=rendered] h2").first).to_have_text("Goal and requests")
    expect(result).not_to_contain_text("## ")
    result.get_by_role("button", name="OK").click()

    (compaction,) = rpc("session.compactions", key=key)["compactions"]
    assert compaction["first_kept_seq"] == first_kept
    marker = page.locator("li.compaction-marker")
    expect(marker).to_have_count(1)
    # Drawn where it cut: right after the last summarized message, right before the first kept one.
    neighbours = marker.evaluate(
        "m => [m.previousElementSibling && m.previousElementSibling.dataset.seq,"
        " m.nextElementSibling && m.nextElementSibling.dataset.seq]"
    )
    assert neighbours[1] == str(first_kept)
    assert int(neighbours[0]) < first_kept
    expect(page.locator(f".timeline > li.msg[data-seq='{first_kept}']")).not_to_have_class("is-compacted")
