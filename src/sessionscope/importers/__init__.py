"""Importers of foreign transcripts into the internal record stream.

``iter_records(path)`` yields, per session, a ``session`` header, its ``message`` /
``compaction`` / ``reset`` items in order, then its ``execution`` lines (the shapes of
docs/item-model.md, without ``seq``), with a ``Skipped`` value wherever a line could
not be read. The parsers never touch the store; ``import_path`` hands the stream to the store's
writer and returns, beside its counts, what became of every source record type (a ``Tally``:
mapped, kept raw, or skipped).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sessionscope.errors import ImportFormatError

from .base import Record, Skipped, Tally, first_objects, iter_json_lines
from .claude_code import iter_claude_code
from .codex import iter_codex
from .openclaw import iter_openclaw

__all__ = [
    "FORMATS",
    "ImportResult",
    "Skipped",
    "Tally",
    "detect_format",
    "format_tally",
    "import_path",
    "iter_records",
    "read_records",
]

FORMATS = ("openclaw", "claude-code", "codex", "jsonl")
EXPORT_TYPES = frozenset({"session", "message", "compaction", "reset", "execution"})
CLAUDE_TYPES = frozenset(
    {"user", "assistant", "summary", "system", "file-history-snapshot", "queue-operation"}
)
CODEX_TYPES = frozenset({"session_meta", "response_item", "event_msg", "turn_context", "compacted"})
# How many files a directory probe may open before it gives up (detection stays cheap).
PROBE_FILES = 50


def detect_format(path: str | os.PathLike[str]) -> str:
    """Name the format of ``path`` (a file or a directory) from its layout and first lines.

    Raises ImportFormatError (a ValueError) when nothing recognizable is there.
    """
    root = Path(path)
    if not root.exists():
        raise ImportFormatError(f"{root}: no such file or directory")
    if root.is_file():
        found = _detect_file(root)
        if found is None:
            raise ImportFormatError(f"{root}: not a transcript in a known format ({', '.join(FORMATS)})")
        return found
    layout = _detect_layout(root)
    if layout is not None:
        return layout
    for count, candidate in enumerate(sorted(root.rglob("*.jsonl*"))):
        if count >= PROBE_FILES:
            break
        if candidate.is_file():
            found = _detect_file(candidate)
            if found is not None:
                return found
    raise ImportFormatError(f"{root}: found no transcripts in a known format ({', '.join(FORMATS)})")


def _detect_layout(root: Path) -> str | None:
    """Recognize the tools' own directory layouts without opening a file."""
    if (
        (root / "sessions.json").is_file()
        or any(root.glob("agents/*/sessions"))
        or any(root.glob("*/sessions/sessions.json"))
    ):
        return "openclaw"
    if root.name == ".codex" or (root.name == "sessions" and root.parent.name == ".codex"):
        return "codex"
    if root.name == ".claude" or (root.name == "projects" and root.parent.name == ".claude"):
        return "claude-code"
    return None


def _detect_file(path: Path) -> str | None:
    if path.name.startswith("rollout-") and path.suffix == ".jsonl":
        return "codex"
    if ".jsonl.reset." in path.name:
        return "openclaw"
    objects = first_objects(path)
    for obj in objects:
        kind = obj.get("type")
        if kind == "session":
            # Our own export names a key and tenant; a pi v3 header names a cwd and version.
            return "jsonl" if "key" in obj and "tenant" in obj else "openclaw"
        if kind in CODEX_TYPES:
            return "codex"
        if kind in CLAUDE_TYPES and ("uuid" in obj or "sessionId" in obj or kind == "summary"):
            return "claude-code"
    if objects and all(obj.get("type") in EXPORT_TYPES for obj in objects):
        return "jsonl"
    return None


def iter_records(
    path: str | os.PathLike[str], format: str | None = None, tally: Tally | None = None
) -> Iterator[Record | Skipped]:
    """Stream the records of every session found at ``path`` (constant memory).

    ``format`` is one of FORMATS; left out, it is detected. Malformed lines come out as
    ``Skipped(file, line, reason)`` and never stop the stream. ``tally``, when given, counts
    what became of each source record type as the stream is read.
    """
    fmt = format or detect_format(path)
    parser = PARSERS.get(fmt)
    if parser is None:
        raise ImportFormatError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return parser(path, tally if tally is not None else Tally())


def iter_export(path: str | os.PathLike[str], tally: Tally | None = None) -> Iterator[Record | Skipped]:
    """Our own JSONL export, read back line by line (files, or every ``*.jsonl`` in a dir)."""
    tally = tally if tally is not None else Tally()
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.jsonl") if p.is_file())
    for file in files:
        for entry in iter_json_lines(file):
            if isinstance(entry, Skipped):
                tally.count("(unreadable line)", Tally.SKIPPED)
                yield entry
            elif entry[1].get("type") not in EXPORT_TYPES:
                tally.count(str(entry[1].get("type")), Tally.SKIPPED)
                yield Skipped(str(file), entry[0], f"unknown record type {entry[1].get('type')!r}")
            else:
                tally.count(entry[1]["type"], Tally.MAPPED)
                yield entry[1]


@dataclass
class ImportResult:
    """What an import stored (the writer's counts), what became of each source record type,
    and the lines that could not be read (the first MAX_REPORTED of them)."""

    stats: Any
    tally: Tally
    skipped: list[Skipped] = field(default_factory=list)
    skipped_total: int = 0


MAX_REPORTED = 10_000


def without_skipped(records: Iterable[Record | Skipped], result: ImportResult) -> Iterator[Record]:
    """The records alone; unreadable lines are kept aside in ``result``."""
    for record in records:
        if isinstance(record, Skipped):
            result.skipped_total += 1
            if len(result.skipped) < MAX_REPORTED:
                result.skipped.append(record)
            continue
        yield record


def read_records(path: str | os.PathLike[str], format: str | None = None) -> tuple[ImportResult, Iterator[Record]]:
    """The records at ``path`` (iter_records without the unreadable lines), and the ImportResult
    that counts them as they are read: its tally, its skipped lines; its ``stats`` are the
    writer's to fill in. Every import path (in process, in a worker, over RPC) reads this way."""
    result = ImportResult(stats=None, tally=Tally())
    return result, without_skipped(iter_records(path, format, result.tally), result)


async def import_path(target: Any, scope: Any, path: str | os.PathLike[str], format: str | None = None, *,
                      tenant: str | None = None, progress: Callable[[int], None] | None = None) -> ImportResult:
    """Import every transcript at ``path`` through the ingest service; see ImportResult.

    ``target`` is a Database or the server's Services, as for ``ingest_records``."""
    from sessionscope.ingest import ingest_records

    result, records = read_records(path, format)
    result.stats = await ingest_records(target, scope, records, source="import", tenant=tenant, progress=progress)
    return result


def format_tally(tally: Tally) -> list[str]:
    """The summary lines of an import: one per source record type, with each outcome's count."""
    width = max((len(kind) for kind in tally.counts), default=0)
    return [f"  {kind:<{width}}  " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(per.items()))
            for kind, per in sorted(tally.counts.items())]


PARSERS: dict[str, Callable[[str | os.PathLike[str], Tally], Iterator[Record | Skipped]]] = {
    "openclaw": iter_openclaw,
    "claude-code": iter_claude_code,
    "codex": iter_codex,
    "jsonl": iter_export,
}
