"""What may be written: the one definition of a session header, a message, a compaction, a reset
and an execution, with their limits. session.append's and session.import's params are built from
these, and every other path (OTLP, local import, demo, bench) validates its records against them
in `validate_records`, so a record too big for the RPC is too big for an import as well.

Identity fields and shared shapes (SessionKey, Name, ToolCall, Usage, ...) come from
rpc/models.py; this module adds the item shapes on top.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from sessionscope.errors import InvalidParams
from sessionscope.rpc.models import (
    MAX_INT64,
    MAX_MESSAGE_BYTES,
    Budget,
    Channel,
    Label,
    Layer,
    MessageId,
    Name,
    Params,
    Seq,
    SessionKey,
    Tenant,
    Text,
    Timestamp,
    TokenCount,
    ToolCall,
    Usage,
    _storable_json,
)

MAX_LABEL_CHARS = 512
MAX_ID_CHARS = 256


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


# Times, texts, ids and labels follow the rules of rpc/models.py (one place for each): times
# representable in UTC, no NUL or lone surrogate, ids and labels without control characters.
ItemId = MessageId
Content = Annotated[Text, AfterValidator(_content_size)]
ShortText = Annotated[Text, Field(max_length=MAX_ID_CHARS)]


MAX_ATTACHMENTS = 32
MAX_ATTACHMENT_DATA_CHARS = 3 * 1024 * 1024  # base64 of importers' MAX_ATTACHMENT_BYTES (2 MiB), rounded up


@with_config(ConfigDict(extra="forbid", strict=True))
class Attachment(TypedDict):
    """An image kept with a message: its type, its size in bytes, and its bytes as base64
    (null when it was over the size limit or the source kept no bytes)."""

    mime_type: Annotated[str, Field(max_length=128, pattern=r"^image/[A-Za-z0-9.+-]+$")]
    size: Annotated[int, Field(ge=0)]
    data: Annotated[Annotated[str, Field(max_length=MAX_ATTACHMENT_DATA_CHARS)] | None, Field(default=None)]


# TypedDicts rather than models: a batch validates straight into the dicts the store takes,
# with no model objects to build and dump again (that was 60% of a batch's validation time).
@with_config(ConfigDict(extra="forbid", strict=True))
class MessageIn(TypedDict):
    """One message of session.append."""

    id: Annotated[ItemId | None, Field(default=None)]
    role: Literal["user", "assistant", "system", "tool"]
    content: Annotated[Content, Field(default="")]
    tool_calls: Annotated[Annotated[list[ToolCall], Field(max_length=128)] | None, Field(default=None)]
    tool_call_id: Annotated[ItemId | None, Field(default=None)]
    tool_name: Annotated[ShortText | None, Field(default=None)]
    is_error: Annotated[bool, Field(default=False)]
    timestamp: Annotated[Timestamp | None, Field(default=None)]
    tokens: Annotated[TokenCount | None, Field(default=None)]
    # The message in the client's own wire format (e.g. an OpenAI Responses item), stored
    # verbatim and returned by session.items; our fields above are what everything else reads.
    raw: Annotated[Annotated[dict[str, Any], AfterValidator(_raw_size), AfterValidator(_storable_json)] | None,
                   Field(default=None)]
    # Parts of a turn beside its text (docs/item-model.md): the model's reasoning, context the
    # client injected or a source record kept as an event, why a turn stopped, images.
    reasoning: Annotated[Content | None, Field(default=None)]
    reasoning_tokens: Annotated[TokenCount | None, Field(default=None)]
    message_kind: Annotated[Literal["injected", "event"] | None, Field(default=None)]
    stop_reason: Annotated[Annotated[str, Field(max_length=32)] | None, Field(default=None)]
    attachments: Annotated[Annotated[list[Attachment], Field(max_length=MAX_ATTACHMENTS)] | None,
                           Field(default=None)]


@with_config(ConfigDict(extra="forbid", strict=True))
class CompactionIn(TypedDict, total=False):
    """A compaction carried by an import. `first_kept_seq` is in the exporting store's seqs
    (translated by the importer); a foreign format names the first kept message by `first_kept_id`."""

    id: ItemId
    seq: Seq
    timestamp: Timestamp
    summary: Content
    messages_compacted: TokenCount
    tokens_before: Annotated[int, Field(ge=0, le=MAX_INT64)]
    tokens_after: Annotated[int, Field(ge=0, le=MAX_INT64)]
    first_kept_seq: Seq
    first_kept_id: ItemId
    summarizer: ShortText
    instructions: Annotated[Text, Field(max_length=4000)] | None
    reason: ShortText
    restored: bool


@with_config(ConfigDict(extra="forbid", strict=True))
class ResetIn(TypedDict, total=False):
    id: ItemId
    seq: Seq
    timestamp: Timestamp


class ExecutionIn(Params):
    id: ItemId | None = None
    started_at: Timestamp | None = None
    duration_ms: Annotated[float, Field(ge=0)] = 0
    # The model call's own time, where the agent measured it (the waterfall's model-call row).
    model_ms: Annotated[float, Field(ge=0)] | None = None
    model: Annotated[Text, Field(max_length=256)] | None = None
    provider: Annotated[Text, Field(max_length=128)] | None = None
    usage: Usage = Usage()
    cost_usd: Annotated[float, Field(ge=0)] | None = None
    budget: Budget | None = None
    layers: Annotated[list[Layer], Field(max_length=256, default_factory=list)]


class SessionHeader(Params):
    """Who a batch belongs to. `created_at` counts only when the batch creates the session."""

    key: SessionKey
    tenant: Tenant | None = None
    agent: Name = "unknown"
    channel: Channel = "unknown"
    label: Label | None = None
    created_at: Timestamp | None = None


# Fields of an export line that describe the exporting store, not the item: dropped on the way in.
_EXPORT_ONLY = {
    "message": ("type", "seq", "compacted", "content_html"),
    "compaction": ("type", "kind", "active", "summary_html"),
    "reset": ("type", "kind"),
    "execution": ("type",),
}
_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "message": TypeAdapter(MessageIn), "compaction": TypeAdapter(CompactionIn), "reset": TypeAdapter(ResetIn),
}
ITEM_TYPES = ("message", "compaction", "reset")


def _invalid(exc: ValidationError, where: str) -> InvalidParams:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in (where, *first["loc"]))
    return InvalidParams(field, first["msg"])


def validate_header(header: dict[str, Any]) -> SessionHeader:
    fields = {k: v for k, v in header.items() if k not in ("type", "version") and v is not None}
    try:
        return SessionHeader.model_validate(fields)
    except ValidationError as exc:
        raise _invalid(exc, "session") from None


def validate_item(record: dict[str, Any], index: int) -> dict[str, Any]:
    """One message, compaction or reset record, cleaned of export-only fields; its `type` kept."""
    kind = record.get("type") or "message"
    if kind not in _ADAPTERS:
        raise InvalidParams(f"records.{index}.type", f"unknown record type {kind!r}")
    # None stands for "absent" in every record producer (exports write nulls).
    fields = {k: v for k, v in record.items() if v is not None and k not in _EXPORT_ONLY[kind]}
    if kind == "compaction" and "seq" in record and record["seq"] is not None:
        fields["seq"] = record["seq"]
    try:
        item = _ADAPTERS[kind].validate_python(fields)
    except ValidationError as exc:
        raise _invalid(exc, f"records.{index}") from None
    item["type"] = kind
    return item


def validate_execution(record: dict[str, Any], index: int) -> dict[str, Any]:
    fields = {k: v for k, v in record.items() if v is not None and k != "type"}
    try:
        return ExecutionIn.model_validate(fields).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise _invalid(exc, f"executions.{index}") from None


def validate_records(items: Iterable[dict[str, Any]], start: int = 0) -> list[dict[str, Any]]:
    return [validate_item(record, start + i) for i, record in enumerate(items)]
