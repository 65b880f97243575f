"""Archive and failures (issue 18): sessions.archived_at and error_count, facets.archived

Revision ID: 0010_archive
Revises: 0009_folded_search

- sessions.archived_at: set by session.archive, cleared by session.unarchive; null for a
  session in the default list.
- facets.archived: the archived sessions of each (tenant, agent, channel), so the default
  list's total stays a read of the small facets table.
- ix_sessions_archived: a partial index over the archived sessions alone, for archived "only".
- sessions.error_count: the stored messages with is_error, moved by every append like
  tool_calls; backfilled here from the messages.
"""

from alembic import op

revision = "0010_archive"
down_revision = "0009_folded_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE sessions ADD COLUMN archived_at BIGINT")
    op.execute("ALTER TABLE facets ADD COLUMN archived BIGINT NOT NULL DEFAULT 0")
    op.execute("CREATE INDEX ix_sessions_archived ON sessions (tenant, archived_at, id) "
               "WHERE archived_at IS NOT NULL")
    op.execute("ALTER TABLE sessions ADD COLUMN error_count BIGINT NOT NULL DEFAULT 0")
    op.execute("UPDATE sessions SET error_count = (SELECT count(*) FROM messages m "
               "WHERE m.session_id = sessions.id AND m.is_error) "
               "WHERE id IN (SELECT session_id FROM messages WHERE is_error)")


def downgrade() -> None:
    op.execute("ALTER TABLE sessions DROP COLUMN error_count")
    op.execute("DROP INDEX ix_sessions_archived")
    op.execute("ALTER TABLE facets DROP COLUMN archived")
    op.execute("ALTER TABLE sessions DROP COLUMN archived_at")
