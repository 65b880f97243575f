"""Shared pieces of the transcript importers.

Every importer is a pure parser: it reads foreign files line by line and yields the
internal record stream of docs/item-model.md (session header, then items, then
executions; no ``seq``). A line that cannot be understood becomes a ``Skipped`` value
in the stream instead of an exception, so one bad line never aborts an import.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from sessionscope import jsontext
from sessionscope.store.schema import EVENT_KIND, INJECTED_KIND

try:  # orjson is several times faster on large transcripts; stdlib json is the fallback
    import orjson

    _loads: Any = orjson.loads
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _loads = json.loads

Record = dict[str, Any]

# Executions stay in memory up to this many before the spool moves them to a temp
# file; the stream order (items first, executions last) then costs no unbounded RAM.
SPOOL_IN_MEMORY = 2_000
# Bound on the id maps that pair tool results with their calls (constant memory).
RECENT_IDS = 50_000
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class Skipped:
    """A line that was not imported: where it is and why."""

    file: str
    line: int
    reason: str


# ---------------------------------------------------------------- timestamps

_CANONICAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def normalize_timestamp(value: Any) -> str | None:
    """RFC 3339 UTC with milliseconds and ``Z``; None when the value is not a time.

    Accepts ISO 8601 strings (any offset or none, which counts as UTC) and epoch
    numbers in seconds, milliseconds, microseconds or nanoseconds.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        if _CANONICAL.match(value):  # the common case costs one regex, not a parse
            return value
        text = value.strip()
        if not text:
            return None
        if text.lstrip("-").replace(".", "", 1).isdigit():
            return normalize_timestamp(float(text))
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return format_datetime(parsed)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        seconds = float(value)
        # Pick the unit by magnitude: 1e11 s is the year 5138, so anything bigger is a finer unit.
        for _ in range(3):
            if abs(seconds) < 1e11:
                break
            seconds /= 1000.0
        try:
            return format_datetime(datetime.fromtimestamp(seconds, UTC))
        except (OverflowError, OSError, ValueError):
            return None
    return None


def format_datetime(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    # Formatted by hand: strftime("%Y") does not zero-pad years before 1000 on glibc.
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


def epoch_ms(timestamp: str | None) -> int | None:
    """Milliseconds since the epoch for a normalized timestamp."""
    if timestamp is None:
        return None
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


# ---------------------------------------------------------------- ids


def stable_id(*parts: object) -> str:
    """A short id that depends only on ``parts``.

    Importers derive every message, compaction and execution id from the source's own
    identifiers, so importing the same files twice yields the same ids and the
    store's idempotent append adds nothing the second time.
    """
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()
    return digest[:24]


class RecentMap:
    """A bounded insertion-ordered map (oldest entries fall out past ``limit``).

    Used to pair tool results with tool calls and to find compaction cut points
    without holding every id of a huge transcript in memory.
    """

    def __init__(self, limit: int = RECENT_IDS) -> None:
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._limit = limit

    def put(self, key: str, value: Any) -> None:
        self._data[key] = value
        if len(self._data) > self._limit:
            self._data.popitem(last=False)

    def get(self, key: str | None, default: Any = None) -> Any:
        if key is None:
            return default
        return self._data.get(key, default)


# ---------------------------------------------------------------- reading


def iter_json_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]] | Skipped]:
    """Yield ``(line_no, object)`` per line, or ``Skipped`` for a line that is not a JSON object.

    Reads one line at a time (constant memory); blank lines are ignored.
    """
    name = os.fspath(path)
    with open(name, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                obj = _loads(raw)
            except ValueError as exc:
                yield Skipped(name, line_no, f"invalid JSON: {_short(str(exc))}")
                continue
            if not isinstance(obj, dict):
                yield Skipped(name, line_no, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield line_no, obj


def first_objects(path: str | os.PathLike[str], limit: int = 20) -> list[dict[str, Any]]:
    """The first few JSON objects of a file, for format detection."""
    found: list[dict[str, Any]] = []
    for entry in iter_json_lines(path):
        if isinstance(entry, Skipped):
            continue
        found.append(entry[1])
        if len(found) >= limit:
            break
    return found


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- record builders


def estimate_tokens(text: str) -> int:
    """Rough token count (about four characters a token) for messages whose source
    carries no count; the store may recount with a real tokenizer."""
    return (len(text) + 3) // 4 if text else 0


def session_header(key: str, agent: str, channel: str, label: str | None, created_at: str | None) -> Record:
    return {
        "type": "session",
        "version": 1,
        "key": key,
        "tenant": DEFAULT_TENANT,
        "agent": agent,
        "channel": channel,
        "label": label,
        "created_at": created_at,
    }


def message(
    msg_id: str,
    role: str,
    content: str,
    timestamp: str | None,
    *,
    tool_calls: list[dict[str, str]] | None = None,
    tool_call_id: str | None = None,
    tool_name: str | None = None,
    is_error: bool = False,
    tokens: int | None = None,
    reasoning: str | None = None,
    reasoning_tokens: int | None = None,
    kind: str | None = None,
    stop_reason: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> Record:
    """A message record; ``kind`` is None for conversation, INJECTED or EVENT (docs/item-model.md)."""
    return {
        "type": "message",
        "id": msg_id,
        "role": role,
        "content": content,
        "tool_calls": tool_calls or None,
        "tool_call_id": tool_call_id,
        "tool_name": tool_name,
        "is_error": bool(is_error),
        "timestamp": timestamp,
        # None: the ingest service counts o200k_base tokens (an estimate here would be stored as is).
        "tokens": None if tokens is None else int(tokens),
        "compacted": False,
        "reasoning": reasoning or None,
        "reasoning_tokens": reasoning_tokens,
        "message_kind": kind,
        "stop_reason": stop_reason,
        "attachments": attachments or None,
    }


INJECTED, EVENT = INJECTED_KIND, EVENT_KIND


def raw_event(msg_id: str, source_type: str, obj: dict[str, Any], timestamp: str | None) -> Record:
    """A source record no mapper knows, kept whole as an event message (tokens 0: not context)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
    return message(msg_id, "system", text, timestamp, tokens=0, kind=EVENT, tool_name=source_type)


# ---------------------------------------------------------------- attachments

# Images are kept with their bytes up to this size each; a bigger one keeps its type and size.
MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024
_DATA_URL = re.compile(r"^data:(image/[A-Za-z0-9.+-]+);base64,(.*)$", re.DOTALL)


def image_attachment(mime_type: Any, data: Any) -> dict[str, Any] | None:
    """An attachment from an image's mime type and base64 data; None unless it is an image/* type.

    The data is checked to be base64 and kept only within MAX_ATTACHMENT_BYTES."""
    if not isinstance(mime_type, str) or not mime_type.lower().startswith("image/"):
        return None
    payload = data if isinstance(data, str) else ""
    size = (len(payload) * 3) // 4 - payload[-2:].count("=")
    # The head is enough to tell base64 from a placeholder; decoding megabytes would cost time.
    head = payload[:4096] if len(payload) <= 4096 else payload[:4096 - 4096 % 4]
    try:
        base64.b64decode(head, validate=True)
    except (binascii.Error, ValueError):
        payload, size = "", 0
    keep = bool(payload) and size <= MAX_ATTACHMENT_BYTES
    return {"mime_type": mime_type.lower(), "size": max(size, 0), "data": payload if keep else None}


def data_url_attachment(url: Any) -> dict[str, Any] | None:
    """An attachment from a ``data:image/...;base64,`` URL (how OpenAI inputs carry images)."""
    found = _DATA_URL.match(url) if isinstance(url, str) else None
    return image_attachment(found.group(1), found.group(2)) if found else None


# ---------------------------------------------------------------- accounting


class Tally:
    """What became of each source record type: mapped, kept raw, or skipped (item 2 of issue 15).

    Importers call ``count(source_type, outcome)`` once per record; ``rows()`` is the summary
    that `sessionscope import` prints and import_path returns."""

    MAPPED, RAW, SKIPPED = "mapped", "kept raw", "skipped"

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}

    def count(self, source_type: str, outcome: str, n: int = 1) -> None:
        per = self.counts.get(source_type)
        if per is None:
            per = self.counts[source_type] = {}
        per[outcome] = per.get(outcome, 0) + n

    def rows(self) -> list[tuple[str, str, int]]:
        return [(kind, outcome, n) for kind in sorted(self.counts)
                for outcome, n in sorted(self.counts[kind].items())]

    def total(self, outcome: str) -> int:
        return sum(per.get(outcome, 0) for per in self.counts.values())

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {kind: dict(self.counts[kind]) for kind in sorted(self.counts)}


def compaction(
    comp_id: str,
    timestamp: str | None,
    summary: str,
    *,
    messages_compacted: int | None,
    tokens_before: int | None,
    tokens_after: int | None = None,
    first_kept_id: str | None = None,
    summarizer: str | None = None,
) -> Record:
    """A compaction item. ``first_kept_seq`` is unknown to a parser (the store assigns
    seq), so the importer names the first kept message by ``first_kept_id`` and the
    writer resolves it; ``messages_compacted`` is None when the cut point is unknown."""
    return {
        "type": "compaction",
        "id": comp_id,
        "timestamp": timestamp,
        "summary": summary,
        "messages_compacted": messages_compacted,
        "tokens_before": tokens_before,
        "tokens_after": tokens_after if tokens_after is not None else estimate_tokens(summary),
        "first_kept_seq": None,
        "first_kept_id": first_kept_id,
        "summarizer": summarizer,
        "instructions": None,
        "reason": "imported",
        "restored": False,
    }


def reset(reset_id: str, timestamp: str | None) -> Record:
    return {"type": "reset", "id": reset_id, "timestamp": timestamp}


def usage(
    input_tokens: Any = 0, output_tokens: Any = 0, cache_read: Any = 0, cache_write: Any = 0,
    cache_write_1h: Any = 0,
) -> dict[str, int]:
    """``cache_write_1h`` is the share of ``cache_write`` written with a 1-hour lifetime."""
    return {
        "input_tokens": as_int(input_tokens),
        "output_tokens": as_int(output_tokens),
        "cache_read_tokens": as_int(cache_read),
        "cache_write_tokens": as_int(cache_write),
        "cache_write_1h_tokens": as_int(cache_write_1h),
    }


def execution(
    exec_id: str,
    started_at: str | None,
    *,
    model: str | None,
    provider: str | None,
    usage_: dict[str, int],
    cost_usd: float | None = None,
    duration_ms: int | None = None,
    model_ms: float | None = None,
    layers: list[dict[str, Any]] | None = None,
    budget: dict[str, int] | None = None,
) -> Record:
    return {
        "type": "execution",
        "id": exec_id,
        "started_at": started_at,
        "duration_ms": duration_ms,
        "model_ms": model_ms,
        "model": model,
        "provider": provider,
        "usage": usage_,
        "cost_usd": cost_usd,
        "budget": budget,
        "layers": layers or [],
    }


def as_int(value: Any) -> int:
    """Token counts from foreign files: numbers or numeric strings, anything else is 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return 0
    return 0


def as_dict(value: Any) -> dict[str, Any]:
    """A foreign field that should hold an object: itself, or {} when it holds something else."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def arguments_text(value: Any) -> str:
    """Tool-call arguments as JSON text (the record model keeps them as a string)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "{}"
    return jsontext.compact(value)


# ---------------------------------------------------------------- execution spool


class ExecutionSpool:
    """Holds a session's execution lines until its items are all out.

    The stream puts executions after the items, while the sources interleave them;
    past ``SPOOL_IN_MEMORY`` lines the spool moves to a temporary file so memory
    stays flat however long the transcript is.
    """

    def __init__(self) -> None:
        self._memory: list[Record] = []
        self._file: BinaryIO | None = None

    def add(self, record: Record) -> None:
        if self._file is None and len(self._memory) < SPOOL_IN_MEMORY:
            self._memory.append(record)
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in drain()
        self._file.write(jsontext.compact(record).encode() + b"\n")

    def drain(self) -> Iterator[Record]:
        """Yield every spooled execution in insertion order, then empty the spool."""
        memory, spill = self._memory, self._file
        self._memory, self._file = [], None
        yield from memory
        if spill is not None:
            with spill:
                spill.seek(0)
                for raw in spill:
                    yield _loads(raw)
