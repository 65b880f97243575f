"""Executions: the model call's own duration (issue 18, an honest waterfall)

Revision ID: 0011_execution_model_ms
Revises: 0010_archive

An agent that times its model call reports `model_ms`; the waterfall shows it as its own row.
Nullable: an execution that did not report it shows the time its layers leave uncovered,
labelled as inferred.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_execution_model_ms"
down_revision = "0010_archive"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("executions", sa.Column("model_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("model_ms")
