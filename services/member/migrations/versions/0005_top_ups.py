"""tiers climbed by top-ups: a tier's upgrade_top_up_fen, and the top_ups that count

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 22:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    # 0: not reached by top-ups, as no tier was before.
    op.add_column("tiers", sa.Column("upgrade_top_up_fen", sa.BigInteger(), server_default="0", nullable=False))
    op.create_table(
        "top_ups",
        sa.Column("top_up_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("top_up_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refund_time", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], name=op.f("fk_top_ups_member_id_members")),
        sa.PrimaryKeyConstraint("top_up_id", name=op.f("pk_top_ups")),
    )
    op.create_index(op.f("ix_top_ups_member_id"), "top_ups", ["member_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_top_ups_member_id"), table_name="top_ups")
    op.drop_table("top_ups")
    op.drop_column("tiers", "upgrade_top_up_fen")
