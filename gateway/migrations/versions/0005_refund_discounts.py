"""the discounts a refund gives back to campaigns

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 00:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column("refunds", sa.Column("discounts", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("refunds", "discounts")
