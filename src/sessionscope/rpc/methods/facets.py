"""Filter sources for the dashboard: agents, channels and tenants, with session counts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from sessionscope.rpc.models import Params, Tenant
from sessionscope.rpc.registry import READ, Context, rpc_method
from sessionscope.store import sessions


class TenantParams(Params):
    tenant: Tenant | None = None


class AgentEntry(BaseModel):
    id: str
    tenant: str
    sessions: int = Field(description="Sessions the default session.list shows (archived ones left out).")
    archived: int = Field(description="Archived sessions (session.list with archived: only).")


class AgentListResult(BaseModel):
    agents: list[AgentEntry]


@rpc_method("agent.list", params=TenantParams, result=AgentListResult, roles=READ)
async def agent_list(ctx: Context, p: TenantParams) -> Any:
    """Agents that have sessions, with their session counts."""
    found = await sessions.facet_counts(ctx.db, ctx.caller.scope, ["tenant", "agent"], p.tenant)
    return {"agents": [{"id": r.agent, "tenant": r.tenant, "sessions": int(r.sessions), "archived": int(r.archived)} for r in found]}


class CountEntry(BaseModel):
    id: str
    sessions: int = Field(description="Sessions the default session.list shows (archived ones left out).")
    archived: int = Field(description="Archived sessions (session.list with archived: only).")


class ChannelListResult(BaseModel):
    channels: list[CountEntry]


@rpc_method("channel.list", params=TenantParams, result=ChannelListResult, roles=READ)
async def channel_list(ctx: Context, p: TenantParams) -> Any:
    """Channels (platforms such as telegram or slack) that have sessions, with counts."""
    found = await sessions.facet_counts(ctx.db, ctx.caller.scope, ["channel"], p.tenant)
    return {"channels": [{"id": r.channel, "sessions": int(r.sessions), "archived": int(r.archived)} for r in found]}


class TenantListResult(BaseModel):
    tenants: list[CountEntry]


@rpc_method("tenant.list", params=Params, result=TenantListResult, roles=READ)
async def tenant_list(ctx: Context, p: Params) -> Any:
    """Tenants this caller can see, with session counts."""
    found = await sessions.facet_counts(ctx.db, ctx.caller.scope, ["tenant"], None)
    return {"tenants": [{"id": r.tenant, "sessions": int(r.sessions), "archived": int(r.archived)} for r in found]}
