"""reversals and mall

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 19:34:08.478960

"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "gifts",
        sa.Column("gift_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("stock", sa.BigInteger(), nullable=False),
        sa.Column("per_member_limit", sa.Integer(), nullable=False),
        sa.Column("org_path", sa.String(length=140), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_gifts_stock_not_negative")),
        sa.PrimaryKeyConstraint("gift_id", name=op.f("pk_gifts")),
    )
    op.create_table(
        "order_reversals",
        sa.Column("reversal_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("refunded_paid_fen", sa.BigInteger(), nullable=False),
        sa.Column("clawed_back_points", sa.BigInteger(), nullable=False),
        sa.Column("returned_points", sa.BigInteger(), nullable=False),
        sa.Column("new_debt_points", sa.BigInteger(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("reversal_id", name=op.f("pk_order_reversals")),
    )
    with op.batch_alter_table("order_reversals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_reversals_order_id"), ["order_id"], unique=False)

    op.create_table(
        "redemptions",
        sa.Column("redemption_id", sa.String(length=40), nullable=False),
        sa.Column("gift_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("redemption_id", name=op.f("pk_redemptions")),
    )
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.create_index("ix_redemptions_member_id_gift_id", ["member_id", "gift_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_redemptions_member_id_gift_id")

    op.drop_table("redemptions")
    with op.batch_alter_table("order_reversals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_reversals_order_id"))

    op.drop_table("order_reversals")
    op.drop_table("gifts")
