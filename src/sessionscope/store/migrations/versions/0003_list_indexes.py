"""An index for every filter and sort combination of session.list

Revision ID: 0003_list_indexes
Revises: 0002_message_raw
"""

from alembic import op

revision = "0003_list_indexes"
down_revision = "0002_message_raw"
branch_labels = None
depends_on = None

SORT_COLUMNS = ("updated_at", "created_at", "key", "agent", "channel", "message_count", "total_tokens",
                "cost_usd")
NEW_FILTERS = (("agent",), ("channel",), ("tenant", "agent"), ("tenant", "channel"))


def _indexes():
    for filters in NEW_FILTERS:
        for col in SORT_COLUMNS:
            if col not in filters:
                yield "ix_sessions_" + "_".join((*filters, col)), [*filters, col, "id"]


def upgrade() -> None:
    # Replaced by ix_sessions_tenant_agent_updated_at and ix_sessions_tenant_channel_updated_at.
    op.drop_index("ix_sessions_tenant_agent_updated", table_name="sessions")
    op.drop_index("ix_sessions_tenant_channel_updated", table_name="sessions")
    for name, columns in _indexes():
        op.create_index(name, "sessions", columns)


def downgrade() -> None:
    for name, _ in _indexes():
        op.drop_index(name, table_name="sessions")
    op.create_index("ix_sessions_tenant_agent_updated", "sessions", ["tenant", "agent", "updated_at", "id"])
    op.create_index("ix_sessions_tenant_channel_updated", "sessions", ["tenant", "channel", "updated_at", "id"])
