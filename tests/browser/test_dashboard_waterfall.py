"""The Context State waterfall (issue 18 item 4): the model call has its own row, reported or
inferred, and the rows, the axis and the totals add up to the execution's duration."""

from __future__ import annotations

from itertools import pairwise

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_dashboard_detail import EXECUTION, LAYERS, enc

pytestmark = pytest.mark.browser


def _rows(page: Page, exec_id: str) -> list[dict]:
    card = page.locator(f"#panel-context [data-execution='{exec_id}']")
    expect(card.locator(".wf-row").first).to_be_visible()
    return card.locator(".wf-row").evaluate_all("""rows => rows.map(r => {
        const bar = r.querySelector('.wf-bar'), track = r.querySelector('.wf-track');
        return {kind: r.dataset.row, name: r.dataset.layer, ms: r.querySelector('.wf-ms').textContent,
                width: parseFloat(bar.style.width), left: parseFloat(bar.style.left),
                px: bar.getBoundingClientRect().width, track: track.getBoundingClientRect().width};
    })""")


def test_model_call_row_is_reported_or_inferred_and_widths_sum_to_the_bar(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:waterfall"
    rpc.seed(key, agent=f"{ns}-bot")
    # layers cover 340 of 420 ms: the 80 ms left are the model call, inferred
    rpc("session.record", key=key, execution={**EXECUTION, "id": "inferred"})
    # the agent timed its model call (60 ms): 20 ms stay unattributed
    rpc("session.record", key=key, execution={**EXECUTION, "id": "reported", "model_ms": 60})
    # the agent timed it and it fills the rest exactly
    rpc("session.record", key=key, execution={**EXECUTION, "id": "exact", "model_ms": 80})
    page.goto(f"/sessions/{enc(key)}/context")

    inferred = _rows(page, "inferred")
    assert [r["kind"] for r in inferred] == ["layer"] * len(LAYERS) + ["inferred"]
    assert inferred[-1]["name"] == "model call (inferred)" and inferred[-1]["ms"] == "80 ms"
    reported = _rows(page, "reported")
    assert [(r["kind"], r["name"], r["ms"]) for r in reported[len(LAYERS):]] == [
        ("model", "model call", "60 ms"), ("unattributed", "unattributed", "20 ms")]
    exact = _rows(page, "exact")
    assert [r["kind"] for r in exact[len(LAYERS):]] == ["model"]

    for rows in (inferred, reported, exact):
        # each row starts where the one before ends, and together they fill the track
        assert abs(sum(r["width"] for r in rows) - 100) < 0.01
        for before, after in pairwise(rows):
            assert abs(before["left"] + before["width"] - after["left"]) < 0.01
        assert abs(sum(r["px"] for r in rows) - rows[0]["track"]) < 1.5
    card = page.locator("#panel-context [data-execution='reported']")
    expect(card.locator("[data-axis-end]")).to_have_text("420 ms")
    expect(card.locator(".wf-total")).to_have_text(
        "layers 340 ms + model call 60 ms + unattributed 20 ms = 420 ms (execution 420 ms)")
    stored = rpc("session.context", key=key)["executions"]
    assert {e["id"]: e["model_ms"] for e in stored} == {"inferred": None, "reported": 60.0, "exact": 80.0}


def test_model_ms_is_validated_by_field(rpc, ns: str) -> None:
    key = f"{ns}:waterfall-bad"
    rpc.seed(key, agent=f"{ns}-bot")
    error = rpc.error("session.record", key=key, execution={**EXECUTION, "model_ms": -1})
    assert "model_ms" in str(error)
