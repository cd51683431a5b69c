"""refunds found by their state through an index: the recovery loop no longer scans every refund

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 09:10:00

"""

from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    # CONCURRENTLY, outside the migration's transaction: the table keeps taking writes
    # (checkouts) while a chain's large table is indexed. SQLite ignores it.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_refunds_state_create_time",
            "refunds",
            ["state", "create_time"],
            unique=False,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    op.drop_index("ix_refunds_state_create_time", table_name="refunds")
