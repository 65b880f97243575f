"""session.* semantics from the contract, on both databases, through the real server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import RPC, conversation

ODD_KEYS = [
    "agent:main:telegram:group:-100123:topic:42",
    "a:b/c %2F #x ?y z 🚀",
    "slash/only/key",
    "percent%25and%",
    "emoji 🚀🔥 key",
]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_keys_round_trip(rpc: RPC, key: str) -> None:
    rpc.append(key, [{"id": "1", "role": "user", "content": "hello"}])
    status = rpc("session.status", key=key)
    assert status["session"]["key"] == key
    assert [i["content"] for i in status["items"]] == ["hello"]
    listed = rpc("session.list")
    assert [s["key"] for s in listed["sessions"]] == [key]


def test_append_creates_session_and_counts(rpc: RPC) -> None:
    msgs = conversation(4)
    result = rpc.append("k1", msgs, agent="support", channel="telegram", label="Support chat")
    assert result == {"appended": len(msgs), "duplicates": 0, "last_seq": len(msgs)}
    row = rpc("session.status", key="k1")["session"]
    assert row["agent"] == "support" and row["channel"] == "telegram" and row["label"] == "Support chat"
    assert row["message_count"] == len(msgs)
    assert row["tool_calls"] == 2
    assert row["total_tokens"] == sum(i["tokens"] for i in rpc("session.status", key="k1")["items"])
    assert row["preview"] == msgs[-1]["content"][:200]


def test_append_is_idempotent(rpc: RPC) -> None:
    msgs = conversation(3)
    rpc.append("k", msgs)
    again = rpc.append("k", [*msgs[:2], {"id": "new", "role": "user", "content": "more"}])
    assert again["appended"] == 1 and again["duplicates"] == 2
    status = rpc("session.status", key="k")
    assert [i["id"] for i in status["items"]] == [m["id"] for m in msgs] + ["new"]
    assert [i["seq"] for i in status["items"]] == list(range(1, len(msgs) + 2))
    # New ids before and after stored ones, and an id repeated within the batch: counted once.
    third = rpc.append("k", [{"id": "n1", "role": "user", "content": "a"}, msgs[0],
                             {"id": "n1", "role": "user", "content": "a again"},
                             {"id": "n2", "role": "assistant", "content": "b"}])
    assert third == {"appended": 2, "duplicates": 2, "last_seq": len(msgs) + 3}
    status = rpc("session.status", key="k")
    assert [i["id"] for i in status["items"]] == [m["id"] for m in msgs] + ["new", "n1", "n2"]
    assert [i["seq"] for i in status["items"]] == list(range(1, len(msgs) + 4))
    assert status["items"][-2]["content"] == "a"
    assert rpc("session.metrics", key="k")["message_count"] == len(msgs) + 3


def test_later_appends_move_counters_label_and_never_time_back(rpc: RPC) -> None:
    rpc.append("k", conversation(2), label="first")
    before = rpc("session.status", key="k")["session"]
    old = {"id": "old", "role": "assistant", "content": "late arrival", "timestamp": "2020-01-01T00:00:00Z",
           "tokens": 7}
    assert rpc.append("k", [old], label="second") == {"appended": 1, "duplicates": 0,
                                                      "last_seq": before["message_count"] + 1}
    after = rpc("session.status", key="k")["session"]
    assert after["label"] == "second" and after["preview"] == "late arrival"
    assert after["updated_at"] == before["updated_at"]  # a message from 2020 does not move it back
    assert after["message_count"] == before["message_count"] + 1
    assert after["total_tokens"] == before["total_tokens"] + 7
    rpc.append("k", [{"id": "unlabelled", "role": "user", "content": "hi"}])
    assert rpc("session.status", key="k")["session"]["label"] == "second"


def test_status_pages_toward_older_items(rpc: RPC) -> None:
    msgs = [{"id": str(i), "role": "user", "content": f"m{i}"} for i in range(250)]
    rpc.append("long", msgs)
    first = rpc("session.status", key="long", limit=100)
    assert first["has_more"] is True
    assert [i["seq"] for i in first["items"]] == list(range(151, 251))
    second = rpc("session.status", key="long", limit=100, before_seq=151)
    assert [i["seq"] for i in second["items"]] == list(range(51, 151))
    third = rpc("session.status", key="long", limit=100, before_seq=51)
    assert third["has_more"] is False and len(third["items"]) == 50


def test_list_filters_sorts_and_pages(rpc: RPC) -> None:
    for i in range(7):
        rpc.append(f"s{i}", [{"id": "1", "role": "user", "content": "x " * (i + 1)}],
                   agent="alpha" if i % 2 else "beta", channel=["telegram", "slack", "web"][i % 3])
    by_agent = rpc("session.list", agent="alpha")
    assert {s["key"] for s in by_agent["sessions"]} == {"s1", "s3", "s5"} and by_agent["total"] == 3
    by_channel = rpc("session.list", channel="slack")
    assert {s["key"] for s in by_channel["sessions"]} == {"s1", "s4"}
    both = rpc("session.list", agent="beta", channel="telegram")
    assert {s["key"] for s in both["sessions"]} == {"s0", "s6"} and both["total"] == 2
    tokens = rpc("session.list", sort="total_tokens", order="asc")
    assert [s["key"] for s in tokens["sessions"]] == [f"s{i}" for i in range(7)]
    keys_desc = rpc("session.list", sort="key", order="desc")
    assert [s["key"] for s in keys_desc["sessions"]] == [f"s{i}" for i in range(6, -1, -1)]
    seen, cursor = [], None
    while True:
        page = rpc("session.list", sort="key", order="asc", limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [s["key"] for s in page["sessions"]]
        assert page["total"] == 7
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"s{i}" for i in range(7)]


def test_search_and_query(rpc: RPC) -> None:
    rpc.append("agent:main:telegram:group:-100123:topic:42", [{"id": "1", "role": "user", "content": "zebra"}],
               channel="telegram")
    rpc.append("agent:ops:slack:T1/C2", [{"id": "1", "role": "user", "content": "giraffe"}], agent="ops",
               channel="slack")
    rpc.append("100%_literal", [{"id": "1", "role": "user", "content": "lion"}], channel="web")
    assert [s["key"] for s in rpc("session.list", search="-100123")["sessions"]] == [
        "agent:main:telegram:group:-100123:topic:42"]
    assert [s["key"] for s in rpc("session.list", search="ops")["sessions"]] == ["agent:ops:slack:T1/C2"]
    assert [s["key"] for s in rpc("session.list", search="SLACK")["sessions"]] == ["agent:ops:slack:T1/C2"]
    # % and _ are literal characters, not wildcards.
    assert [s["key"] for s in rpc("session.list", search="%_")["sessions"]] == ["100%_literal"]
    assert rpc("session.list", search="0%_l")["total"] == 1
    assert rpc("session.list", search="nothing-like-this")["sessions"] == []
    assert [s["key"] for s in rpc("session.list", query="giraffe")["sessions"]] == ["agent:ops:slack:T1/C2"]


def test_reset_clears_history_keeps_billing(rpc: RPC) -> None:
    rpc.append("r", conversation(3))
    rpc("session.record", key="r", execution={"model": "gpt-4o", "provider": "openai",
                                               "usage": {"input_tokens": 1000, "output_tokens": 100}})
    before = rpc("session.metrics", key="r")
    assert rpc("session.reset", key="r") == {"reset": 1}
    assert rpc("session.history", key="r")["messages"] == []
    after = rpc("session.metrics", key="r")
    assert after["resets"] == 1
    assert after["cost_usd"] == before["cost_usd"] > 0
    assert after["input_tokens"] == 1000
    items = rpc("session.status", key="r")["items"]
    assert items[-1]["kind"] == "reset"
    rpc.append("r", [{"id": "after", "role": "user", "content": "fresh start"}])
    assert rpc("session.history", key="r")["messages"] == [{"role": "user", "content": "fresh start"}]


def test_compact_summarises_and_history_shows_summary(rpc: RPC) -> None:
    msgs = conversation(30)
    rpc.append("c", msgs)
    result = rpc("session.compact", key="c", keep_recent_tokens=400, instructions="focus on retry limits")
    assert result["compacted"] is True
    item = result["compaction"]
    assert item["kind"] == "compaction" and item["summary"] and item["instructions"] == "focus on retry limits"
    assert result["tokens_after"] < result["tokens_before"]
    history = rpc("session.history", key="c")["messages"]
    assert history[0]["role"] == "system" and item["summary"] in history[0]["content"]
    kept = history[1:]
    assert kept[0]["role"] == "user"
    # No tool result without its call in the live context.
    calls = {c["id"] for m in kept for c in m.get("tool_calls", [])}
    assert all(m["tool_call_id"] in calls for m in kept if m["role"] == "tool")
    status = rpc("session.status", key="c", limit=1000)
    compacted = [i for i in status["items"] if i["kind"] == "message" and i["compacted"]]
    assert len(compacted) == item["messages_compacted"]
    assert all(i["seq"] < item["first_kept_seq"] for i in compacted)
    # The marker sits right after the compacted messages.
    kinds = [i["kind"] for i in status["items"]]
    assert kinds.index("compaction") == len(compacted)
    marker = status["items"][len(compacted)]
    assert marker["summary_html"].startswith("<") and "<script" not in marker["summary_html"]
    assert rpc("session.metrics", key="c")["compactions"] == 1
    assert status["session"]["context_tokens"] == result["tokens_after"]


def test_compact_twice_and_nothing_to_compact(rpc: RPC) -> None:
    rpc.append("c2", conversation(20, "a"))
    first = rpc("session.compact", key="c2", keep_recent_tokens=300)
    rpc.append("c2", conversation(20, "b"))
    second = rpc("session.compact", key="c2", keep_recent_tokens=300)
    assert second["compacted"] is True
    assert second["compaction"]["first_kept_seq"] > first["compaction"]["first_kept_seq"]
    nothing = rpc("session.compact", key="c2", keep_recent_tokens=300)
    assert nothing["compacted"] is False and "nothing to compact" in nothing["message"]
    small = rpc.append("tiny", [{"id": "1", "role": "user", "content": "hi"}])
    assert small["appended"] == 1
    assert rpc("session.compact", key="tiny")["compacted"] is False


def test_compactions_list_and_restore(rpc: RPC) -> None:
    rpc.append("cr", conversation(20))
    history_before = rpc("session.history", key="cr")["messages"]
    done = rpc("session.compact", key="cr", keep_recent_tokens=300)
    listed = rpc("session.compactions", key="cr")["compactions"]
    assert [c["seq"] for c in listed] == [done["compaction"]["seq"]] and listed[0]["active"] is True
    restored = rpc("session.restore", key="cr", seq=done["compaction"]["seq"])
    assert restored["restored"] == done["compaction"]["seq"]
    assert rpc("session.history", key="cr")["messages"] == history_before
    again = rpc("session.compactions", key="cr")["compactions"][0]
    assert again["restored"] is True and again["active"] is False
    assert rpc.error("session.restore", key="cr", seq=done["compaction"]["seq"])["code"] == -32009


def test_delete_removes_everything(rpc: RPC) -> None:
    rpc.append("d", [{"id": "1", "role": "user", "content": "uniqueword-delete-me"}])
    rpc.append("keep", [{"id": "1", "role": "user", "content": "stays"}])
    assert rpc("session.delete", keys=["d"]) == {"deleted": 1}
    assert rpc.error("session.status", key="d")["code"] == -32001
    assert rpc("session.list", query="uniqueword-delete-me")["sessions"] == []
    assert rpc("session.list")["total"] == 1
    assert [a["id"] for a in rpc("agent.list")["agents"]] == ["main"]


def test_delete_is_all_or_nothing(rpc: RPC) -> None:
    rpc.append("x", [{"id": "1", "role": "user", "content": "a"}])
    error = rpc.error("session.delete", keys=["x", "missing"])
    assert error["code"] == -32001 and error["data"] == {"key": "missing"}
    assert rpc("session.status", key="x")["session"]["key"] == "x"


def test_record_computes_cost_and_context(rpc: RPC) -> None:
    rpc.append("e", conversation(2))
    layers = [{"name": "history-window", "start_ms": 0, "duration_ms": 3.5, "messages_in": 40, "messages_out": 20},
              {"name": "llm-compaction", "start_ms": 3.5, "duration_ms": 120.0, "messages_in": 20,
               "messages_out": 5}]
    budget = {"window": 128000, "system": 1200, "tools": 800, "context": 300, "messages": 5000}
    out = rpc("session.record", key="e", execution={
        "id": "exec-1", "model": "gpt-4o", "provider": "openai", "duration_ms": 900.0,
        "usage": {"input_tokens": 10000, "output_tokens": 500, "cache_read_tokens": 2000},
        "budget": budget, "layers": layers})
    # gpt-4o: $2.50/M input, $1.25/M cached input, $10/M output.
    assert out["cost_usd"] == pytest.approx(10000 * 2.5e-6 + 2000 * 1.25e-6 + 500 * 10e-6)
    ctx = rpc("session.context", key="e")
    assert ctx["budget"]["window"] == 128000 and ctx["budget"]["system"] == 1200
    assert [layer["name"] for layer in ctx["executions"][0]["layers"]] == ["history-window", "llm-compaction"]
    metrics = rpc("session.metrics", key="e")
    assert metrics["executions"] == 1 and metrics["input_tokens"] == 10000 and metrics["cache_read_tokens"] == 2000
    assert metrics["cache_hit_rate"] == pytest.approx(2000 / 12000, abs=1e-4)
    assert metrics["cost_usd"] == pytest.approx(out["cost_usd"])
    # The same execution id again is not counted twice.
    rpc("session.record", key="e", execution={"id": "exec-1", "model": "gpt-4o",
                                               "usage": {"input_tokens": 10000, "output_tokens": 500}})
    assert rpc("session.metrics", key="e")["executions"] == 1


def test_context_estimated_without_executions(rpc: RPC) -> None:
    rpc.append("est", conversation(2))
    ctx = rpc("session.context", key="est")
    assert ctx["executions"] == [] and ctx["budget"]["estimated"] is True
    assert ctx["budget"]["messages"] == rpc("session.status", key="est")["session"]["context_tokens"] > 0


def test_history_formats(rpc: RPC) -> None:
    rpc.append("h", [*conversation(2), {"id": "s", "role": "system", "content": "be brief"}])
    openai = rpc("session.history", key="h")["messages"]
    assistant_call = next(m for m in openai if m.get("tool_calls"))
    assert assistant_call["tool_calls"][0]["type"] == "function"
    assert assistant_call["tool_calls"][0]["function"]["name"] == "read_file"
    anthropic = rpc("session.history", key="h", format="anthropic")
    assert anthropic["system"] == "be brief"
    blocks = [b for m in anthropic["messages"] for b in m["content"]]
    use = next(b for b in blocks if b["type"] == "tool_use")
    result = next(b for b in blocks if b["type"] == "tool_result")
    assert use["input"] == {"path": "/srv/1"} and result["tool_use_id"] == use["id"]


def test_optional_message_fields_take_their_defaults(rpc: RPC) -> None:
    """Absent and null optional fields read the same; a tool call without arguments has "{}"."""
    rpc.append("defaults", [
        {"role": "user", "content": "hi", "id": None, "tool_calls": None, "tokens": None, "raw": None},
        {"role": "assistant", "tool_calls": [{"id": "c1", "name": "ping"}]},
    ])
    history = rpc("session.history", key="defaults")["messages"]
    assert history[0]["content"] == "hi" and "tool_calls" not in history[0]
    assert history[1]["content"] in ("", None)
    assert history[1]["tool_calls"][0]["function"] == {"name": "ping", "arguments": "{}"}
    row = rpc("session.list", search="defaults")["sessions"][0]
    assert row["tool_calls"] == 1 and row["message_count"] == 2 and row["input_tokens"] > 0


def test_agent_channel_tenant_lists(rpc: RPC) -> None:
    rpc.append("1", [{"id": "1", "role": "user", "content": "a"}], agent="main", channel="telegram")
    rpc.append("2", [{"id": "1", "role": "user", "content": "a"}], agent="main", channel="discord")
    rpc.append("3", [{"id": "1", "role": "user", "content": "a"}], agent="ops", channel="telegram")
    assert rpc("agent.list")["agents"] == [{"id": "main", "tenant": rpc.tenant, "sessions": 2, "archived": 0},
                                           {"id": "ops", "tenant": rpc.tenant, "sessions": 1, "archived": 0}]
    assert rpc("channel.list")["channels"] == [{"id": "discord", "sessions": 1, "archived": 0},
                                               {"id": "telegram", "sessions": 2, "archived": 0}]
    tenants = rpc("tenant.list", tenant=None) if False else rpc.request("tenant.list")["result"]["tenants"]
    assert {"id": rpc.tenant, "sessions": 3, "archived": 0} in tenants


def test_status_renders_sanitized_markdown(rpc: RPC) -> None:
    rpc.append("md", [{"id": "1", "role": "assistant",
                       "content": "**bold** <script>alert(1)</script> [x](javascript:alert(1))"}])
    item = rpc("session.status", key="md")["items"][0]
    assert "<strong>bold</strong>" in item["content_html"]
    assert "<script" not in item["content_html"] and "href=\"javascript" not in item["content_html"]
    assert "&lt;script&gt;" in item["content_html"]


def test_export_delete_import_round_trip(rpc: RPC, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import httpx

    rpc.append("x/y:z 🚀", conversation(12), label="Round trip")
    rpc("session.compact", key="x/y:z 🚀", keep_recent_tokens=300)
    rpc("session.record", key="x/y:z 🚀", execution={"id": "e1", "model": "gpt-4o",
                                                      "usage": {"input_tokens": 10, "output_tokens": 5}})
    raw = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "after compaction"}]}
    rpc.append("x/y:z 🚀", [{"id": "late", "role": "user", "content": "after compaction", "raw": raw}])
    link = rpc("session.export", keys=["x/y:z 🚀"])
    assert link["filename"].endswith(".jsonl")
    first = httpx.get(link["url"]).text
    lines = [json.loads(line) for line in first.splitlines()]
    assert lines[0]["type"] == "session" and lines[0]["key"] == "x/y:z 🚀" and lines[0]["version"] == 1
    assert [ln["seq"] for ln in lines if ln["type"] in ("message", "compaction")] == sorted(
        ln["seq"] for ln in lines if ln["type"] in ("message", "compaction"))
    assert [ln["raw"] for ln in lines if ln.get("id") == "late"] == [raw]
    assert sum("raw" in ln for ln in lines) == 1
    before_status = rpc("session.status", key="x/y:z 🚀", limit=1000)
    before_history = rpc("session.history", key="x/y:z 🚀")
    before_items = rpc("session.items", key="x/y:z 🚀")
    rpc("session.delete", key="x/y:z 🚀")

    from sessionscope.cli.transport import connect
    from sessionscope.importers import iter_records

    path = tmp_path / "export.jsonl"
    path.write_text(first)
    url = rpc.url
    backend = connect(None, url, None)
    backend.import_records((r for r in iter_records(str(path), "jsonl")), None)
    assert rpc("session.items", key="x/y:z 🚀")["items"][-1]["raw"] == raw  # remote import keeps it too
    # Remote import carries messages and executions; a local import carries everything:
    # re-export through the local path to check the full round trip.
    rpc("session.delete", key="x/y:z 🚀")
    server_db = rpc.request("rpc.discover")  # the server stays up; import locally into its store
    assert server_db["result"]["openrpc"].startswith("1.")
    del server_db
    _import_locally(rpc, path)
    after_status = rpc("session.status", key="x/y:z 🚀", limit=1000)
    assert _strip_times(after_status["items"]) == _strip_times(before_status["items"])
    assert rpc("session.history", key="x/y:z 🚀") == before_history
    assert rpc("session.items", key="x/y:z 🚀") == before_items
    again = httpx.get(rpc("session.export", keys=["x/y:z 🚀"])["url"]).text
    assert _strip_export(again) == _strip_export(first)


def _import_locally(rpc: RPC, path) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from sessionscope.importers import iter_records
    from sessionscope.ingest import ingest_records
    from sessionscope.store import Scope, open_database

    url = rpc.database_url  # type: ignore[attr-defined]

    async def run() -> None:
        db = await open_database(url, migrate=False)
        try:
            await ingest_records(db, Scope.everything(), iter_records(str(path), "jsonl"), source="import")
        finally:
            await db.close()

    asyncio.run(run())


def _strip_times(items: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    return [{k: v for k, v in i.items() if k != "content_html"} for i in items]


def _strip_export(text: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in text.splitlines()]


def test_messages_before_a_reset_are_not_marked_compacted(rpc: RPC) -> None:
    rpc.append("rc", conversation(20, "a"))
    rpc("session.compact", key="rc", keep_recent_tokens=300)
    rpc("session.reset", key="rc")
    rpc.append("rc", conversation(20, "b"))
    done = rpc("session.compact", key="rc", keep_recent_tokens=300)
    items = rpc("session.status", key="rc", limit=1000)["items"]
    reset_seq = next(i["seq"] for i in items if i["kind"] == "reset")
    messages = [i for i in items if i["kind"] == "message"]
    assert not any(m["compacted"] for m in messages if m["seq"] < reset_seq)
    compacted = [m for m in messages if m["compacted"]]
    assert compacted and all(reset_seq < m["seq"] < done["compaction"]["first_kept_seq"] for m in compacted)
    assert len(compacted) == done["compaction"]["messages_compacted"]


def test_archive_hides_from_the_default_list_and_deletes_nothing(rpc: RPC) -> None:
    for key in ("a1", "a2", "live"):
        rpc.append(key, [{"id": "1", "role": "user", "content": f"archiveword {key}"}])
    assert rpc("session.archive", keys=["a1", "a2"]) == {"archived": 2}
    assert rpc("session.archive", key="a1") == {"archived": 1}  # again: counted once, time kept
    default = rpc("session.list")
    assert [s["key"] for s in default["sessions"]] == ["live"] and default["total"] == 1
    only = rpc("session.list", archived="only")
    assert sorted(s["key"] for s in only["sessions"]) == ["a1", "a2"] and only["total"] == 2
    assert all(s["archived_at"].endswith("Z") for s in only["sessions"])
    every = rpc("session.list", archived="include", sort="key", order="asc", limit=2)
    assert [s["key"] for s in every["sessions"]] == ["a1", "a2"] and every["total"] == 3
    rest = rpc("session.list", archived="include", sort="key", order="asc", limit=2, cursor=every["next_cursor"])
    assert [s["key"] for s in rest["sessions"]] == ["live"]
    # The filters combine with search and query; the messages are all still there.
    assert [s["key"] for s in rpc("session.list", query="archiveword")["sessions"]] == ["live"]
    assert [s["key"] for s in rpc("session.list", search="a1", archived="only")["sessions"]] == ["a1"]
    assert rpc("session.status", key="a1")["items"][0]["content"] == "archiveword a1"
    assert rpc("session.status", key="a1")["session"]["archived_at"] is not None
    assert rpc.error("session.list", archived="maybe")["data"]["field"] == "archived"
    assert rpc.error("session.archive", keys=["a1", "missing"])["data"] == {"key": "missing"}
    assert rpc("store.check")["problems"] == []
    assert rpc("session.unarchive", keys=["a2"]) == {"unarchived": 1}
    assert rpc("session.list")["total"] == 2
    rpc("session.delete", key="a1")  # an archived session deleted: its facet's archived count follows
    assert rpc("session.list", archived="only")["total"] == 0
    assert rpc("store.check")["problems"] == []



def test_filter_counts_follow_the_default_list_and_count_archived_apart(rpc: RPC) -> None:
    """agent.list, channel.list and tenant.list feed the dashboard's filters: their `sessions`
    is what the default list shows, and `archived` what `archived: "only"` adds."""
    for key in ("f1", "f2", "f3"):
        rpc.append(key, [{"id": "1", "role": "user", "content": "hi"}], agent="counted", channel="counted-ch")
    rpc("session.archive", keys=["f1", "f2"])

    def counts() -> tuple[Any, Any, Any]:
        agent = next(a for a in rpc("agent.list")["agents"] if a["id"] == "counted")
        channel = next(c for c in rpc("channel.list")["channels"] if c["id"] == "counted-ch")
        tenants = rpc.request("tenant.list")["result"]["tenants"]
        tenant = next(t for t in tenants if t["id"] == rpc.tenant)
        return ((agent["sessions"], agent["archived"]), (channel["sessions"], channel["archived"]),
                (tenant["sessions"], tenant["archived"]) == (rpc("session.list")["total"],
                                                             rpc("session.list", archived="only")["total"]))

    assert counts() == ((1, 2), (1, 2), True)
    assert rpc("session.list", agent="counted")["total"] == 1
    rpc("session.archive", key="f3")  # all archived: still listed, so `archived: "only"` can find it
    assert counts() == ((0, 3), (0, 3), True)
    rpc("session.unarchive", keys=["f1", "f2", "f3"])
    assert counts() == ((3, 0), (3, 0), True)

def test_error_count_moves_with_every_write_and_filters_the_list(rpc: RPC) -> None:
    failing = [{"id": "1", "role": "user", "content": "run it"},
               {"id": "2", "role": "assistant", "content": "", "tool_calls": [{"id": "c1", "name": "sh", "arguments": "{}"}]},
               {"id": "3", "role": "tool", "content": "exit 1", "tool_call_id": "c1", "tool_name": "sh", "is_error": True},
               {"id": "4", "role": "assistant", "content": "the model failed", "is_error": True}]
    rpc.append("bad", failing)
    rpc.append("bad", failing)  # a retried batch: its messages are skipped, the count too
    rpc.append("fine", [{"id": "1", "role": "user", "content": "hello"}])
    rpc("session.import", key="imported", agent="main", channel="web",
        records=[{"type": "message", **m} for m in failing[2:3]])
    assert rpc("session.status", key="bad")["session"]["error_count"] == 2
    assert rpc("session.status", key="imported")["session"]["error_count"] == 1
    listed = rpc("session.list", has_errors=True, sort="key", order="asc")
    assert [(s["key"], s["error_count"]) for s in listed["sessions"]] == [("bad", 2), ("imported", 1)]
    assert listed["total"] == 2
    assert {s["key"]: s["error_count"] for s in rpc("session.list")["sessions"]}["fine"] == 0
    rpc("session.pop", key="bad")  # the errored last turn taken back
    assert rpc("session.status", key="bad")["session"]["error_count"] == 1
    rpc("session.archive", key="imported")
    assert [s["key"] for s in rpc("session.list", has_errors=True)["sessions"]] == ["bad"]
    assert rpc.error("session.list", has_errors="sometimes")["data"]["field"] == "has_errors"
    assert rpc("store.check")["problems"] == []


def test_query_returns_a_bounded_snippet_with_its_matches(rpc: RPC) -> None:
    long = "x " * 5000 + "the <b>Deploy</b> failed at step 3\nwith deploy logs " + "y " * 5000
    rpc.append("snip", [{"id": "1", "role": "user", "content": "nothing here"},
                        {"id": "2", "role": "assistant", "content": long},
                        {"id": "3", "role": "assistant", "content": "deploy again"}])
    rpc.append("other", [{"id": "1", "role": "user", "content": "unrelated"}])
    row, = rpc("session.list", query="deploy")["sessions"]
    snippet = row["snippet"]
    assert snippet["text"].startswith("…") and snippet["text"].endswith("…") and len(snippet["text"]) < 200
    assert "the <b>Deploy</b> failed at step 3 with deploy logs" in snippet["text"]
    assert [snippet["text"][a:b] for a, b in snippet["highlights"]] == ["Deploy", "deploy"]
    assert all(s["snippet"] is None for s in rpc("session.list")["sessions"])
