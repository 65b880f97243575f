"""Times travel as integer milliseconds inside the store and as RFC 3339 UTC strings on the wire."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta
from typing import overload

from sessionscope.errors import InvalidParams


def now_ms() -> int:
    return time.time_ns() // 1_000_000


_EPOCH = datetime(1970, 1, 1)


@functools.lru_cache(maxsize=4096)
def _minute(minutes: int) -> str:
    return (_EPOCH + timedelta(minutes=minutes)).isoformat(timespec="minutes") + ":"


_SECONDS = [f"{n:02d}." for n in range(60)]
_MILLIS = [f"{n:03d}Z" for n in range(1000)]


@overload
def to_rfc3339(ms: int) -> str: ...
@overload
def to_rfc3339(ms: None) -> None: ...
@overload
def to_rfc3339(ms: int | None) -> str | None: ...
def to_rfc3339(ms: int | None) -> str | None:
    if ms is None:
        return None
    # Exports format one of these per line; joining a cached minute with table lookups is
    # several times faster than datetime arithmetic and isoformat.
    minutes, rest = divmod(ms, 60_000)
    seconds, millis = divmod(rest, 1000)
    return _minute(minutes) + _SECONDS[seconds] + _MILLIS[millis]


_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
# The times every reader can format: years 1..9999 once converted to UTC (an offset can push a
# time that reads as 9999-12-31 or 0001-01-01 outside them, and Python's datetime with it).
MIN_MS = (datetime(1, 1, 1, tzinfo=UTC) - _UTC_EPOCH) // _ONE_MS
MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _UTC_EPOCH) // _ONE_MS


# Cached: a time is validated, then parsed to be stored, and an OTLP request's messages share
# their spans' start and end times (the misses cost about 1 us each).
@functools.lru_cache(maxsize=4096)
def parse_rfc3339(text: str) -> int:
    """RFC 3339 / ISO 8601 with an offset or Z (a naive time is taken as UTC) to milliseconds.

    The one rule for every client-supplied time: ValueError unless it is representable in UTC
    (years 1..9999 after applying the offset), so that no stored time can break a reader."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        ms = (dt - _UTC_EPOCH) // _ONE_MS
    except OverflowError:
        raise ValueError("outside the years 1..9999 in UTC") from None
    if not MIN_MS <= ms <= MAX_MS:
        raise ValueError("outside the years 1..9999 in UTC")
    return ms


BAD_FORMAT = "must be an RFC 3339 time such as 2026-11-26T06:01:44.123Z"
OUT_OF_RANGE = "must be representable in UTC: years 1..9999 once the offset is applied"


def time_problem(text: str) -> str | None:
    """Why a client-supplied time is refused (None when it is fine): the message every
    validator gives, RPC models and importers alike."""
    try:
        parse_rfc3339(text)
    except ValueError as error:
        return _problem(error)
    return None


def _problem(error: ValueError) -> str:
    return OUT_OF_RANGE if "years" in str(error) else BAD_FORMAT


def parse_client_time(value: object, field: str, default: int) -> int:
    """A time from a client record (an import, an OTLP span): InvalidParams naming `field`
    rather than a stored time that breaks readers later. Not a string: `default`."""
    if not isinstance(value, str):
        return default
    try:  # parsed once: this runs for every stored message
        return parse_rfc3339(value)
    except ValueError as error:
        raise InvalidParams(field, _problem(error)) from None


def representable(ms: int) -> bool:
    """Whether a stored time can be formatted (what `check` asks of every stored time)."""
    return MIN_MS <= ms <= MAX_MS


def not_after_now(ms: int) -> int:
    """A client-supplied time as the server may trust it for ordering and retention: never later
    than the server's clock (a message may carry any valid time; a session's updated_at may not)."""
    return min(ms, now_ms())
