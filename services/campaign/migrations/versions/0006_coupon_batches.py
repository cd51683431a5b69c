"""a bulk issue's batch on each of its coupons: one coupon per member and batch

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 15:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    # A nullable column without a default: no table rewrite on PostgreSQL.
    op.add_column("coupons", sa.Column("batch_id", sa.String(length=64), nullable=True))
    # CONCURRENTLY, outside the migration's transaction, as 0005 does: checkouts go on.
    # Every existing coupon has no batch, and NULLs never conflict.
    with op.get_context().autocommit_block():
        op.create_index(
            "ux_coupons_batch_id_member_id",
            "coupons",
            ["batch_id", "member_id"],
            unique=True,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    op.drop_index("ux_coupons_batch_id_member_id", table_name="coupons")
    op.drop_column("coupons", "batch_id")
