"""tiers.entitlements, benefit_uses.source and tier_id: a tier grants benefits as a plan does

Revision ID: 0010
Revises: 0009s
Create Date: 2026-12-07 19:45:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009s"


def upgrade() -> None:
    with op.batch_alter_table("tiers") as batch:
        batch.add_column(sa.Column("entitlements", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("benefit_uses") as batch:
        batch.add_column(sa.Column("source", sa.String(length=8), nullable=False, server_default="PLAN"))
        batch.add_column(sa.Column("tier_id", sa.String(length=40), nullable=True))
        batch.alter_column("term_id", existing_type=sa.String(length=40), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM benefit_uses WHERE source = 'TIER'")
    with op.batch_alter_table("benefit_uses") as batch:
        batch.alter_column("term_id", existing_type=sa.String(length=40), nullable=False)
        batch.drop_column("tier_id")
        batch.drop_column("source")
    with op.batch_alter_table("tiers") as batch:
        batch.drop_column("entitlements")
