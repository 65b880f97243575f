"""Wire types shared by the methods: identity fields with their limits, and result shapes."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    with_config,
)
from typing_extensions import TypedDict

from sessionscope.clock import time_problem
from sessionscope.keys import MAX_KEY_BYTES as MAX_KEY_BYTES  # re-exported: the limit callers name
from sessionscope.keys import check_key as _check_key
from sessionscope.keys import no_control as _no_control

MAX_NAME_CHARS = 256
MAX_MESSAGE_BYTES = 1_000_000
MAX_KEYS = 1000


def _rfc3339(value: str) -> str:
    """Every client-supplied time (messages[].timestamp, execution.started_at, ...) passes here:
    clock.time_problem is the one rule, so what validates also stores and reads back."""
    problem = time_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Timestamp = Annotated[str, Field(max_length=64), AfterValidator(_rfc3339)]


MAX_INT64 = 2**63 - 1  # BIGINT on both databases
MAX_INT32 = 2**31 - 1  # PostgreSQL INTEGER (messages.tokens); token counts stay below it
MAX_CHANNEL_CHARS = 128  # sessions.channel is VARCHAR(128)
MAX_RAW_DEPTH = 64
def _storable(value: str) -> str:
    """What every text stores on both databases: no NUL (PostgreSQL text cannot hold one) and no
    lone surrogate (no database or JSON encoder can)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    if value.isascii():  # no surrogate can be ASCII; this is the common case, and free
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _storable_json(value: Any, depth: int = 0) -> Any:
    """A client's JSON (`raw`): bounded nesting, and text that stores (see _storable)."""
    if depth > MAX_RAW_DEPTH:
        raise ValueError(f"must nest at most {MAX_RAW_DEPTH} levels deep")
    if isinstance(value, dict):
        for k, v in value.items():
            _storable(k)
            _storable_json(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _storable_json(v, depth + 1)
    elif isinstance(value, str):
        _storable(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must not contain Infinity or NaN")
    return value


Text = Annotated[str, AfterValidator(_storable)]
Seq = Annotated[int, Field(ge=1, le=MAX_INT64)]
TokenCount = Annotated[int, Field(ge=0, le=MAX_INT32)]


def _check_name(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return _no_control(_storable(value), "a name")


def _check_message_id(value: str) -> str:
    return _no_control(_storable(value), "a message id")


# No control characters: a reset retires ids into a form that starts with one (store.sessions).
MessageId = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_check_message_id)]
SessionKey = Annotated[str, AfterValidator(_check_key), Field(description="Session key (≤512 UTF-8 bytes)")]
Name = Annotated[str, Field(max_length=MAX_NAME_CHARS), AfterValidator(_check_name)]
Tenant = Annotated[str, Field(max_length=128), AfterValidator(_check_name)]
Channel = Annotated[str, Field(max_length=MAX_CHANNEL_CHARS), AfterValidator(_check_name)]


def _check_label(value: str) -> str:
    return _no_control(_storable(value), "a label")


Label = Annotated[str, Field(max_length=512), AfterValidator(_check_label)]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class KeyParams(Params):
    key: SessionKey
    tenant: Tenant | None = None


class KeysParams(Params):
    """Either `key` or `keys` (1–1000)."""

    # The rule is part of the schema (OpenRPC shows it as x-params-one-of) and of validation.
    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["key"]}, {"required": ["keys"]}]})
    key: SessionKey | None = None
    keys: Annotated[list[SessionKey], Field(min_length=1, max_length=MAX_KEYS)] | None = Field(
        default=None, validate_default=True)
    tenant: Tenant | None = None

    @field_validator("keys")
    @classmethod
    def _exactly_one(cls, keys: list[str] | None, info: ValidationInfo) -> list[str] | None:
        given_key = info.data.get("key") is not None or "key" not in info.data  # an invalid key was given
        if given_key == (keys is not None):
            raise ValueError("give exactly one of key or keys")
        return keys

    def all_keys(self) -> list[str]:
        return [self.key] if self.key is not None else list(dict.fromkeys(self.keys or []))


class SessionRow(BaseModel):
    key: str
    tenant: str
    agent: str
    channel: str
    label: str | None
    created_at: str
    updated_at: str
    message_count: int
    live_messages: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    context_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    tool_calls: int
    error_count: int
    compactions: int
    resets: int
    executions: int
    cost_usd: float
    preview: str | None
    archived_at: str | None


@with_config(ConfigDict(extra="forbid"))
class ToolCall(TypedDict):
    """One tool call of a message."""

    id: Annotated[Text, Field(min_length=1, max_length=256)]
    name: Annotated[Text, Field(min_length=1, max_length=256)]
    # A JSON object is accepted as well as its text; the ingest service stores it as its text.
    arguments: Annotated[Annotated[Text, Field(max_length=MAX_MESSAGE_BYTES)]
                         | Annotated[dict[str, Any], AfterValidator(_storable_json)], Field(default="{}")]


class Item(BaseModel):
    """A message, compaction or reset item (fields by kind, see the contract)."""

    model_config = ConfigDict(extra="allow")
    kind: Literal["message", "compaction", "reset"]
    seq: int
    id: str
    timestamp: str


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    input_tokens: TokenCount = 0
    output_tokens: TokenCount = 0
    cache_read_tokens: TokenCount = 0
    cache_write_tokens: TokenCount = 0
    # The part of cache_write_tokens written for one hour (priced higher than 5-minute writes).
    cache_write_1h_tokens: TokenCount = 0
    # The part of output_tokens that was reasoning, where the provider reports it.
    reasoning_tokens: TokenCount = 0


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    window: TokenCount = 0
    system: TokenCount = 0
    tools: TokenCount = 0
    context: TokenCount = 0
    messages: TokenCount = 0


class Layer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Name
    start_ms: Annotated[float, Field(ge=0)] = 0
    duration_ms: Annotated[float, Field(ge=0)] = 0
    messages_in: TokenCount | None = None
    messages_out: TokenCount | None = None
    tokens_in: TokenCount | None = None
    tokens_out: TokenCount | None = None
    error: Annotated[Text, Field(max_length=10_000)] | None = None


class Execution(BaseModel):
    id: str
    started_at: str
    duration_ms: float
    model_ms: float | None
    model: str | None
    provider: str | None
    usage: Usage
    cost_usd: float | None
    budget: dict[str, Any] | None
    layers: list[dict[str, Any]]


def dump(value: Any) -> Any:
    """A params model back to plain data, dropping unset optional fields."""
    return value.model_dump(exclude_none=True) if isinstance(value, BaseModel) else value
