"""Session handles and the execution recorder of the Python SDK.

    s = client.session("support:42", agent="helpdesk", channel="web")
    s.append({"role": "user", "content": "Where is my order?"})
    with s.execution(model="gpt-4o", provider="openai") as ex:
        with ex.layer("history-window", messages_in=40) as layer:
            messages = s.history()["messages"]
            layer.messages_out = len(messages)
        ...call the model...
        ex.usage(input_tokens=1200, output_tokens=80, cache_read_tokens=1000)
        ex.budget(system=300, tools=200, context=0, messages=700, window=128_000)

Each call is built once (`_Calls`) and sent by the sync `Session` or the async `AsyncSession`.
Appends and records carry client-made ids, so the client may retry them safely: the server
skips an id it already stored.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from sessionscope.clock import now_ms, to_rfc3339

if TYPE_CHECKING:
    from sessionscope.client import Client
    from sessionscope.client.aio import AsyncClient

log = logging.getLogger("sessionscope.client.sdk")

# The server accepts at most this many messages per session.append.
APPEND_BATCH = 1000
MAX_ERROR_CHARS = 2000

Call = tuple[str, dict[str, Any], bool]  # method, params, retry-safe


def new_id() -> str:
    return uuid.uuid4().hex


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


class _Calls:
    """The RPC calls of one session, shared by the sync and async handles."""

    def __init__(self, key: str, agent: str, channel: str, tenant: str | None, label: str | None) -> None:
        self.key = key
        self.agent = agent
        self.channel = channel
        self.tenant = tenant
        self.label = label

    def target(self, **params: Any) -> dict[str, Any]:
        out = {"key": self.key, **{k: v for k, v in params.items() if v is not None}}
        if self.tenant is not None:
            out["tenant"] = self.tenant
        return out

    def append_batches(self, messages: Iterable[dict[str, Any]]) -> list[Call]:
        """Ids are fixed here, before any attempt, so every retry resends the same ids."""
        stamped = [m if m.get("id") else {**m, "id": new_id()} for m in messages]
        if not stamped:
            raise ValueError("append needs at least one message")
        calls = []
        for start in range(0, len(stamped), APPEND_BATCH):
            params = self.target(agent=self.agent, channel=self.channel, label=self.label,
                                 messages=stamped[start:start + APPEND_BATCH])
            calls.append(("session.append", params, True))
        return calls

    @staticmethod
    def merge_appends(results: list[dict[str, Any]]) -> dict[str, Any]:
        merged = {"appended": sum(r["appended"] for r in results),
                  "duplicates": sum(r["duplicates"] for r in results), "last_seq": results[-1]["last_seq"]}
        compacted = [r["auto_compaction"] for r in results if r.get("auto_compaction")]
        if compacted:
            merged["auto_compaction"] = compacted[-1]
        return merged

    def record(self, execution: dict[str, Any]) -> Call:
        execution = execution if execution.get("id") else {**execution, "id": new_id()}
        return "session.record", self.target(execution=execution), True

    def compact(self, instructions: str | None, keep_recent_tokens: int | None) -> Call:
        return "session.compact", self.target(instructions=instructions, keep_recent_tokens=keep_recent_tokens), False


class _Handle:
    """What both session handles hold: their client and the calls they build."""

    def __init__(self, client: Any, key: str, *, agent: str = "main", channel: str = "sdk",
                 tenant: str | None = None, label: str | None = None) -> None:
        self.client = client
        self.calls = _Calls(key, agent, channel, tenant, label)

    @property
    def key(self) -> str:
        return self.calls.key


class Session(_Handle):
    """A handle on one session of a sync `Client`. Nothing is sent until you call a method."""

    client: Client

    def _send(self, call: Call) -> Any:
        method, params, retry = call
        return self.client.call(method, params, retry=retry)

    def append(self, *messages: dict[str, Any]) -> dict[str, Any]:
        """Append messages (`{"role", "content", ...}`); ids are added where missing.

        Returns `{appended, duplicates, last_seq}`; a retried batch counts as duplicates.
        """
        return _Calls.merge_appends([self._send(c) for c in self.calls.append_batches(messages)])

    def history(self, format: str = "openai") -> dict[str, Any]:
        """The live context: `{"messages": [...]}` (plus `"system"` for format="anthropic")."""
        return self._send(("session.history", self.calls.target(format=format), True))

    def items(self, limit: int | None = None) -> dict[str, Any]:
        """The live messages with their raw client copies: `{"summary", "items"}`."""
        return self._send(("session.items", self.calls.target(limit=limit), True))

    def record(self, execution: dict[str, Any]) -> dict[str, Any]:
        """Record one execution (see the Execution object of the RPC contract)."""
        return self._send(self.calls.record(execution))

    def execution(self, model: str | None = None, provider: str | None = None) -> Execution:
        """A recorder that measures one agent run and records it when the `with` block ends."""
        return Execution(self.record, model=model, provider=provider)

    def pop(self) -> dict[str, Any] | None:
        """Remove and return the newest live message, or None."""
        return self._send(("session.pop", self.calls.target(), False))["item"]

    def reset(self) -> int:
        return self._send(("session.reset", self.calls.target(), False))["reset"]

    def compact(self, instructions: str | None = None, keep_recent_tokens: int | None = None) -> dict[str, Any]:
        return self._send(self.calls.compact(instructions, keep_recent_tokens))

    def export(self, path: str) -> int:
        """Write the session's JSONL export to `path`; returns the bytes written."""
        link = self._send(("session.export", self.calls.target(), True))
        return self.client.download(link["url"], path)

    def status(self, limit: int | None = None) -> dict[str, Any]:
        return self._send(("session.status", self.calls.target(limit=limit), True))

    def metrics(self) -> dict[str, Any]:
        return self._send(("session.metrics", self.calls.target(), True))

    def context(self) -> dict[str, Any]:
        return self._send(("session.context", self.calls.target(), True))

    def delete(self) -> int:
        return self._send(("session.delete", self.calls.target(), False))["deleted"]


class AsyncSession(_Handle):
    """A handle on one session of an `AsyncClient`; the same methods as `Session`, awaited."""

    client: AsyncClient

    async def _send(self, call: Call) -> Any:
        method, params, retry = call
        return await self.client.call(method, params, retry=retry)

    async def append(self, *messages: dict[str, Any]) -> dict[str, Any]:
        return _Calls.merge_appends([await self._send(c) for c in self.calls.append_batches(messages)])

    async def history(self, format: str = "openai") -> dict[str, Any]:
        return await self._send(("session.history", self.calls.target(format=format), True))

    async def items(self, limit: int | None = None) -> dict[str, Any]:
        return await self._send(("session.items", self.calls.target(limit=limit), True))

    async def record(self, execution: dict[str, Any]) -> dict[str, Any]:
        return await self._send(self.calls.record(execution))

    def execution(self, model: str | None = None, provider: str | None = None) -> Execution:
        """Use with `async with`; records itself when the block ends."""
        return Execution(None, model=model, provider=provider, arecord=self.record)

    async def pop(self) -> dict[str, Any] | None:
        return (await self._send(("session.pop", self.calls.target(), False)))["item"]

    async def reset(self) -> int:
        return (await self._send(("session.reset", self.calls.target(), False)))["reset"]

    async def compact(self, instructions: str | None = None, keep_recent_tokens: int | None = None
                      ) -> dict[str, Any]:
        return await self._send(self.calls.compact(instructions, keep_recent_tokens))

    async def export(self, path: str) -> int:
        link = await self._send(("session.export", self.calls.target(), True))
        return await self.client.download(link["url"], path)

    async def status(self, limit: int | None = None) -> dict[str, Any]:
        return await self._send(("session.status", self.calls.target(limit=limit), True))

    async def metrics(self) -> dict[str, Any]:
        return await self._send(("session.metrics", self.calls.target(), True))

    async def context(self) -> dict[str, Any]:
        return await self._send(("session.context", self.calls.target(), True))

    async def delete(self) -> int:
        return (await self._send(("session.delete", self.calls.target(), False)))["deleted"]


# ---- the execution recorder ------------------------------------------------------------------------

class Layer:
    """One timed step of context assembly; set `messages_out` / `tokens_out` inside the block."""

    def __init__(self, execution: Execution, name: str, messages_in: int | None, tokens_in: int | None) -> None:
        self.execution = execution
        self.name = name
        self.messages_in = messages_in
        self.tokens_in = tokens_in
        self.messages_out: int | None = None
        self.tokens_out: int | None = None
        self.error: str | None = None
        self._start = 0.0

    def __enter__(self) -> Self:
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        end = time.perf_counter()
        if exc is not None:
            self.error = _error_text(exc)
            self.execution._error_seen = exc  # the execution must not blame the error twice
        self.execution._add_layer({
            "name": self.name,
            "start_ms": _ms(self._start - self.execution._t0),
            "duration_ms": _ms(end - self._start),
            "messages_in": self.messages_in, "messages_out": self.messages_out,
            "tokens_in": self.tokens_in, "tokens_out": self.tokens_out, "error": self.error,
        })

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)


class Execution:
    """Measures one agent run on a monotonic clock and records it on exit, also when it raises.

    An exception raised inside a layer is recorded on that layer; one raised outside every
    layer is recorded on an `execution` layer spanning the run. The exception always propagates.
    """

    def __init__(self, record: Any, *, model: str | None = None, provider: str | None = None,
                 arecord: Any = None) -> None:
        self._record = record
        self._arecord = arecord
        self.id = new_id()
        self.model = model
        self.provider = provider
        self.layers: list[dict[str, Any]] = []
        self._usage: dict[str, int] = {}
        self._budget: dict[str, int] | None = None
        self._cost: float | None = None
        self._started_at = ""
        self._t0 = 0.0
        self._error_seen: BaseException | None = None
        self.result: dict[str, Any] | None = None

    def layer(self, name: str, *, messages_in: int | None = None, tokens_in: int | None = None) -> Layer:
        return Layer(self, name, messages_in, tokens_in)

    def usage(self, input_tokens: int = 0, output_tokens: int = 0, cache_read_tokens: int = 0,
              cache_write_tokens: int = 0) -> None:
        """Set the run's token usage (input_tokens counts uncached input only)."""
        self._usage = {"input_tokens": input_tokens, "output_tokens": output_tokens,
                       "cache_read_tokens": cache_read_tokens, "cache_write_tokens": cache_write_tokens}

    def budget(self, *, system: int = 0, tools: int = 0, context: int = 0, messages: int = 0,
               window: int = 0) -> None:
        """Tokens per part of the context window at this run."""
        self._budget = {"system": system, "tools": tools, "context": context, "messages": messages,
                        "window": window}

    def cost(self, usd: float) -> None:
        """The run's cost when the agent knows it; otherwise the server prices the usage."""
        self._cost = usd

    def _add_layer(self, layer: dict[str, Any]) -> None:
        self.layers.append({k: v for k, v in layer.items() if v is not None})

    def _start(self) -> None:
        self._started_at = to_rfc3339(now_ms())
        self._t0 = time.perf_counter()

    def _finish(self, exc: BaseException | None) -> dict[str, Any]:
        elapsed = time.perf_counter() - self._t0
        if exc is not None and exc is not self._error_seen:
            self._add_layer({"name": "execution", "start_ms": 0.0, "duration_ms": _ms(elapsed),
                             "error": _error_text(exc)})
        execution: dict[str, Any] = {
            "id": self.id, "started_at": self._started_at, "duration_ms": _ms(elapsed),
            "model": self.model, "provider": self.provider, "usage": self._usage or {},
            "budget": self._budget, "cost_usd": self._cost,
            "layers": sorted(self.layers, key=lambda layer: layer["start_ms"]),
        }
        return {k: v for k, v in execution.items() if v is not None}

    def _recorded(self, exc: BaseException | None, error: Exception | None) -> None:
        """A failed record never hides the agent's own exception; alone it is raised."""
        if error is None:
            return
        if exc is not None:
            log.warning("could not record execution %s: %s", self.id, error)
            return
        raise error

    def __enter__(self) -> Self:
        if self._record is None:
            raise TypeError("this execution belongs to an AsyncSession: use `async with`")
        self._start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        error: Exception | None = None
        try:
            self.result = self._record(self._finish(exc))
        except Exception as failure:  # noqa: BLE001 - decided in _recorded
            error = failure
        self._recorded(exc, error)

    async def __aenter__(self) -> Self:
        if self._arecord is None:
            raise TypeError("this execution belongs to a sync Session: use `with`")
        self._start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        error: Exception | None = None
        try:
            self.result = await self._arecord(self._finish(exc))
        except Exception as failure:  # noqa: BLE001 - decided in _recorded
            error = failure
        self._recorded(exc, error)
