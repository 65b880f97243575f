"""rpc.discover is generated from the registry and covers the whole contract."""

from __future__ import annotations

import re
from pathlib import Path

from sessionscope.rpc.registry import METHODS
from tests.conftest import RPC

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "rpc.md"
# The methods of ../shared/spec/rpc.md, pinned so that a checkout without shared/ beside it
# still checks them; where the spec is present, the pin is checked against it.
CONTRACT_METHODS = {"agent.list", "channel.list", "session.append", "session.compact", "session.context",
                    "session.delete", "session.export", "session.history", "session.list", "session.metrics",
                    "session.record", "session.reset", "session.status"}


def contract_methods() -> set[str]:
    if not SPEC.exists():
        return CONTRACT_METHODS
    found = set(re.findall(r"^\| `([a-z]+\.[a-z]+)` \|", SPEC.read_text(), flags=re.MULTILINE))
    assert found == CONTRACT_METHODS, "the contract's methods changed: update CONTRACT_METHODS"
    return found


def test_discover_lists_every_contract_method(rpc: RPC) -> None:
    doc = rpc.request("rpc.discover")["result"]
    assert doc["openrpc"].startswith("1.")
    names = [m["name"] for m in doc["methods"]]
    assert sorted(names) == sorted(METHODS)  # every registered method, once, and nothing else
    assert contract_methods() <= set(names)
    assert {"rpc.discover", "session.compactions", "session.restore", "tenant.list"} <= set(names)
    by_name = {m["name"]: m for m in doc["methods"]}
    listing = {p["name"]: p for p in by_name["session.list"]["params"]}
    assert listing["sort"]["schema"]["enum"] == ["updated_at", "created_at", "key", "agent", "channel",
                                                 "message_count", "total_tokens", "cost_usd"]
    assert listing["limit"]["schema"]["maximum"] == 500
    append = {p["name"]: p for p in by_name["session.append"]["params"]}
    assert append["messages"]["required"] is True and append["key"]["required"] is True
    for method in doc["methods"]:
        assert method["summary"], method["name"]
        assert "schema" in method["result"]
        codes = [e["code"] for e in method["errors"]]
        assert -32602 in codes and -32003 in codes, method["name"]
        keyed = {p["name"] for p in method["params"]} & {"key", "keys"}
        assert (-32001 in codes) == bool(keyed), method["name"]
        if keyed == {"key", "keys"}:
            # session.export also takes `sessions` ({tenant, key} pairs across tenants)
            extra = [["sessions"]] if method["name"] == "session.export" else []
            assert method["x-params-one-of"] == [["key"], ["keys"], *extra], method["name"]
    assert -32009 in [e["code"] for e in by_name["session.restore"]["errors"]]
    # Every $ref resolves inside the document.
    text = str(doc)
    for ref in set(re.findall(r"#/components/schemas/([A-Za-z0-9_]+)", text)):
        assert ref in doc["components"]["schemas"], ref


def test_docs_rpc_md_method_sections_are_generated_and_fresh() -> None:
    """Like Datasette's `cog --check`: regenerate with `python -m sessionscope.rpc.reference`."""
    from sessionscope.rpc import reference

    text = reference.DOC.read_text()
    assert reference.updated(text) == text, "docs/rpc.md is stale: run python -m sessionscope.rpc.reference"
    for name in METHODS:
        assert f"\n### {name}\n" in text.split(reference.BEGIN)[1].split(reference.END)[0], name
    stale = text.replace("| `limit` | integer (≥1, ≤500) | no | `50` |", "| `limit` | integer | no | `50` |", 1)
    assert stale != text and reference.updated(stale) != stale  # the check can fail
