"""Integrity check: the counters match the rows, every compaction is whole, sequences have no gaps.

Runs over sessions in id pages with a handful of grouped queries per page, so it reads a big
store once without holding it in memory. Each problem names the session and what differs.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, or_, select, text, true, union_all
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope.clock import MAX_MS, MIN_MS, now_ms
from sessionscope.keys import check_key
from sessionscope.store import search_index
from sessionscope.store.database import Database
from sessionscope.store.schema import compactions, executions, facets, messages, resets, sessions

CHECK_PAGE = 500
MAX_PROBLEMS = 1000
COST_TOLERANCE = 1e-6


@dataclass
class Report:
    sessions: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    problems_total: int = 0

    @property
    def ok(self) -> bool:
        return self.problems_total == 0

    def add(self, tenant: str | None, key: str | None, problem: str) -> None:
        self.problems_total += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append({"tenant": tenant, "key": key, "problem": problem})

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "sessions": self.sessions, "problems_total": self.problems_total,
                "problems": self.problems}


def _grouped(ids: list[int], table: Any, *columns: Any) -> Any:
    return select(table.c.session_id, *columns).where(table.c.session_id.in_(ids)).group_by(table.c.session_id)


async def _page_facts(conn: AsyncConnection, ids: list[int]) -> dict[str, dict[int, Any]]:
    is_output = case((messages.c.role == "assistant", messages.c.tokens), else_=0)
    msg = await conn.execute(_grouped(
        ids, messages, func.count().label("n"), func.coalesce(func.sum(is_output), 0).label("out"),
        func.coalesce(func.sum(messages.c.tokens), 0).label("tokens"),
        func.coalesce(func.sum(case((messages.c.is_error, 1), else_=0)), 0).label("errors"),
    ))
    comp = await conn.execute(_grouped(ids, compactions, func.count().label("n")))
    rst = await conn.execute(_grouped(ids, resets, func.count().label("n")))
    exe = await conn.execute(_grouped(
        ids, executions, func.count().label("n"),
        func.coalesce(func.sum(executions.c.input_tokens), 0).label("inp"),
        func.coalesce(func.sum(executions.c.output_tokens), 0).label("out"),
        func.coalesce(func.sum(executions.c.cache_read_tokens), 0).label("cread"),
        func.coalesce(func.sum(executions.c.cache_write_tokens), 0).label("cwrite"),
        func.coalesce(func.sum(executions.c.cost_usd), 0.0).label("cost"),
    ))
    seqs = union_all(
        select(messages.c.session_id.label("sid"), messages.c.seq.label("seq")).where(messages.c.session_id.in_(ids)),
        select(compactions.c.session_id, compactions.c.seq).where(compactions.c.session_id.in_(ids)),
        select(resets.c.session_id, resets.c.seq).where(resets.c.session_id.in_(ids)),
    ).subquery()
    seq = await conn.execute(select(
        seqs.c.sid, func.count().label("n"), func.count(func.distinct(seqs.c.seq)).label("distinct"),
        func.min(seqs.c.seq).label("lo"), func.max(seqs.c.seq).label("hi"),
    ).group_by(seqs.c.sid))
    calls: dict[int, int] = defaultdict(int)
    for sid, raw in (await conn.execute(select(messages.c.session_id, messages.c.tool_calls).where(
            messages.c.session_id.in_(ids), messages.c.tool_calls.is_not(None)))).all():
        calls[int(sid)] += len(json.loads(raw))
    return {
        "messages": {int(r.session_id): r for r in msg.all()},
        "compactions": {int(r.session_id): r for r in comp.all()},
        "resets": {int(r.session_id): r for r in rst.all()},
        "executions": {int(r.session_id): r for r in exe.all()},
        "seqs": {int(r.sid): r for r in seq.all()},
        "tool_calls": dict(calls),
    }


def _key_problem(key: str) -> str | None:
    """The key rule (sessionscope.keys), applied to a stored key: keys stored before it, or by a
    path that skipped it, cannot be addressed by any method."""
    try:
        check_key(key)
    except ValueError as error:
        return str(error)
    return None


async def _check_numbers(conn: AsyncConnection, report: Report, tenant: str | None) -> None:
    """Executions whose cost or duration is Infinity or NaN (stored before JSON refused them):
    JSON cannot carry them back, so they read as null forever."""
    in_tenant = sessions.c.tenant == tenant if tenant is not None else true()
    bad = or_(executions.c.cost_usd > 1e308, executions.c.cost_usd < -1e308,
              executions.c.duration_ms > 1e308, executions.c.duration_ms < -1e308)
    rows = (await conn.execute(
        select(sessions.c.tenant, sessions.c.key, func.count().label("n"))
        .select_from(executions.join(sessions, sessions.c.id == executions.c.session_id))
        .where(in_tenant, bad).group_by(sessions.c.tenant, sessions.c.key).limit(MAX_PROBLEMS))).all()
    for r in rows:
        report.add(r.tenant, r.key, f"{r.n} execution(s) with a cost or duration that is not a finite number")


async def _live(conn: AsyncConnection, row: Any) -> tuple[int, int]:
    count, tokens = (await conn.execute(
        select(func.count(), func.coalesce(func.sum(messages.c.tokens), 0))
        .where(messages.c.session_id == row.id, messages.c.seq >= row.live_from_seq)
    )).one()
    return int(count), int(tokens)


async def _check_session(conn: AsyncConnection, row: Any, facts: dict[str, dict[int, Any]], report: Report) -> None:
    def problem(text_: str) -> None:
        report.add(row.tenant, row.key, text_)

    sid = int(row.id)
    if not math.isfinite(float(row.cost_usd)):
        problem(f"cost_usd is {float(row.cost_usd)}, not a finite number")
    key_problem = _key_problem(row.key)
    if key_problem:
        problem(f"the key is out of contract (no RPC call can name it): {key_problem}")
    m = facts["messages"].get(sid)
    n_msgs, out_tokens, msg_tokens = (int(m.n), int(m.out), int(m.tokens)) if m else (0, 0, 0)
    n_errors = int(m.errors) if m else 0
    expected = {
        "message_count": n_msgs,
        "msg_output_tokens": out_tokens,
        "msg_input_tokens": msg_tokens - out_tokens,
        "tool_calls": facts["tool_calls"].get(sid, 0),
        "error_count": n_errors,
        "compactions": int(facts["compactions"][sid].n) if sid in facts["compactions"] else 0,
        "resets": int(facts["resets"][sid].n) if sid in facts["resets"] else 0,
    }
    e = facts["executions"].get(sid)
    expected |= {
        "executions": int(e.n) if e else 0,
        "exec_input_tokens": int(e.inp) if e else 0,
        "exec_output_tokens": int(e.out) if e else 0,
        "cache_read_tokens": int(e.cread) if e else 0,
        "cache_write_tokens": int(e.cwrite) if e else 0,
    }
    for name, value in expected.items():
        if int(getattr(row, name)) != value:
            problem(f"{name} is {int(getattr(row, name))} but the rows say {value}")
    if e is not None and abs(float(row.cost_usd) - float(e.cost)) > COST_TOLERANCE * max(1.0, float(e.cost)):
        problem(f"cost_usd is {float(row.cost_usd)} but the executions sum to {float(e.cost)}")

    # Sequences: messages, compactions and resets share 1..next_seq-1, each seq exactly once.
    last = int(row.next_seq) - 1
    s = facts["seqs"].get(sid)
    n, distinct, lo, hi = (int(s.n), int(s.distinct), int(s.lo), int(s.hi)) if s else (0, 0, None, None)
    if n != distinct:
        problem(f"{n - distinct} seq(s) are used twice across messages, compactions and resets")
    if n != last or (n and (lo != 1 or hi != last)):
        problem(f"items hold {distinct} distinct seqs in {lo}..{hi}, but next_seq is {last + 1} "
                f"(expected exactly 1..{last})")

    # Compactions are whole, and the live boundary points at one of them.
    found = (await conn.execute(select(compactions).where(compactions.c.session_id == sid))).all()
    by_id = {int(c.id): c for c in found}
    for c in found:
        if not (c.summary or "").strip():
            problem(f"compaction seq {c.seq} has an empty summary")
        if not 1 <= int(c.first_kept_seq) <= last + 1:
            problem(f"compaction seq {c.seq} keeps from seq {c.first_kept_seq}, outside 1..{last + 1}")
        if c.prev_compaction_id is not None and int(c.prev_compaction_id) not in by_id:
            problem(f"compaction seq {c.seq} points to a previous compaction that is not in this session")
    if not 1 <= int(row.live_from_seq) <= last + 1:
        problem(f"live_from_seq {row.live_from_seq} is outside 1..{last + 1}")
    summary_tokens = 0
    if row.active_compaction_id is not None:
        active = by_id.get(int(row.active_compaction_id))
        if active is None:
            problem("the active compaction is missing")
        elif active.restored:
            problem(f"the active compaction (seq {active.seq}) is marked restored")
        else:
            summary_tokens = int(active.summary_tokens)
    live_count, live_tokens = await _live(conn, row)
    if int(row.live_messages) != live_count:
        problem(f"live_messages is {row.live_messages} but {live_count} messages are live")
    if int(row.live_tokens) != live_tokens + summary_tokens:
        problem(f"live_tokens is {row.live_tokens} but the live rows hold {live_tokens + summary_tokens}")


# Times a session's readers format: outside them the session cannot be listed, read or exported.
_TIMED = ((messages, "ts", "message time"), (executions, "started_at", "execution started_at"),
          (compactions, "ts", "compaction time"), (resets, "ts", "reset time"))
FUTURE_SLACK_MS = 5 * 60_000  # clocks of several server processes may differ a little


async def _check_times(conn: AsyncConnection, report: Report, tenant: str | None) -> None:
    """Rows stored before times were validated (clock.parse_rfc3339): unreadable, or a session
    whose updated_at is past the server's clock (it would stay first in the default sort and
    outlive its retention)."""
    in_tenant = sessions.c.tenant == tenant if tenant is not None else true()
    outside = ~sessions.c.created_at.between(MIN_MS, MAX_MS) | ~sessions.c.updated_at.between(MIN_MS, MAX_MS)
    for r in (await conn.execute(select(sessions.c.tenant, sessions.c.key).where(in_tenant, outside)
                                 .limit(MAX_PROBLEMS))).all():
        report.add(r.tenant, r.key, "created_at or updated_at is outside the years 1..9999 (unreadable session)")
    future = now_ms() + FUTURE_SLACK_MS
    for r in (await conn.execute(select(sessions.c.tenant, sessions.c.key).where(
            in_tenant, sessions.c.updated_at.between(future, MAX_MS)).limit(MAX_PROBLEMS))).all():
        report.add(r.tenant, r.key, "updated_at is later than the server's clock")
    for table, column, what in _TIMED:
        rows = (await conn.execute(
            select(sessions.c.tenant, sessions.c.key, func.count().label("n"))
            .select_from(table.join(sessions, sessions.c.id == table.c.session_id))
            .where(in_tenant, ~table.c[column].between(MIN_MS, MAX_MS))
            .group_by(sessions.c.tenant, sessions.c.key).limit(MAX_PROBLEMS))).all()
        for r in rows:
            report.add(r.tenant, r.key, f"{r.n} {what}(s) outside the years 1..9999 (unreadable)")


async def _check_facets(conn: AsyncConnection, report: Report, tenant: str | None) -> None:
    """Each facet's session and archived counts against the sessions that exist."""
    archived = func.sum(case((sessions.c.archived_at.isnot(None), 1), else_=0))
    counted = {(r.tenant, r.agent, r.channel): (int(r.n), int(r.archived or 0)) for r in (await conn.execute(
        select(sessions.c.tenant, sessions.c.agent, sessions.c.channel, func.count().label("n"),
               archived.label("archived"))
        .where(sessions.c.tenant == tenant if tenant is not None else true())
        .group_by(sessions.c.tenant, sessions.c.agent, sessions.c.channel)
    )).all()}
    stored = {(r.tenant, r.agent, r.channel): (int(r.sessions), int(r.archived)) for r in (await conn.execute(
        select(facets).where(facets.c.tenant == tenant if tenant is not None else true()))).all()}
    for group in sorted(set(counted) | set(stored)):
        (has, has_archived), (says, says_archived) = counted.get(group, (0, 0)), stored.get(group, (0, 0))
        where = f"facet (agent {group[1]!r}, channel {group[2]!r})"
        if has != says:
            report.add(group[0], None, f"{where} counts {says} sessions but {has} exist")
        if has_archived != says_archived:
            report.add(group[0], None, f"{where} counts {says_archived} archived sessions but "
                       f"{has_archived} are archived")


async def _check_orphans(conn: AsyncConnection, report: Report) -> None:
    for table in (messages, compactions, resets, executions):
        orphans = (await conn.execute(select(func.count()).select_from(table).where(
            table.c.session_id.not_in(select(sessions.c.id))))).scalar()
        if orphans:
            report.add(None, None, f"{orphans} {table.name} row(s) belong to no session")


async def _check_sqlite_file(conn: AsyncConnection, report: Report) -> None:
    result = (await conn.execute(text("PRAGMA quick_check"))).scalars().all()
    if result != ["ok"]:
        report.add(None, None, "SQLite quick_check: " + "; ".join(str(r) for r in result[:10]))


async def _check_message_search(db: Database, report: Report) -> None:
    """The search index holds every message once and nothing else (after draining its queue)."""
    await search_index.drain(db)
    if db.is_sqlite:
        async with db.write() as conn:
            try:
                await conn.exec_driver_sql(
                    "INSERT INTO message_search(message_search, rank) VALUES ('integrity-check', 1)")
            except DBAPIError as error:
                report.add(None, None, f"message search index does not match the messages: {error.orig}")
                return
    if db.is_sqlite:
        row_of_message = f"s.rowid = {search_index.sqlite_rowid('m.session_id', 'm.seq')}"
        message_of_row = (f"m.session_id = {search_index.sqlite_session_of('s.rowid')} "
                          f"AND m.seq = s.rowid % {search_index.SESSION_SPAN}")
    else:
        row_of_message = message_of_row = "s.message_id = m.id"
    async with db.read() as conn:
        missing = (await conn.exec_driver_sql(
            "SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM message_search s "
            f"WHERE {row_of_message}) AND NOT EXISTS (SELECT 1 FROM search_backlog q WHERE "
            "q.session_id = m.session_id AND m.seq BETWEEN q.first_seq AND q.last_seq) AND NOT EXISTS "
            "(SELECT 1 FROM search_failed f WHERE f.session_id = m.session_id AND m.seq BETWEEN f.first_seq "
            "AND f.last_seq)")).scalar_one()
        stale = (await conn.exec_driver_sql(
            f"SELECT count(*) FROM message_search s WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE {message_of_row})"
        )).scalar_one()
    if missing:
        report.add(None, None, f"{missing} message(s) are neither indexed for search nor queued")
    if stale:
        report.add(None, None, f"{stale} message search row(s) belong to no message")


async def _check_search_queue(db: Database, report: Report, tenant: str | None) -> None:
    """Ranges set aside by the indexer (their messages are not searchable), and a backlog that
    draining did not empty (held by a writer, or by an indexer that keeps failing)."""
    where = "" if tenant is None else "WHERE s.tenant = :tenant"
    params = {} if tenant is None else {"tenant": tenant}
    async with db.read() as conn:
        failed = (await conn.execute(
            text("SELECT s.tenant, s.key, count(*), min(f.error) FROM search_failed f "
                 f"JOIN sessions s ON s.id = f.session_id {where} GROUP BY s.tenant, s.key "
                 f"ORDER BY s.tenant, s.key LIMIT {MAX_PROBLEMS}"), params)).all()
        stuck = (await conn.exec_driver_sql("SELECT count(*) FROM search_backlog")).scalar_one()
    for r in failed:
        report.add(r[0], r[1], f"{r[2]} message range(s) set aside by the search indexer, not searchable: {r[3]}")
    if stuck:
        report.add(None, None, f"{stuck} message range(s) still queued for search after draining the queue")


async def check(db: Database, tenant: str | None = None) -> Report:
    """Check the whole store, or one tenant's sessions; `report.ok` is True when nothing is wrong."""
    report = Report()
    await _check_message_search(db, report)
    await _check_search_queue(db, report, tenant)
    async with db.read() as conn:
        if db.is_sqlite:
            await _check_sqlite_file(conn, report)
    after = -1
    while True:
        # One read transaction per page: a consistent snapshot of those sessions and their rows.
        async with db.read() as conn:
            page = (await conn.execute(
                select(sessions).where(sessions.c.id > after,
                                       sessions.c.tenant == tenant if tenant is not None else true())
                .order_by(sessions.c.id).limit(CHECK_PAGE)
            )).all()
            if not page:
                break
            facts = await _page_facts(conn, [int(r.id) for r in page])
            for row in page:
                await _check_session(conn, row, facts, report)
        report.sessions += len(page)
        after = int(page[-1].id)
    async with db.read() as conn:
        await _check_times(conn, report, tenant)
        await _check_numbers(conn, report, tenant)
        await _check_facets(conn, report, tenant)
        await _check_orphans(conn, report)
    return report


def format_report(report: Report) -> str:
    if report.ok:
        return f"ok: {report.sessions} session(s) checked, no problems"
    lines = [f"{report.problems_total} problem(s) in {report.sessions} session(s):"]
    for p in report.problems:
        where = f"{p['tenant']}/{p['key']}" if p["key"] is not None else (p["tenant"] or "store")
        lines.append(f"  {where}: {p['problem']}")
    if report.problems_total > len(report.problems):
        lines.append(f"  … and {report.problems_total - len(report.problems)} more")
    return "\n".join(literal_safe(line) for line in lines)


def literal_safe(line: str) -> str:
    """Keys may hold anything; keep the report one line per problem."""
    return line.replace("\n", "\\n").replace("\r", "\\r")


__all__ = ["Report", "check", "format_report"]
