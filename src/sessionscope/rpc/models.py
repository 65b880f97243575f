"""Wire types shared by the methods: identity fields with their limits, and result shapes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, with_config
from typing_extensions import TypedDict

MAX_KEY_BYTES = 512
MAX_NAME_CHARS = 256
MAX_MESSAGE_BYTES = 1_000_000
MAX_KEYS = 1000


def _no_control(value: str, what: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"{what} must not contain control characters")
    return value


def _check_key(value: str) -> str:
    if not value:
        raise ValueError("must be a non-empty string")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValueError(f"must be at most {MAX_KEY_BYTES} UTF-8 bytes")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return _no_control(value, "a key")


def _check_name(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return _no_control(value, "a name")


SessionKey = Annotated[str, AfterValidator(_check_key), Field(description="Session key (≤512 UTF-8 bytes)")]
Name = Annotated[str, Field(max_length=MAX_NAME_CHARS), AfterValidator(_check_name)]
Tenant = Annotated[str, Field(max_length=128), AfterValidator(_check_name)]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class KeyParams(Params):
    key: SessionKey
    tenant: Tenant | None = None


class KeysParams(Params):
    """Either `key` or `keys` (1–1000)."""

    key: SessionKey | None = None
    keys: Annotated[list[SessionKey], Field(min_length=1, max_length=MAX_KEYS)] | None = None
    tenant: Tenant | None = None

    def all_keys(self) -> list[str]:
        from sessionscope.errors import InvalidParams

        if (self.key is None) == (self.keys is None):
            raise InvalidParams("key", "give exactly one of key or keys")
        keys = [self.key] if self.key is not None else list(dict.fromkeys(self.keys or []))
        return keys


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
    compactions: int
    resets: int
    executions: int
    cost_usd: float
    preview: str | None


@with_config(ConfigDict(extra="forbid"))
class ToolCall(TypedDict):
    """One tool call of a message."""

    id: Annotated[str, Field(min_length=1, max_length=256)]
    name: Annotated[str, Field(min_length=1, max_length=256)]
    # A JSON object is accepted as well as its text; the ingest service stores it as its text.
    arguments: Annotated[Annotated[str, Field(max_length=MAX_MESSAGE_BYTES)] | dict[str, Any], Field(default="{}")]


class Item(BaseModel):
    """A message, compaction or reset item (fields by kind, see the contract)."""

    model_config = ConfigDict(extra="allow")
    kind: Literal["message", "compaction", "reset"]
    seq: int
    id: str
    timestamp: str


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    input_tokens: Annotated[int, Field(ge=0)] = 0
    output_tokens: Annotated[int, Field(ge=0)] = 0
    cache_read_tokens: Annotated[int, Field(ge=0)] = 0
    cache_write_tokens: Annotated[int, Field(ge=0)] = 0


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    window: Annotated[int, Field(ge=0)] = 0
    system: Annotated[int, Field(ge=0)] = 0
    tools: Annotated[int, Field(ge=0)] = 0
    context: Annotated[int, Field(ge=0)] = 0
    messages: Annotated[int, Field(ge=0)] = 0


class Layer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Name
    start_ms: Annotated[float, Field(ge=0)] = 0
    duration_ms: Annotated[float, Field(ge=0)] = 0
    messages_in: Annotated[int, Field(ge=0)] | None = None
    messages_out: Annotated[int, Field(ge=0)] | None = None
    tokens_in: Annotated[int, Field(ge=0)] | None = None
    tokens_out: Annotated[int, Field(ge=0)] | None = None
    error: Annotated[str, Field(max_length=10_000)] | None = None


class Execution(BaseModel):
    id: str
    started_at: str
    duration_ms: float
    model: str | None
    provider: str | None
    usage: Usage
    cost_usd: float | None
    budget: dict[str, Any] | None
    layers: list[dict[str, Any]]


def dump(value: Any) -> Any:
    """A params model back to plain data, dropping unset optional fields."""
    return value.model_dump(exclude_none=True) if isinstance(value, BaseModel) else value
