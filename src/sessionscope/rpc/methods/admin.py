"""Security methods: who am I, tokens, the audit log, and per-tenant retention."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from sessionscope.rpc.models import Name, Params, Tenant
from sessionscope.rpc.registry import ADMIN, ADMIN_ONLY, ANY_ROLE, OPERATOR, Context, rpc_method
from sessionscope.store import api_tokens, audit, retention
from sessionscope.store import check as integrity

MAX_RETENTION_DAYS = 36_500


class WhoamiResult(BaseModel):
    role: str
    tenant: str | None
    tenants: list[str] | None
    token_id: int | None
    token_name: str | None
    auth: bool


@rpc_method("auth.whoami", params=Params, result=WhoamiResult, roles=ANY_ROLE)
async def whoami(ctx: Context, p: Params) -> Any:
    """The caller: role, tenant (null for every tenant), token name, and whether auth is on."""
    tenants = ctx.caller.scope.tenants
    listed = sorted(tenants) if tenants is not None else None
    return {
        "role": ctx.caller.role,
        "tenant": listed[0] if listed and len(listed) == 1 else None,
        "tenants": listed,
        "token_id": ctx.caller.token_id,
        "token_name": ctx.caller.token_name,
        "auth": bool(getattr(getattr(ctx.services, "config", None), "auth", False)),
    }


# ---- tokens --------------------------------------------------------------------------------------

class TokenCreateParams(Params):
    name: Name
    role: Literal["viewer", "operator", "agent", "admin"]
    tenant: Tenant | None = None

    def audit_target(self, result: Any) -> tuple[str | None, list[str]]:
        return self.tenant, [self.name]


class TokenInfo(BaseModel):
    id: int
    name: str
    role: str
    tenant: str | None
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class TokenCreateResult(TokenInfo):
    token: str


@rpc_method("token.create", params=TokenCreateParams, result=TokenCreateResult, roles=ADMIN_ONLY,
            audit="token.create")
async def token_create(ctx: Context, p: TokenCreateParams) -> Any:
    """Create an API token. The result holds the token itself: it is shown this once, never again.

    `admin` tokens cover every tenant (leave `tenant` out); every other role needs a `tenant`.
    """
    return await api_tokens.create(ctx.db, name=p.name, role=p.role, tenant=p.tenant)


class TokenListParams(Params):
    include_revoked: bool = False


class TokenListResult(BaseModel):
    tokens: list[TokenInfo]


@rpc_method("token.list", params=TokenListParams, result=TokenListResult, roles=ADMIN_ONLY)
async def token_list(ctx: Context, p: TokenListParams) -> Any:
    """API tokens with role, tenant and last use; never the tokens themselves."""
    return {"tokens": await api_tokens.list_tokens(ctx.db, include_revoked=p.include_revoked)}


class TokenRevokeParams(Params):
    id: Annotated[int, Field(ge=1, le=2**63 - 1)]

    def audit_target(self, result: Any) -> tuple[str | None, list[str]]:
        tenant = result.get("tenant") if isinstance(result, dict) else None
        return tenant, [f"token:{self.id}"]


@rpc_method("token.revoke", params=TokenRevokeParams, result=TokenInfo, roles=ADMIN_ONLY, audit="token.revoke")
async def token_revoke(ctx: Context, p: TokenRevokeParams) -> Any:
    """Revoke a token: every call with it fails from now on, dashboard sessions included."""
    return await api_tokens.revoke(ctx.db, p.id)


# ---- audit ---------------------------------------------------------------------------------------

class AuditListParams(Params):
    tenant: Tenant | None = None
    action: Annotated[str, Field(max_length=64)] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: Annotated[str, Field(max_length=32)] | None = None


class AuditEntry(BaseModel):
    id: int
    time: str
    token_id: int | None
    token_name: str | None
    tenant: str | None
    action: str
    keys: list[str]
    outcome: str
    detail: dict[str, Any] | None


class AuditListResult(BaseModel):
    entries: list[AuditEntry]
    next_cursor: str | None


@rpc_method("audit.list", params=AuditListParams, result=AuditListResult, roles=frozenset({OPERATOR, ADMIN}))
async def audit_list(ctx: Context, p: AuditListParams) -> Any:
    """The audit log, newest first: resets, compactions, restores, deletes, exports, token and
    retention changes, with who, when, the keys and the outcome. Operators see their own tenant."""
    return await audit.list_entries(ctx.db, ctx.caller.scope, tenant=p.tenant, action=p.action, limit=p.limit,
                                    cursor=p.cursor)


# ---- retention -----------------------------------------------------------------------------------

class RetentionParams(Params):
    tenant: Tenant
    days: Annotated[int, Field(ge=1, le=MAX_RETENTION_DAYS)] | None

    def audit_target(self, result: Any) -> tuple[str | None, list[str]]:
        return self.tenant, []


class RetentionResult(BaseModel):
    tenant: str
    retention_days: int | None


@rpc_method("tenant.set_retention", params=RetentionParams, result=RetentionResult, roles=ADMIN_ONLY,
            audit="tenant.set_retention")
async def set_retention(ctx: Context, p: RetentionParams) -> Any:
    """Keep a tenant's sessions `days` after their last update (null: forever); the purge enforces it."""
    return await retention.set_retention(ctx.db, ctx.caller.scope, p.tenant, p.days)


class PurgeParams(Params):
    tenant: Tenant | None = None

    def audit_target(self, result: Any) -> tuple[str | None, list[str]]:
        purged = result.get("tenants", []) if isinstance(result, dict) else []
        return self.tenant, [k for t in purged for k in t["keys"]]


class PurgedTenant(BaseModel):
    tenant: str
    retention_days: int
    cutoff: str
    deleted: int
    keys: list[str]


class PurgeResult(BaseModel):
    deleted: int
    tenants: list[PurgedTenant]


@rpc_method("tenant.purge", params=PurgeParams, result=PurgeResult, roles=ADMIN_ONLY, audit="tenant.purge")
async def purge(ctx: Context, p: PurgeParams) -> Any:
    """Delete the sessions older than their tenant's retention now (the server also does this hourly)."""
    report = await retention.purge(ctx.db, ctx.caller.scope, p.tenant)
    return {"deleted": sum(t["deleted"] for t in report), "tenants": report}


# ---- integrity check -------------------------------------------------------------------------------

class CheckParams(Params):
    tenant: Tenant | None = None


class CheckProblem(BaseModel):
    tenant: str | None
    key: str | None
    problem: str


class CheckResult(BaseModel):
    ok: bool
    sessions: int
    problems_total: int
    problems: list[CheckProblem]


@rpc_method("store.check", params=CheckParams, result=CheckResult, roles=ADMIN_ONLY)
async def store_check(ctx: Context, p: CheckParams) -> Any:
    """The integrity check of `sessionscope check`: counters match rows, compactions are whole, no seq gaps.

    The whole store, or one tenant's sessions; at most 1000 problems are listed, `problems_total` counts all.
    """
    scope = ctx.caller.scope
    tenant = p.tenant if scope.is_global else scope.resolve(p.tenant)
    return (await integrity.check(ctx.db, tenant)).as_dict()
