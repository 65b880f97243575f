"""Message search indexed off the append path; no foreign key on messages (PostgreSQL)

Revision ID: 0005_search_backlog
Revises: 0004_message_search_by_batch

Indexing text was the largest part of an append: FTS5 rows on SQLite, to_tsvector on PostgreSQL
(about a third of a batch's time in either database). Now an append only queues its seq range in
search_backlog, and store.search_index turns queued ranges into search rows in the background;
a search never misses a committed message (see that module).

PostgreSQL: message_search replaces the expression index (one tsvector per message, built here
from every stored message), and messages lose their foreign key to sessions: checked row by row
it cost a sixth of an append. Every writer locks the session row before it touches that
session's messages, deletes remove messages explicitly, and `sessionscope check` reports
messages without a session.
"""

from alembic import op

revision = "0005_search_backlog"
down_revision = "0004_message_search_by_batch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE TABLE search_backlog (id INTEGER PRIMARY KEY, session_id BIGINT NOT NULL, "
                   "first_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL)")
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
        op.execute("INSERT INTO message_search(rowid, content) SELECT m.id, m.content FROM search_backlog q "
                   "JOIN messages m ON m.session_id = q.session_id AND m.seq BETWEEN q.first_seq AND q.last_seq")
        op.execute("DROP TABLE search_backlog")
        return
    op.execute("DROP TABLE search_backlog")
    op.execute("DROP TABLE message_search")
    op.execute("CREATE INDEX ix_messages_content_fts ON messages USING gin (to_tsvector('simple', content))")
    op.execute("ALTER TABLE messages ADD CONSTRAINT messages_session_id_fkey FOREIGN KEY (session_id) "
               "REFERENCES sessions (id) ON DELETE CASCADE")
