"""One ingest pipeline: every way in stores a session through `ingest_batch` (or `ingest_records`
for a record stream), so a rule about what is written is written once.

Callers: session.append and session.import (rpc/methods/conversation.py), the OTLP receiver
(web/otlp.py), `sessionscope import` on a store file (cli/transport.py), `import --url`
(cli/remote_import.py, through session.import), the demo generator and the bench builders.

The pipeline owns, for every path alike:
- validation against ingest/models.py (the same limits as the RPC params: key, label, agent,
  channel, content size, tool-call shapes); a bad record is InvalidParams naming the field;
- token counting with o200k_base, in a thread when a batch carries more than
  TOKENIZE_INLINE_CHARS of text (only session.append's callers may state `tokens` themselves,
  see KEEPS_GIVEN_TOKENS);
- the write: one transaction per batch, with the session's counters and the search-index queue
  moved in it (store/appends.py, store/transfer.py), then the indexer's wake-up;
- the Prometheus counters (messages appended by source);
- the auto-compaction policy: when the session's live context passed its agent's threshold,
  compaction is handed to the server's background worker (compaction/service.py) and the
  result says `auto_compaction: {"scheduled": true}`; it never runs inside the write, and a
  broken compaction config is logged, never raised to a caller whose write committed;
- the audit entry of an import (`ingest_records(..., actor=...)`); session.append is not audited
  (it is the agents' data path; its metric counts it), session.import is audited by the RPC
  dispatcher like every method registered with `audit=`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sessionscope import jsontext, search_words
from sessionscope.clock import now_ms, parse_rfc3339
from sessionscope.compaction.service import schedule_auto
from sessionscope.errors import InvalidParams
from sessionscope.ingest.models import (
    ITEM_TYPES,
    SessionHeader,
    validate_execution,
    validate_header,
    validate_item,
)
from sessionscope.store import appends, audit, search_index
from sessionscope.store import transfer as block_store
from sessionscope.store.database import Database
from sessionscope.store.executions import prepare_execution
from sessionscope.store.scope import Scope
from sessionscope.web import metrics

log = logging.getLogger("sessionscope.ingest")

T = TypeVar("T")

SOURCES = ("rpc", "otlp", "import", "import-remote", "demo", "bench")
# Paths whose callers may state a message's `tokens` (session.append's documented param; the
# bench's raw loaders). Every other path counts: an importer's figure is an estimate, or the
# provider's count of a different tokenizer, and an export's is our own count anyway.
KEEPS_GIVEN_TOKENS = frozenset({"rpc", "bench"})
# Above this much text a batch is tokenized in a thread: the event loop keeps serving meanwhile.
TOKENIZE_INLINE_CHARS = 64_000
# A record stream is written in chunks of this many records (one session stays one transaction).
CHUNK = 1_000


async def off_loop_if_large(chars: int, fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) (counting tokens, among other CPU work) here, or in a thread when it covers
    more than TOKENIZE_INLINE_CHARS of text: the event loop keeps serving meanwhile."""
    if chars > TOKENIZE_INLINE_CHARS:
        return await asyncio.to_thread(fn, *args)
    return fn(*args)


@dataclass
class SessionBatch:
    """Records for one session, written in one transaction.

    `items` are in order: messages (the MessageIn shape of ingest/models.py; `"type": "message"`
    optional), compactions (`"type": "compaction"`, CompactionIn) and resets (`"type": "reset"`).
    A message whose `id` is stored already is a duplicate and skipped, so is a compaction or
    reset whose `id` is; so a batch may be sent again safely. `executions` (ExecutionIn) are not
    seq-ordered and are written after the items; an execution id already stored is skipped.

    `created_at` (RFC 3339) counts only when this batch creates the session; otherwise the
    session's creation is the time the batch arrived. `validated` is for callers whose params
    were validated against the same models already (session.append).
    """

    key: str
    agent: str = "unknown"
    channel: str = "unknown"
    label: str | None = None
    tenant: str | None = None
    created_at: str | None = None
    items: Sequence[dict[str, Any]] = ()
    executions: Sequence[dict[str, Any]] = ()
    validated: bool = False

    @classmethod
    def from_header(cls, header: dict[str, Any], items: Sequence[dict[str, Any]] = (),
                    executions: Sequence[dict[str, Any]] = (), *, tenant: str | None = None) -> SessionBatch:
        """A batch from a record stream's `session` header (docs/item-model.md); `tenant` overrides it."""
        h = validate_header(header)
        return cls(key=h.key, agent=h.agent, channel=h.channel, label=h.label, tenant=tenant or h.tenant,
                   created_at=h.created_at, items=items, executions=executions)


@dataclass
class IngestResult:
    """What one batch changed. Counts are true counts: a batch sent twice adds nothing the
    second time (`created` false, `appended` 0, the rest 0, `duplicates` the messages)."""

    key: str
    tenant: str
    created: bool = False
    appended: int = 0
    duplicates: int = 0
    last_seq: int = 0
    compactions: int = 0
    resets: int = 0
    executions: int = 0
    live_tokens: int | None = None
    # {"scheduled": true, "live_tokens": n, "threshold_tokens": t} when an auto-compaction was
    # handed to the background worker; its own result shows in session.compactions later.
    auto_compaction: dict[str, Any] | None = None

    def append_result(self) -> dict[str, Any]:
        """The session.append result shape."""
        out: dict[str, Any] = {"appended": self.appended, "duplicates": self.duplicates, "last_seq": self.last_seq}
        if self.auto_compaction is not None:
            out["auto_compaction"] = self.auto_compaction
        return out

    def counts(self) -> dict[str, Any]:
        """The session.import result shape."""
        return {"created": self.created, "appended": self.appended, "duplicates": self.duplicates,
                "compactions": self.compactions, "resets": self.resets, "executions": self.executions,
                "last_seq": self.last_seq}


@dataclass
class ImportStats:
    """Totals of a record stream (the CLI prints them)."""

    sessions: int = 0
    messages: int = 0
    duplicates: int = 0
    compactions: int = 0
    resets: int = 0
    executions: int = 0
    keys: list[str] = field(default_factory=list)

    def add(self, result: IngestResult) -> None:
        self.sessions += int(result.created)
        self.messages += result.appended
        self.duplicates += result.duplicates
        self.compactions += result.compactions
        self.resets += result.resets
        self.executions += result.executions
        if len(self.keys) < audit.MAX_KEYS_PER_ENTRY:
            self.keys.append(result.key)


def _parts(target: Any) -> tuple[Database, Any]:
    """(db, services): a Services (web/services.py) brings compaction settings and the worker."""
    if isinstance(target, Database):
        return target, None
    return target.db, target


async def ingest_batch(target: Any, scope: Scope, batch: SessionBatch, *, source: str) -> IngestResult:
    """Validate, count and store one session's batch; then wake the search indexer, count it in
    the metrics and apply the auto-compaction policy.

    `target` is the server's Services (web/services.py) or a bare Database (no auto-compaction:
    tools that build stores without a config). `source` is one of SOURCES, the metrics' label.
    Raises InvalidParams (the field and the problem) before anything is written, NotFound never
    (the session is created on first write), Forbidden for a tenant outside `scope`.
    """
    db, services = _parts(target)
    tenant = scope.resolve(batch.tenant)
    items = list(batch.items) if batch.validated else [validate_item(r, i) for i, r in enumerate(batch.items)]
    runs = [validate_execution(e, i) for i, e in enumerate(batch.executions)] if not batch.validated \
        else list(batch.executions)
    header = _header(batch)
    if source not in KEEPS_GIVEN_TOKENS:
        items = _without_tokens(items)
    if runs or header.created_at is not None or any(i.get("type", "message") != "message" for i in items):
        result = await _write_block(db, tenant, header, _single(items + [dict(e, type="execution") for e in runs]))
    else:
        result = await _append(db, tenant, header, items)
    return await _after_write(db, services, scope, result, header.agent, source)


async def ingest_records(target: Any, scope: Scope, records: Iterable[dict[str, Any]], *, source: str,
                         tenant: str | None = None, progress: Callable[[int], None] | None = None,
                         actor: str | None = None) -> ImportStats:
    """Store a record stream (docs/item-model.md: a `session` header, then that session's
    message/compaction/reset records in order and its executions), session by session. Each
    session is one transaction written in chunks of CHUNK records, so memory stays flat and an
    interrupted import leaves every session whole or absent. `progress` is called with the number
    of records each chunk wrote; `actor` (a token or user name) writes one audit entry at the end.
    """
    keep_tokens = source in KEEPS_GIVEN_TOKENS
    blocks = ((header, _prepared_here(block, keep_tokens)) for header, block in session_blocks(records))
    return await ingest_blocks(target, scope, blocks, source=source, tenant=tenant, progress=progress, actor=actor)


async def ingest_blocks(target: Any, scope: Scope, blocks: Iterable[tuple[dict[str, Any], AsyncIterator[Prepared]]],
                        *, source: str, tenant: str | None = None, progress: Callable[[int], None] | None = None,
                        actor: str | None = None) -> ImportStats:
    """ingest_records' write, for blocks whose records are validated and prepared already:
    here (`_prepared_here`) or in a worker process (ingest/worker.py), by the same functions."""
    db, services = _parts(target)
    stats = ImportStats()
    try:
        for header, chunks in blocks:
            batch = SessionBatch.from_header(header, tenant=tenant)
            session_tenant = scope.resolve(batch.tenant)
            result = await _write_block(db, session_tenant, _header(batch), _counted(chunks, progress))
            stats.add(await _after_write(db, services, scope, result, batch.agent, source))
    finally:
        if actor is not None:
            await audit.record(db, action="session.import", tenant=tenant, keys=stats.keys, token_name=actor,
                               detail={k: v for k, v in vars(stats).items() if k != "keys"})
    return stats


@dataclass
class Prepared:
    """A chunk of one session's records as the store writes them, and how many records it holds.

    `uncounted` are the texts of its messages still to count with o200k_base (prepared_chunk
    with count=False), in order; `counted_runs` fills them in."""

    runs: list[block_store.Run]
    records: int
    uncounted: list[str] = field(default_factory=list)

    def counted_runs(self) -> list[block_store.Run]:
        if self.uncounted:
            appends.count_into((m for run in self.runs if run.kind == "messages" for m in run.rows), self.uncounted)
            self.uncounted = []
        return self.runs


async def _counted(chunks: AsyncIterator[Prepared], progress: Callable[[int], None] | None
                   ) -> AsyncIterator[list[block_store.Run]]:
    async for chunk in chunks:
        yield await off_loop_if_large(sum(map(len, chunk.uncounted)), chunk.counted_runs)
        if progress:  # the store asks for the next chunk once this one is written
            progress(chunk.records)


def session_blocks(records: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], Iterator[dict[str, Any]]]]:
    """Split a record stream into (header, that session's records); a block's records must be
    consumed before the next block is asked for. Compactions that name their boundary by the
    exporting store's `first_kept_seq` get the kept message's `first_kept_id` instead, which
    holds in any store (the importing one numbers seqs its own way)."""
    stream = _Peekable(iter(records))
    while (header := stream.peek()) is not None:
        if header.get("type") != "session":
            raise InvalidParams("type", "each block must start with a session header")
        stream.take()
        block = _block(stream)
        yield header, block
        for _ in block:  # the caller stopped early: skip to the next header
            pass


class _Peekable:
    def __init__(self, stream: Iterator[dict[str, Any]]) -> None:
        self._stream = stream
        self._next = next(stream, None)

    def peek(self) -> dict[str, Any] | None:
        return self._next

    def take(self) -> None:
        self._next = next(self._stream, None)


def _block(stream: _Peekable) -> Iterator[dict[str, Any]]:
    ids_by_seq: dict[int, str] = {}
    while (record := stream.peek()) is not None and record.get("type") != "session":
        stream.take()
        yield _with_kept_id(record, ids_by_seq)


def _with_kept_id(record: dict[str, Any], ids_by_seq: dict[int, str]) -> dict[str, Any]:
    kind = record.get("type")
    seq = record.get("seq")
    if kind == "message" and isinstance(seq, int) and record.get("id"):
        ids_by_seq[seq] = record["id"]
    elif kind == "compaction" and record.get("first_kept_seq") is not None and not record.get("first_kept_id"):
        record = dict(record)
        kept = ids_by_seq.get(record.pop("first_kept_seq"))
        if kept is not None:
            record["first_kept_id"] = kept
    return record


# ---- internals ---------------------------------------------------------------------------------

def _header(batch: SessionBatch) -> block_store.Header:
    created = parse_rfc3339(batch.created_at) if batch.created_at else None
    return block_store.Header(key=batch.key, agent=batch.agent, channel=batch.channel, label=batch.label,
                              created_at=created)


async def _single(items: list[dict[str, Any]]) -> AsyncIterator[list[block_store.Run]]:
    yield (await _prepared(items)).runs


def _without_tokens(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for item in items:
        if item.get("type", "message") == "message":
            item.pop("tokens", None)
    return items


def validated_chunks(block: Iterable[dict[str, Any]], *, keep_tokens: bool) -> Iterator[list[dict[str, Any]]]:
    """A session's records validated (ingest/models.py), in chunks of CHUNK."""
    chunk: list[dict[str, Any]] = []
    for index, record in enumerate(block):
        kind = record.get("type")
        chunk.append(dict(validate_execution(record, index), type="execution") if kind == "execution"
                     else validate_item(record, index))
        if len(chunk) >= CHUNK:
            yield chunk if keep_tokens else _without_tokens(chunk)
            chunk = []
    if chunk:
        yield chunk if keep_tokens else _without_tokens(chunk)


async def _prepared_here(block: Iterator[dict[str, Any]], keep_tokens: bool) -> AsyncIterator[Prepared]:
    for chunk in validated_chunks(block, keep_tokens=keep_tokens):
        yield await _prepared(chunk)


def prepared_chunk(chunk: list[dict[str, Any]], *, count: bool = True, words: bool = False) -> Prepared:
    """A validated chunk (validated_chunks) as the store writes it (CPU work, before the
    transaction): messages with ids, times and o200k_base counts, executions priced. With
    `count` False the counts are left to Prepared.counted_runs. With `words`, each message
    carries its search words (search_words.document), which SQLite then indexes as it writes
    the message instead of queueing it: the import worker finds them beside the parsing."""
    messages = [r for r in chunk if r["type"] == "message"]
    _arguments_as_text(messages)
    rows, texts = appends.prepare_uncounted(messages, now_ms()) if messages else ([], [])
    if words:
        for row in rows:
            row["words"] = search_words.document(row["content"])
    prepared = Prepared(_as_runs(chunk, rows), len(chunk), texts)
    if count:
        prepared.counted_runs()
    return prepared


async def _prepared(chunk: list[dict[str, Any]]) -> Prepared:
    return await off_loop_if_large(_text_size(chunk), prepared_chunk, chunk)


def _arguments_as_text(messages: list[dict[str, Any]]) -> None:
    """Tool-call arguments given as a JSON object are stored (and counted) as their JSON text,
    the shape every reader and every model API takes."""
    for m in messages:
        for call in m.get("tool_calls") or ():
            if not isinstance(call.get("arguments", ""), str):
                call["arguments"] = jsontext.compact(call["arguments"])


def _text_size(records: list[dict[str, Any]]) -> int:
    """About the characters the tokenizer will read (the hot path builds no strings for it)."""
    size = 0
    for m in records:
        if m.get("tokens") is None and m.get("type", "message") == "message":
            size += len(m.get("content") or "")
            for call in m.get("tool_calls") or ():
                size += len(call.get("arguments") or "") + len(call.get("name") or "")
    return size


def _prepare_now(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with ids, times and o200k_base token counts (CPU work, before the transaction)."""
    _arguments_as_text(messages)
    return appends.prepare_messages(messages, now_ms())


async def _prepare(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return await off_loop_if_large(_text_size(messages), _prepare_now, messages)


def _as_runs(records: list[dict[str, Any]], prepared: list[dict[str, Any]]) -> list[block_store.Run]:
    """A validated chunk as the store's runs: consecutive messages together (`prepared` are its
    messages through prepare_messages), executions last (they are not seq-ordered), compactions
    and resets where they stand."""
    ready = iter(prepared)
    runs: list[block_store.Run] = []
    executions: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    originals: list[dict[str, Any]] = []

    def close_messages() -> None:
        if pending:
            runs.append(block_store.Run("messages", list(pending), appends.raw_copies(originals, pending)))
            pending.clear()
            originals.clear()

    for record in records:
        kind = record["type"]
        if kind == "message":
            pending.append(next(ready))
            originals.append(record)
        elif kind == "execution":
            executions.append(prepare_execution(record))
        elif kind in ITEM_TYPES:
            close_messages()
            runs.append(block_store.Run(kind, [record]))
    close_messages()
    if executions:
        runs.append(block_store.Run("executions", executions))
    return runs


async def _append(db: Database, tenant: str, header: block_store.Header, messages: list[dict[str, Any]]
                  ) -> IngestResult:
    """The hot path: messages only, to a session that exists or is created now."""
    prepared = await _prepare(messages)
    stored = await appends.append_prepared(db, tenant, header.key, header.agent, header.channel, header.label,
                                           prepared, appends.raw_copies(messages, prepared))
    return IngestResult(key=header.key, tenant=tenant, created=stored["created"], appended=stored["appended"],
                        duplicates=stored["duplicates"], last_seq=stored["last_seq"],
                        live_tokens=stored.get("live_tokens"))


async def _write_block(db: Database, tenant: str, header: block_store.Header,
                       chunks: AsyncIterator[list[block_store.Run]]) -> IngestResult:
    written = await block_store.write_block(db, tenant, header, chunks)
    return IngestResult(key=header.key, tenant=tenant, **written)


@functools.cache
def _appended_counter(source: str) -> Any:
    # One labelled child per source, looked up once: labels() costs more than the increment.
    return metrics.MESSAGES_APPENDED.labels(source)


async def _after_write(db: Database, services: Any, scope: Scope, result: IngestResult, agent: str,
                       source: str) -> IngestResult:
    if result.appended:
        _appended_counter(source).inc(result.appended)
        if db.is_sqlite:  # PostgreSQL's indexers poll: other processes append too
            search_index.wakeup(db).set()
    if services is not None and (result.appended or result.compactions or result.resets):
        result.auto_compaction = await schedule_auto(services, scope, result, agent)
    return result



async def append_messages(target: Any, scope: Scope, *, key: str, agent: str, channel: str,
                          batch: Sequence[dict[str, Any]], tenant: str | None = None, label: str | None = None,
                          source: str = "rpc") -> dict[str, Any]:
    """session.append from Python (tests, bench builders): validated like the RPC's params,
    returning its result shape."""
    result = await ingest_batch(target, scope, SessionBatch(key=key, agent=agent, channel=channel, label=label,
                                                            tenant=tenant, items=batch), source=source)
    return result.append_result()


__all__ = [
    "SOURCES",
    "ImportStats",
    "IngestResult",
    "SessionBatch",
    "SessionHeader",
    "append_messages",
    "ingest_batch",
    "ingest_records",
    "session_blocks",
]
