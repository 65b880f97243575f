"""Importers of foreign transcripts into the internal record stream.

``iter_records(path)`` yields, per session, a ``session`` header, its ``message`` /
``compaction`` / ``reset`` items in order, then its ``execution`` lines (the shapes of
docs/item-model.md, without ``seq``), with a ``Skipped`` value wherever a line could
not be read. The parsers never touch the store; ``sessionscope.store.imports`` writes
the stream.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from sessionscope.errors import ImportFormatError

from .base import Record, Skipped, first_objects, iter_json_lines
from .claude_code import iter_claude_code
from .codex import iter_codex
from .openclaw import iter_openclaw

__all__ = ["FORMATS", "Skipped", "detect_format", "iter_records"]

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


def iter_records(path: str | os.PathLike[str], format: str | None = None) -> Iterator[Record | Skipped]:
    """Stream the records of every session found at ``path`` (constant memory).

    ``format`` is one of FORMATS; left out, it is detected. Malformed lines come out as
    ``Skipped(file, line, reason)`` and never stop the stream.
    """
    fmt = format or detect_format(path)
    parser = PARSERS.get(fmt)
    if parser is None:
        raise ImportFormatError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return parser(path)


def iter_export(path: str | os.PathLike[str]) -> Iterator[Record | Skipped]:
    """Our own JSONL export, read back line by line (files, or every ``*.jsonl`` in a dir)."""
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.jsonl") if p.is_file())
    for file in files:
        for entry in iter_json_lines(file):
            if isinstance(entry, Skipped):
                yield entry
            elif entry[1].get("type") not in EXPORT_TYPES:
                yield Skipped(str(file), entry[0], f"unknown record type {entry[1].get('type')!r}")
            else:
                yield entry[1]


PARSERS: dict[str, Callable[[str | os.PathLike[str]], Iterator[Record | Skipped]]] = {
    "openclaw": iter_openclaw,
    "claude-code": iter_claude_code,
    "codex": iter_codex,
    "jsonl": iter_export,
}
