"""The demo store (issue 18 item 4): its executions agree with its conversations, in both databases."""

from __future__ import annotations

import asyncio
import json
from itertools import pairwise
from typing import Any

from sqlalchemy import func, select

from sessionscope.demo import build_demo
from sessionscope.store import open_database
from sessionscope.store.schema import executions, messages


async def _build_and_read(url: str) -> list[dict[str, Any]]:
    db = await open_database(url)
    try:
        await build_demo(db, sessions=12, messages=40)
        async with db.read() as conn:
            spans = {row.session_id: row for row in await conn.execute(
                select(messages.c.session_id, func.min(messages.c.ts).label("first"),
                       func.max(messages.c.ts).label("last")).group_by(messages.c.session_id))}
            out = []
            for run in (await conn.execute(select(executions))).all():
                seen = await conn.scalar(select(func.count()).select_from(messages).where(
                    messages.c.session_id == run.session_id, messages.c.ts <= run.started_at))
                out.append({"run": run, "span": spans[run.session_id], "seen": seen})
            return out
    finally:
        await db.close()


def test_demo_executions_agree_with_their_conversations(database_url_factory: Any, dialect: str) -> None:
    runs = asyncio.run(_build_and_read(database_url_factory(dialect, "demo")))
    assert len(runs) >= 12
    reported = 0
    for entry in runs:
        run, span, seen = entry["run"], entry["span"], entry["seen"]
        layers = json.loads(run.layers)
        # the run lies within its session's messages
        assert span.first <= run.started_at and run.started_at + run.duration_ms <= span.last
        # no layer is given more messages than the session had when the run started, nor passes on more
        for layer in layers:
            assert layer["messages_out"] <= layer["messages_in"] <= seen
        # layers run one after another, and layers + model call are the run's duration
        for before, after in pairwise(layers):
            assert abs(before["start_ms"] + before["duration_ms"] - after["start_ms"]) < 0.02
        # the prompt is the budget's parts, and the messages part is what the last layer passed on
        budget = json.loads(run.budget)
        assert run.input_tokens == sum(budget[part] for part in ("system", "tools", "context", "messages"))
        assert budget["messages"] == layers[-1]["tokens_out"]
        layer_ms = sum(layer["duration_ms"] for layer in layers)
        assert layer_ms < run.duration_ms
        if run.model_ms is not None:
            reported += 1
            assert abs(layer_ms + run.model_ms - run.duration_ms) < 0.05
    assert 0 < reported < len(runs)  # the dashboard shows both a reported and an inferred model call
