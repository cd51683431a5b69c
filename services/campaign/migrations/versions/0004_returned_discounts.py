"""discounts given back by refunds

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 00:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.add_column("campaign_uses", sa.Column("returned_fen", sa.BigInteger(), server_default="0", nullable=False))
    op.create_index("ix_reservations_order_id", "reservations", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reservations_order_id", table_name="reservations")
    op.drop_column("campaign_uses", "returned_fen")
