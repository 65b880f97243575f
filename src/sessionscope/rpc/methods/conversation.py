"""What agents call: append turns, record executions, read back the live context; and the
operators' import of a session's records (import --url). Writes go through sessionscope.ingest."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, Field

from sessionscope.ingest import SessionBatch, ingest_batch
from sessionscope.ingest.models import ExecutionIn, Label, MessageIn, Timestamp
from sessionscope.rpc.models import Channel, KeyParams, Name
from sessionscope.rpc.registry import INGEST, READ, WRITE, Context, rpc_method
from sessionscope.store import conversation, executions, retry

IMPORT_RECORDS = 1000


class AppendParams(KeyParams):
    agent: Name
    channel: Channel
    label: Label | None = None
    messages: Annotated[list[MessageIn], Field(min_length=1, max_length=1000)]


class AppendResult(BaseModel):
    appended: int
    duplicates: int
    last_seq: int
    auto_compaction: dict[str, Any] | None = None


@rpc_method("session.append", params=AppendParams, result=AppendResult, roles=INGEST, creates=True)
async def append(ctx: Context, p: AppendParams) -> Any:
    """Append messages; a message whose `id` is already stored in the live conversation (since the
    last reset) is skipped, so retries are safe; an id used before a reset can be used again.

    The session is created on first append. When the live context passes the agent's
    auto-compaction threshold, `auto_compaction` says a compaction was scheduled; it commits
    later in the background, and messages appended meanwhile stay live.
    """
    batch = SessionBatch(key=p.key, agent=p.agent, channel=p.channel, label=p.label, tenant=p.tenant,
                         items=cast(list[dict[str, Any]], p.messages), validated=True)
    # A deadlock victim (PostgreSQL) is retried inside the server: the transaction rolled back whole.
    return (await retry.on_deadlock(lambda: ingest_batch(ctx.services, ctx.caller.scope, batch, source="rpc"))
            ).append_result()


class ImportParams(KeyParams):
    agent: Name = "unknown"
    channel: Channel = "unknown"
    label: Label | None = None
    # Counts only when this call creates the session.
    created_at: Timestamp | None = None
    # Checked one by one by the ingest service against ingest/models.py (message, compaction,
    # reset, execution), which names the record and field of the first problem.
    records: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=IMPORT_RECORDS)]


class ImportResult(BaseModel):
    created: bool
    appended: int
    duplicates: int
    compactions: int
    resets: int
    executions: int
    last_seq: int


@rpc_method("session.import", params=ImportParams, result=ImportResult, roles=WRITE, audit="session.import")
async def import_(ctx: Context, p: ImportParams) -> Any:
    """Import records of one session (an export's lines after its header: messages, compactions,
    resets, executions) in one transaction; what is stored already is skipped and not counted.

    `sessionscope import --url` sends a session in calls of up to 1000 records.
    """
    items = [r for r in p.records if r.get("type") != "execution"]
    runs = [r for r in p.records if r.get("type") == "execution"]
    batch = SessionBatch(key=p.key, agent=p.agent, channel=p.channel, label=p.label, tenant=p.tenant,
                         created_at=p.created_at, items=items, executions=runs)
    return (await ingest_batch(ctx.services, ctx.caller.scope, batch, source="import-remote")).counts()


class RecordParams(KeyParams):
    execution: ExecutionIn


class RecordResult(BaseModel):
    id: str
    cost_usd: float | None


@rpc_method("session.record", params=RecordParams, result=RecordResult, roles=INGEST, creates=True)
async def record(ctx: Context, p: RecordParams) -> Any:
    """Record one execution: usage, cost (computed with genai-prices when absent), budget, layers."""
    execution = p.execution.model_dump(exclude_none=True)
    return await retry.on_deadlock(lambda: executions.record(ctx.db, ctx.caller.scope, p.key, execution,
                                                             tenant=p.tenant))


class HistoryParams(KeyParams):
    format: Literal["openai", "anthropic"] = "openai"
    cursor: Annotated[str, Field(max_length=2048)] | None = None


class HistoryResult(BaseModel):
    messages: list[dict[str, Any]]
    format: str
    system: str | None = None
    has_more: bool = False
    next_cursor: str | None = None


@rpc_method("session.history", params=HistoryParams, result=HistoryResult, roles=READ | INGEST)
async def history(ctx: Context, p: HistoryParams) -> Any:
    """The live context: the compaction summary (if any) then the kept messages; empty after reset.

    Past a byte budget the context comes in pages: follow `next_cursor` while `has_more`.
    """
    return await conversation.history(ctx.db, ctx.caller.scope, p.key, tenant=p.tenant, format=p.format,
                                      cursor=p.cursor)
