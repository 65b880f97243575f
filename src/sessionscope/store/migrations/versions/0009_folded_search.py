"""`search` folds case in Python, the same on both databases (issue 14, "Search on both databases")

Revision ID: 0009_folded_search
Revises: 0008_conversation_ids

SQLite's LIKE folded ASCII only and its trigram index its own simple folding; PostgreSQL's
ILIKE followed the database's locale. Neither gave "STRASSE" for "straße". sessions now keep
their key, agent and channel (folded_identity) and their label (folded_label) case-folded by
Python's str.casefold (keys.folded_identity), and `search` looks for the case-folded term in
that text, case-sensitively: SQLite through a trigram index with case_sensitive 1, PostgreSQL
through a pg_trgm index on the same expression. Existing rows are folded here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_folded_search"
down_revision = "0008_conversation_ids"
branch_labels = None
depends_on = None

HAYSTACK = "folded_identity || ' ' || coalesce(folded_label, '')"
BATCH = 1_000


def _fold_existing() -> None:
    """In pages by id, so memory stays flat for any number of sessions."""
    bind = op.get_bind()
    page = sa.text("SELECT id, key, agent, channel, label FROM sessions WHERE id > :after ORDER BY id LIMIT :n")
    update = sa.text("UPDATE sessions SET folded_identity = :identity, folded_label = :label WHERE id = :id")
    after = 0
    while rows := bind.execute(page, {"after": after, "n": BATCH}).all():
        bind.execute(update, [{"id": r.id, "identity": f"{r.key} {r.agent} {r.channel}".casefold(),
                               "label": r.label.casefold() if r.label is not None else None} for r in rows])
        after = rows[-1].id


def upgrade() -> None:
    op.add_column("sessions", sa.Column("folded_identity", sa.Text(), nullable=False, server_default=""))
    op.add_column("sessions", sa.Column("folded_label", sa.Text(), nullable=True))
    _fold_existing()
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("sessions_search_ai", "sessions_search_au", "sessions_search_ad"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS session_search")
        op.execute("CREATE VIRTUAL TABLE session_search USING fts5(text, tokenize='trigram case_sensitive 1')")
        op.execute(f"INSERT INTO session_search(rowid, text) SELECT id, {HAYSTACK} FROM sessions")
        new = HAYSTACK.replace("folded_", "new.folded_")
        op.execute("CREATE TRIGGER sessions_search_ai AFTER INSERT ON sessions BEGIN "
                   f"INSERT INTO session_search(rowid, text) VALUES (new.id, {new}); END")
        op.execute("CREATE TRIGGER sessions_search_au AFTER UPDATE OF folded_label ON sessions BEGIN "
                   f"UPDATE session_search SET text = {new} WHERE rowid = new.id; END")
        op.execute("CREATE TRIGGER sessions_search_ad AFTER DELETE ON sessions BEGIN "
                   "DELETE FROM session_search WHERE rowid = old.id; END")
        return
    op.execute("DROP INDEX IF EXISTS ix_sessions_search_trgm")
    op.execute(f"CREATE INDEX ix_sessions_search_trgm ON sessions USING gin (({HAYSTACK}) gin_trgm_ops)")


def downgrade() -> None:
    raise NotImplementedError("restore the store from a backup to go back before 0009")
