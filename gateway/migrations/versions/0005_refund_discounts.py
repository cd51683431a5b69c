"""the discounts a refund gives back to campaigns

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 00:30:00

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("refunds", sa.Column("discounts", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("refunds", "discounts")
