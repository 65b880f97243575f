"""Compaction as a service above the store: snapshot, summarise outside any transaction, commit.

`compact` is what session.compact and the demo call. `schedule_auto` is the auto-compaction
policy the ingest pipeline applies after every write: when the live context passed the agent's
threshold it hands the session to the server's background `AutoCompactor`, so the append that
triggered it is answered at once and the LLM's seconds are spent elsewhere. The compaction
commits later, cut by seq: messages appended meanwhile stay live, and session.history is a
valid conversation at every moment (before the commit the old live context, after it the
summary and the kept tail).

Not imported by compaction/__init__.py: the store imports that package, and this module imports
the store.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sessionscope.compaction import (
    CompactionConfigError,
    CompactionSettings,
    summarize_async,
    summary_message,
)
from sessionscope.compaction.policy import (
    choose_cut,
    cut_for_turns,
    needs_auto_compaction,
    nothing_to_compact,
)
from sessionscope.errors import Conflict, NotFound
from sessionscope.store import compactions as compaction_store
from sessionscope.store import sessions as session_store
from sessionscope.store.database import Database
from sessionscope.store.scope import Scope
from sessionscope.tokenizer import MESSAGE_OVERHEAD_TOKENS, count_tokens
from sessionscope.web import metrics

log = logging.getLogger("sessionscope.compaction")
AUTO_REASON = "auto-threshold"


async def compact(db: Database, scope: Scope, key: str, settings: CompactionSettings, *,
                  tenant: str | None = None, instructions: str | None = None,
                  keep_recent_tokens: int | None = None, keep_recent_turns: int | None = None,
                  dry_run: bool = False, reason: str = "manual") -> dict[str, Any]:
    """Summarise everything older than the recent `keep_recent_tokens` (or the last
    `keep_recent_turns` turns) into one compaction item.

    Returns the session.compact result: `compacted: false` with a message (and a smaller keep
    that would compact) when there is nothing to compact. `dry_run` summarises and returns the
    cut and the summary without writing. Raises Conflict when the session was reset, compacted
    or restored meanwhile."""
    keep = settings.auto.keep_recent_tokens if keep_recent_tokens is None else keep_recent_tokens
    snap = await compaction_store.snapshot(db, scope, key, tenant=tenant)
    live = list(snap.live)
    if snap.summary is not None:
        text, seq, tokens = snap.summary
        live.insert(0, summary_message(text, seq, tokens))
    cut = cut_for_turns(live, keep_recent_turns) if keep_recent_turns is not None else choose_cut(live, keep)
    has_summary = snap.summary is not None
    if cut <= (1 if has_summary else 0):
        message, suggestion = nothing_to_compact(live, keep, keep_recent_turns)
        return {
            "compaction": None, "compacted": False, "dry_run": dry_run, "message": message,
            "suggested_keep": suggestion, "tokens_before": snap.live_tokens, "tokens_after": snap.live_tokens,
        }
    result = await summarize_async(live[:cut], instructions, settings.summarizer)
    kept = live[cut:]
    if dry_run:
        return _preview(snap, live, kept, cut - (1 if has_summary else 0), result.summary) | {
            "summarizer": result.summarizer, "fallback_reason": result.fallback_reason}
    committed = await compaction_store.commit(
        db, snap, first_kept_seq=int(kept[0]["seq"]) if kept else int(live[-1]["seq"]) + 1,
        summarized=cut - (1 if has_summary else 0), summary=result.summary, summarizer=result.summarizer,
        instructions=instructions, reason=reason,
    )
    metrics.COMPACTIONS.labels(reason).inc()
    return committed | {"compacted": True, "summarizer": result.summarizer,
                        "fallback_reason": result.fallback_reason}


def _preview(snap: compaction_store.Snapshot, live: list[dict[str, Any]], kept: list[dict[str, Any]],
             summarized: int, summary: str) -> dict[str, Any]:
    """What commit() would write, computed from the snapshot alone (a dry run writes nothing)."""
    summary_tokens = count_tokens(summary) + MESSAGE_OVERHEAD_TOKENS
    return {
        "compaction": None, "compacted": False, "dry_run": True,
        "first_kept_seq": int(kept[0]["seq"]) if kept else int(live[-1]["seq"]) + 1,
        "messages_compacted": summarized, "summary": summary, "summary_tokens": summary_tokens,
        "tokens_before": snap.live_tokens, "tokens_after": summary_tokens + sum(int(m["tokens"]) for m in kept),
    }


@dataclass(frozen=True)
class _Job:
    tenant: str
    key: str
    settings: CompactionSettings


class AutoCompactor:
    """The server's background worker for auto-compaction: one session at a time, each session
    queued at most once however many appends pass its threshold meanwhile."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._pending: set[tuple[str, str]] = set()
        self._task: asyncio.Task[None] | None = None
        self.done = 0  # compactions this worker committed (tests and the bench wait on it)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self._task

    def pending(self, tenant: str, key: str) -> bool:
        return (tenant, key) in self._pending

    def submit(self, tenant: str, key: str, settings: CompactionSettings) -> None:
        if (tenant, key) in self._pending:
            return
        self._pending.add((tenant, key))
        self._queue.put_nowait(_Job(tenant, key, settings))

    async def idle(self) -> None:
        """Wait until every submitted compaction has finished."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await run_auto(self.db, job.tenant, job.key, job.settings)
                self.done += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("auto-compaction of %r failed", job.key)
            finally:
                self._pending.discard((job.tenant, job.key))
                self._queue.task_done()


async def run_auto(db: Database, tenant: str, key: str, settings: CompactionSettings) -> dict[str, Any] | None:
    """One auto-compaction, if the session is still over its threshold; a session that changed
    under it (deleted, reset, compacted) is left alone: the next write decides again."""
    policy = settings.auto
    try:
        snap_tokens = await live_tokens(db, tenant, key)
        if not needs_auto_compaction(snap_tokens, policy):
            return None
        return await compact(db, Scope.everything(), key, settings, tenant=tenant,
                             keep_recent_tokens=policy.keep_recent_tokens, reason=AUTO_REASON)
    except (NotFound, Conflict) as exc:
        log.info("auto-compaction of %r skipped: %s", key, exc.message)
        return None


async def live_tokens(db: Database, tenant: str, key: str) -> int:
    async with db.read() as conn:
        return int((await session_store.find(conn, tenant, key)).live_tokens)


async def schedule_auto(services: Any, scope: Scope, result: Any, agent: str) -> dict[str, Any] | None:
    """The auto-compaction policy after a write (`result` is the ingest IngestResult).

    With the server's worker running, the compaction is queued and this returns
    {"scheduled": true, ...} at once. Without one (the CLI's in-process store), it compacts
    here, after the write committed. A broken compaction config is logged, never raised: the
    write it follows has committed, and an error would make the agent retry it."""
    try:
        settings: CompactionSettings = services.compaction_settings(agent)
    except (CompactionConfigError, OSError) as exc:
        log.error("auto-compaction disabled for agent %r: %s", agent, exc)
        return None
    policy = settings.auto
    if policy.context_window is None:
        return None
    threshold = int(policy.threshold * policy.context_window)
    worker: AutoCompactor | None = getattr(services, "compactor", None)
    if worker is not None and worker.running and worker.pending(result.tenant, result.key):
        # Queued or running already: the worker rechecks the threshold itself.
        return {"scheduled": True, "live_tokens": result.live_tokens, "threshold_tokens": threshold}
    tokens = result.live_tokens if result.live_tokens is not None else \
        await live_tokens(services.db, result.tenant, result.key)
    if not needs_auto_compaction(tokens, policy):
        return None
    if worker is not None and worker.running:
        worker.submit(result.tenant, result.key, settings)
        return {"scheduled": True, "live_tokens": tokens, "threshold_tokens": threshold}
    done = await run_auto(services.db, result.tenant, result.key, settings)
    return {"scheduled": False, "compacted": bool(done and done["compacted"]), "live_tokens": tokens,
            "threshold_tokens": threshold}
