"""top-up packages name the tenders they apply to

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 18:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    # NULL reads as "none named": the tenders of a till or online. Packages made before
    # this applied to enterprise batches too; no chain's data depends on that yet.
    op.add_column("top_up_packages", sa.Column("tenders", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("top_up_packages") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("tenders")
