"""Import into a running server: records go over session.append and session.record.

Compactions and resets of imported sessions are stored only by a local import, which writes
them in the same transaction as the messages; over RPC they are counted as skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sessionscope.client import Client
from sessionscope.store.transfer import ImportStats

BATCH = 500


def import_remote(client: Client, records: Iterable[dict[str, Any]], tenant: str | None,
                  progress: Callable[[int], None] | None) -> ImportStats:
    stats = ImportStats()
    header: dict[str, Any] | None = None
    batch: list[dict[str, Any]] = []

    def target() -> dict[str, Any]:
        assert header is not None
        params = {"key": header["key"], "agent": header.get("agent") or "unknown",
                  "channel": header.get("channel") or "unknown"}
        if tenant or header.get("tenant"):
            params["tenant"] = tenant or header["tenant"]
        if header.get("label"):
            params["label"] = header["label"]
        return params

    def flush() -> None:
        nonlocal batch
        if batch:
            fields = ("id", "role", "content", "tool_calls", "tool_call_id", "tool_name", "is_error",
                      "timestamp", "tokens", "raw")
            messages = [{k: m[k] for k in fields if m.get(k) is not None} for m in batch]
            result = client.call("session.append", target() | {"messages": messages})
            stats.messages += result["appended"]
            stats.duplicates += result["duplicates"]
            if progress:
                progress(len(batch))
            batch = []

    for record in records:
        kind = record.get("type")
        if kind == "session":
            flush()
            header = record
            stats.sessions += 1
        elif kind == "message":
            batch.append(record)
            if len(batch) >= BATCH:
                flush()
        elif kind == "execution":
            flush()
            params = {k: v for k, v in target().items() if k in ("key", "tenant")}
            execution = {k: v for k, v in record.items() if k != "type" and v is not None}
            client.call("session.record", params | {"execution": execution})
            stats.executions += 1
    flush()
    return stats
