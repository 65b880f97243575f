"""The method registry: each method's params model, result model, roles and handler.

Descriptions come from the handler's docstring, written once; rpc.discover derives from here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from sessionscope.errors import Forbidden, InvalidParams, NotFound, SessionscopeError
from sessionscope.store import Database, Scope
from sessionscope.store.scope import resolve_tenant

VIEWER, OPERATOR, AGENT, ADMIN = "viewer", "operator", "agent", "admin"
ROLES = (VIEWER, OPERATOR, AGENT, ADMIN)
READ = frozenset({VIEWER, OPERATOR, ADMIN})
WRITE = frozenset({OPERATOR, ADMIN})
INGEST = frozenset({AGENT, ADMIN})
ADMIN_ONLY = frozenset({ADMIN})
ANY_ROLE = frozenset(ROLES)


@dataclass(frozen=True)
class Caller:
    """Who is calling: their tenant scope and role, and the token behind them (for audit)."""

    scope: Scope
    role: str
    token_id: int | None = None
    token_name: str | None = None


@dataclass
class Context:
    db: Database
    caller: Caller
    services: Any  # the app's Services (settings, export links, ...), see web/app.py
    base_url: str = ""


Handler = Callable[[Context, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Method:
    name: str
    params: type[BaseModel]
    result: type[BaseModel]
    roles: frozenset[str]
    handler: Handler
    summary: str
    description: str
    tags: tuple[str, ...] = field(default=())
    # The audit action recorded for every call of this method (None: not audited).
    audit: str | None = None
    # Errors beyond those every method can give (see method_errors).
    errors: tuple[type[SessionscopeError], ...] = ()
    # The session keys of a call on existing sessions, for resolving an omitted tenant (see
    # `resolve`); None for methods without keys and for those that create sessions.
    keys_of: Callable[[Any], list[str]] | None = None

    async def resolve(self, ctx: Context, params: Any) -> Any:
        """The params with an omitted `tenant` resolved across the caller's tenants, once for
        every key-taking method (the contract's Identity rule), so no handler repeats it."""
        if self.keys_of is None or params.tenant is not None:
            return params
        tenant = await resolve_tenant(ctx.db, ctx.caller.scope, self.keys_of(params))
        return params.model_copy(update={"tenant": tenant})


METHODS: dict[str, Method] = {}


def rpc_method(name: str, *, params: type[BaseModel], result: type[BaseModel], roles: frozenset[str],
               audit: str | None = None, errors: tuple[type[SessionscopeError], ...] = (),
               creates: bool = False) -> Callable[[Handler], Handler]:
    """Register a method. `creates`: it may create the session it names, so an omitted tenant
    means the default one rather than a lookup across tenants. `errors`: those beyond the ones
    every method can give (see method_errors)."""
    def register(handler: Handler) -> Handler:
        doc = (handler.__doc__ or name).strip()
        summary, _, rest = doc.partition("\n\n")  # the first paragraph, however many lines it takes
        METHODS[name] = Method(name, params, result, roles, handler, " ".join(summary.split()), rest.strip(),
                               audit=audit, errors=errors, keys_of=None if creates else _keys_of(params))
        return handler

    return register


def method_errors(method: Method) -> list[type[SessionscopeError]]:
    """The errors a method can answer (besides -32603): derived from its params, plus its own."""
    found: list[type[SessionscopeError]] = [InvalidParams, Forbidden]
    if {"key", "keys"} & set(method.params.model_fields):
        found.append(NotFound)
    found.extend(e for e in method.errors if e not in found)
    return found


def _keys_of(params: type[BaseModel]) -> Callable[[Any], list[str]] | None:
    from sessionscope.rpc.models import KeyParams, KeysParams

    if issubclass(params, KeysParams):
        return lambda p: p.all_keys()
    if issubclass(params, KeyParams):
        return lambda p: [p.key]
    return None
