"""coupons and budgets

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 19:44:50.702051

"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "campaign_stats",
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("discount_fen", sa.BigInteger(), nullable=False),
        sa.Column("reserved_fen", sa.BigInteger(), nullable=False),
        sa.Column("coupons_issued", sa.BigInteger(), nullable=False),
        sa.Column("coupons_redeemed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_stats")),
    )
    op.create_table(
        "campaign_uses",
        sa.Column("reservation_id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("reservation_id", "campaign_id", name=op.f("pk_campaign_uses")),
    )
    with op.batch_alter_table("campaign_uses", schema=None) as batch_op:
        batch_op.create_index("ix_campaign_uses_campaign_id_member_id", ["campaign_id", "member_id"], unique=False)
        batch_op.create_index(
            "ix_campaign_uses_campaign_id_store_path_business_day",
            ["campaign_id", "store_path", "business_day"],
            unique=False,
        )

    op.create_table(
        "coupon_templates",
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("template_id", name=op.f("pk_coupon_templates")),
    )
    op.create_table(
        "coupons",
        sa.Column("coupon_id", sa.String(length=40), nullable=False),
        sa.Column("coupon_code", sa.String(length=16), nullable=False),
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reservation_id", sa.String(length=40), nullable=True),
        sa.Column("valid_from_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issue_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("coupon_id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("coupon_code", name=op.f("uq_coupons_coupon_code")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index("ix_coupons_member_id_coupon_id", ["member_id", "coupon_id"], unique=False)

    op.create_table(
        "reservations",
        sa.Column("reservation_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("reservation_id", name=op.f("pk_reservations")),
    )
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.create_index("ix_reservations_state_expire_time", ["state", "expire_time"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_reservations_state_expire_time")

    op.drop_table("reservations")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index("ix_coupons_member_id_coupon_id")

    op.drop_table("coupons")
    op.drop_table("coupon_templates")
    with op.batch_alter_table("campaign_uses", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_uses_campaign_id_store_path_business_day")
        batch_op.drop_index("ix_campaign_uses_campaign_id_member_id")

    op.drop_table("campaign_uses")
    op.drop_table("campaign_stats")
