"""top-ups read by store and day (the daily summary's takings)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 19:00:00

"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_index("ix_top_ups_store_path_create_time", "top_ups", ["store_path", "create_time"])
    op.create_index("ix_top_ups_store_path_refund_time", "top_ups", ["store_path", "refund_time"])


def downgrade() -> None:
    op.drop_index("ix_top_ups_store_path_refund_time", table_name="top_ups")
    op.drop_index("ix_top_ups_store_path_create_time", table_name="top_ups")
