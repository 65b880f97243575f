"""Failed logins per client address: after too many within a window, that address waits.

Tokens are long random strings, so guessing one is hopeless anyway; this keeps a guesser from
turning the login endpoint into a load generator against the token table. The count is per
server process and in memory (a restart forgets it), which is enough for that purpose.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

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
