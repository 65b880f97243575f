"""The real OpenAI instrumentations (`openinference-instrumentation-openai` and
`opentelemetry-instrumentation-openai-v2`) tracing real `openai` client calls to a loopback Chat
Completions server, exported by the official OTLP/HTTP exporter to a real sessionscope server.

Each instrumentation patches the openai module for its whole process and reads its settings
from the environment once, so each runs in a subprocess of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sessionscope.web.otlp import TENANT_HEADER
from tests.conftest import RPC

MODEL = "gpt-4o-mini-2024-07-18"  # the response model; the requests ask for "gpt-4o-mini"


class ChatCompletions(BaseHTTPRequestHandler):
    """POST /v1/chat/completions: a tool call for the weather question, then an answer."""

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        last = request["messages"][-1]
        if last["role"] == "tool":
            message: dict[str, Any] = {"role": "assistant", "content": "Sunny, 21°C in Paris."}
        elif "weather" in str(last.get("content")).lower() and request.get("tools"):
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_w1", "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
        else:
            message = {"role": "assistant", "content": f"You said: {last.get('content')}"}
        body = json.dumps({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1772000000, "model": MODEL,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37},
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ChatCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


COMMON = """
import openai
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

provider = TracerProvider(resource=Resource.create({{"service.name": "weather-app"}}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
    endpoint="{otlp}", headers={{"{header}": "{tenant}"}})))
client = openai.OpenAI(base_url="{llm}", api_key="test-key")
TOOLS = [{{"type": "function", "function": {{"name": "get_weather", "parameters": {{
    "type": "object", "properties": {{"city": {{"type": "string"}}}}}}}}}}]


def weather_turn():
    messages = [{{"role": "system", "content": "Be brief."}}, {{"role": "user", "content": "Weather in Paris?"}}]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {{"role": "tool", "tool_call_id": call.id, "content": "sunny 21C"}}]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
"""

OPENINFERENCE = """
from openinference.instrumentation import using_session
from openinference.instrumentation.openai import OpenAIInstrumentor

OpenAIInstrumentor().instrument(tracer_provider=provider)
with using_session("oi-weather"):
    weather_turn()
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "no session here"}])
# An agent span as LangChain or LlamaIndex instrumentations mark one: text in input/output values only.
tracer = provider.get_tracer("agent-framework")
with tracer.start_as_current_span("agent", attributes={
        "openinference.span.kind": "AGENT", "session.id": "oi-agent",
        "input.value": "Is the deploy done?", "output.value": "Yes, billing-api is live."}):
    with tracer.start_as_current_span("chain", attributes={
            "openinference.span.kind": "CHAIN", "session.id": "oi-agent",
            "input.value": '{"question": "Is the deploy done?"}', "output.value": '{"answer": "Yes"}'}):
        pass
provider.shutdown()
"""

GENAI = """
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

OpenAIInstrumentor().instrument(tracer_provider=provider)
tracer = provider.get_tracer("my-agent")
with tracer.start_as_current_span("invoke_agent Weather", attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Weather",
        "gen_ai.conversation.id": "genai-weather"}):
    weather_turn()
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "no session here"}])
provider.shutdown()
"""


def _run(script: str, rpc: RPC, llm_url: str, env: dict[str, str]) -> None:
    code = COMMON.format(otlp=f"{rpc.url}/v1/traces", header=TENANT_HEADER, tenant=rpc.tenant, llm=llm_url) + script
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=False, env=os.environ | env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _messages(rpc: RPC, key: str) -> list[tuple[str, str, str | None]]:
    items = rpc("session.status", key=key)["items"]
    return [(i["role"], i["content"], i.get("tool_name")) for i in items]


def _trace_keyed(rpc: RPC) -> list[str]:
    return [s["key"] for s in rpc("session.list", limit=50)["sessions"] if s["key"].startswith("trace:")]


WEATHER = [("system", "Be brief.", None), ("user", "Weather in Paris?", None), ("assistant", "", None),
           ("tool", "sunny 21C", "get_weather"), ("assistant", "Sunny, 21°C in Paris.", None)]


def test_openinference_instrumentation(rpc: RPC, llm_url: str) -> None:
    _run(OPENINFERENCE, rpc, llm_url, {})
    assert _messages(rpc, "oi-weather") == WEATHER
    executions = rpc("session.context", key="oi-weather")["executions"]
    assert {(e["model"], e["provider"]) for e in executions} == {(MODEL, "openai")}
    assert len(executions) == 2  # one per model call: no agent span around them
    (anonymous,) = _trace_keyed(rpc)
    assert _messages(rpc, anonymous) == [("user", "no session here", None),
                                         ("assistant", "You said: no session here", None)]
    # Text only in input.value / output.value: one turn, from the outermost span.
    assert _messages(rpc, "oi-agent") == [("user", "Is the deploy done?", None),
                                          ("assistant", "Yes, billing-api is live.", None)]
    found = rpc("session.list", query="billing")["sessions"]
    assert [s["key"] for s in found] == ["oi-agent"]


def test_opentelemetry_genai_instrumentation(rpc: RPC, llm_url: str) -> None:
    _run(GENAI, rpc, llm_url, {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
                               "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only"})
    status = rpc("session.status", key="genai-weather")
    assert status["session"]["agent"] == "Weather"
    assert _messages(rpc, "genai-weather") == WEATHER
    (execution,) = rpc("session.context", key="genai-weather")["executions"]
    assert (execution["model"], execution["provider"]) == (MODEL, "openai")
    assert execution["usage"]["output_tokens"] == 14
    (anonymous,) = _trace_keyed(rpc)
    assert _messages(rpc, anonymous)[-1] == ("assistant", "You said: no session here", None)
