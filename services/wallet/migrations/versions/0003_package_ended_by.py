"""top-up packages remember who ended them early

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:55:00

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("top_up_packages", sa.Column("ended_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("top_up_packages") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("ended_by")
