"""Bulk loading for benchmarks: many sessions and messages straight into the tables.

Going through session.append for a million sessions would take longer than the benchmark
itself; this writes the same rows (facets and search index included) in large batches.
"""

from __future__ import annotations

import json
import random
from typing import Any

from sqlalchemy import func, select

from sessionscope.demo import AGENTS, CHANNELS, TENANTS
from sessionscope.keys import folded_identity
from sessionscope.store import Database
from sessionscope.store.appends import index_for_search
from sessionscope.store.schema import facets, messages, sessions, tenants

CHUNK = 5_000
T0 = 1_790_000_000_000


async def load_sessions(db: Database, count: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    async with db.write() as conn:
        for t in TENANTS:
            await conn.execute(db.insert_ignore(tenants).values(id=t, created_at=T0))
    counts: dict[tuple[str, str, str], int] = {}
    for start in range(0, count, CHUNK):
        rows: list[dict[str, Any]] = []
        for i in range(start, min(count, start + CHUNK)):
            tenant = TENANTS[i % len(TENANTS)]
            agent = AGENTS[rng.randrange(len(AGENTS))]
            channel = CHANNELS[rng.randrange(len(CHANNELS))]
            n = rng.randint(1, 400)
            tokens = n * rng.randint(40, 400)
            created = T0 + i * 1000
            rows.append({
                "tenant": tenant, "key": f"agent:{agent}:{channel}:group:-100{i}:topic:{i % 97}",
                "agent": agent, "channel": channel, "label": None, "created_at": created,
                "updated_at": created + rng.randint(0, 10**9), "next_seq": n + 1, "live_from_seq": 1,
                "live_tokens": tokens, "message_count": n, "live_messages": n, "msg_input_tokens": tokens // 2,
                "msg_output_tokens": tokens - tokens // 2, "exec_input_tokens": 0, "exec_output_tokens": 0,
                "total_tokens": tokens, "cache_read_tokens": 0, "cache_write_tokens": 0,
                "tool_calls": n // 5, "compactions": 0, "resets": 0, "executions": 0,
                "cost_usd": round(tokens * 3e-6, 6), "preview": "last message",
            })
            rows[-1]["folded_identity"] = folded_identity(rows[-1]["key"], agent, channel)
            counts[(tenant, agent, channel)] = counts.get((tenant, agent, channel), 0) + 1
        async with db.write() as conn:
            await conn.execute(sessions.insert(), rows)
    async with db.write() as conn:
        for (tenant, agent, channel), n in counts.items():
            await conn.execute(db.upsert_add(facets, ["tenant", "agent", "channel"], "sessions", n).values(
                tenant=tenant, agent=agent, channel=channel, sessions=n))


def message_rows(session_id: int, count: int, first_seq: int = 1) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        seq = first_seq + i
        role = ("user", "assistant", "assistant", "tool")[i % 4]
        calls = None
        if role == "assistant" and i % 4 == 2:
            calls = json.dumps([{"id": f"c{seq}", "name": "read_file", "arguments": '{"path": "/srv/a.py"}'}])
        rows.append({
            "session_id": session_id, "seq": seq, "conversation": 0, "msg_id": f"m{seq}", "role": role,
            "content": f"message {seq} about deploy {seq % 17} of billing-api and /srv/app/file{seq % 50}.py",
            "tool_calls": calls, "tool_call_id": f"c{seq - 1}" if role == "tool" else None,
            "tool_name": "read_file" if role == "tool" else None, "is_error": False, "ts": T0 + seq * 1000,
            "tokens": 20,
        })
    return rows


async def load_messages(db: Database, tenant: str, key: str, count: int) -> None:
    """Fill an existing session with `count` messages and set its counters to match."""
    async with db.write() as conn:
        sid, next_seq = (await conn.execute(select(sessions.c.id, sessions.c.next_seq).where(
            sessions.c.tenant == tenant, sessions.c.key == key))).one()
        for start in range(0, count, CHUNK * 4):
            n = min(CHUNK * 4, count - start)
            await conn.execute(messages.insert(), message_rows(sid, n, next_seq + start))
            await index_for_search(db, conn, sid, next_seq + start, next_seq + start + n - 1)
        total = (await conn.execute(select(func.count()).where(messages.c.session_id == sid))).scalar_one()
        await conn.execute(sessions.update().where(sessions.c.id == sid).values(
            next_seq=total + 1, message_count=total, live_messages=total, live_tokens=total * 20,
            msg_input_tokens=total * 10, msg_output_tokens=total * 10, total_tokens=total * 20))
