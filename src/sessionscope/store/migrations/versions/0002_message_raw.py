"""message_raw: client wire-format copies of messages (OpenAI Agents SDK items)

Revision ID: 0002_message_raw
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = '0002_message_raw'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('message_raw',
    sa.Column('session_id', sa.BigInteger(), nullable=False),
    sa.Column('msg_id', sa.String(length=256), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('session_id', 'msg_id')
    )


def downgrade() -> None:
    op.drop_table('message_raw')
