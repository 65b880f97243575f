"""Archive (issue 18): sessions.archived_at, the facets' archived count, a partial index

Revision ID: 0009_archive
Revises: 0007_login_sessions

- sessions.archived_at: set by session.archive, cleared by session.unarchive; null for a
  session in the default list.
- facets.archived: the archived sessions of each (tenant, agent, channel), so the default
  list's total stays a read of the small facets table.
- ix_sessions_archived: a partial index over the archived sessions alone, for archived "only".
"""

from alembic import op

revision = "0009_archive"
down_revision = "0007_login_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE sessions ADD COLUMN archived_at BIGINT")
    op.execute("ALTER TABLE facets ADD COLUMN archived BIGINT NOT NULL DEFAULT 0")
    op.execute("CREATE INDEX ix_sessions_archived ON sessions (tenant, archived_at, id) "
               "WHERE archived_at IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX ix_sessions_archived")
    op.execute("ALTER TABLE facets DROP COLUMN archived")
    op.execute("ALTER TABLE sessions DROP COLUMN archived_at")
