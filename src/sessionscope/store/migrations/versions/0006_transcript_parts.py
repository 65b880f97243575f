"""Parts of a turn beside its text: reasoning, attachments, kind, stop reason; 1-hour cache writes

Revision ID: 0006_transcript_parts
Revises: 0005_search_backlog

Real transcripts carry more than text: the model's reasoning, images, context the client
injected, turns cut short. They get their own nullable columns at the end of `messages`, so
existing rows and the positional row shape stay valid. Executions keep the 1-hour share of
their cache writes, which is priced higher than 5-minute writes, and their reasoning tokens.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_transcript_parts"
down_revision = "0005_search_backlog"
branch_labels = None
depends_on = None

MESSAGE_COLUMNS = (
    ("reasoning", sa.Text()),
    ("reasoning_tokens", sa.Integer()),
    ("kind", sa.String(length=16)),
    ("stop_reason", sa.String(length=32)),
    ("attachments", sa.Text()),
)

EXECUTION_COLUMNS = ("cache_write_1h_tokens", "reasoning_tokens")


def upgrade() -> None:
    for name, type_ in MESSAGE_COLUMNS:
        op.add_column("messages", sa.Column(name, type_, nullable=True))
    for name in EXECUTION_COLUMNS:
        op.add_column("executions", sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        for name in EXECUTION_COLUMNS:
            batch.drop_column(name)
    with op.batch_alter_table("messages") as batch:
        for name, _ in reversed(MESSAGE_COLUMNS):
            batch.drop_column(name)
