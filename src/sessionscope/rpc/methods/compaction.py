"""Compaction methods: compact, list the checkpoints, restore one."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from sessionscope.compaction import service
from sessionscope.errors import Conflict, InvalidParams
from sessionscope.markdown import render_many
from sessionscope.rpc.models import Item, KeyParams, Seq
from sessionscope.rpc.registry import READ, WRITE, Context, rpc_method
from sessionscope.store import compactions


class CompactParams(KeyParams):
    instructions: Annotated[str, Field(max_length=4000)] | None = None
    keep_recent_tokens: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    keep_recent_turns: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    dry_run: bool = False


class SuggestedKeep(BaseModel):
    keep_recent_tokens: int
    keep_recent_turns: int


class CompactResult(BaseModel):
    compaction: Item | None
    compacted: bool
    tokens_before: int
    tokens_after: int
    summarizer: str | None = None
    fallback_reason: str | None = None
    message: str | None = None
    dry_run: bool = False
    # Dry run: where the cut falls and what would be written.
    first_kept_seq: int | None = None
    messages_compacted: int | None = None
    summary: str | None = None
    summary_tokens: int | None = None
    summary_html: str | None = None
    # Nothing to compact: a smaller keep that would (None when the live context is one turn).
    suggested_keep: SuggestedKeep | None = None


@rpc_method("session.compact", params=CompactParams, result=CompactResult, roles=WRITE,
            audit="session.compact", errors=(Conflict,))
async def compact(ctx: Context, p: CompactParams) -> Any:
    """Summarise everything older than the recent `keep_recent_tokens` (or the last
    `keep_recent_turns` turns) into one compaction item.

    The originals stay stored, marked `compacted`. When there is nothing to compact the result
    says why (`compacted: false`, `message`, `suggested_keep`) rather than failing. With
    `dry_run` nothing is written: the result gives the cut (`first_kept_seq`), the tokens before
    and after, and the summary that would be stored.
    """
    if p.keep_recent_tokens is not None and p.keep_recent_turns is not None:
        raise InvalidParams("keep_recent_turns", "give keep_recent_tokens or keep_recent_turns, not both")
    agent = await ctx.services.session_agent(ctx, p.key, p.tenant)
    result = await service.compact(
        ctx.db, ctx.caller.scope, p.key, ctx.services.compaction_settings(agent), tenant=p.tenant,
        instructions=p.instructions, keep_recent_tokens=p.keep_recent_tokens,
        keep_recent_turns=p.keep_recent_turns, dry_run=p.dry_run,
    )
    summary = result.get("summary") or (result.get("compaction") or {}).get("summary")
    if summary:
        result["summary_html"] = (await render_many([summary]))[0]  # bounded, off the loop
    return result


class CompactionsResult(BaseModel):
    compactions: list[Item]


@rpc_method("session.compactions", params=KeyParams, result=CompactionsResult, roles=READ)
async def list_compactions(ctx: Context, p: KeyParams) -> Any:
    """Every compaction of a session with tokens before and after, and which one is active."""
    return await compactions.list_compactions(ctx.db, ctx.caller.scope, p.key, tenant=p.tenant)


class RestoreParams(KeyParams):
    seq: Seq


class RestoreResult(BaseModel):
    restored: int
    live_tokens: int


@rpc_method("session.restore", params=RestoreParams, result=RestoreResult, roles=WRITE,
            audit="session.restore", errors=(Conflict,))
async def restore(ctx: Context, p: RestoreParams) -> Any:
    """Undo the active compaction: its messages become live again; the item is kept, marked restored."""
    return await compactions.restore(ctx.db, ctx.caller.scope, p.key, p.seq, tenant=p.tenant)
