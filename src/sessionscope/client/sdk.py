"""Session handles of the Python SDK: `Session` (sync) and `AsyncSession`, derived from one set of calls.

    s = client.session("support:42", agent="helpdesk", channel="web")
    s.append({"role": "user", "content": "Where is my order?"})
    with s.execution(model="gpt-4o", provider="openai") as ex:
        with ex.layer("history-window", messages_in=40) as layer:
            messages = s.history()["messages"]
            layer.messages_out = len(messages)
        ...call the model...
        ex.usage(input_tokens=1200, output_tokens=80, cache_read_tokens=1000)
        ex.budget(system=300, tools=200, context=0, messages=700, window=128_000)

Each call is written once in `sessionscope.client.calls`; `SessionCall` turns it into a method
that a `Session` runs on its sync client and an `AsyncSession` awaits on its async client, with the
same parameters, retries and result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from sessionscope.client import calls
from sessionscope.client.calls import Target
from sessionscope.client.protocol import AsyncTransport, Steps, SyncTransport, arun_steps, run_steps
from sessionscope.client.recorder import Execution, Layer

P = ParamSpec("P")
T = TypeVar("T")

__all__ = ["AsyncSession", "Execution", "Layer", "Session", "SessionCall"]


class SessionCall(Generic[P, T]):
    """One call of `calls` as a method of both handles: typed `-> T` on a `Session` and
    `-> Coroutine[..., T]` on an `AsyncSession`."""

    def __init__(self, steps: Callable[Concatenate[Target, P], Steps[T]]) -> None:
        self.steps = steps
        self.__doc__ = steps.__doc__  # help(Session.history) reads the call's own docstring

    @overload
    def __get__(self, handle: None, owner: type) -> Self: ...
    @overload
    def __get__(self, handle: Session, owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, handle: AsyncSession, owner: type) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(self, handle: _Handle, owner: type) -> Callable[P, Any]: ...
    def __get__(self, handle: Any, owner: type) -> Any:
        if handle is None:
            return self
        steps = self.steps

        @functools.wraps(steps)
        def bound(*args: P.args, **kwargs: P.kwargs) -> Any:
            return handle._run(steps(handle.target, *args, **kwargs))

        return bound


class _Handle:
    """What both handles share: the session they call and every session call."""

    _asynchronous = False

    def __init__(self, client: Any, key: str, *, agent: str = "main", channel: str = "sdk",
                 tenant: str | None = None, label: str | None = None) -> None:
        self.client = client
        self.target = Target(key, agent=agent, channel=channel, tenant=tenant, label=label)

    @property
    def key(self) -> str:
        return self.target.key

    append = SessionCall(calls.append)
    history = SessionCall(calls.history)
    items = SessionCall(calls.items)
    record = SessionCall(calls.record)
    pop = SessionCall(calls.pop)
    reset = SessionCall(calls.reset)
    compact = SessionCall(calls.compact)
    export = SessionCall(calls.export)
    status = SessionCall(calls.status)
    metrics = SessionCall(calls.metrics)
    context = SessionCall(calls.context)
    delete = SessionCall(calls.delete)

    def execution(self, model: str | None = None, provider: str | None = None) -> Execution:
        """A recorder that measures one agent run and records it when its `with` block ends
        (`async with` on an AsyncSession)."""
        return Execution(self.record, asynchronous=self._asynchronous, model=model, provider=provider)


class Session(_Handle):
    """A handle on one session of a sync `Client`. Nothing is sent until you call a method."""

    client: SyncTransport

    def _run(self, steps: Steps[T]) -> T:
        return run_steps(self.client, steps)


class AsyncSession(_Handle):
    """A handle on one session of an `AsyncClient`; the same methods as `Session`, awaited."""

    client: AsyncTransport
    _asynchronous = True

    async def _run(self, steps: Steps[T]) -> T:
        return await arun_steps(self.client, steps)
