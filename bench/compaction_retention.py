"""Fact retention, token reduction and speed of the offline summarizer.

    PYTHONPATH=src python bench/compaction_retention.py [--instructions TEXT] [--show N]

Each of the 30 sessions in bench/compaction_sessions.py is summarized whole; a planted fact
counts as kept when its exact text is in the summary. Tokens are o200k_base counts of the
messages (content + tool calls, with framing) versus the summary. The speed figure summarizes
one 10,000-message session built from the same sessions, repeated with fresh ids.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compaction_sessions import all_sessions

from sessionscope.compaction import SummarizerSettings, summarize
from sessionscope.tokenizer import count_message_tokens, count_tokens

BAR_RETENTION = 0.90
BAR_REDUCTION = 0.70
BAR_SECONDS = 1.0
BAR_STORE_SECONDS = 2.0


async def compact_through_store(big: list[dict[str, Any]]) -> tuple[float, int, int]:
    """The whole session.compact path on a SQLite file: read, summarise, write the item."""
    from sessionscope.compaction import CompactionSettings
    from sessionscope.compaction.service import compact
    from sessionscope.ingest import ingest_records
    from sessionscope.store import Scope, open_database

    with tempfile.TemporaryDirectory() as tmp:
        db = await open_database(f"{tmp}/compact.db")
        try:
            header = {"type": "session", "key": "bench/compact", "tenant": "default", "agent": "main",
                      "channel": "web"}
            body = [{k: v for k, v in m.items() if k not in ("seq", "compacted")} for m in big]
            await ingest_records(db, Scope.everything(), [header, *body], source="bench")
            start = time.perf_counter()
            result = await compact(db, Scope.everything(), "bench/compact", CompactionSettings())
            elapsed = time.perf_counter() - start
        finally:
            await db.close()
    return elapsed, result["tokens_before"], result["tokens_after"]


def with_store_fields(messages: list[dict[str, Any]], start_seq: int = 1) -> list[dict[str, Any]]:
    """The fields the store adds (seq, id, timestamp, tokens), so input looks like the real thing."""
    tokens = count_message_tokens(messages)
    out = []
    for k, (m, t) in enumerate(zip(messages, tokens, strict=True)):
        seq = start_seq + k
        full = {
            "type": "message",
            "seq": seq,
            "id": f"m{seq}",
            "content": "",
            "tool_calls": None,
            "tool_call_id": None,
            "tool_name": None,
            "is_error": False,
            "compacted": False,
            "timestamp": f"2026-11-26T{6 + seq // 3600 % 18:02d}:{seq // 60 % 60:02d}:{seq % 60:02d}.000Z",
        }
        full.update(m)
        full["tokens"] = t
        out.append(full)
    return out


def big_session(sessions: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    round_ = 0
    while len(out) < size:
        for s in sessions:
            for m in s["messages"]:
                m = dict(m)
                if m.get("tool_calls"):
                    m["tool_calls"] = [dict(c, id=f"r{round_}_{c['id']}") for c in m["tool_calls"]]
                if m.get("tool_call_id"):
                    m["tool_call_id"] = f"r{round_}_{m['tool_call_id']}"
                out.append(m)
        round_ += 1
    # Cut at a user message so the session ends on a whole turn.
    end = max(i for i in range(size + 1) if i == len(out) or out[i]["role"] == "user")
    return with_store_fields(out[:end])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instructions", default=None)
    parser.add_argument("--show", type=int, default=-1, help="print the summary of session N")
    args = parser.parse_args()
    settings = SummarizerSettings()
    sessions = all_sessions()
    rows = []
    kept_total = facts_total = tokens_in = tokens_out = 0
    for n, s in enumerate(sessions):
        messages = with_store_fields(s["messages"])
        result = summarize(messages, args.instructions, settings)
        before = sum(m["tokens"] for m in messages)
        after = count_tokens(result.summary)
        missing = [f for f in s["facts"] if f not in result.summary]
        kept = len(s["facts"]) - len(missing)
        kept_total += kept
        facts_total += len(s["facts"])
        tokens_in += before
        tokens_out += after
        rows.append((n, len(messages), before, after, kept, len(s["facts"]), missing))
        if n == args.show:
            print(result.summary)

    print(f"{'#':>3} {'msgs':>5} {'tokens':>7} {'summary':>7} {'reduct':>7} {'facts':>6}  missing")
    for n, count, before, after, kept, total, missing in rows:
        print(
            f"{n:>3} {count:>5} {before:>7} {after:>7} {1 - after / before:>7.1%} {kept:>3}/{total:<2}  {'; '.join(missing)}"
        )
    retention = kept_total / facts_total
    reduction = 1 - tokens_out / tokens_in
    worst = min(1 - r[3] / r[2] for r in rows)

    big = big_session(sessions, 10_000)
    big_tokens = sum(m["tokens"] for m in big)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        result = summarize(big, args.instructions, settings)
        times.append(time.perf_counter() - t0)
    big_reduction = 1 - count_tokens(result.summary) / big_tokens
    seconds = statistics.median(times)

    store_seconds, store_before, store_after = asyncio.run(compact_through_store(big))

    print()
    print(f"{'measure':<44} {'value':>12} {'bar':>8}")
    print(
        f"{'facts kept (' + str(kept_total) + '/' + str(facts_total) + ', 30 sessions)':<44} {retention:>12.1%} {'>= 90%':>8}"
    )
    print(f"{'token reduction (all 30 sessions)':<44} {reduction:>12.1%} {'>= 70%':>8}")
    print(f"{'token reduction (worst session)':<44} {worst:>12.1%} {'':>8}")
    print(
        f"{f'summarize {len(big):,} messages ({big_tokens:,} tokens)':<44} {seconds * 1000:>9.0f} ms {'< 1 s':>8}"
    )
    print(f"{'token reduction (10,000-message session)':<44} {big_reduction:>12.1%} {'>= 70%':>8}")
    print(f"{f'session.compact, {len(big):,} messages, SQLite store':<44} {store_seconds * 1000:>9.0f} ms {'<= 2 s':>8}")
    print(f"{'  live context tokens before -> after':<44} {f'{store_before:,} -> {store_after:,}':>12}")
    ok = (retention >= BAR_RETENTION and reduction >= BAR_REDUCTION and seconds < BAR_SECONDS
          and store_seconds <= BAR_STORE_SECONDS)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
