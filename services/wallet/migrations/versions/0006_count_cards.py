"""count cards (计次卡): plans, cards, and each card's history

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 22:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "count_card_plans",
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("org_path", sa.String(length=140), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=False),
        sa.Column("skus", sa.JSON(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", name=op.f("pk_count_card_plans")),
    )
    op.create_table(
        "count_cards",
        sa.Column("card_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("org_path", sa.String(length=140), nullable=False),
        sa.Column("skus", sa.JSON(), nullable=False),
        sa.Column("uses_total", sa.Integer(), nullable=False),
        sa.Column("uses_left", sa.Integer(), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("sold_store_path", sa.String(length=140), nullable=False),
        sa.Column("tender", sa.String(length=16), nullable=False),
        sa.Column("tender_reference", sa.String(length=64), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refund_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "uses_left >= 0 AND uses_left <= uses_total", name=op.f("ck_count_cards_uses_left_in_range")
        ),
        sa.PrimaryKeyConstraint("card_id", name=op.f("pk_count_cards")),
    )
    op.create_index("ix_count_cards_member_id_card_id", "count_cards", ["member_id", "card_id"])
    op.create_table(
        "count_card_entries",
        sa.Column("entry_id", sa.String(length=40), nullable=False),
        sa.Column("card_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("uses_delta", sa.Integer(), nullable=False),
        sa.Column("value_delta_fen", sa.BigInteger(), nullable=False),
        sa.Column("uses_left_after", sa.Integer(), nullable=False),
        sa.Column("value_left_after_fen", sa.BigInteger(), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("sold_store_path", sa.String(length=140), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.Column("memo", sa.String(length=200), nullable=False),
        sa.Column("undoes_entry_id", sa.String(length=40), nullable=True),
        sa.Column("post_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_count_card_entries")),
        sa.UniqueConstraint("undoes_entry_id", name=op.f("uq_count_card_entries_undoes_entry_id")),
    )
    op.create_index("ix_count_card_entries_card_id_entry_id", "count_card_entries", ["card_id", "entry_id"])
    op.create_index("ix_count_card_entries_store_path_post_time", "count_card_entries", ["store_path", "post_time"])


def downgrade() -> None:
    op.drop_index("ix_count_card_entries_store_path_post_time", table_name="count_card_entries")
    op.drop_index("ix_count_card_entries_card_id_entry_id", table_name="count_card_entries")
    op.drop_table("count_card_entries")
    op.drop_index("ix_count_cards_member_id_card_id", table_name="count_cards")
    op.drop_table("count_cards")
    op.drop_table("count_card_plans")
