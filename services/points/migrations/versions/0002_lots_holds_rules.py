"""lots holds rules

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 19:31:26.492113

"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "hold_draws",
        sa.Column("hold_id", sa.String(length=40), nullable=False),
        sa.Column("lot_id", sa.String(length=40), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hold_id", "lot_id", name=op.f("pk_hold_draws")),
    )
    op.create_table(
        "holds",
        sa.Column("hold_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("captured_points", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hold_id", name=op.f("pk_holds")),
    )
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.create_index("ix_holds_state_expire_time", ["state", "expire_time"], unique=False)

    op.create_table(
        "lots",
        sa.Column("lot_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("rule_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("granted_points", sa.BigInteger(), nullable=False),
        sa.Column("points_left", sa.BigInteger(), nullable=False),
        sa.Column("available_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "points_left >= 0 AND points_left <= granted_points", name=op.f("ck_lots_left_within_granted")
        ),
        sa.PrimaryKeyConstraint("lot_id", name=op.f("pk_lots")),
    )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.create_index("ix_lots_expire_time", ["expire_time"], unique=False)
        batch_op.create_index("ix_lots_member_id_expire_time", ["member_id", "expire_time"], unique=False)

    op.create_table(
        "member_points",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("held_points", sa.BigInteger(), nullable=False),
        sa.Column("debt_points", sa.BigInteger(), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("held_points >= 0 AND debt_points >= 0", name=op.f("ck_member_points_not_negative")),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_points")),
    )
    op.create_table(
        "movements",
        sa.Column("movement_id", sa.String(length=80), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("delta_points", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("memo", sa.String(length=200), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("movement_id", name=op.f("pk_movements")),
    )
    with op.batch_alter_table("movements", schema=None) as batch_op:
        batch_op.create_index("ix_movements_member_id_movement_id", ["member_id", "movement_id"], unique=False)

    op.create_table(
        "offset_policies",
        sa.Column("org_path", sa.String(length=140), nullable=False),
        sa.Column("points_per_yuan", sa.Integer(), nullable=False),
        sa.Column("max_share_bp", sa.Integer(), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_path", name=op.f("pk_offset_policies")),
    )
    op.create_table(
        "order_accruals",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("rule_id", sa.String(length=40), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("paid_fen", sa.BigInteger(), nullable=False),
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "line_id", name=op.f("pk_order_accruals")),
    )
    with op.batch_alter_table("order_accruals", schema=None) as batch_op:
        batch_op.create_index("ix_order_accruals_member_id_business_day", ["member_id", "business_day"], unique=False)

    op.create_table(
        "rules",
        sa.Column("rule_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("org_path", sa.String(length=140), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_rules")),
        sa.UniqueConstraint("kind", "priority", name=op.f("uq_rules_kind_priority")),
    )


def downgrade() -> None:
    op.drop_table("rules")
    with op.batch_alter_table("order_accruals", schema=None) as batch_op:
        batch_op.drop_index("ix_order_accruals_member_id_business_day")

    op.drop_table("order_accruals")
    op.drop_table("offset_policies")
    with op.batch_alter_table("movements", schema=None) as batch_op:
        batch_op.drop_index("ix_movements_member_id_movement_id")

    op.drop_table("movements")
    op.drop_table("member_points")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_index("ix_lots_member_id_expire_time")
        batch_op.drop_index("ix_lots_expire_time")

    op.drop_table("lots")
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index("ix_holds_state_expire_time")

    op.drop_table("holds")
    op.drop_table("hold_draws")
