"""Import into a running server: each session's records go over session.import, in calls of at
most BATCH records, so a remote import stores what a local one does (messages, compactions,
resets, executions) through the same ingest service, and reports what the server says it added.

A session larger than BATCH records takes several calls, each its own transaction on the server
(a local import writes a session in one). The compactions' `first_kept_seq` of an export names a
seq of the exporting store; `session_blocks` turns it into the kept message's id, which holds in
the server's store whatever its seqs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sessionscope.client import Client
from sessionscope.ingest import ImportStats, IngestResult, session_blocks

BATCH = 1000
HEADER_FIELDS = ("key", "tenant", "agent", "channel", "label", "created_at")


def import_remote(client: Client, records: Iterable[dict[str, Any]], tenant: str | None,
                  progress: Callable[[int], None] | None) -> ImportStats:
    stats = ImportStats()
    for header, block in session_blocks(records):
        session = {k: header[k] for k in HEADER_FIELDS if header.get(k) is not None}
        if tenant:
            session["tenant"] = tenant
        total = IngestResult(key=session.get("key", ""), tenant=session.get("tenant", ""))
        batch: list[dict[str, Any]] = []

        def send(batch: list[dict[str, Any]], total: IngestResult = total,
                 session: dict[str, Any] = session) -> None:
            counts = client.call("session.import", session | {"records": batch})
            total.created = total.created or counts["created"]
            for name in ("appended", "duplicates", "compactions", "resets", "executions"):
                setattr(total, name, getattr(total, name) + counts[name])
            if progress:
                progress(len(batch))

        for record in block:
            batch.append(record)
            if len(batch) >= BATCH:
                send(batch)
                batch = []
        if batch:
            send(batch)
        stats.add(total)
    return stats
