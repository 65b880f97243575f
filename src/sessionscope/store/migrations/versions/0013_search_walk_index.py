"""A covering index for `search`'s walk of the default list, and SQLite's trigram index without
positions (issue 19, cold-cache search tails)

Revision ID: 0013_search_walk_index
Revises: 0012_message_words

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
(145 s for 1M sessions on this machine at a load of 7-9; SQLite's 0013 took 96 s there), and
the walk reads index pages alone once VACUUM has marked the pages all-visible, as autovacuum
does.
"""

from alembic import op

revision = "0013_search_walk_index"
down_revision = "0012_message_words"
branch_labels = None
depends_on = None


HAYSTACK = "folded_identity || ' ' || coalesce(folded_label, '')"
# With the tenant (at most 512 bytes) and the numbers, an entry stays under PostgreSQL's 2,704.
HEAD_BYTES = 1_800


def _trigram_index(detail: str) -> None:
    """SQLite: session_search again (as 0009 made it), with `detail`: none here. Its positions were two
    thirds of it (160 MB for 1M sessions, 51 without) and a phrase query read them; the search now
    asks for the term's trigrams in any order and tests the candidates' text (store/listing.py).
    A rare term's cold lookup: 110-490 ms before, 60-120 ms after in the 1M-session bench store
    (30-40 ms in a file of its own: the rebuilt index takes the store's freed pages, scattered)."""
    for trigger in ("sessions_search_ai", "sessions_search_au", "sessions_search_ad"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS session_search")
    op.execute(f"CREATE VIRTUAL TABLE session_search USING fts5(text, tokenize='trigram case_sensitive 1', "
               f"detail={detail})")
    op.execute(f"INSERT INTO session_search(rowid, text) SELECT id, {HAYSTACK} FROM sessions")
    new = HAYSTACK.replace("folded_", "new.folded_")
    op.execute("CREATE TRIGGER sessions_search_ai AFTER INSERT ON sessions BEGIN "
               f"INSERT INTO session_search(rowid, text) VALUES (new.id, {new}); END")
    op.execute("CREATE TRIGGER sessions_search_au AFTER UPDATE OF folded_label ON sessions BEGIN "
               f"UPDATE session_search SET text = {new} WHERE rowid = new.id; END")
    op.execute("CREATE TRIGGER sessions_search_ad AFTER DELETE ON sessions BEGIN "
               "DELETE FROM session_search WHERE rowid = old.id; END")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE INDEX ix_sessions_search_walk ON sessions "
                   "(tenant, updated_at, id, archived_at, folded_identity, folded_label)")
        _trigram_index("none")
        return
    op.execute("ALTER TABLE sessions ADD COLUMN search_head TEXT GENERATED ALWAYS AS "
               f"(CASE WHEN octet_length({HAYSTACK}) <= {HEAD_BYTES} THEN {HAYSTACK} END) STORED")
    op.execute("CREATE INDEX ix_sessions_search_walk ON sessions (tenant, updated_at, id) "
               "INCLUDE (archived_at, search_head)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_sessions_search_walk")
    if op.get_bind().dialect.name == "sqlite":
        _trigram_index("full")  # the search before 0013 asks for phrases, which need positions
    else:
        op.execute("ALTER TABLE sessions DROP COLUMN search_head")
