"""every change of a gift's stock by hand, with who and why

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "gift_stock_changes",
        sa.Column("change_id", sa.String(length=40), nullable=False),
        sa.Column("gift_id", sa.String(length=40), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("stock_after", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.Column("org_path", sa.String(length=140), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("change_id", name=op.f("pk_gift_stock_changes")),
    )
    op.create_index("ix_gift_stock_changes_gift_id", "gift_stock_changes", ["gift_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_gift_stock_changes_gift_id", table_name="gift_stock_changes")
    op.drop_table("gift_stock_changes")
