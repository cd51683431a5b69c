"""a lease on every order and refund, so one run of a saga works at a time; an order's refusal as its service said it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    # Nullable columns without a default: PostgreSQL adds them without rewriting the table.
    for table in ("orders", "refunds"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("run_id", sa.String(length=40), nullable=True))
            batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("refusal", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("refusal")
    for table in ("orders", "refunds"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("lease_until")
            batch.drop_column("run_id")
