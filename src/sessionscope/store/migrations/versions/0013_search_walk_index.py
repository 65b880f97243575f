"""A covering index for `search`'s walk of the default list (issue 19, cold-cache search tails)

Revision ID: 0013_search_walk_index
Revises: 0011_execution_model_ms

`search` walks the sort index and tests each session's folded text (store/listing.py); the
common terms' total counts the matches among the first COUNT_SCAN sessions the same way. Each
entry walked was a read of its sessions row, one random page each on a cold cache (10,000 of
them for a count, 0.4-0.7 s from this machine's disk). ix_sessions_search_walk holds what the
walk tests, in the order of the default list (tenant, newest updated first): the walk and the
count read index pages, next to each other, and only the page's own rows are read.

PostgreSQL refuses an index entry over 2,704 bytes, and a folded key, agent, channel and label
may reach several times that: its index holds sessions.search_head instead, a generated copy of
that text (the haystack of 0009) when it is at most HEAD_BYTES long, and null otherwise, the
rare case where the walk reads the row to test it. Adding a stored column rewrites the table
(27 s for 200,000 sessions on this machine, at a load of 5), and the walk reads index pages alone once VACUUM
has marked the pages all-visible, as autovacuum does.
"""

from alembic import op

revision = "0013_search_walk_index"
down_revision = "0011_execution_model_ms"
branch_labels = None
depends_on = None


HAYSTACK = "folded_identity || ' ' || coalesce(folded_label, '')"
# With the tenant (at most 512 bytes) and the numbers, an entry stays under PostgreSQL's 2,704.
HEAD_BYTES = 1_800


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE INDEX ix_sessions_search_walk ON sessions "
                   "(tenant, updated_at, id, archived_at, folded_identity, folded_label)")
        return
    op.execute("ALTER TABLE sessions ADD COLUMN search_head TEXT GENERATED ALWAYS AS "
               f"(CASE WHEN octet_length({HAYSTACK}) <= {HEAD_BYTES} THEN {HAYSTACK} END) STORED")
    op.execute("CREATE INDEX ix_sessions_search_walk ON sessions (tenant, updated_at, id) "
               "INCLUDE (archived_at, search_head)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_sessions_search_walk")
    if op.get_bind().dialect.name != "sqlite":
        op.execute("ALTER TABLE sessions DROP COLUMN search_head")
