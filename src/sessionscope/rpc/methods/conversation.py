"""What agents call: append turns, record executions, read back the live context."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, with_config
from typing_extensions import TypedDict

from sessionscope.clock import parse_rfc3339
from sessionscope.rpc.models import (
    MAX_MESSAGE_BYTES,
    Budget,
    KeyParams,
    Layer,
    Name,
    Params,
    ToolCall,
    Usage,
)
from sessionscope.rpc.registry import INGEST, READ, Context, rpc_method
from sessionscope.store import appends, compactions, conversation, executions


def _rfc3339(value: str) -> str:
    try:
        parse_rfc3339(value)
    except ValueError:
        raise ValueError("must be an RFC 3339 time such as 2026-11-26T06:01:44.123Z") from None
    return value


def _content_size(value: str) -> str:
    # A character is at most 4 UTF-8 bytes, so most contents need no encoding to be measured.
    if len(value) * 4 > MAX_MESSAGE_BYTES and len(value.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise ValueError(f"must be at most {MAX_MESSAGE_BYTES} UTF-8 bytes")
    return value


Timestamp = Annotated[str, Field(max_length=64), AfterValidator(_rfc3339)]


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

    id: Annotated[Annotated[str, Field(min_length=1, max_length=256)] | None, Field(default=None)]
    role: Literal["user", "assistant", "system", "tool"]
    content: Annotated[str, Field(default=""), AfterValidator(_content_size)]
    tool_calls: Annotated[Annotated[list[ToolCall], Field(max_length=128)] | None, Field(default=None)]
    tool_call_id: Annotated[Annotated[str, Field(min_length=1, max_length=256)] | None, Field(default=None)]
    tool_name: Annotated[Annotated[str, Field(max_length=256)] | None, Field(default=None)]
    is_error: Annotated[bool, Field(default=False)]
    timestamp: Annotated[Timestamp | None, Field(default=None)]
    tokens: Annotated[Annotated[int, Field(ge=0)] | None, Field(default=None)]
    # The message in the client's own wire format (e.g. an OpenAI Responses item), stored
    # verbatim and returned by session.items; our fields above are what everything else reads.
    raw: Annotated[Annotated[dict[str, Any], AfterValidator(_raw_size)] | None, Field(default=None)]


class AppendParams(KeyParams):
    agent: Name
    channel: Name
    label: Annotated[str, Field(max_length=512)] | None = None
    messages: Annotated[list[MessageIn], Field(min_length=1, max_length=1000)]


class AppendResult(BaseModel):
    appended: int
    duplicates: int
    last_seq: int
    auto_compaction: dict[str, Any] | None = None


@rpc_method("session.append", params=AppendParams, result=AppendResult, roles=INGEST, creates=True)
async def append(ctx: Context, p: AppendParams) -> Any:
    """Append messages; a message whose `id` is already stored is skipped, so retries are safe.

    The session is created on first append.
    """
    result: dict[str, Any] = await appends.append(
        ctx.db, ctx.caller.scope, key=p.key, agent=p.agent, channel=p.channel, batch=p.messages,
        tenant=p.tenant, label=p.label,
    )
    if result["appended"]:
        settings = ctx.services.compaction_settings(p.agent)
        compacted = await compactions.auto_compact(ctx.db, ctx.caller.scope, p.key, settings, tenant=p.tenant)
        if compacted is not None and compacted["compacted"]:
            result["auto_compaction"] = compacted
    return result


class ExecutionIn(Params):
    id: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    started_at: Timestamp | None = None
    duration_ms: Annotated[float, Field(ge=0)] = 0
    model: Annotated[str, Field(max_length=256)] | None = None
    provider: Annotated[str, Field(max_length=128)] | None = None
    usage: Usage = Usage()
    cost_usd: Annotated[float, Field(ge=0)] | None = None
    budget: Budget | None = None
    layers: Annotated[list[Layer], Field(max_length=256, default_factory=list)]


class RecordParams(KeyParams):
    execution: ExecutionIn


class RecordResult(BaseModel):
    id: str
    cost_usd: float | None


@rpc_method("session.record", params=RecordParams, result=RecordResult, roles=INGEST, creates=True)
async def record(ctx: Context, p: RecordParams) -> Any:
    """Record one execution: usage, cost (computed with genai-prices when absent), budget, layers."""
    return await executions.record(ctx.db, ctx.caller.scope, p.key, p.execution.model_dump(exclude_none=True),
                                   tenant=p.tenant)


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
