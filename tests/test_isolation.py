"""Property: for every RPC method, random tenants, tokens and roles, a caller never reads, counts or
changes another tenant's data, and a role never does more than its table allows.

The role table below is written out here, not imported from the registry, so that widening a
role in code fails this test until the table (and docs/security.md) say so too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionscope.rpc.registry import METHODS
from tests.security_helpers import AuthServer, TokenClient

VIEWER = {"session.list", "session.status", "session.context", "session.metrics", "session.history",
          "session.compactions", "session.items", "agent.list", "channel.list", "tenant.list", "rpc.discover",
          "auth.whoami"}
OPERATOR = VIEWER | {"session.reset", "session.compact", "session.delete", "session.export", "session.restore",
                     "session.pop", "audit.list", "session.import", "session.label",
                     "session.archive", "session.unarchive"}
# session.items and session.pop are what the OpenAI Agents SDK session adapter needs (history and retract).
AGENT = {"session.append", "session.record", "session.history", "session.items", "session.pop", "rpc.discover",
         "auth.whoami"}
ROLE_TABLE = {"viewer": VIEWER, "operator": OPERATOR, "agent": AGENT}
EXAMPLES = {"sqlite": 600, "postgresql": 400}
CHECKED: dict[str, int] = {}

SECRET = "SECRET-OF-"  # every message of tenant T says SECRET-OF-T


class World:
    """Three tenants with sessions (one key shared by name), and a token per role and tenant."""

    def __init__(self, server: AuthServer) -> None:
        run = uuid.uuid4().hex[:6]
        self.server = server
        self.tenants = [f"iso-{run}-{i}" for i in range(3)]
        self.clients: dict[tuple[str, str], TokenClient] = {}
        for t_index, tenant in enumerate(self.tenants):
            for s_index in range(3 + t_index):
                key = "shared key" if s_index == 0 else f"{tenant}/own-{s_index}"
                server.admin("session.append", tenant=tenant, key=key, agent=f"agent-{t_index}",
                             channel=["web", "slack", "telegram"][s_index % 3],
                             messages=[{"id": f"m{i}", "role": "user", "content": f"{SECRET}{tenant} {i} " * 40}
                                       for i in range(6)])
            for role in ROLE_TABLE:
                self.clients[(role, tenant)] = server.client(server.token(role, tenant))
        self.admin = server.admin

    def keys(self, tenant: str) -> list[str]:
        return [s["key"] for s in self.admin("session.list", tenant=tenant, limit=500, archived="include")["sessions"]]

    def fingerprint(self, tenant: str) -> Any:
        listed = self.admin("session.list", tenant=tenant, limit=500, archived="include")
        rows = sorted((s["key"], s["message_count"], s["resets"], s["compactions"], s["executions"],
                       s["context_tokens"], s["updated_at"], s["archived_at"] or "") for s in listed["sessions"])
        return listed["total"], rows

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


@pytest.fixture(scope="module")
def world(auth_server: AuthServer) -> Iterator[World]:
    built = World(auth_server)
    yield built
    built.close()


def params_for(method: str, key: str, tenant: str | None) -> dict[str, Any]:
    """Valid params for `method` acting on `key`, naming `tenant` (or none)."""
    base: dict[str, Any] = {} if tenant is None else {"tenant": tenant}
    message = [{"id": uuid.uuid4().hex, "role": "assistant", "content": "appended by the property test"}]
    by_method: dict[str, dict[str, Any]] = {
        "session.append": {"key": key, "agent": "prop", "channel": "web", "messages": message},
        "session.record": {"key": key, "execution": {"usage": {"input_tokens": 5, "output_tokens": 2}}},
        "session.restore": {"key": key, "seq": 1},
        "session.import": {"key": key, "records": [{"type": "message", **message[0]}]},
        "session.compact": {"key": key, "keep_recent_tokens": 0},
        "session.delete": {"keys": [key]},
        "session.reset": {"keys": [key]},
        "session.export": {"keys": [key]},
        "session.label": {"key": key, "label": "renamed by the property test"},
        "session.list": {"archived": "include"},  # archived sessions count in every total here
        "session.archive": {"keys": [key]},
        "session.unarchive": {"keys": [key]},
        "token.create": {"name": "prop", "role": "viewer", **({"tenant": tenant} if tenant else {})},
        "token.revoke": {"id": 10**12},
        "tenant.set_retention": {"tenant": tenant or "default", "days": None},
    }
    if method in by_method:
        return base | by_method[method] if method not in ("token.create", "token.revoke") else by_method[method]
    fields = METHODS[method].params.model_fields
    if "key" in fields:
        base["key"] = key
    return {k: v for k, v in base.items() if k in fields}


@st.composite
def cases(draw: st.DrawFn, world: World) -> dict[str, Any]:
    role = draw(st.sampled_from(sorted(ROLE_TABLE)))
    own = draw(st.sampled_from(world.tenants))
    others = [t for t in world.tenants if t != own]
    method = draw(st.sampled_from(sorted(METHODS)))
    named = draw(st.sampled_from([None, own, *others]))
    key_kind = draw(st.sampled_from(["shared", "own", "other"]))
    return {"role": role, "own": own, "others": others, "method": method, "named": named, "key_kind": key_kind}


def other_secrets(text: str, others: list[str]) -> list[str]:
    return [t for t in others if f"{SECRET}{t}" in text or f'"{t}"' in text]


def check_case(world: World, case: dict[str, Any]) -> None:
    role, own, others, method, named = case["role"], case["own"], case["others"], case["method"], case["named"]
    key = {"shared": "shared key", "own": f"{own}/own-1", "other": f"{others[0]}/own-1"}[case["key_kind"]]
    client = world.clients[(role, own)]
    before = {t: world.fingerprint(t) for t in others}
    own_total = world.admin("session.list", tenant=own, archived="include")["total"]
    params = params_for(method, key, named)
    if "tenant" not in params:
        named = None  # this method takes no tenant: the caller cannot name one
    answer = client.request(method, params)
    after = {t: world.fingerprint(t) for t in others}
    assert after == before, f"{role}@{own} changed another tenant with {method}"
    error = answer.get("error")
    allowed = method in ROLE_TABLE[role]
    if not allowed:
        assert error is not None and error["code"] == -32003, (role, method, answer)
        return
    if named in others:
        assert error is not None and error["code"] == -32003, (role, method, named, answer)
        return
    if error is not None:
        # Allowed and in its own tenant: never forbidden; another tenant's key reads as absent.
        assert error["code"] != -32003, (role, method, answer)
        if case["key_kind"] == "other" and ("key" in params or "keys" in params):
            assert error["code"] in (-32001, -32602, -32009), (role, method, answer)
        return
    result = answer["result"]
    text = json.dumps(result)
    assert not other_secrets(text, others), f"{role}@{own} saw another tenant through {method}: {text[:300]}"
    if method == "session.list":
        assert result["total"] == own_total
        assert {s["tenant"] for s in result["sessions"]} <= {own}
    elif method == "agent.list":
        assert {a["tenant"] for a in result["agents"]} <= {own}
        assert sum(a["sessions"] + a["archived"] for a in result["agents"]) == own_total
    elif method == "channel.list":
        assert sum(c["sessions"] + c["archived"] for c in result["channels"]) == own_total
    elif method == "tenant.list":
        assert [t["id"] for t in result["tenants"]] in ([own], [])
    elif method == "audit.list":
        assert {e["tenant"] for e in result["entries"]} <= {own}
    elif method == "session.status":
        assert result["session"]["tenant"] == own
    elif method == "auth.whoami":
        assert result["tenant"] == own and result["role"] == role
    # A key of another tenant may exist in the caller's own tenant too (it may have appended it):
    # then it is the caller's own session, and the secret check above is what matters.


def test_no_caller_crosses_tenants_or_its_role(world: World, dialect: str) -> None:
    checked = 0

    @settings(max_examples=EXAMPLES[dialect], deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        nonlocal checked
        check_case(world, data.draw(cases(world)))
        checked += 1

    run()
    CHECKED[dialect] = checked
    print(f"\nisolation cases checked on {dialect}: {checked}")
    assert checked >= EXAMPLES[dialect] // 2


def test_every_method_is_in_the_role_table() -> None:
    """Each registered method is either admin-only here or named for the roles the registry gives it."""
    for name, method in METHODS.items():
        for role, allowed in ROLE_TABLE.items():
            assert (role in method.roles) == (name in allowed), (name, role)
        assert "admin" in method.roles, name


def test_admin_sees_every_tenant(world: World) -> None:
    listed = world.admin("tenant.list")["tenants"]
    assert set(world.tenants) <= {t["id"] for t in listed}
    for tenant in world.tenants:
        assert world.admin("session.list", tenant=tenant, archived="include")["total"] == len(world.keys(tenant))
