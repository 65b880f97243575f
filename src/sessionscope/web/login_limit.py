"""Failed logins per client address: after too many within a window, that address waits.

Tokens are long random strings, so guessing one is hopeless anyway; this keeps a guesser from
turning the login endpoint into a load generator against the token table. The count is per
server process and in memory (a restart forgets it), which is enough for that purpose.

An attempt is counted when it starts (`attempt`) and taken back when it succeeds (`succeeded`),
so concurrent failures cannot all pass the check before any is recorded: of 100 at once, at
most MAX_FAILURES reach the token lookup.

The address is the connection's peer. X-Forwarded-For is believed only when that peer is a
configured proxy (`trusted_proxies`: ServerConfig.extra["trusted_proxies"] or the environment
variable SESSIONSCOPE_TRUSTED_PROXIES, comma-separated addresses); then the address is the
nearest one in the header that is not itself a trusted proxy.
"""

from __future__ import annotations

import math
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

TRUSTED_PROXIES_ENV = "SESSIONSCOPE_TRUSTED_PROXIES"

MAX_FAILURES = 10
WINDOW_S = 60.0
MAX_TRACKED_ADDRESSES = 10_000


class LoginLimiter:
    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until `address` may try again, or None when it may try now."""
        recent = self._recent(address)
        if recent is None or len(recent) < self.max_failures:
            return None
        return max(1, math.ceil(recent[0] + self.window_s - self._clock()))

    def attempt(self, address: str) -> int | None:
        """Count an attempt from `address` now; the seconds to wait instead when it may not try."""
        wait = self.retry_after(address)
        if wait is None:
            self.record_failure(address)
        return wait

    def succeeded(self, address: str) -> None:
        """Take back the attempt just counted: a successful login is not a failure."""
        recent = self._failures.get(address)
        if recent:
            recent.pop()

    def record_failure(self, address: str) -> None:
        recent = self._recent(address)
        if recent is None:
            recent = self._failures[address] = deque(maxlen=self.max_failures)
            if len(self._failures) > MAX_TRACKED_ADDRESSES:
                self._failures.popitem(last=False)  # the address that failed least recently
        recent.append(self._clock())
        self._failures.move_to_end(address)

    def _recent(self, address: str) -> deque[float] | None:
        recent = self._failures.get(address)
        if recent is None:
            return None
        horizon = self._clock() - self.window_s
        while recent and recent[0] <= horizon:
            recent.popleft()
        if not recent:
            del self._failures[address]
            return None
        return recent


def trusted_proxies(config: Any) -> frozenset[str]:
    configured = getattr(config, "extra", {}).get("trusted_proxies")
    if configured is None:
        configured = [a for a in os.environ.get(TRUSTED_PROXIES_ENV, "").split(",") if a.strip()]
    return frozenset(a.strip() for a in configured)


def client_address(request: Any, trusted: frozenset[str]) -> str:
    """The client's address: the peer, or (from a trusted proxy) what the proxy says."""
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for")
    if peer not in trusted or not forwarded:
        return peer
    for hop in reversed([h.strip() for h in forwarded.split(",")]):
        if hop and hop not in trusted:
            return hop[:64]
    return peer
