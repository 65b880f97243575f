"""Compaction methods: compact, list the checkpoints, restore one."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from sessionscope.compaction import service
from sessionscope.rpc.models import Item, KeyParams
from sessionscope.rpc.registry import READ, WRITE, Context, rpc_method
from sessionscope.store import compactions


class CompactParams(KeyParams):
    instructions: Annotated[str, Field(max_length=4000)] | None = None
    keep_recent_tokens: Annotated[int, Field(ge=0, le=10_000_000)] | None = None


class CompactResult(BaseModel):
    compaction: Item | None
    compacted: bool
    tokens_before: int
    tokens_after: int
    summarizer: str | None = None
    fallback_reason: str | None = None
    message: str | None = None


@rpc_method("session.compact", params=CompactParams, result=CompactResult, roles=WRITE,
            audit="session.compact")
async def compact(ctx: Context, p: CompactParams) -> Any:
    """Summarise everything older than the recent `keep_recent_tokens` into one compaction item.

    The originals stay stored, marked `compacted`. When there is nothing to compact the result
    says so (`compacted: false`) rather than failing.
    """
    agent = await ctx.services.session_agent(ctx, p.key, p.tenant)
    return await service.compact(
        ctx.db, ctx.caller.scope, p.key, ctx.services.compaction_settings(agent), tenant=p.tenant,
        instructions=p.instructions, keep_recent_tokens=p.keep_recent_tokens,
    )


class CompactionsResult(BaseModel):
    compactions: list[Item]


@rpc_method("session.compactions", params=KeyParams, result=CompactionsResult, roles=READ)
async def list_compactions(ctx: Context, p: KeyParams) -> Any:
    """Every compaction of a session with tokens before and after, and which one is active."""
    return await compactions.list_compactions(ctx.db, ctx.caller.scope, p.key, tenant=p.tenant)


class RestoreParams(KeyParams):
    seq: Annotated[int, Field(ge=1)]


class RestoreResult(BaseModel):
    restored: int
    live_tokens: int


@rpc_method("session.restore", params=RestoreParams, result=RestoreResult, roles=WRITE,
            audit="session.restore")
async def restore(ctx: Context, p: RestoreParams) -> Any:
    """Undo the active compaction: its messages become live again; the item is kept, marked restored."""
    return await compactions.restore(ctx.db, ctx.caller.scope, p.key, p.seq, tenant=p.tenant)
