"""Many sessions in one write: the OTLP receiver's way into the ingest service.

The rules are ingest_batch's (ingest/models.py validation, o200k_base token counts, the metrics,
the search indexer's wake-up, the auto-compaction policy); the write differs. One OTLP request
carries parts of hundreds of sessions, and they are stored in one transaction
(store/batches.py), in time order. A session whose records break a rule is rejected alone,
with the field and the problem, and the others are stored.

`prepare` is CPU work that grows with the request: callers run it in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sessionscope.clock import now_ms, parse_rfc3339
from sessionscope.errors import InvalidParams
from sessionscope.ingest import IngestResult, SessionBatch, _after_write
from sessionscope.ingest.models import validate_execution, validate_header, validate_item
from sessionscope.store import appends
from sessionscope.store import batches as store_batches
from sessionscope.store.executions import prepare_execution
from sessionscope.store.scope import Scope


@dataclass
class Rejected:
    """A session left out of a write, and why."""

    key: str
    field: str
    problem: str
    records: int  # how many of its records were refused with it

    def message(self) -> str:
        """One line naming the session (its key shown escaped and cut short) and the problem."""
        return f"session {_printable(self.key[:80])!r}: {self.field}: {self.problem}"


def prepare(batches: list[SessionBatch]) -> tuple[list[store_batches.Batch], list[Rejected]]:
    """Validate each batch and count its tokens; a batch that breaks a rule is rejected whole
    (a part of a turn stored without the rest would be worse than none)."""
    now = now_ms()
    ready: list[store_batches.Batch] = []
    rejected: list[Rejected] = []
    for batch in batches:
        try:
            header = validate_header({"key": batch.key, "agent": batch.agent, "channel": batch.channel,
                                      "created_at": batch.created_at})
            items = [validate_item(r, i) for i, r in enumerate(batch.items)]
            runs = [validate_execution(e, i) for i, e in enumerate(batch.executions)]
        except InvalidParams as exc:
            rejected.append(Rejected(batch.key, exc.data["field"], exc.data["problem"],
                                     len(batch.items) + len(batch.executions)))
            continue
        if any(i["type"] != "message" for i in items):
            raise ValueError("many.prepare takes messages and executions only")
        created = parse_rfc3339(header.created_at) if header.created_at else now
        ready.append(store_batches.Batch(header.key, header.agent, header.channel, created,
                                         appends.prepare_messages(items, now),
                                         [prepare_execution(e) for e in runs]))
    return ready, rejected


async def ingest_prepared(target: Any, scope: Scope, tenant: str | None, batches: list[store_batches.Batch],
                          *, source: str) -> list[IngestResult]:
    """Write prepared batches (distinct keys) in one transaction, then apply the after-write
    rules to each session."""
    from sessionscope.ingest import _parts

    db, services = _parts(target)
    resolved = scope.resolve(tenant)
    if not batches:
        return []
    stored = await store_batches.append_sessions(db, resolved, batches, now_ms())
    agents = {b.key: b.agent for b in batches}
    results = []
    for s in stored:
        result = IngestResult(key=s.key, tenant=resolved, created=s.created, appended=s.appended,
                              duplicates=s.duplicates, executions=s.executions, last_seq=s.last_seq,
                              live_tokens=s.live_tokens)
        results.append(await _after_write(db, services, scope, result, agents[s.key], source))
    return results


def _printable(key: str) -> str:
    """A refused key as it may be shown back: control characters escaped."""
    return key if key.isprintable() else key.encode("unicode_escape", "backslashreplace").decode("ascii")
