"""Presentation of RPC results: markdown rendered to sanitized HTML for the dashboard.

The store returns what is stored; the RPC layer adds what a reader needs to display it. Rendering
goes through markdown.add_html: in worker processes, never on the event loop, within a time
budget, and past the size or time budget a message is shown as escaped plain text.
"""

from __future__ import annotations

from typing import Any

from sessionscope import markdown


async def with_html(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`content_html` on assistant messages (None on others) and `summary_html` on compactions."""
    return await markdown.add_html(items)
