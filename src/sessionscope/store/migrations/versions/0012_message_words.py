"""Message search by one word rule on both databases (issue 14: search folds case alike)

Revision ID: 0012_message_words
Revises: 0011_execution_model_ms

`query` split and folded text by each database's own rules (SQLite FTS5 unicode61 with
diacritics removed, PostgreSQL's `simple` parser lowercasing by locale), so the same query found
different messages on the two. The index now holds the words of sessionscope.search_words:
- SQLite: `message_search` is an FTS5 table of its own holding each message's folded words,
  split by the `ascii` tokenizer at the spaces only; `detail=none`, since every query word is a
  one-word phrase. Its rowid is session_id * 2^32 + seq (store.search_index.sqlite_rowid), so a
  match names its session without a join; the delete trigger deletes by that rowid, and an
  update trigger moves a message's row when its seq moves.
- PostgreSQL: `message_search.document` holds the same words as lexemes (array_to_tsvector),
  and its session index takes the message id as a second column.
Every message is queued for the indexer again (`search_backlog`, one range per session), which
rebuilds the index in Python's words: in the background on a running server, and before any
search, which drains the queue first on SQLite and reads what is still queued on PostgreSQL.
"""

from alembic import op

revision = "0012_message_words"
down_revision = "0011_execution_model_ms"
branch_labels = None
depends_on = None

REQUEUE = ("INSERT INTO search_backlog (session_id, first_seq, last_seq) "
           "SELECT session_id, min(seq), max(seq) FROM messages GROUP BY session_id")


def upgrade() -> None:
    op.execute("DELETE FROM search_backlog")
    op.execute("DELETE FROM search_failed")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS messages_search_ad")
        op.execute("DROP TABLE message_search")
        op.execute("CREATE VIRTUAL TABLE message_search USING fts5(words, detail=none, tokenize='ascii')")
        # old.session_id * 2^32 + old.seq: store.search_index.sqlite_rowid, written out here
        # because a migration keeps what it did even when the code changes.
        op.execute("CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN "
                   "DELETE FROM message_search WHERE rowid = old.session_id * 4294967296 + old.seq; END")
        # A message moved to a later seq (store/batches.py: a batch older than the newest stored
        # messages) takes its index row along, words and all; one still queued has none yet.
        op.execute("CREATE TRIGGER messages_search_au AFTER UPDATE OF seq ON messages WHEN new.seq <> old.seq BEGIN "
                   "INSERT OR REPLACE INTO message_search(rowid, words) SELECT new.session_id * 4294967296 + new.seq, "
                   "words FROM message_search WHERE rowid = old.session_id * 4294967296 + old.seq; "
                   "DELETE FROM message_search WHERE rowid = old.session_id * 4294967296 + old.seq; END")
    else:
        op.execute("TRUNCATE message_search")
        # (session_id, message_id): a session's first matching message, and the next session
        # past one, are each read in index order (snippets, search_index's dense probes).
        op.execute("DROP INDEX ix_message_search_session")
        op.execute("CREATE INDEX ix_message_search_session ON message_search (session_id, message_id)")
    op.execute(REQUEUE)


def downgrade() -> None:
    op.execute("DELETE FROM search_backlog")
    op.execute("DELETE FROM search_failed")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS messages_search_ad")
        op.execute("DROP TRIGGER IF EXISTS messages_search_au")
        op.execute("DROP TABLE message_search")
        op.execute("CREATE VIRTUAL TABLE message_search USING fts5(content, content='messages', "
                   "content_rowid='id', tokenize='unicode61 remove_diacritics 2')")
        op.execute("INSERT INTO message_search(message_search) VALUES ('rebuild')")
        op.execute("CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN "
                   "INSERT INTO message_search(message_search, rowid, content) "
                   "VALUES ('delete', old.id, old.content); END")
        return
    op.execute("TRUNCATE message_search")
    op.execute("DROP INDEX ix_message_search_session")
    op.execute("CREATE INDEX ix_message_search_session ON message_search (session_id)")
    op.execute(REQUEUE)
