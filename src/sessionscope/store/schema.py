"""Tables. Times are integer milliseconds since the epoch (UTC) so both dialects sort them alike."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for big stores.
RowId = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("retention_days", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

agents = Table(
    "agents",
    metadata,
    Column("tenant", String(128), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(256), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)

# One row per (tenant, agent, channel) with its session count: session.list totals,
# agent.list and channel.list read this small table instead of counting sessions.
facets = Table(
    "facets",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("agent", String(256), primary_key=True),
    Column("channel", String(128), primary_key=True),
    Column("sessions", BigInteger, nullable=False, default=0),
    # Of those, how many are archived: the default list (not archived) totals sessions - archived.
    Column("archived", BigInteger, nullable=False, default=0, server_default="0"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("tenant", String(128), nullable=False),
    Column("key", String(1024), nullable=False),
    Column("agent", String(256), nullable=False),
    Column("channel", String(128), nullable=False),
    Column("label", String(512), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("next_seq", BigInteger, nullable=False, default=1),
    # Live context boundary: items with seq >= live_from_seq are live; the active compaction's
    # summary (if any) precedes them.
    Column("live_from_seq", BigInteger, nullable=False, default=1),
    Column("active_compaction_id", BigInteger, nullable=True),
    Column("live_tokens", BigInteger, nullable=False, default=0),
    Column("message_count", BigInteger, nullable=False, default=0),
    Column("live_messages", BigInteger, nullable=False, default=0),
    Column("msg_input_tokens", BigInteger, nullable=False, default=0),
    Column("msg_output_tokens", BigInteger, nullable=False, default=0),
    Column("exec_input_tokens", BigInteger, nullable=False, default=0),
    Column("exec_output_tokens", BigInteger, nullable=False, default=0),
    Column("total_tokens", BigInteger, nullable=False, default=0),
    Column("cache_read_tokens", BigInteger, nullable=False, default=0),
    Column("cache_write_tokens", BigInteger, nullable=False, default=0),
    Column("tool_calls", BigInteger, nullable=False, default=0),
    # Stored messages with is_error (a failed tool call or turn): the list's error badge and filter.
    Column("error_count", BigInteger, nullable=False, default=0, server_default="0"),
    Column("compactions", BigInteger, nullable=False, default=0),
    Column("resets", BigInteger, nullable=False, default=0),
    Column("executions", BigInteger, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("preview", String(256), nullable=True),
    # key, agent and channel, and the label, case-folded in Python (keys.folded_identity, migration
    # 0009): `search` compares these, so both databases fold case alike.
    Column("folded_identity", Text, nullable=False, server_default=""),
    Column("folded_label", Text, nullable=True),
    # Set by session.archive: hidden from the default list, nothing deleted.
    Column("archived_at", BigInteger, nullable=True),
    UniqueConstraint("tenant", "key", name="uq_sessions_tenant_key"),
)

# Every filter and sort of session.list has an index that yields rows already in order, so a
# page is a bounded index walk whatever the data (keys often start with the agent's name, which
# makes "filter by agent, sort by key" a near-full scan without its own index).
SORT_COLUMNS = ("updated_at", "created_at", "key", "agent", "channel", "message_count", "total_tokens",
                "cost_usd")
LIST_FILTERS: tuple[tuple[str, ...], ...] = ((), ("tenant",), ("agent",), ("channel",), ("tenant", "agent"),
                                             ("tenant", "channel"))


def list_index_name(filters: tuple[str, ...], sort: str) -> str:
    return "ix_sessions_" + "_".join((*filters, sort))


for _filters in LIST_FILTERS:
    for _col in SORT_COLUMNS:
        if _col in _filters:
            continue
        Index(list_index_name(_filters, _col), *(sessions.c[f] for f in _filters), sessions.c[_col], sessions.c.id)

# The archived sessions alone (few, next to the list): archived "only" reads them from here. The
# default list ("not archived") keeps walking the sort indexes above, skipping the few archived rows.
ARCHIVED_INDEX = "ix_sessions_archived"
Index(ARCHIVED_INDEX, sessions.c.tenant, sessions.c.archived_at, sessions.c.id,
      sqlite_where=sessions.c.archived_at.isnot(None), postgresql_where=sessions.c.archived_at.isnot(None))

# messages.kind: null for conversation; these two otherwise (docs/item-model.md).
INJECTED_KIND = "injected"  # context the client put in the conversation, not typed by the user
EVENT_KIND = "event"  # a source record kept as it was: never in history, no tokens

messages = Table(
    "messages",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    # PostgreSQL stores drop this foreign key (migration 0005): checked per row, it cost a sixth
    # of an append's time there. Writers lock the session row first; `check` finds orphans.
    Column("session_id", BigInteger, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("msg_id", String(256), nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("tool_calls", Text, nullable=True),
    Column("tool_call_id", String(256), nullable=True),
    Column("tool_name", String(256), nullable=True),
    Column("is_error", Boolean, nullable=False, default=False),
    Column("ts", BigInteger, nullable=False),
    Column("tokens", Integer, nullable=False),
    # Parts of a turn beside its text (migration 0006), kept last so the positional row shape
    # above stays as it is. reasoning: the model's thinking or reasoning summary, never part of
    # `content`; kind: null for conversation, "injected" for context the client added (not typed
    # by the user), "event" for a source record kept as it was (never in history);
    # stop_reason: why an assistant turn ended when it did not end normally ("aborted",
    # "length", "error"); attachments: JSON list of {mime_type, size, data (base64) | null}.
    Column("reasoning", Text, nullable=True),
    Column("reasoning_tokens", Integer, nullable=True),
    Column("kind", String(16), nullable=True),
    Column("stop_reason", String(32), nullable=True),
    Column("attachments", Text, nullable=True),
    # The session's conversation the message belongs to: the number of resets before it
    # (migration 0008). A message id is unique within its conversation, so a retried append is
    # skipped while an id used before a reset can be used again (docs/item-model.md).
    Column("conversation", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("session_id", "seq", name="uq_messages_session_seq"),
    UniqueConstraint("session_id", "conversation", "msg_id", name="uq_messages_session_conversation_msg_id"),
)

compactions = Table(
    "compactions",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("session_id", BigInteger, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("item_id", String(256), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("summary", Text, nullable=False),
    Column("messages_compacted", Integer, nullable=False),
    Column("tokens_before", BigInteger, nullable=False),
    Column("tokens_after", BigInteger, nullable=False),
    Column("first_kept_seq", BigInteger, nullable=False),
    Column("summarizer", String(128), nullable=False),
    Column("instructions", Text, nullable=True),
    Column("reason", String(32), nullable=False),
    Column("restored", Boolean, nullable=False, default=False),
    # What the live boundary was before this compaction, so restore can put it back.
    Column("prev_live_from_seq", BigInteger, nullable=False),
    Column("prev_compaction_id", BigInteger, nullable=True),
    Column("summary_tokens", Integer, nullable=False),
    UniqueConstraint("session_id", "seq", name="uq_compactions_session_seq"),
    UniqueConstraint("session_id", "item_id", name="uq_compactions_session_item"),
)
Index("ix_compactions_session_first_kept", compactions.c.session_id, compactions.c.first_kept_seq)

resets = Table(
    "resets",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("session_id", BigInteger, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("item_id", String(256), nullable=False),
    Column("ts", BigInteger, nullable=False),
    UniqueConstraint("session_id", "seq", name="uq_resets_session_seq"),
    UniqueConstraint("session_id", "item_id", name="uq_resets_session_item"),
)

executions = Table(
    "executions",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("session_id", BigInteger, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("exec_id", String(256), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("duration_ms", Float, nullable=False),
    # The model call's own time, where the agent reports it; else the waterfall infers it.
    Column("model_ms", Float, nullable=True),
    Column("model", String(256), nullable=True),
    Column("provider", String(128), nullable=True),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cache_read_tokens", BigInteger, nullable=False),
    Column("cache_write_tokens", BigInteger, nullable=False),
    # The part of cache_write_tokens written with a 1-hour lifetime (priced higher than 5-minute).
    Column("cache_write_1h_tokens", BigInteger, nullable=False, server_default="0"),
    # The part of output_tokens that was reasoning, where the source reports it (Codex).
    Column("reasoning_tokens", BigInteger, nullable=False, server_default="0"),
    Column("cost_usd", Float, nullable=True),
    Column("budget", Text, nullable=True),
    Column("layers", Text, nullable=False),
    UniqueConstraint("session_id", "exec_id", name="uq_executions_session_exec"),
)
Index("ix_executions_session_started", executions.c.session_id, executions.c.started_at)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("tenant", String(128), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("ts", BigInteger, nullable=False),
    Column("token_id", BigInteger, nullable=True),
    Column("token_name", String(256), nullable=True),
    Column("tenant", String(128), nullable=True),
    Column("action", String(64), nullable=False),
    Column("keys", Text, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("detail", Text, nullable=True),
)
Index("ix_audit_tenant_ts", audit_log.c.tenant, audit_log.c.ts)

# Short-lived download links for session.export, in the database so that any server process
# sharing the store can serve a link another process issued.
export_links = Table(
    "export_links",
    metadata,
    Column("token_hash", String(128), primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("keys", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("created_by", BigInteger, nullable=True),
)

# A message as its client sent it in the client's own wire format (for example an OpenAI
# Responses API item), so an adapter gets back exactly what it stored. Kept apart from
# `messages` so the ingest hot path and its positional row shape stay as they are.
message_raw = Table(
    "message_raw",
    metadata,
    Column("session_id", BigInteger, ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
    Column("msg_id", String(256), primary_key=True),
    Column("raw", Text, nullable=False),
    Column("conversation", BigInteger, primary_key=True, server_default="0"),  # its message's
)

# A dashboard login: the cookie holds a random id whose hash is stored here, never the API token
# (store.login_sessions). Logout revokes the row; it expires on its own.
login_sessions = Table(
    "login_sessions",
    metadata,
    Column("id_hash", String(128), primary_key=True),
    Column("token_id", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)
Index("ix_login_sessions_token", login_sessions.c.token_id)
