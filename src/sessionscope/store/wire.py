"""Turning table rows into the wire shapes of the RPC contract (SessionRow, Item, Execution).

Stored values only: presentation (markdown to HTML) is added by the RPC layer, rpc/presentation.py."""

from __future__ import annotations

import json
from typing import Any

import orjson
from sqlalchemy import Row

from sessionscope.clock import to_rfc3339


def cache_hit_rate(input_toks: int, cache_read: int, cache_write: int) -> float:
    """Share of prompt tokens served from cache; input_tokens counts only uncached input."""
    prompt = input_toks + cache_read + cache_write
    return round(cache_read / prompt, 4) if prompt else 0.0


# The columns session_row reads (a list reads only these).
SESSION_ROW_COLUMNS = ("id", "key", "tenant", "agent", "channel", "label", "created_at", "updated_at",
                       "message_count", "live_messages", "exec_input_tokens", "msg_input_tokens",
                       "exec_output_tokens", "msg_output_tokens", "total_tokens", "live_tokens",
                       "cache_read_tokens", "cache_write_tokens", "tool_calls", "error_count", "compactions",
                       "resets", "executions", "cost_usd", "preview", "archived_at")


def session_row(row: Row) -> dict[str, Any]:
    # The counters are BIGINT (int from either driver) and cost_usd a float: no conversion per
    # field, as a list shapes a page of these on every call.
    executions = row.executions
    return {
        "key": row.key,
        "tenant": row.tenant,
        "agent": row.agent,
        "channel": row.channel,
        "label": row.label,
        "created_at": to_rfc3339(row.created_at),
        "updated_at": to_rfc3339(row.updated_at),
        "message_count": row.message_count,
        "live_messages": row.live_messages,
        # Recorded executions are the billing truth; without any, message tokens stand in.
        "input_tokens": row.exec_input_tokens if executions else row.msg_input_tokens,
        "output_tokens": row.exec_output_tokens if executions else row.msg_output_tokens,
        "total_tokens": row.total_tokens,
        "context_tokens": row.live_tokens,
        "cache_read_tokens": row.cache_read_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "tool_calls": row.tool_calls,
        "error_count": row.error_count,
        "compactions": row.compactions,
        "resets": row.resets,
        "executions": executions,
        "cost_usd": round(row.cost_usd, 6),
        "preview": row.preview,
        "archived_at": None if row.archived_at is None else to_rfc3339(row.archived_at),
    }


def message_item(row: Row, live_from_seq: int, *, reset_seq: int = 0,
                 kind_field: str = "kind") -> dict[str, Any]:
    """`compacted`: summarised by a compaction, so out of the live context. Messages before the
    last reset that precedes the live boundary are out of it too, but were cleared, not compacted.

    Export lines name the kind `type`; they pass `kind_field="type"`."""
    # Positional unpacking (the messages table's column order): exports call this per line.
    (_, _, seq, msg_id, role, content, tool_calls, tool_call_id, tool_name, is_error, ts, tokens,
     reasoning, reasoning_tokens, kind, stop_reason, attachments, *_) = row
    item: dict[str, Any] = {
        kind_field: "message",
        "seq": seq,
        "id": msg_id,
        "role": role,
        "content": content,
        "tool_calls": orjson.loads(tool_calls) if tool_calls else None,
        "tool_call_id": tool_call_id,
        "tool_name": tool_name,
        "is_error": bool(is_error),
        "timestamp": to_rfc3339(ts),
        "tokens": tokens,
        "compacted": reset_seq < seq < live_from_seq,
        "reasoning": reasoning,
        "reasoning_tokens": reasoning_tokens,
        "message_kind": kind,
        "stop_reason": stop_reason,
        "attachments": orjson.loads(attachments) if attachments else None,
    }
    return item


def compaction_item(row: Row) -> dict[str, Any]:
    return {
        "kind": "compaction",
        "seq": int(row.seq),
        "id": row.item_id,
        "timestamp": to_rfc3339(row.ts),
        "summary": row.summary,
        "messages_compacted": int(row.messages_compacted),
        "tokens_before": int(row.tokens_before),
        "tokens_after": int(row.tokens_after),
        "first_kept_seq": int(row.first_kept_seq),
        "summarizer": row.summarizer,
        "instructions": row.instructions,
        "reason": row.reason,
        "restored": bool(row.restored),
    }


def reset_item(row: Row) -> dict[str, Any]:
    return {"kind": "reset", "seq": int(row.seq), "id": row.item_id, "timestamp": to_rfc3339(row.ts)}


def execution(row: Row) -> dict[str, Any]:
    return {
        "id": row.exec_id,
        "started_at": to_rfc3339(row.started_at),
        "duration_ms": float(row.duration_ms),
        "model_ms": None if row.model_ms is None else float(row.model_ms),
        "model": row.model,
        "provider": row.provider,
        "usage": {
            "input_tokens": int(row.input_tokens),
            "output_tokens": int(row.output_tokens),
            "cache_read_tokens": int(row.cache_read_tokens),
            "cache_write_tokens": int(row.cache_write_tokens),
            "cache_write_1h_tokens": int(row.cache_write_1h_tokens or 0),
            "reasoning_tokens": int(row.reasoning_tokens or 0),
        },
        "cost_usd": None if row.cost_usd is None else round(float(row.cost_usd), 8),
        "budget": json.loads(row.budget) if row.budget else None,
        "layers": json.loads(row.layers),
    }
