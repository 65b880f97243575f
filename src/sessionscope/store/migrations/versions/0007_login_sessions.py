"""Hostile input (issue 14): search chunks and set-aside ranges, dashboard login sessions

Revision ID: 0007_login_sessions
Revises: 0006_transcript_parts

- search_failed: ranges the search indexer could not index, set aside so the queue moves on
  (store.search_index); `sessionscope check` reports them.
- PostgreSQL message_search holds one row per chunk of a message (message_id, chunk), so no
  tsvector passes PostgreSQL's 1 MB limit. Existing rows are chunk 0.
- login_sessions: the dashboard cookie names one of these (web.auth, store.login_sessions),
  never the API token itself; logout revokes it, and it expires.
"""

from alembic import op

revision = "0007_login_sessions"
down_revision = "0006_transcript_parts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    serial = "INTEGER PRIMARY KEY" if sqlite else "bigserial PRIMARY KEY"
    op.execute(f"CREATE TABLE search_failed (id {serial}, session_id BIGINT NOT NULL, first_seq BIGINT NOT NULL, "
               "last_seq BIGINT NOT NULL, error TEXT NOT NULL, failed_at BIGINT NOT NULL)")
    op.execute("CREATE TABLE login_sessions (id_hash VARCHAR(128) NOT NULL PRIMARY KEY, token_id BIGINT NOT NULL, "
               "created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT)")
    op.execute("CREATE INDEX ix_login_sessions_token ON login_sessions (token_id)")
    if not sqlite:
        op.execute("ALTER TABLE message_search ADD COLUMN chunk integer NOT NULL DEFAULT 0")
        op.execute("ALTER TABLE message_search DROP CONSTRAINT message_search_pkey")
        op.execute("ALTER TABLE message_search ADD PRIMARY KEY (message_id, chunk)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DELETE FROM message_search WHERE chunk > 0")
        op.execute("ALTER TABLE message_search DROP CONSTRAINT message_search_pkey")
        op.execute("ALTER TABLE message_search DROP COLUMN chunk")
        op.execute("ALTER TABLE message_search ADD PRIMARY KEY (message_id)")
    op.execute("DROP TABLE login_sessions")
    op.execute("DROP TABLE search_failed")
