"""visit_returns.member_id: a return's member (its visit's), so that the nightly jobs read
the returns of a batch's members by their range rather than hash every return at each
batch

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 19:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    # A constant default: PostgreSQL 11+ adds the column without rewriting the table;
    # the rows there are given their visit's member just after.
    op.add_column("visit_returns", sa.Column("member_id", sa.String(length=40), server_default="", nullable=False))
    op.execute(
        "UPDATE visit_returns SET member_id = "
        "(SELECT v.member_id FROM visits v WHERE v.order_id = visit_returns.order_id)"
    )
    op.create_index("ix_visit_returns_member_id", "visit_returns", ["member_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_visit_returns_member_id", table_name="visit_returns")
    with op.batch_alter_table("visit_returns") as batch:
        batch.drop_column("member_id")
