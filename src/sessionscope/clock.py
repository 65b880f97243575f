"""Times travel as integer milliseconds inside the store and as RFC 3339 UTC strings on the wire."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


def now_ms() -> int:
    return time.time_ns() // 1_000_000


_EPOCH = datetime(1970, 1, 1)


def to_rfc3339(ms: int | None) -> str | None:
    if ms is None:
        return None
    # Naive epoch arithmetic plus isoformat is several times faster than strftime; exports
    # format one of these per line.
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds") + "Z"


def parse_rfc3339(text: str) -> int:
    """Accepts RFC 3339 / ISO 8601 with an offset or Z; a naive time is taken as UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)
