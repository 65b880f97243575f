"""What agents call: append turns, record executions, read back the live context."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, with_config
from typing_extensions import TypedDict

from sessionscope.rpc.models import (
    MAX_MESSAGE_BYTES,
    Budget,
    Channel,
    KeyParams,
    Label,
    Layer,
    MessageId,
    Name,
    Params,
    Text,
    Timestamp,
    TokenCount,
    ToolCall,
    Usage,
    _storable_json,
)
from sessionscope.rpc.registry import INGEST, READ, Context, rpc_method
from sessionscope.store import appends, compactions, conversation, executions, retry


def _content_size(value: str) -> str:
    # A character is at most 4 UTF-8 bytes, so most contents need no encoding to be measured.
    if len(value) * 4 > MAX_MESSAGE_BYTES and len(value.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise ValueError(f"must be at most {MAX_MESSAGE_BYTES} UTF-8 bytes")
    return value


def _raw_size(value: dict[str, Any]) -> dict[str, Any]:
    # The raw copy repeats the content plus its framing, hence twice the content limit.
    if len(json.dumps(value, separators=(",", ":"))) > 2 * MAX_MESSAGE_BYTES:
        raise ValueError(f"must be at most {2 * MAX_MESSAGE_BYTES} bytes as JSON")
    return value


# A TypedDict rather than a model: a batch validates straight into the dicts the store takes,
# with no model objects to build and dump again (that was 60% of a batch's validation time).
@with_config(ConfigDict(extra="forbid", strict=True))
class MessageIn(TypedDict):
    """One message of session.append."""

    id: Annotated[MessageId | None, Field(default=None)]
    role: Literal["user", "assistant", "system", "tool"]
    content: Annotated[Text, Field(default=""), AfterValidator(_content_size)]
    tool_calls: Annotated[Annotated[list[ToolCall], Field(max_length=128)] | None, Field(default=None)]
    tool_call_id: Annotated[Annotated[Text, Field(min_length=1, max_length=256)] | None, Field(default=None)]
    tool_name: Annotated[Annotated[Text, Field(max_length=256)] | None, Field(default=None)]
    is_error: Annotated[bool, Field(default=False)]
    timestamp: Annotated[Timestamp | None, Field(default=None)]
    tokens: Annotated[TokenCount | None, Field(default=None)]
    # The message in the client's own wire format (e.g. an OpenAI Responses item), stored
    # verbatim and returned by session.items; our fields above are what everything else reads.
    raw: Annotated[Annotated[dict[str, Any], AfterValidator(_raw_size), AfterValidator(_storable_json)] | None,
                   Field(default=None)]


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


@rpc_method("session.append", params=AppendParams, result=AppendResult, roles=INGEST)
async def append(ctx: Context, p: AppendParams) -> Any:
    """Append messages; a message whose `id` is already stored in the live conversation (since the
    last reset) is skipped, so retries are safe; an id used before a reset can be used again.

    The session is created on first append.
    """
    result: dict[str, Any] = await retry.on_deadlock(lambda: appends.append(
        ctx.db, ctx.caller.scope, key=p.key, agent=p.agent, channel=p.channel, batch=p.messages,
        tenant=p.tenant, label=p.label,
    ))
    if result["appended"]:
        settings = ctx.services.compaction_settings(p.agent)
        compacted = await compactions.auto_compact(ctx.db, ctx.caller.scope, p.key, settings, tenant=p.tenant)
        if compacted is not None and compacted["compacted"]:
            result["auto_compaction"] = compacted
    return result


class ExecutionIn(Params):
    id: Annotated[Text, Field(min_length=1, max_length=256)] | None = None
    started_at: Timestamp | None = None
    duration_ms: Annotated[float, Field(ge=0)] = 0
    model: Annotated[Text, Field(max_length=256)] | None = None
    provider: Annotated[Text, Field(max_length=128)] | None = None
    usage: Usage = Usage()
    cost_usd: Annotated[float, Field(ge=0)] | None = None
    budget: Budget | None = None
    layers: Annotated[list[Layer], Field(max_length=256, default_factory=list)]


class RecordParams(KeyParams):
    execution: ExecutionIn


class RecordResult(BaseModel):
    id: str
    cost_usd: float | None


@rpc_method("session.record", params=RecordParams, result=RecordResult, roles=INGEST)
async def record(ctx: Context, p: RecordParams) -> Any:
    """Record one execution: usage, cost (computed with genai-prices when absent), budget, layers."""
    execution = p.execution.model_dump(exclude_none=True)
    return await retry.on_deadlock(lambda: executions.record(ctx.db, ctx.caller.scope, p.key, execution,
                                                             tenant=p.tenant))


class HistoryParams(KeyParams):
    format: Literal["openai", "anthropic"] = "openai"


class HistoryResult(BaseModel):
    messages: list[dict[str, Any]]
    format: str
    system: str | None = None


@rpc_method("session.history", params=HistoryParams, result=HistoryResult, roles=READ | INGEST)
async def history(ctx: Context, p: HistoryParams) -> Any:
    """The live context: the compaction summary (if any) then the kept messages; empty after reset."""
    return await conversation.history(ctx.db, ctx.caller.scope, p.key, tenant=p.tenant, format=p.format)
