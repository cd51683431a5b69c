"""points holds found by their order through an index: a refund no longer scans every hold

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 09:05:00

"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    # CONCURRENTLY, outside the migration's transaction: the table keeps taking writes
    # (checkouts) while a chain's large table is indexed. SQLite ignores it.
    with op.get_context().autocommit_block():
        op.create_index("ix_holds_order_id", "holds", ["order_id"], unique=False, postgresql_concurrently=True)


def downgrade() -> None:
    op.drop_index("ix_holds_order_id", table_name="holds")
