"""tiers: the spend in all stores that reaches a tier (members climb tiers by spend)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 20:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    # 0: reached only by assignment, as every tier was before.
    op.add_column("tiers", sa.Column("upgrade_spend_fen", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("tiers", "upgrade_spend_fen")
