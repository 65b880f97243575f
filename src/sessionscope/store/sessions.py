"""Sessions: lookup, creation, listing with keyset paging, reset and delete."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import (
    Row,
    TextClause,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from sessionscope.clock import not_after_now, now_ms
from sessionscope.errors import NotFound
from sessionscope.keys import folded_identity, folded_label
from sessionscope.store import search_index, wire
from sessionscope.store.database import Database
from sessionscope.store.schema import (
    agents,
    compactions,
    executions,
    facets,
    messages,
    resets,
    sessions,
    tenants,
)
from sessionscope.store.scope import Scope

_FIND_FOR_UPDATE = (
    select(sessions)
    .where(sessions.c.tenant == bindparam("tenant"), sessions.c.key == bindparam("key"))
    .with_for_update()
)


async def find(conn: AsyncConnection, tenant: str, key: str, *, lock: bool = False) -> Row:
    stmt = select(sessions).where(sessions.c.tenant == tenant, sessions.c.key == key)
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound(key)
    return row


async def get(db: Database, scope: Scope, key: str, tenant: str | None = None) -> dict[str, Any]:
    tenant = scope.resolve(tenant)
    async with db.read() as conn:
        return wire.session_row(await find(conn, tenant, key))


async def ensure(
    db: Database,
    conn: AsyncConnection,
    tenant: str,
    key: str,
    agent: str,
    channel: str,
    label: str | None,
    created_at: int,
) -> Row:
    """The session row, locked for this transaction, created on first use."""
    row = (await conn.execute(_FIND_FOR_UPDATE, {"tenant": tenant, "key": key})).first()
    if row is not None:
        if label is not None and label != row.label:
            await conn.execute(update(sessions).where(sessions.c.id == row.id).values(label=label, folded_label=folded_label(label)))
        return row
    inserted = await conn.execute(
        db.insert_ignore(sessions).values(
            tenant=tenant, key=key, agent=agent, channel=channel, label=label,
            folded_identity=folded_identity(key, agent, channel), folded_label=folded_label(label),
            created_at=created_at, updated_at=not_after_now(created_at), next_seq=1, live_from_seq=1,
        )
    )
    if inserted.rowcount:
        await conn.execute(db.insert_ignore(tenants).values(id=tenant, created_at=created_at))
        await conn.execute(db.insert_ignore(agents).values(tenant=tenant, id=agent, created_at=created_at))
        await conn.execute(
            db.upsert_add(facets, ["tenant", "agent", "channel"], "sessions", 1).values(
                tenant=tenant, agent=agent, channel=channel, sessions=1
            )
        )
    row = await find(conn, tenant, key, lock=True)
    if label is not None and label != row.label:
        await conn.execute(update(sessions).where(sessions.c.id == row.id).values(label=label, folded_label=folded_label(label)))
    return row


async def set_label(db: Database, scope: Scope, key: str, label: str | None, tenant: str | None = None
                    ) -> dict[str, Any]:
    """Set the operator's name for a session (None clears it); the session row afterwards."""
    tenant = scope.resolve(tenant)
    async with db.write() as conn:
        row = await find(conn, tenant, key, lock=True)
        await conn.execute(update(sessions).where(sessions.c.id == row.id).values(label=label, folded_label=folded_label(label)))
        return wire.session_row(await find(conn, tenant, key))


async def _set_archived(conn: AsyncConnection, row: Row, archived_at: int | None) -> None:
    """Archive (a time) or unarchive (None) one session; the facet's archived count follows.
    Archiving an archived session keeps its first time, and counts it once."""
    if (row.archived_at is None) == (archived_at is None):
        return
    await conn.execute(update(sessions).where(sessions.c.id == row.id).values(archived_at=archived_at))
    await conn.execute(
        update(facets)
        .where(facets.c.tenant == row.tenant, facets.c.agent == row.agent, facets.c.channel == row.channel)
        .values(archived=facets.c.archived + (1 if archived_at is not None else -1))
    )


async def archive(db: Database, scope: Scope, keys: Sequence[str], tenant: str | None = None) -> int:
    """Hide sessions from the default list, deleting nothing. All or nothing."""
    at = now_ms()
    return await _each_locked(db, scope, keys, tenant, lambda conn, row: _set_archived(conn, row, at))


async def unarchive(db: Database, scope: Scope, keys: Sequence[str], tenant: str | None = None) -> int:
    return await _each_locked(db, scope, keys, tenant, lambda conn, row: _set_archived(conn, row, None))


def total_tokens(counters: dict[str, Any]) -> int:
    """The session's total_tokens from its counters, the rule bump_statement's CASE applies in
    SQL: execution usage once any execution is recorded, message tokens before that. For a row
    written whole (a session created with its first records, store/batches.py)."""
    if counters["executions"] > 0:
        return int(counters["exec_input_tokens"] + counters["exec_output_tokens"])
    return int(counters["msg_input_tokens"] + counters["msg_output_tokens"])


@functools.lru_cache(maxsize=64)
def bump_statement(delta_names: tuple[str, ...], value_names: tuple[str, ...],
                   row: str = ":session_id") -> TextClause:
    """UPDATE for one set of counter names, built once: appends run this on every request.

    `row` selects the session: a bind by default, or an expression such as a subquery.
    updated_at never moves back (imported messages may carry older times)."""
    def after(name: str) -> str:
        return f"({name} + :d_{name})" if name in delta_names else name

    sets = [f"{name} = {name} + :d_{name}" for name in delta_names]
    sets.append(
        f"total_tokens = CASE WHEN {after('executions')} > 0 "
        f"THEN {after('exec_input_tokens')} + {after('exec_output_tokens')} "
        f"ELSE {after('msg_input_tokens')} + {after('msg_output_tokens')} END"
    )
    for name in value_names:
        if name == "updated_at":
            sets.append("updated_at = CASE WHEN updated_at > :v_updated_at THEN updated_at ELSE :v_updated_at END")
        else:
            sets.append(f"{name} = :v_{name}")
    return text(f"UPDATE sessions SET {', '.join(sets)} WHERE id = {row}")


async def bump(conn: AsyncConnection, session_id: int, deltas: dict[str, Any], **values: Any) -> None:
    """Add `deltas` to counters and set `values`, in the caller's transaction.

    total_tokens follows the counters: execution usage once any execution is recorded,
    message tokens before that.
    """
    unknown = (set(deltas) | set(values)) - set(sessions.c.keys())
    if unknown:
        raise ValueError(f"not session columns: {sorted(unknown)}")
    if "updated_at" in values:
        values["updated_at"] = not_after_now(values["updated_at"])
    stmt = bump_statement(tuple(sorted(deltas)), tuple(sorted(values)))
    params = {f"d_{k}": v for k, v in deltas.items()} | {f"v_{k}": v for k, v in values.items()}
    await conn.execute(stmt, params | {"session_id": session_id})


async def facet_counts(db: Database, scope: Scope, group_by: Sequence[str], tenant: str | None) -> list[Row]:
    """Session counts grouped by tenant, agent and/or channel, read from the facet counters:
    `sessions` those the default list shows, `archived` the archived ones (counted apart, so a
    filter's count is what choosing it lists; a group with only archived sessions still shows)."""
    columns = [facets.c[name] for name in group_by]
    stmt = (
        select(*columns, func.sum(facets.c.sessions - facets.c.archived).label("sessions"),
               func.sum(facets.c.archived).label("archived"))
        .where(scope.filter(facets.c.tenant, tenant))
        .group_by(*columns)
        .having(func.sum(facets.c.sessions) > 0)
        .order_by(*columns)
    )
    async with db.read() as conn:
        return list((await conn.execute(stmt)).all())


# ---- reset and delete ----------------------------------------------------------------------------

async def reset_one(conn: AsyncConnection, row: Row, item_id: str | None = None, ts: int | None = None) -> int:
    """Clear the live conversation; the messages stay stored behind a reset item for audit."""
    seq = int(row.next_seq)
    await conn.execute(
        resets.insert().values(session_id=row.id, seq=seq, item_id=item_id or f"reset-{seq}", ts=ts or now_ms())
    )
    await bump(
        conn, row.id, {"resets": 1, "next_seq": 1},
        live_from_seq=seq + 1, active_compaction_id=None, live_tokens=0, live_messages=0,
        preview=None,
        updated_at=ts or now_ms(),  # an imported reset keeps its own time, not the import's
    )
    return seq


async def _each_locked(db: Database, scope: Scope, keys: Sequence[str], tenant: str | None,
                       action: Callable[[AsyncConnection, Row], Awaitable[Any]]) -> int:
    """Run `action` on each session in one transaction: all or nothing, a missing key included."""
    tenant = scope.resolve(tenant)
    async with db.write() as conn:
        for key in keys:
            await action(conn, await find(conn, tenant, key, lock=True))
    return len(keys)


async def reset(db: Database, scope: Scope, keys: Sequence[str], tenant: str | None = None) -> int:
    return await _each_locked(db, scope, keys, tenant, reset_one)


async def delete_one(db: Database, conn: AsyncConnection, row: Row) -> None:
    await search_index.before_deleting_messages(db, conn, int(row.id))
    for table in (messages, compactions, resets, executions):
        await conn.execute(delete(table).where(table.c.session_id == row.id))
    await conn.execute(delete(sessions).where(sessions.c.id == row.id))
    await conn.execute(
        update(facets)
        .where(facets.c.tenant == row.tenant, facets.c.agent == row.agent, facets.c.channel == row.channel)
        .values(sessions=facets.c.sessions - 1,
                archived=facets.c.archived - (0 if row.archived_at is None else 1))
    )


async def delete_sessions(db: Database, scope: Scope, keys: Sequence[str], tenant: str | None = None) -> int:
    """All or nothing: if any key is missing, nothing is deleted."""
    return await _each_locked(db, scope, keys, tenant, lambda conn, row: delete_one(db, conn, row))
