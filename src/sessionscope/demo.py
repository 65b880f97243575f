"""Deterministic demo data: tenants, agents, channels, tool calls, compactions and executions.

Used by `sessionscope demo`, the tests and the benchmarks. The same seed gives the same store.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from sessionscope.clock import to_rfc3339

TENANTS = ("default", "acme", "globex")
AGENTS = ("main", "support", "research", "ops-bot")
CHANNELS = ("telegram", "discord", "slack", "web", "whatsapp", "cron", "sub-agent")
MODELS = (("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"),
          ("anthropic", "claude-3-5-haiku-latest"))
LAYERS = ("history-window", "memory-recall", "tool-schema", "dead-content-evictor", "llm-compaction")
TOOLS = ("read_file", "search_web", "run_shell", "query_db", "send_message")
REQUESTS = (
    "Can you check why the deploy of {svc} failed on {date}?",
    "Please summarise ticket {ticket} and draft a reply to the customer.",
    "Find every mention of {path} in the repo and tell me who owns it.",
    "What did we decide about the {svc} retry limit? I think it was {n}.",
    "Schedule a reminder for {date} to rotate the API key for {svc}.",
)
ANSWERS = (
    "I looked into **{svc}**. The deploy failed because `{path}` was missing; I restored it.",
    "Here is the summary of {ticket}:\n\n- customer reports timeouts\n- started on {date}\n- retry limit is {n}",
    "Decision: we keep the {svc} retry limit at **{n}** and alert after 3 failures.",
    "Done. Next step: verify `{path}` in staging, then close {ticket}.",
)


def _key(rng: random.Random, agent: str, channel: str, i: int) -> str:
    if channel == "telegram":
        return f"agent:{agent}:telegram:group:-100{rng.randint(100000, 999999)}:topic:{i}"
    if channel == "discord":
        return f"agent:{agent}:discord:guild/{rng.randint(1000, 9999)}/channel/{i}"
    if channel == "slack":
        return f"agent:{agent}:slack:T{rng.randint(100, 999)}/C{i:05d}"
    if channel == "cron":
        return f"agent:{agent}:cron:daily-report/{i}"
    if channel == "sub-agent":
        return f"agent:{agent}:sub-agent:task/{i}:worker"
    return f"agent:{agent}:{channel}:user:{rng.randint(10_000, 99_999)}-{i}"


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        svc=rng.choice(("billing-api", "auth-service", "ingest-worker", "search")),
        date=f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}",
        ticket=f"TCK-{rng.randint(1000, 9999)}",
        path=rng.choice(("/etc/app/config.yaml", "src/billing/retry.py", "deploy/helm/values.yaml")),
        n=rng.randint(2, 9),
    )


# Every LONG_EVERY-th session is a long working session: more turns, and tool calls that read
# whole files, so its live context passes the default keep_recent_tokens (20,000) and Compact
# with the defaults has something to do.
LONG_EVERY = 10
LONG_FACTOR = 3
LONG_OUTPUT_LINES = 90


def _long_output(rng: random.Random, path: str) -> str:
    lines = [f"# {path}"]
    for n in range(LONG_OUTPUT_LINES):
        name = rng.choice(("retry", "flush", "render", "parse", "load")) + f"_{rng.choice(('batch', 'row', 'event'))}"
        lines.append(f"{n + 1:4d}  def {name}_{n}(value, limit={rng.randint(1, 500)}):  # {rng.choice(TOOLS)} path")
    return "\n".join(lines)


def session_records(rng: random.Random, index: int, messages: int, start_ms: int,
                    long: bool = False) -> Iterator[dict[str, Any]]:
    """One session as a record stream (docs/item-model.md)."""
    tenant = TENANTS[index % len(TENANTS)] if index % 5 else "default"
    agent = AGENTS[rng.randrange(len(AGENTS))]
    channel = CHANNELS[index % len(CHANNELS)]
    key = _key(rng, agent, channel, index)
    t = start_ms
    yield {"type": "session", "version": 1, "key": key, "tenant": tenant, "agent": agent, "channel": channel,
           "label": f"Demo {channel} #{index}" if index % 4 == 0 else None, "created_at": to_rfc3339(t)}
    seq = 0
    produced = 0
    # Executions draw from their own generator so the conversation is the same with or without them.
    erng = random.Random(index * 7_919 + messages)
    runs: list[dict[str, Any]] = []
    every = 6 if long else 8  # about one execution per 20 messages
    while produced < messages:
        seq += 1
        t += rng.randint(2_000, 90_000)
        yield {"type": "message", "id": f"m{seq}", "role": "user", "content": _fill(rng, rng.choice(REQUESTS)),
               "timestamp": to_rfc3339(t)}
        produced += 1
        turn_start, seen = t, produced
        if produced + 2 <= messages and rng.random() < (0.8 if long else 0.4):
            call_id = f"call_{index}_{seq}"
            tool = rng.choice(TOOLS)
            seq += 1
            args = json.dumps({"query": _fill(rng, "{svc} {path}"), "limit": rng.randint(1, 20)})
            yield {"type": "message", "id": f"m{seq}", "role": "assistant", "content": "",
                   "tool_calls": [{"id": call_id, "name": tool, "arguments": args}], "timestamp": to_rfc3339(t + 500)}
            seq += 1
            failed = rng.random() < 0.15
            output = "Error: permission denied (EACCES)" if failed else _fill(rng, "found 3 matches in {path}")
            if long and not failed:
                output = _long_output(rng, _fill(rng, "{path}"))
            yield {"type": "message", "id": f"m{seq}", "role": "tool", "content": output, "tool_call_id": call_id,
                   "tool_name": tool, "is_error": failed, "timestamp": to_rfc3339(t + 1500)}
            produced += 2
        if produced < messages:
            seq += 1
            yield {"type": "message", "id": f"m{seq}", "role": "assistant", "content": _fill(rng, rng.choice(ANSWERS)),
                   "timestamp": to_rfc3339(t + 3000)}
            produced += 1
            # The run that wrote this reply: it saw the messages up to the user's turn, started just
            # after it, and ends before the reply's timestamp.
            if not runs or erng.randrange(every) == 0:
                runs.append(_execution(erng, f"exec-{index}-{len(runs)}", turn_start + 50, seen))
    yield from runs


def _execution(rng: random.Random, exec_id: str, started_ms: int, seen: int) -> dict[str, Any]:
    """One run over `seen` messages: each layer passes on at most what it was given, and the run's
    duration is its layers plus its model call (reported as `model_ms` by every other run, so the
    dashboard shows both a reported and an inferred model call)."""
    provider, model = MODELS[rng.randrange(len(MODELS))]
    window = 200_000 if provider == "anthropic" else 128_000
    layers, cursor, n_in = [], 0.0, seen
    for name in LAYERS:
        duration = round(rng.uniform(0.5, 40.0 if name != "llm-compaction" else 400.0), 2)
        n_out = max(1, n_in - rng.randint(0, min(20, n_in - 1))) if n_in > 1 else n_in
        layers.append({"name": name, "start_ms": round(cursor, 2), "duration_ms": duration,
                       "messages_in": n_in, "messages_out": n_out,
                       "tokens_in": n_in * 40, "tokens_out": n_out * 40, "error": None})
        cursor += duration
        n_in = n_out
    model_ms = round(rng.uniform(300, 2_300), 2)
    # The prompt is what the budget says went in: system, tools, context and the messages the layers kept.
    budget = {"window": window, "system": rng.randint(800, 3_000), "tools": rng.randint(500, 4_000),
              "context": rng.randint(0, 8_000), "messages": n_in * 40}  # n_in: what the last layer passed on
    inp = budget["system"] + budget["tools"] + budget["context"] + budget["messages"]
    record: dict[str, Any] = {
        "type": "execution", "id": exec_id, "started_at": to_rfc3339(started_ms),
        "duration_ms": round(cursor + model_ms, 2), "model": model, "provider": provider,
        "usage": {"input_tokens": inp, "output_tokens": rng.randint(100, 2_000),
                  "cache_read_tokens": rng.randint(0, inp), "cache_write_tokens": rng.randint(0, 2_000)},
        "budget": budget,
        "layers": layers}
    if rng.random() < 0.5:
        record["model_ms"] = model_ms
    return record


def demo_records(sessions: int, messages: int, seed: int = 7, start_ms: int = 1_790_000_000_000
                 ) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for index in range(sessions):
        long = index % LONG_EVERY == LONG_EVERY // 2
        count = messages * LONG_FACTOR if long else messages if index % 3 else max(1, messages // 4)
        yield from session_records(rng, index, count, start_ms + index * 3_600_000, long=long)


async def build_demo(db: Any, sessions: int, messages: int, seed: int = 7, progress: Any = None) -> dict[str, int]:
    """Import the demo sessions through the ingest service, then compact and reset some of them
    through the same services as session.compact and session.reset."""
    from sessionscope.compaction import CompactionSettings
    from sessionscope.compaction.service import compact
    from sessionscope.ingest import ingest_records
    from sessionscope.store import Scope, search_index
    from sessionscope.store.listing import list_sessions
    from sessionscope.store.sessions import reset

    scope = Scope.everything()
    stats = await ingest_records(db, scope, demo_records(sessions, messages, seed), source="demo", progress=progress)
    page = await list_sessions(db, scope, sort="message_count", order="desc", limit=min(sessions, 40))
    compacted = resets = 0
    for i, row in enumerate(page["sessions"]):
        if i % 3 == 0 and row["message_count"] >= 12:
            result = await compact(db, scope, row["key"], CompactionSettings(), tenant=row["tenant"],
                                   keep_recent_tokens=300)
            compacted += int(result["compacted"])
        elif i % 7 == 1:
            await reset(db, scope, [row["key"]], row["tenant"])
            resets += 1
    await search_index.drain(db)  # the store is whole for search even when no server follows
    return {"sessions": stats.sessions, "messages": stats.messages, "compactions": compacted, "resets": resets}
