"""Many sessions in one write: the OTLP receiver's way into the ingest service.

The rules are ingest_batch's (ingest/models.py validation, o200k_base token counts, the metrics,
the search indexer's wake-up, the auto-compaction policy); the write differs. One OTLP request
carries parts of hundreds of sessions, and they are stored in one transaction
(store/batches.py), in time order. A session whose records break a rule is rejected alone,
with the field and the problem, and the others are stored.

`prepare` is CPU work that grows with the request: callers run it in a thread.

Group commit (`GroupWriter`). Exporters send from several processes at once, and each request
holds a slice of many sessions: the 4 exporters of bench/otlp_ingest.py send the same sessions'
traces at about the same time, each in its own request. Written one request at a time, every
session was looked up, reordered and had its counters updated once per request. The writer
merges the requests that are ready together (and waits, at most LINGER_SECONDS, for those still
being decoded, and for as many requests as the last group held) into one transaction, so a
session is written once. A request is answered only after the transaction holding its spans
committed. When a merged write fails, each request is
written alone, so one that the store refuses fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sessionscope import search_words
from sessionscope.clock import now_ms, parse_rfc3339
from sessionscope.errors import InvalidParams, Unavailable
from sessionscope.ingest import IngestResult, SessionBatch, _after_write
from sessionscope.ingest.models import validate_execution, validate_header, validate_item
from sessionscope.store import appends
from sessionscope.store import batches as store_batches
from sessionscope.store.executions import prepare_execution
from sessionscope.store.scope import Scope

log = logging.getLogger("sessionscope.ingest")

# How long a ready request may wait for others still being decoded: the first request's answer
# comes at most this much later, and under load a session is written once, not once a request.
# It waits only for requests that have arrived, so for at most their decoding: at 50 ms the
# fourth of four 512-span requests (two decoding processes) sometimes missed the group, and the
# session traces it held arrived after later ones, which moved ~1,000 stored messages each time.
LINGER_SECONDS = 0.25
# Records (messages and executions) in one merged transaction, at most: bounds its time holding
# the write lock. A request bigger than this is written alone. About five of the SDK's 512-span
# requests: on bench/otlp_ingest.py, 16,384 let the last group grow to ~16 requests, written
# alone on one core after every other request was decoded; at 4,096 that tail is short, and the
# OTLP phase ran 5-8% faster (interleaved runs, docs/benchmarks.md) though more sessions are
# written in two groups. At 2,048 the extra session writes cost more than the tail saves.
GROUP_RECORDS = 4_096


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


def prepare(batches: list[SessionBatch], *, words: bool = False) -> tuple[list[store_batches.Batch], list[Rejected]]:
    """Validate each batch and count its tokens; a batch that breaks a rule is rejected whole
    (a part of a turn stored without the rest would be worse than none). With `words` (a
    SQLite store), each message carries its search words, which the write then indexes."""
    ready, rejected, texts = prepare_uncounted(batches, words=words)
    count_tokens(ready, texts)
    return ready, rejected


def prepare_uncounted(batches: list[SessionBatch], *, words: bool = False
                      ) -> tuple[list[store_batches.Batch], list[Rejected], list[str]]:
    """prepare but for the o200k_base counts, which `count_tokens(ready, texts)` fills in: the
    OTLP receiver's worker processes (web/cpu_pool.py) would each hold the encoder's ~70 MB
    for about 2 us of work per message."""
    now = now_ms()
    ready: list[store_batches.Batch] = []
    rejected: list[Rejected] = []
    texts: list[str] = []
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
        messages, uncounted = appends.prepare_uncounted(items, now)
        texts.extend(uncounted)
        if words:
            for message in messages:
                message["words"] = search_words.document(message["content"])
        ready.append(store_batches.Batch(header.key, header.agent, header.channel, created, messages,
                                         [prepare_execution(e) for e in runs]))
    return ready, rejected, texts


def count_tokens(ready: list[store_batches.Batch], texts: list[str]) -> None:
    """The counts prepare_uncounted left out (`texts`, in the batches' message order)."""
    appends.count_into((m for b in ready for m in b.messages), texts)


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


@dataclass
class _Pending:
    scope: Scope
    tenant: str
    batches: list[store_batches.Batch]
    done: asyncio.Future[None]
    records: int = field(init=False)

    def __post_init__(self) -> None:
        self.records = sum(len(b.messages) + len(b.executions) for b in self.batches)


class GroupWriter:
    """Writes ready requests' batches together (see the module's docstring). One per server."""

    def __init__(self, target: Any, *, source: str = "otlp", linger: float = LINGER_SECONDS,
                 group_records: int = GROUP_RECORDS) -> None:
        self.target, self.source, self.linger, self.group_records = target, source, linger, group_records
        self._pending: list[_Pending] = []
        self._writing: list[_Pending] = []  # the group being written
        self._preparing = 0
        self._expected = 1  # requests the next group waits for: as many as the last one held
        self._changed: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None

    @property
    def decoding(self) -> int:
        """Requests being decoded now (inside `preparing`)."""
        return self._preparing

    @contextlib.contextmanager
    def preparing(self) -> Iterator[None]:
        """Around a request's decoding: a write that is ready waits for it (up to the linger)."""
        self._preparing += 1
        try:
            yield
        finally:
            self._preparing -= 1
            self._event().set()

    async def write(self, scope: Scope, tenant: str, batches: list[store_batches.Batch]) -> None:
        """Store the batches (distinct keys); returns once they are committed, or raises what
        their write raised."""
        if not batches:
            return
        entry = _Pending(scope, tenant, batches, asyncio.get_running_loop().create_future())
        self._pending.append(entry)
        self._event().set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        # Shielded: a caller that goes away (a client disconnected) does not cancel a write that
        # other requests share; its own spans are stored all the same.
        await asyncio.shield(entry.done)

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    async def _flush_all(self) -> None:
        try:
            await self._flush_pending()
        except BaseException as exc:
            # Cancelled (the server stopping) or a fault here: no caller may wait for ever.
            pending, self._pending, self._writing = self._writing + self._pending, [], []
            for entry in pending:
                _settle(entry, exc if isinstance(exc, Exception) else Unavailable("the server is stopping; retry"))
            raise

    async def _flush_pending(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            deadline = loop.time() + self.linger
            while (self._preparing or len(self._pending) < self._expected) and \
                    sum(p.records for p in self._pending) < self.group_records:
                self._event().clear()
                left = deadline - loop.time()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._event().wait(), left)
            group: list[_Pending] = []
            size = 0
            while self._pending and (not group or size + self._pending[0].records <= self.group_records):
                entry = self._pending.pop(0)
                group.append(entry)
                size += entry.records
            self._writing = group
            # Exporters that were answered together send again together: the next group waits
            # (up to the linger) for as many requests as this one held, also for one whose
            # exporter is a little behind and has not sent yet. A lone client's group is one.
            self._expected = len(group)
            by_tenant: dict[tuple[Scope, str], list[_Pending]] = {}
            for entry in group:
                by_tenant.setdefault((entry.scope, entry.tenant), []).append(entry)
            for entries in by_tenant.values():
                await self._write_together(entries)

    async def _write_together(self, entries: list[_Pending]) -> None:
        try:
            await ingest_prepared(self.target, entries[0].scope, entries[0].tenant,
                                  merged([e.batches for e in entries]), source=self.source)
        except Exception as exc:  # noqa: BLE001 - every failure is its callers' to see
            if len(entries) == 1:
                _settle(entries[0], exc)
                return
            log.info("a merged write of %d requests failed (%s); writing each alone", len(entries), exc)
            for entry in entries:
                await self._write_together([entry])
            return
        for entry in entries:
            _settle(entry, None)


def _settle(entry: _Pending, exc: BaseException | None) -> None:
    if entry.done.done():
        return
    if exc is None:
        entry.done.set_result(None)
    else:
        entry.done.set_exception(exc)


def merged(requests: list[list[store_batches.Batch]]) -> list[store_batches.Batch]:
    """The requests' batches as one list with distinct keys: a session's parts joined in time
    order (a stable sort: equal times keep their arrival order), its earliest created_at."""
    if len(requests) == 1:
        return requests[0]
    out: dict[str, store_batches.Batch] = {}
    joined: set[str] = set()
    for batches in requests:
        for batch in batches:
            first = out.get(batch.key)
            if first is None:
                out[batch.key] = batch
                continue
            if batch.key not in joined:
                first = out[batch.key] = store_batches.Batch(first.key, first.agent, first.channel,
                                                             first.created_at, list(first.messages),
                                                             list(first.executions))
                joined.add(batch.key)
            first.created_at = min(first.created_at, batch.created_at)
            first.messages.extend(batch.messages)
            first.executions.extend(batch.executions)
    for key in joined:
        out[key].messages.sort(key=lambda m: m["ts"])
    return list(out.values())


def _printable(key: str) -> str:
    """A refused key as it may be shown back: control characters escaped."""
    return key if key.isprintable() else key.encode("unicode_escape", "backslashreplace").decode("ascii")
