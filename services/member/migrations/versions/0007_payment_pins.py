"""payment_pins: members' payment PINs, as slow hashes, and their wrong tries

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "payment_pins",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("pin_hash", sa.String(length=160), nullable=False),
        sa.Column("failed_tries", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], name=op.f("fk_payment_pins_member_id_members")),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_payment_pins")),
    )


def downgrade() -> None:
    op.drop_table("payment_pins")
