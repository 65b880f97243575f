"""The Python SDK against a real server: session handle, retries without duplicates, the
execution recorder (also when the agent raises), typed errors, and the async twin."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionscope.client import AsyncClient, Client, Unavailable
from sessionscope.errors import InvalidParams, NotFound, TooLarge
from tests.conftest import RPC, free_port


class FlakyProxy(ThreadingHTTPServer):
    """A loopback HTTP proxy in front of the real server that injects network faults.

    Each entry of `faults` applies to one /rpc request: "lose-reply" forwards the call (the
    server stores it) and then answers 502, as a gateway that timed out would; "hang-up"
    forwards it and closes the connection without a reply; "refuse" answers 503 unforwarded.
    """

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.upstream = upstream
        self.faults: list[str] = []
        self.forwarded = 0
        self.http = httpx.Client(timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a hang-up is deliberate


class ProxyHandler(BaseHTTPRequestHandler):
    server: FlakyProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        fault = self.server.faults.pop(0) if self.server.faults else None
        if fault == "refuse":
            return self._send(503, b"busy")
        upstream = self.server.http.post(self.server.upstream + self.path, content=body,
                                         headers={"content-type": "application/json"})
        self.server.forwarded += 1
        if fault == "lose-reply":
            return self._send(502, b"bad gateway")
        if fault == "hang-up":
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        return self._send(upstream.status_code, upstream.content)

    def do_GET(self) -> None:
        upstream = self.server.http.get(self.server.upstream + self.path)
        self._send(upstream.status_code, upstream.content)

    def _send(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def proxy(rpc: RPC) -> Iterator[FlakyProxy]:
    server = FlakyProxy(rpc.url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    server.http.close()


def test_session_handle_round_trip(rpc: RPC, tmp_path: Path) -> None:
    with Client(rpc.url) as client:
        s = client.session("sdk:one", agent="helpdesk", channel="web", tenant=rpc.tenant)
        result = s.append({"role": "user", "content": "Where is order 7?"},
                          {"role": "assistant", "content": "It shipped yesterday."})
        assert result == {"appended": 2, "duplicates": 0, "last_seq": 2}
        assert s.history()["messages"] == [{"role": "user", "content": "Where is order 7?"},
                                           {"role": "assistant", "content": "It shipped yesterday."}]
        assert s.history(format="anthropic")["messages"][0]["content"] == [
            {"type": "text", "text": "Where is order 7?"}]
        status = s.status()
        assert (status["session"]["agent"], status["session"]["channel"]) == ("helpdesk", "web")
        assert all(len(item["id"]) == 32 for item in status["items"])  # client-made ids
        assert s.metrics()["message_count"] == 2
        size = s.export(str(tmp_path / "one.jsonl"))
        lines = [json.loads(line) for line in (tmp_path / "one.jsonl").read_text().splitlines()]
        assert size > 0 and [line["type"] for line in lines] == ["session", "message", "message"]
        assert s.reset() == 1 and s.history()["messages"] == []


def test_compact_through_the_handle(rpc: RPC) -> None:
    with Client(rpc.url) as client:
        s = client.session("sdk:compact", tenant=rpc.tenant)
        for turn in range(8):
            s.append({"role": "user", "content": f"Turn {turn}: keep retry limit {turn}. " * 10},
                     {"role": "assistant", "content": f"Noted turn {turn}. " * 10})
        result = s.compact(instructions="keep the retry limits", keep_recent_tokens=100)
        assert result["compacted"] and result["tokens_after"] < result["tokens_before"]
        first = s.history()["messages"][0]
        assert first["role"] == "system" and "compacted" in first["content"]
        assert s.metrics()["compactions"] == 1


def test_retried_append_never_duplicates(rpc: RPC, proxy: FlakyProxy) -> None:
    """The server stored the batch but the reply was lost, twice: the third attempt is a no-op."""
    with Client(proxy.url) as client:
        s = client.session("sdk:retry", tenant=rpc.tenant)
        proxy.faults = ["lose-reply", "hang-up"]
        result = s.append({"role": "user", "content": "once"}, {"role": "assistant", "content": "only once"})
        assert proxy.forwarded == 3
        assert result == {"appended": 0, "duplicates": 2, "last_seq": 2}
    assert rpc("session.metrics", key="sdk:retry")["message_count"] == 2
    assert [m["content"] for m in rpc("session.history", key="sdk:retry")["messages"]] == ["once", "only once"]


def test_retries_give_up_with_unavailable(rpc: RPC, proxy: FlakyProxy) -> None:
    with Client(proxy.url, retries=2) as client:
        proxy.faults = ["refuse"] * 3
        with pytest.raises(Unavailable, match="HTTP 503"):
            client.session("sdk:down", tenant=rpc.tenant).append({"role": "user", "content": "x"})
        assert proxy.faults == [] and proxy.forwarded == 0
        # A non-idempotent call (reset) is never retried.
        proxy.faults = ["refuse", "refuse"]
        with pytest.raises(Unavailable):
            client.session("sdk:down", tenant=rpc.tenant).reset()
        assert proxy.faults == ["refuse"]
    with Client(f"http://127.0.0.1:{free_port()}", retries=1) as closed, pytest.raises(Unavailable):
        closed.session("x").status()


def test_typed_errors(rpc: RPC) -> None:
    with Client(rpc.url) as client:
        with pytest.raises(NotFound) as missing:
            client.session("sdk:nobody", tenant=rpc.tenant).status()
        assert missing.value.data == {"key": "sdk:nobody"}
        with pytest.raises(InvalidParams) as invalid:
            client.session("sdk:bad", tenant=rpc.tenant).append({"role": "robot", "content": "x"})
        assert invalid.value.data["field"].startswith("messages.0.role")
        with pytest.raises(TooLarge):
            client.session("sdk:big", tenant=rpc.tenant).append({"role": "user", "content": "x" * 9_000_000})


def test_execution_recorder_measures_layers(rpc: RPC) -> None:
    with Client(rpc.url) as client:
        s = client.session("sdk:exec", tenant=rpc.tenant)
        s.append({"role": "user", "content": "hi"})
        with s.execution(model="gpt-4o", provider="openai") as ex:
            with ex.layer("history-window", messages_in=40, tokens_in=9000) as layer:
                time.sleep(0.02)
                layer.messages_out, layer.tokens_out = 12, 3000
            with ex.layer("retrieval"):
                time.sleep(0.01)
            ex.usage(input_tokens=1200, output_tokens=80, cache_read_tokens=1000)
            ex.budget(system=300, tools=200, context=500, messages=3000, window=128_000)
        assert ex.result is not None and ex.result["cost_usd"] > 0
    run = rpc("session.context", key="sdk:exec")["executions"][0]
    assert run["id"] == ex.id and run["model"] == "gpt-4o"
    assert run["usage"] == {"input_tokens": 1200, "output_tokens": 80, "cache_read_tokens": 1000,
                            "cache_write_tokens": 0, "cache_write_1h_tokens": 0, "reasoning_tokens": 0}
    assert run["budget"] == {"system": 300, "tools": 200, "context": 500, "messages": 3000, "window": 128_000}
    window, retrieval = run["layers"]
    assert (window["name"], window["messages_in"], window["messages_out"], window["tokens_out"]) == (
        "history-window", 40, 12, 3000)
    assert window["duration_ms"] >= 20 and retrieval["duration_ms"] >= 10
    assert retrieval["start_ms"] >= window["start_ms"] + window["duration_ms"]
    assert run["duration_ms"] >= retrieval["start_ms"] + retrieval["duration_ms"]


def test_execution_is_recorded_when_the_agent_raises(rpc: RPC) -> None:
    with Client(rpc.url) as client:
        s = client.session("sdk:boom", tenant=rpc.tenant)
        s.append({"role": "user", "content": "hi"})
        with pytest.raises(RuntimeError, match="vector store down"), s.execution(model="gpt-4o") as ex:
            with ex.layer("history-window"):
                pass
            with ex.layer("retrieval"):
                raise RuntimeError("vector store down")
        with pytest.raises(KeyError), s.execution(model="gpt-4o"):
            raise KeyError("outside any layer")
    runs = {r["id"]: r for r in rpc("session.context", key="sdk:boom")["executions"]}
    layers = runs[ex.id]["layers"]
    assert [(la["name"], la.get("error")) for la in layers] == [
        ("history-window", None), ("retrieval", "RuntimeError: vector store down")]
    other = next(r for r in runs.values() if r["id"] != ex.id)
    assert other["layers"][0]["name"] == "execution" and "outside any layer" in other["layers"][0]["error"]


def test_record_failure_does_not_hide_the_agent_error(rpc: RPC) -> None:
    with Client(rpc.url) as client:
        s = client.session("sdk:never-created", tenant=rpc.tenant)
        # not the NotFound of the record
        with pytest.raises(ValueError, match="agent failed"), s.execution():
            raise ValueError("agent failed")
        with pytest.raises(NotFound), s.execution():  # alone, the record's failure is raised
            pass


async def test_async_client(rpc: RPC) -> None:
    async with AsyncClient(rpc.url) as client:
        s = client.session("sdk:async", agent="bot", channel="slack", tenant=rpc.tenant)
        assert (await s.append({"role": "user", "content": "hi"}))["appended"] == 1
        async with s.execution(model="gpt-4o-mini", provider="openai") as ex:
            async with ex.layer("history-window", messages_in=1):
                history = (await s.history())["messages"]
            ex.usage(input_tokens=10, output_tokens=5)
        assert history == [{"role": "user", "content": "hi"}]
        run = (await s.context())["executions"][0]
        assert run["id"] == ex.id and run["layers"][0]["name"] == "history-window"
        assert (await s.pop())["content"] == "hi"
        assert (await s.metrics())["message_count"] == 0
        with pytest.raises(NotFound):
            await client.session("sdk:async-missing", tenant=rpc.tenant).status()
        with pytest.raises(TypeError), s.execution():
            pass
