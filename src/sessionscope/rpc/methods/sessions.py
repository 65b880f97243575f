"""The seed's session methods: list, status, delete, reset, export, plus context and metrics."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sessionscope.errors import InvalidParams
from sessionscope.rpc.models import (
    MAX_KEYS,
    Channel,
    Execution,
    Item,
    KeyParams,
    KeysParams,
    Name,
    Params,
    Seq,
    SessionKey,
    SessionRow,
    Tenant,
    Text,
)
from sessionscope.rpc.presentation import with_html
from sessionscope.rpc.registry import READ, WRITE, Context, rpc_method
from sessionscope.store import Scope, exports, listing, sessions
from sessionscope.store.conversation import status as session_status
from sessionscope.store.executions import context as session_context
from sessionscope.store.executions import metrics as session_metrics

SortColumn = Literal["updated_at", "created_at", "key", "agent", "channel", "message_count", "total_tokens",
                     "cost_usd"]


class ListParams(Params):
    tenant: Tenant | None = None
    agent: Name | None = None
    channel: Channel | None = None
    search: Annotated[str, Field(max_length=512)] | None = None
    query: Annotated[Text, Field(max_length=512)] | None = None
    sort: SortColumn = "updated_at"
    order: Literal["asc", "desc"] = "desc"
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: Annotated[str, Field(max_length=2048)] | None = None
    archived: Literal["exclude", "only", "include"] = "exclude"
    has_errors: bool = False


class Snippet(BaseModel):
    """A window of the first matching message; `highlights` are [start, end) offsets into `text`."""

    text: str
    highlights: list[tuple[int, int]]


class ListRow(SessionRow):
    snippet: Snippet | None  # with `query`: where the session's messages match it


class ListResult(BaseModel):
    sessions: list[ListRow]
    total: int
    total_capped: bool
    next_cursor: str | None


@rpc_method("session.list", params=ListParams, result=ListResult, roles=READ)
async def list_sessions(ctx: Context, p: ListParams) -> Any:
    """List sessions, filtered, sorted and paged on the server.

    `search` matches any part of the key, agent, channel or label; `query` is full-text over
    message content. Archived sessions are left out unless `archived` is `only` or `include`;
    `has_errors` keeps the sessions with at least one errored message (`error_count`).
    Paging is by cursor; `total` is exact unless `total_capped` is true.
    """
    return await listing.list_sessions(
        ctx.db, ctx.caller.scope, tenant=p.tenant, agent=p.agent, channel=p.channel, search=p.search,
        query=p.query, sort=p.sort, order=p.order, limit=p.limit, cursor=p.cursor, archived=p.archived,
        has_errors=p.has_errors,
    )


class StatusParams(KeyParams):
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    before_seq: Seq | None = None


class StatusUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cache_hit_rate: float


class StatusResult(BaseModel):
    session: SessionRow
    items: list[Item]
    has_more: bool
    usage: StatusUsage


@rpc_method("session.status", params=StatusParams, result=StatusResult, roles=READ)
async def status(ctx: Context, p: StatusParams) -> Any:
    """One session with its newest page of items, token usage and cache metrics.

    Pass `before_seq` (the lowest seq you hold) to page toward older items.
    """
    page = await session_status(ctx.db, ctx.caller.scope, p.key, tenant=p.tenant, limit=p.limit,
                                before_seq=p.before_seq)
    page["items"] = await with_html(page["items"])
    return page


class DeleteResult(BaseModel):
    deleted: int


@rpc_method("session.delete", params=KeysParams, result=DeleteResult, roles=WRITE,
            audit="session.delete")
async def delete(ctx: Context, p: KeysParams) -> Any:
    """Delete sessions and everything of them, search-index rows included. All or nothing."""
    return {"deleted": await sessions.delete_sessions(ctx.db, ctx.caller.scope, p.all_keys(), p.tenant)}


class ResetResult(BaseModel):
    reset: int


@rpc_method("session.reset", params=KeysParams, result=ResetResult, roles=WRITE,
            audit="session.reset")
async def reset(ctx: Context, p: KeysParams) -> Any:
    """Clear the conversation: history is empty afterwards; billing and usage are kept."""
    return {"reset": await sessions.reset(ctx.db, ctx.caller.scope, p.all_keys(), p.tenant)}


class ExportResult(BaseModel):
    url: str
    filename: str


class SessionRef(Params):
    tenant: Tenant
    key: SessionKey


class ExportParams(Params):
    """`key`/`keys` in one tenant, or `sessions`: {tenant, key} pairs across tenants."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["key"]}, {"required": ["keys"]},
                                                           {"required": ["sessions"]}]})
    key: SessionKey | None = None
    keys: Annotated[list[SessionKey], Field(min_length=1, max_length=MAX_KEYS)] | None = None
    tenant: Tenant | None = None
    sessions: Annotated[list[SessionRef], Field(min_length=1, max_length=MAX_KEYS)] | None = None

    def pairs(self, scope: Scope) -> list[tuple[str, str]]:
        if self.sessions is None:
            tenant = scope.resolve(self.tenant)
            return [(tenant, key) for key in self.all_keys()]
        if self.key is not None or self.keys is not None or self.tenant is not None:
            raise InvalidParams("sessions", "give sessions alone, without key, keys or tenant")
        return list(dict.fromkeys((ref.tenant, ref.key) for ref in self.sessions))

    def all_keys(self) -> list[str]:
        """The keys; across tenants (what the audit log records) each is written `tenant/key`."""
        if self.sessions is not None:
            one_tenant = len({ref.tenant for ref in self.sessions}) == 1
            return [ref.key if one_tenant else f"{ref.tenant}/{ref.key}" for ref in self.sessions]
        if (self.key is None) == (self.keys is None):
            raise InvalidParams("keys", "give exactly one of key, keys or sessions")
        return [self.key] if self.key is not None else list(dict.fromkeys(self.keys or []))


@rpc_method("session.export", params=ExportParams, result=ExportResult, roles=WRITE,
            audit="session.export")
async def export(ctx: Context, p: ExportParams) -> Any:
    """A short-lived link whose GET streams the sessions as JSONL: one file per call.

    One session's file is named by its key; several are `sessions-N-YYYYMMDD-HHMM.jsonl`.
    """
    token, filename = await exports.create_link(ctx.db, ctx.caller.scope, p.pairs(ctx.caller.scope),
                                                ctx.caller.token_id)
    return {"url": f"{ctx.base_url}/export/{token}", "filename": filename}


class LabelParams(KeyParams):
    """`label` null, blank or left out clears it."""

    label: Annotated[str, Field(max_length=512)] | None = None


class LabelResult(BaseModel):
    session: SessionRow


@rpc_method("session.label", params=LabelParams, result=LabelResult, roles=WRITE, audit="session.label")
async def label(ctx: Context, p: LabelParams) -> Any:
    """Rename a session for people: set or clear its label (the key never changes)."""
    text = (p.label or "").strip() or None
    return {"session": await sessions.set_label(ctx.db, ctx.caller.scope, p.key, text, p.tenant)}


class ArchiveResult(BaseModel):
    archived: int


@rpc_method("session.archive", params=KeysParams, result=ArchiveResult, roles=WRITE, audit="session.archive")
async def archive(ctx: Context, p: KeysParams) -> Any:
    """Hide sessions from the default session.list, deleting nothing. All or nothing."""
    return {"archived": await sessions.archive(ctx.db, ctx.caller.scope, p.all_keys(), p.tenant)}


class UnarchiveResult(BaseModel):
    unarchived: int


@rpc_method("session.unarchive", params=KeysParams, result=UnarchiveResult, roles=WRITE,
            audit="session.unarchive")
async def unarchive(ctx: Context, p: KeysParams) -> Any:
    """Bring archived sessions back to the default session.list. All or nothing."""
    return {"unarchived": await sessions.unarchive(ctx.db, ctx.caller.scope, p.all_keys(), p.tenant)}


class ContextParams(KeyParams):
    limit: Annotated[int, Field(ge=1, le=200)] = 20


class ContextResult(BaseModel):
    budget: dict[str, Any]
    live_tokens: int
    executions: list[Execution]


@rpc_method("session.context", params=ContextParams, result=ContextResult, roles=READ)
async def context(ctx: Context, p: ContextParams) -> Any:
    """The token budget (from the latest execution, else estimated) and recent executions."""
    return await session_context(ctx.db, ctx.caller.scope, p.key, tenant=p.tenant, limit=p.limit)


class MetricsResult(BaseModel):
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cache_hit_rate: float
    tool_calls: int
    compactions: int
    resets: int
    executions: int
    cost_usd: float
    message_count: int
    total_tokens: int
    context_tokens: int


@rpc_method("session.metrics", params=KeyParams, result=MetricsResult, roles=READ)
async def metrics(ctx: Context, p: KeyParams) -> Any:
    """Session totals from its counters: tokens, cache, tool calls, compactions, resets, cost."""
    return await session_metrics(ctx.db, ctx.caller.scope, p.key, tenant=p.tenant)


export_filename = exports.export_filename  # the CLI names its files the same way

__all__ = ["SessionKey", "export_filename"]
