"""What framework adapters need beyond append/history: live items with raw copies, and pop.

The OpenAI Agents SDK session (integrations/openai_agents.py) is built on these two methods.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from sessionscope.errors import Conflict
from sessionscope.rpc.models import KeyParams
from sessionscope.rpc.registry import ADMIN, AGENT, INGEST, OPERATOR, READ, Context, rpc_method
from sessionscope.store import items

MAX_ITEMS = 100_000


class ItemsParams(KeyParams):
    limit: Annotated[int, Field(ge=1, le=MAX_ITEMS)] | None = None
    cursor: Annotated[str, Field(max_length=2048)] | None = None


class ItemsResult(BaseModel):
    summary: str | None
    items: list[dict[str, Any]]
    has_more: bool = False
    next_cursor: str | None = None


@rpc_method("session.items", params=ItemsParams, result=ItemsResult, roles=READ | INGEST)
async def live_items(ctx: Context, p: ItemsParams) -> Any:
    """The live context as stored messages, each with the `raw` copy its client sent (or null).

    After a compaction `summary` holds the compaction summary and `items` the kept messages;
    after a reset both are empty. `limit` keeps exactly the newest N entries (the summary counts as
    one). Past a byte budget the items come in pages: follow `next_cursor` while `has_more`.
    """
    return await items.live_items(ctx.db, ctx.caller.scope, p.key, tenant=p.tenant, limit=p.limit,
                                  cursor=p.cursor)


class PopResult(BaseModel):
    item: dict[str, Any] | None


@rpc_method("session.pop", params=KeyParams, result=PopResult, roles=frozenset({OPERATOR, AGENT, ADMIN}),
            audit="session.pop", errors=(Conflict,))
async def pop(ctx: Context, p: KeyParams) -> Any:
    """Remove the newest live message and return it (with its `raw` copy); null when none is live.

    The message is deleted and the session's counters drop accordingly; a compaction summary is
    never popped.
    """
    return {"item": await items.pop(ctx.db, ctx.caller.scope, p.key, tenant=p.tenant)}
