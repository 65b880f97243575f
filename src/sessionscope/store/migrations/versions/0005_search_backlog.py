"""PostgreSQL: message search indexed off the append path; no foreign key on messages

Revision ID: 0005_search_backlog
Revises: 0004_message_search_by_batch

An append used to compute to_tsvector for each message inside its transaction (about a third
of a batch's time in the database) and to check the session foreign key row by row (another
sixth). Now an append only queues its seq range in search_backlog; store.search_index turns
queued ranges into message_search rows in the background, and a search also scans what is
still queued, so results never lag. Every write path locks the session row before it touches
its messages, and deletes remove messages explicitly, so the foreign key guarded nothing the
code does not already; `sessionscope check` reports messages without a session.

SQLite is unchanged: its FTS5 index is fed per batch in the append's transaction (0004).
"""

from alembic import op

revision = "0005_search_backlog"
down_revision = "0004_message_search_by_batch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.execute("ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_session_id_fkey")
    op.execute("CREATE TABLE message_search (message_id bigint PRIMARY KEY, session_id bigint NOT NULL, "
               "document tsvector NOT NULL)")
    op.execute("INSERT INTO message_search (message_id, session_id, document) "
               "SELECT id, session_id, to_tsvector('simple', content) FROM messages")
    op.execute("CREATE INDEX ix_message_search_document ON message_search USING gin (document)")
    op.execute("CREATE INDEX ix_message_search_session ON message_search (session_id)")
    op.execute("DROP INDEX IF EXISTS ix_messages_content_fts")
    op.execute("CREATE TABLE search_backlog (id bigserial PRIMARY KEY, session_id bigint NOT NULL, "
               "first_seq bigint NOT NULL, last_seq bigint NOT NULL)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.execute("DROP TABLE search_backlog")
    op.execute("DROP TABLE message_search")
    op.execute("CREATE INDEX ix_messages_content_fts ON messages USING gin (to_tsvector('simple', content))")
    op.execute("ALTER TABLE messages ADD CONSTRAINT messages_session_id_fkey FOREIGN KEY (session_id) "
               "REFERENCES sessions (id) ON DELETE CASCADE")
