"""orders by member: the back office lists a member's orders (ListOrders member_id)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 19:00:00

"""

from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.create_index("ix_orders_member_id_order_id", "orders", ["member_id", "order_id"])


def downgrade() -> None:
    op.drop_index("ix_orders_member_id_order_id", table_name="orders")
