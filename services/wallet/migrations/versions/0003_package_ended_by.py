"""top-up packages remember who ended them early

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:55:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("top_up_packages", sa.Column("ended_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("top_up_packages") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("ended_by")
