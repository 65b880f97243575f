"""LLM summarizer against a real Chat Completions server on loopback, and its offline fallback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sessionscope.compaction import SummarizerSettings, summarize, summary_message
from sessionscope.compaction.llm import SECTIONS, render_transcript
from sessionscope.compaction.offline import summarize_offline

LLM_SUMMARY = '## Requests\n- "migrate billing"\n## Decisions\n- pg_dump\n'


class FakeChatServer(ThreadingHTTPServer):
    """Speaks POST /v1/chat/completions; `mode` picks the behaviour of the next requests."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.release = threading.Event()  # ends a "sleep" response early at teardown

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is expected here, not a failure


class ChatHandler(BaseHTTPRequestHandler):
    server: FakeChatServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append(json.loads(body))
        self.server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        mode = self.server.mode
        if self.path != "/v1/chat/completions":
            self._send(404, b'{"error": {"message": "not found"}}')
        elif mode == "sleep":
            self.server.release.wait(timeout=5)
            self._send(200, completion(LLM_SUMMARY))
        elif mode == "500":
            self._send(500, b'{"error": {"message": "model crashed", "type": "server_error"}}')
        elif mode == "malformed":
            self._send(200, b'{"id": "cmpl-1", "choices": [{"message": {"content": "trunc')
        elif mode == "empty":
            self._send(200, completion(""))
        else:
            self._send(200, completion(LLM_SUMMARY))

    def _send(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def completion(content: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1764136904,
            "model": "test-model",
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
    ).encode()


@pytest.fixture
def server() -> Iterator[FakeChatServer]:
    srv = FakeChatServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def messages() -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": "Please migrate billing to PostgreSQL 16 without dropping invoices_2024.",
        },
        {
            "role": "assistant",
            "content": "Reading the config.",
            "tool_calls": [
                {"id": "c1", "name": "read_file", "arguments": '{"path": "services/billing/config.yaml"}'}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "tool_name": "read_file", "content": "pool_size: 20"},
        {"role": "assistant", "content": "We decided to use pg_dump instead of logical replication."},
    ]


def settings_for(server: FakeChatServer, **kw: Any) -> SummarizerSettings:
    return SummarizerSettings(
        kind="llm", base_url=server.base_url, model="test-model", api_key="sk-test-123", **kw
    )


def test_success_uses_the_llm_and_sends_model_sections_and_instructions(server: FakeChatServer) -> None:
    result = summarize(messages(), "keep the pool size", settings_for(server))
    assert result.summary == LLM_SUMMARY
    assert result.summarizer == "llm:test-model"
    assert result.fallback_reason is None
    [body] = server.requests
    assert body["model"] == "test-model"
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    for title in SECTIONS:
        assert f"## {title}" in system["content"]
    assert "keep the pool size" in system["content"]
    assert "invoices_2024" in user["content"] and "pool_size: 20" in user["content"]
    assert "read_file" in user["content"]
    # The offline extractor's facts go along as a checklist, so an llm summary loses none of them.
    checklist = user["content"].split("<checklist>", 1)[1]
    assert "`read_file` returned" in checklist and "pool_size: 20" in checklist
    assert "every item on it must appear" in system["content"]
    assert server.headers_seen[0]["authorization"] == "Bearer sk-test-123"


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("500", "HTTP 500"), ("malformed", "malformed response"), ("empty", "empty summary")],
)
def test_failures_fall_back_to_offline_with_a_reason(server: FakeChatServer, mode: str, reason: str) -> None:
    server.mode = mode
    result = summarize(messages(), "keep the pool size", settings_for(server))
    assert result.summarizer == "offline"
    assert result.fallback_reason is not None and reason in result.fallback_reason
    assert "llm:test-model" in result.fallback_reason
    assert result.summary == summarize_offline(messages(), "keep the pool size")
    assert len(server.requests) == 1  # no retries: the offline answer is good enough now


def test_timeout_falls_back_to_offline_within_the_timeout(server: FakeChatServer) -> None:
    server.mode = "sleep"
    result = summarize(messages(), None, settings_for(server, timeout_s=0.5))
    assert result.summarizer == "offline"
    assert result.fallback_reason is not None and "timed out after 0.5 s" in result.fallback_reason
    assert result.summary == summarize_offline(messages(), None)


def test_unreachable_endpoint_falls_back() -> None:
    srv = FakeChatServer()  # bound but never serving, then closed: nothing listens on the port
    url = srv.base_url
    srv.server_close()
    settings = SummarizerSettings(kind="llm", base_url=url, model="m", timeout_s=2)
    result = summarize(messages(), None, settings)
    assert result.summarizer == "offline"
    assert result.fallback_reason is not None and "connection failed" in result.fallback_reason


def test_long_input_is_cut_to_the_budget_keeping_the_most_recent() -> None:
    long = [{"role": "user", "content": f"request number {i} " + "padding " * 200} for i in range(200)]
    prior = summary_message("EARLIER SUMMARY about ticket OPS-42")
    transcript = render_transcript([prior, *long], max_input_tokens=5000)
    assert "request number 199 " in transcript
    assert "request number 0 " not in transcript
    assert "EARLIER SUMMARY about ticket OPS-42" in transcript  # the only record of older history
    assert "older messages omitted" in transcript
    from sessionscope.tokenizer import count_tokens

    assert count_tokens(transcript) <= 5000 * 1.05


def test_settings_repr_hides_the_api_key() -> None:
    settings = SummarizerSettings(kind="llm", model="m", api_key="sk-secret-value")
    assert "sk-secret-value" not in repr(settings)
