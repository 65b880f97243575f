"""The OpenAI Agents SDK runs on SessionscopeSession against a real Chat Completions server on loopback.

What the fake model received is the proof: after a Compact or a Reset done over RPC (as the
dashboard does), the next run sends the summary plus kept items, or nothing of the past.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from agents import Agent, Runner, SQLiteSession, function_tool, set_tracing_disabled
from agents.memory import Session, SessionSettings
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from openai import AsyncOpenAI

from sessionscope.client import AsyncClient, Client
from sessionscope.integrations.openai_agents import SessionscopeSession, item_to_message, message_to_items
from sessionscope.store.conversation import SUMMARY_PREFIX
from tests.conftest import RPC

INSTRUCTIONS = "You are a weather assistant."


class FakeOpenAI(ThreadingHTTPServer):
    """POST /v1/chat/completions: asks for get_weather when the user asks about weather, else echoes."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.requests: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def last_messages(self) -> list[dict[str, Any]]:
        return self.requests[-1]["messages"]


def reply(messages: list[dict[str, Any]]) -> dict[str, Any]:
    last = messages[-1]
    if last["role"] == "tool":
        return {"role": "assistant", "content": f"Forecast: {last['content']}."}
    text = last["content"] if isinstance(last["content"], str) else json.dumps(last["content"])
    if "weather" in text.lower():
        city = text.rsplit(" ", 1)[-1].strip("?")
        call = {"id": f"call_{len(messages)}", "type": "function",
                "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    return {"role": "assistant", "content": f"ack: {text} ({len(messages)} messages seen)"}


class ChatHandler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        message = reply(body["messages"])
        payload = json.dumps({
            "id": f"chatcmpl-{len(self.server.requests)}", "object": "chat.completion", "created": 1764136904,
            "model": body["model"],
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
        }).encode()
        self.send_response(200 if self.path == "/v1/chat/completions" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny and 21C in {city}"


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    set_tracing_disabled(True)
    server = FakeOpenAI()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def weather_agent(fake: FakeOpenAI) -> tuple[Agent[Any], AsyncOpenAI]:
    openai_client = AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
    model = OpenAIChatCompletionsModel(model="gpt-4o", openai_client=openai_client)
    return Agent(name="weather", instructions=INSTRUCTIONS, model=model, tools=[get_weather]), openai_client


def contents(messages: list[dict[str, Any]]) -> list[str]:
    out = []
    for m in messages:
        content = m.get("content")
        out.append(content if isinstance(content, str) else json.dumps(content))
    return out


async def test_runner_uses_the_store_and_sees_reset_and_compact(rpc: RPC, fake_openai: FakeOpenAI) -> None:
    agent, openai_client = weather_agent(fake_openai)
    client = AsyncClient(rpc.url)
    session = SessionscopeSession("chat:agents", client, agent="weather", channel="web", tenant=rpc.tenant)
    assert isinstance(session, Session)  # the runtime-checkable protocol of the installed package
    try:
        first = await Runner.run(agent, "What is the weather in Paris?", session=session)
        assert first.final_output == "Forecast: sunny and 21C in Paris."
        # The tool round trip is stored as our messages, with the tool named for the dashboard.
        items = rpc("session.status", key="chat:agents")["items"]
        assert [(i["role"], bool(i["tool_calls"])) for i in items] == [
            ("user", False), ("assistant", True), ("tool", False), ("assistant", False)]
        assert items[2]["tool_name"] == "get_weather" and items[2]["content"] == "sunny and 21C in Paris"
        assert items[1]["tool_calls"][0]["name"] == "get_weather"

        # Run 2 sends the whole stored conversation back to the model.
        await Runner.run(agent, "Thanks, and tomorrow?", session=session)
        sent = fake_openai.last_messages()
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]
        assert sent[1]["content"] == "What is the weather in Paris?"
        assert sent[2]["tool_calls"][0]["function"]["name"] == "get_weather"

        # Compact over RPC, as the dashboard does: run 3 gets the summary, then only the kept items.
        for turn in range(6):
            await Runner.run(agent, f"Note {turn}: " + "we keep the retry limit at five. " * 20, session=session)
        compacted = rpc("session.compact", key="chat:agents", keep_recent_tokens=200)
        assert compacted["compacted"], compacted
        live = rpc("session.history", key="chat:agents")["messages"]
        await Runner.run(agent, "What did we decide?", session=session)
        sent = fake_openai.last_messages()
        assert sent[0] == {"role": "system", "content": INSTRUCTIONS}
        assert sent[1]["role"] == "system" and sent[1]["content"].startswith(SUMMARY_PREFIX)
        assert "What is the weather in Paris?" not in contents(sent)
        assert sent[-1] == {"role": "user", "content": "What did we decide?"}
        # Instructions, then exactly the live context the dashboard shows, then the new input.
        assert contents(sent[1:-1]) == contents(live)

        # Reset over RPC: run 4 sends nothing of the past.
        rpc("session.reset", key="chat:agents")
        await Runner.run(agent, "Hello again", session=session)
        assert fake_openai.last_messages() == [{"role": "system", "content": INSTRUCTIONS},
                                               {"role": "user", "content": "Hello again"}]
        assert rpc("session.metrics", key="chat:agents")["resets"] == 1
    finally:
        await client.aclose()
        await openai_client.close()


async def test_items_come_back_as_added_and_pop_removes_the_newest(rpc: RPC) -> None:
    client = AsyncClient(rpc.url)
    session = SessionscopeSession("chat:items", client, tenant=rpc.tenant)
    added: list[Any] = [
        {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"id": "__fake_id__", "type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}]},
        {"id": "__fake_id__", "type": "function_call", "call_id": "c1", "name": "lookup",
         "arguments": '{"q": 1}', "status": "completed"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
    ]
    try:
        assert await session.get_items() == []
        await session.add_items(added)
        assert await session.get_items() == added  # same ids "__fake_id__" twice: nothing deduplicated away
        assert await session.get_items(limit=2) == added[-2:]
        before = rpc("session.metrics", key="chat:items")
        assert (before["message_count"], before["tool_calls"]) == (4, 1)

        assert await session.pop_item() == added[-1]
        assert await session.pop_item() == added[-2]
        assert await session.get_items() == added[:2]
        after = rpc("session.metrics", key="chat:items")
        assert (after["message_count"], after["tool_calls"]) == (2, 0)
        assert after["context_tokens"] < before["context_tokens"]
        status = rpc("session.status", key="chat:items")
        assert status["session"]["preview"] == "Hello" and status["session"]["live_messages"] == 2

        await session.clear_session()
        assert await session.get_items() == []
        assert await session.pop_item() is None
    finally:
        await client.aclose()


async def test_sync_client_and_messages_without_raw(rpc: RPC) -> None:
    """A sync Client works (calls run in a thread); messages appended by the SDK convert to items."""
    rpc.append("chat:mixed", [
        {"id": "1", "role": "user", "content": "hi"},
        {"id": "2", "role": "assistant", "content": "", "tool_calls": [
            {"id": "c9", "name": "search", "arguments": "{}"}]},
        {"id": "3", "role": "tool", "content": "found", "tool_call_id": "c9", "tool_name": "search"},
    ])
    client = Client(rpc.url)
    session = SessionscopeSession("chat:mixed", client, tenant=rpc.tenant)
    try:
        assert await session.get_items() == [
            {"role": "user", "content": "hi"},
            {"type": "function_call", "call_id": "c9", "name": "search", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c9", "output": "found"},
        ]
        assert await session.pop_item() == {"type": "function_call_output", "call_id": "c9", "output": "found"}
    finally:
        client.close()


def test_item_mapping_round_trips() -> None:
    for item in ({"role": "developer", "content": "be brief"},
                 {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
                 {"type": "function_call_output", "call_id": "a", "output": "ok"}):
        message = item_to_message(item)
        assert message["raw"] == item
        stored = {k: message.get(k) for k in ("role", "content", "tool_calls", "tool_call_id")}
        converted = message_to_items(stored)
        assert len(converted) == 1 and converted[0].get("call_id") == item.get("call_id")
    assert item_to_message({"role": "developer", "content": "x"})["role"] == "system"


# ---- the Session contract, side by side with the SDK's own SQLiteSession ----------------------------

# Two tool round trips, so that many limits cut between a call and its output.
CONVERSATION: list[Any] = [
    {"role": "user", "content": "Weather in Oslo and in Rome?"},
    {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
    {"type": "function_call_output", "call_id": "c1", "output": "rain"},
    {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": '{"city": "Rome"}'},
    {"type": "function_call_output", "call_id": "c2", "output": "sun"},
    {"id": "__fake_id__", "type": "message", "role": "assistant", "status": "completed",
     "content": [{"type": "output_text", "text": "Rain in Oslo, sun in Rome.", "annotations": []}]},
]
WAIT_S = 120  # a hang fails the test instead of stalling the suite


class SideBySide:
    """Runs each Session operation on both sessions and checks they answer the same."""

    def __init__(self, ours: Any, theirs: Any) -> None:
        self.ours = ours
        self.theirs = theirs
        self.checked = 0

    async def __call__(self, operation: str, *args: Any) -> Any:
        ours = await asyncio.wait_for(getattr(self.ours, operation)(*args), WAIT_S)
        theirs = await getattr(self.theirs, operation)(*args)
        assert ours == theirs, (operation, args)
        self.checked += 1
        return ours


async def test_every_operation_answers_as_sqlite_session_does(rpc: RPC) -> None:
    client = AsyncClient(rpc.url)
    theirs = SQLiteSession("chat:contract")
    both = SideBySide(SessionscopeSession("chat:contract", client, tenant=rpc.tenant), theirs)
    try:
        await both("get_items")
        await both("get_items", 3)
        await both("pop_item")
        await both("add_items", CONVERSATION)
        for limit in (None, 0, 1, 2, 3, 4, 5, 6, 7, 100, -1):
            await both("get_items", limit)
        assert await both("get_items", 1) == [CONVERSATION[-1]]
        assert await both("pop_item") == CONVERSATION[-1]
        assert await both("get_items", 1) == [CONVERSATION[-2]]  # an output whose call is left out
        await both("add_items", CONVERSATION[:2])
        for limit in (None, 1, 2, 3, 6):
            await both("get_items", limit)
        await both("pop_item")
        await both("pop_item")
        await both("get_items")
        await both("clear_session")
        await both("get_items")
        await both("get_items", 0)
        await both("pop_item")
        await both("add_items", [CONVERSATION[2]])  # an output alone: stored and given back as is
        await both("get_items", 1)
        await both("add_items", [])
        await both("get_items")
        assert both.checked == 35
    finally:
        theirs.close()
        await client.aclose()


async def test_session_settings_limit_as_sqlite_session(rpc: RPC) -> None:
    client = AsyncClient(rpc.url)
    theirs = SQLiteSession("chat:settings", session_settings=SessionSettings(limit=3))
    ours = SessionscopeSession("chat:settings", client, tenant=rpc.tenant, session_settings=SessionSettings(limit=3))
    both = SideBySide(ours, theirs)
    try:
        await both("add_items", CONVERSATION)
        assert await both("get_items") == CONVERSATION[-3:]
        await both("get_items", 5)
        await both("get_items", 0)
    finally:
        theirs.close()
        await client.aclose()


def test_one_client_from_several_event_loops_and_threads(rpc: RPC) -> None:
    """Each asyncio.run is a new loop, and each thread has its own: one AsyncClient serves them all."""
    client = AsyncClient(rpc.url)
    session = SessionscopeSession("chat:loops", client, tenant=rpc.tenant)

    def turn(n: int) -> list[Any]:
        asyncio.run(asyncio.wait_for(session.add_items([{"role": "user", "content": f"turn {n}"}]), WAIT_S))
        return asyncio.run(asyncio.wait_for(session.get_items(), WAIT_S))

    assert turn(0) == [{"role": "user", "content": "turn 0"}]
    assert len(turn(1)) == 2
    with ThreadPoolExecutor(max_workers=3) as pool:
        seen = [f.result(timeout=WAIT_S) for f in [pool.submit(turn, n) for n in range(2, 8)]]
    assert all(len(items) >= 3 for items in seen)
    final = asyncio.run(asyncio.wait_for(session.get_items(), WAIT_S))
    assert sorted(i["content"] for i in final) == [f"turn {n}" for n in range(8)]
    asyncio.run(client.aclose())


def test_runner_run_sync_from_threads(rpc: RPC, fake_openai: FakeOpenAI) -> None:
    """Runner.run_sync keeps one default loop per thread; the session works on each of them."""
    client = AsyncClient(rpc.url)
    clients: list[AsyncOpenAI] = []

    def conversation(name: str) -> list[Any]:
        agent, openai_client = weather_agent(fake_openai)
        clients.append(openai_client)
        session = SessionscopeSession(name, client, agent="weather", tenant=rpc.tenant)
        first = Runner.run_sync(agent, "What is the weather in Oslo?", session=session)
        assert first.final_output == "Forecast: sunny and 21C in Oslo."
        Runner.run_sync(agent, "Thanks!", session=session)
        return asyncio.run(asyncio.wait_for(session.get_items(), WAIT_S))

    results: dict[str, list[Any]] = {}

    def in_thread(name: str) -> None:
        results[name] = conversation(name)

    threads = [threading.Thread(target=in_thread, args=(f"chat:run-sync-{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT_S)
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(results) == [f"chat:run-sync-{n}" for n in range(3)]
    for items in results.values():
        kinds = [i.get("type", "message") for i in items]
        assert kinds == ["message", "function_call", "function_call_output", "message", "message", "message"]
