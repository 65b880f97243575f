"""Presentation of RPC results: markdown rendered to sanitized HTML for the dashboard.

The store returns what is stored; the RPC layer adds what a reader needs to display it. A page
of items is rendered in one worker thread, so its cost never lands on the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sessionscope import markdown


def _render_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for item in items:
        kind = item.get("kind")
        if kind == "message":
            item["content_html"] = markdown.render_markdown(item["content"]) if item["role"] == "assistant" else None
        elif kind == "compaction":
            item["summary_html"] = markdown.render_markdown(item["summary"])
    return items


async def with_html(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`content_html` on assistant messages (None on others) and `summary_html` on compactions."""
    return await asyncio.to_thread(_render_items, items)
