"""Index message text per inserted batch instead of per row (SQLite)

Revision ID: 0004_message_search_by_batch
Revises: 0003_list_indexes

A row trigger costs about four times the insert itself; store.conversation now adds each
batch to message_search with one INSERT ... SELECT in the same transaction. Deletes keep their
trigger: they are rare and must remove exactly what was indexed.
"""

from alembic import op

revision = "0004_message_search_by_batch"
down_revision = "0003_list_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS messages_search_ai")
        # Merge index segments less eagerly: cheaper commits for small appended batches.
        op.execute("INSERT INTO message_search(message_search, rank) VALUES ('automerge', 8)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("INSERT INTO message_search(message_search, rank) VALUES ('automerge', 4)")
        op.execute("CREATE TRIGGER messages_search_ai AFTER INSERT ON messages BEGIN "
                   "INSERT INTO message_search(rowid, content) VALUES (new.id, new.content); END")
