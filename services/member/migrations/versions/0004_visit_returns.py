"""visit_returns: goods returned from a visit, taken back off the member's spend

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 21:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "visit_returns",
        sa.Column("return_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("return_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["visits.order_id"], name=op.f("fk_visit_returns_order_id_visits")),
        sa.PrimaryKeyConstraint("return_id", name=op.f("pk_visit_returns")),
    )
    op.create_index(op.f("ix_visit_returns_order_id"), "visit_returns", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_visit_returns_order_id"), table_name="visit_returns")
    op.drop_table("visit_returns")
