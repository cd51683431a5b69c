"""ledger

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 19:14:31.773996

"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "batch_rows",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("top_up_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", "row_number", name=op.f("pk_batch_rows")),
    )
    op.create_table(
        "entries",
        sa.Column("entry_id", sa.String(length=80), nullable=False),
        sa.Column("operation_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("principal_delta_fen", sa.BigInteger(), nullable=False),
        sa.Column("bonus_delta_fen", sa.BigInteger(), nullable=False),
        sa.Column("balance_after_fen", sa.BigInteger(), nullable=False),
        sa.Column("counter_account", sa.String(length=160), nullable=False),
        sa.Column("loaded_store_path", sa.String(length=140), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=24), nullable=False),
        sa.Column("memo", sa.String(length=200), nullable=False),
        sa.Column("post_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_entries")),
    )
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index("ix_entries_member_id_entry_id", ["member_id", "entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_operation_id"), ["operation_id"], unique=False)
        batch_op.create_index("ix_entries_post_time", ["post_time"], unique=False)

    op.create_table(
        "hold_draws",
        sa.Column("hold_id", sa.String(length=40), nullable=False),
        sa.Column("lot_id", sa.String(length=40), nullable=False),
        sa.Column("loaded_store_path", sa.String(length=140), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("bonus_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunded_principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunded_bonus_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hold_id", "lot_id", name=op.f("pk_hold_draws")),
    )
    op.create_table(
        "holds",
        sa.Column("hold_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("bonus_fen", sa.BigInteger(), nullable=False),
        sa.Column("captured_principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("captured_bonus_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=24), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hold_id", name=op.f("pk_holds")),
    )
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.create_index("ix_holds_member_id_state", ["member_id", "state"], unique=False)
        batch_op.create_index("ix_holds_state_expire_time", ["state", "expire_time"], unique=False)

    op.create_table(
        "lots",
        sa.Column("lot_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("loaded_store_path", sa.String(length=140), nullable=False),
        sa.Column("principal_left_fen", sa.BigInteger(), nullable=False),
        sa.Column("bonus_left_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("principal_left_fen >= 0 AND bonus_left_fen >= 0", name=op.f("ck_lots_not_negative")),
        sa.PrimaryKeyConstraint("lot_id", name=op.f("pk_lots")),
    )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.create_index("ix_lots_member_id_lot_id", ["member_id", "lot_id"], unique=False)

    op.create_table(
        "member_accounts",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("bonus_fen", sa.BigInteger(), nullable=False),
        sa.Column("held_principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("held_bonus_fen", sa.BigInteger(), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "held_bonus_fen >= 0 AND bonus_fen - held_bonus_fen >= 0",
            name=op.f("ck_member_accounts_bonus_covers_holds"),
        ),
        sa.CheckConstraint(
            "held_principal_fen >= 0 AND principal_fen - held_principal_fen >= 0",
            name=op.f("ck_member_accounts_principal_covers_holds"),
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_accounts")),
    )
    op.create_table(
        "top_up_packages",
        sa.Column("package_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("org_path", sa.String(length=140), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("package_id", name=op.f("pk_top_up_packages")),
    )
    op.create_table(
        "top_ups",
        sa.Column("top_up_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("bonus_fen", sa.BigInteger(), nullable=False),
        sa.Column("tender", sa.String(length=16), nullable=False),
        sa.Column("tender_reference", sa.String(length=64), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("packages", sa.JSON(), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.Column("refund_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("top_up_id", name=op.f("pk_top_ups")),
    )
    with op.batch_alter_table("top_ups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_top_ups_member_id"), ["member_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("top_ups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_top_ups_member_id"))

    op.drop_table("top_ups")
    op.drop_table("top_up_packages")
    op.drop_table("member_accounts")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_index("ix_lots_member_id_lot_id")

    op.drop_table("lots")
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index("ix_holds_state_expire_time")
        batch_op.drop_index("ix_holds_member_id_state")

    op.drop_table("holds")
    op.drop_table("hold_draws")
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index("ix_entries_post_time")
        batch_op.drop_index(batch_op.f("ix_entries_operation_id"))
        batch_op.drop_index("ix_entries_member_id_entry_id")

    op.drop_table("entries")
    op.drop_table("batch_rows")
