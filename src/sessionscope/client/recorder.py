"""The execution recorder: times one agent run and its context-assembly layers, then records it.

    with s.execution(model="gpt-4o", provider="openai") as ex:
        with ex.layer("history-window", messages_in=40) as layer:
            messages = s.history()["messages"]
            layer.messages_out = len(messages)
        ...call the model...
        ex.usage(input_tokens=1200, output_tokens=80, cache_read_tokens=1000)

An `AsyncSession`'s recorder is used with `async with`; a `Session`'s with `with`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

from sessionscope.client.calls import new_id
from sessionscope.clock import now_ms, to_rfc3339

log = logging.getLogger("sessionscope.client.recorder")

MAX_ERROR_CHARS = 2000


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


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

    def __init__(self, record: Callable[[dict[str, Any]], Any], *, asynchronous: bool,
                 model: str | None = None, provider: str | None = None) -> None:
        # `record` sends the execution: it returns the result, or for an AsyncSession an awaitable.
        self._record = record
        self._asynchronous = asynchronous
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
        if self._asynchronous:
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
        if not self._asynchronous:
            raise TypeError("this execution belongs to a sync Session: use `with`")
        self._start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        error: Exception | None = None
        try:
            sent: Awaitable[dict[str, Any]] = self._record(self._finish(exc))
            self.result = await sent
        except Exception as failure:  # noqa: BLE001 - decided in _recorded
            error = failure
        self._recorded(exc, error)
