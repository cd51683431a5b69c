"""coupons found by their reservation through an index, not a scan of every coupon

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 09:00:00

"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    # CONCURRENTLY, outside the migration's transaction: the table keeps taking writes
    # (checkouts) while a chain's large table is indexed. SQLite ignores it.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_coupons_reservation_id", "coupons", ["reservation_id"], unique=False, postgresql_concurrently=True
        )


def downgrade() -> None:
    op.drop_index("ix_coupons_reservation_id", table_name="coupons")
