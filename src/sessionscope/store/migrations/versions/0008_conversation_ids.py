"""Message ids are unique per conversation (since the last reset), not per session (issue 14, item 13)

Revision ID: 0008_conversation_ids
Revises: 0007_login_sessions

An append whose message id was used before a reset stored nothing (`duplicates: 1`): the unique
key was (session_id, msg_id). messages.conversation is now the number of the session's resets
before the message, the unique key is (session_id, conversation, msg_id), and a raw copy belongs
to its message's conversation too. Existing rows get their conversation from the resets table.

SQLite cannot drop an inline UNIQUE constraint, so `messages` and `message_raw` are rebuilt
(batch mode, inside the migration's one transaction). The rebuild keeps every row id, which the
FTS5 index (rowid = messages.id) relies on; the delete trigger dies with the old table and is
made again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_conversation_ids"
down_revision = "0007_login_sessions"
branch_labels = None
depends_on = None

OLD_KEY = "uq_messages_session_msg_id"
NEW_KEY = "uq_messages_session_conversation_msg_id"
# migration 0001's trigger, made again after SQLite's rebuild of `messages`
SEARCH_DELETE_TRIGGER = ("CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN "
                         "INSERT INTO message_search(message_search, rowid, content) "
                         "VALUES ('delete', old.id, old.content); END")

COUNT_RESETS = ("UPDATE messages SET conversation = (SELECT count(*) FROM resets r "
                "WHERE r.session_id = messages.session_id AND r.seq < messages.seq) "
                "WHERE session_id IN (SELECT session_id FROM resets)")
# Before this migration a session held each msg_id once, so a raw copy names one message.
RAW_CONVERSATION = ("UPDATE message_raw SET conversation = coalesce((SELECT m.conversation FROM messages m "
                    "WHERE m.session_id = message_raw.session_id AND m.msg_id = message_raw.msg_id), 0) "
                    "WHERE session_id IN (SELECT session_id FROM resets)")


def _conversation() -> sa.Column:
    return sa.Column("conversation", sa.BigInteger(), nullable=False, server_default="0")


MESSAGE_COLUMNS = ("id, session_id, seq, msg_id, role, content, tool_calls, tool_call_id, tool_name, is_error, ts, "
                   "tokens, reasoning, reasoning_tokens, kind, stop_reason, attachments")
SQLITE_MESSAGES = f"""CREATE TABLE messages_new (
    id INTEGER NOT NULL, session_id BIGINT NOT NULL, seq BIGINT NOT NULL, msg_id VARCHAR(256) NOT NULL,
    role VARCHAR(16) NOT NULL, content TEXT NOT NULL, tool_calls TEXT, tool_call_id VARCHAR(256),
    tool_name VARCHAR(256), is_error BOOLEAN NOT NULL, ts BIGINT NOT NULL, tokens INTEGER NOT NULL,
    reasoning TEXT, reasoning_tokens INTEGER, kind VARCHAR(16), stop_reason VARCHAR(32), attachments TEXT,
    conversation BIGINT DEFAULT '0' NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(session_id) REFERENCES sessions (id) ON DELETE CASCADE,
    CONSTRAINT uq_messages_session_seq UNIQUE (session_id, seq),
    CONSTRAINT {NEW_KEY} UNIQUE (session_id, conversation, msg_id)
)"""
SQLITE_RAW = """CREATE TABLE message_raw_new (
    session_id BIGINT NOT NULL, msg_id VARCHAR(256) NOT NULL, raw TEXT NOT NULL,
    conversation BIGINT DEFAULT '0' NOT NULL,
    PRIMARY KEY (session_id, msg_id, conversation),
    FOREIGN KEY(session_id) REFERENCES sessions (id) ON DELETE CASCADE
)"""


def _rebuild_sqlite() -> None:
    """New tables, rows copied (ids kept), old tables dropped, new ones renamed: all in the
    migration's transaction, so a failure leaves the store as it was."""
    op.execute("DROP TRIGGER IF EXISTS messages_search_ad")
    op.execute(SQLITE_MESSAGES)
    op.execute(f"INSERT INTO messages_new ({MESSAGE_COLUMNS}, conversation) SELECT {MESSAGE_COLUMNS}, 0 FROM messages")
    op.execute(SQLITE_RAW)
    op.execute("INSERT INTO message_raw_new (session_id, msg_id, raw, conversation) "
               "SELECT session_id, msg_id, raw, 0 FROM message_raw")
    op.execute("DROP TABLE messages")
    op.execute("ALTER TABLE messages_new RENAME TO messages")
    op.execute("DROP TABLE message_raw")
    op.execute("ALTER TABLE message_raw_new RENAME TO message_raw")
    op.execute(SEARCH_DELETE_TRIGGER)
    op.execute(COUNT_RESETS)
    op.execute(RAW_CONVERSATION)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite()
        return
    op.add_column("messages", _conversation())
    op.execute(COUNT_RESETS)
    op.create_unique_constraint(NEW_KEY, "messages", ["session_id", "conversation", "msg_id"])
    op.drop_constraint(OLD_KEY, "messages", type_="unique")
    op.add_column("message_raw", _conversation())
    op.execute(RAW_CONVERSATION)
    op.execute("ALTER TABLE message_raw DROP CONSTRAINT message_raw_pkey")
    op.execute("ALTER TABLE message_raw ADD PRIMARY KEY (session_id, msg_id, conversation)")


def downgrade() -> None:
    raise NotImplementedError("ids reused after a reset cannot be made unique per session again")
