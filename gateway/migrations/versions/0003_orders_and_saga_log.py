"""orders and saga log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 20:03:45.420615

"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("request", sa.LargeBinary(), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("org_path", sa.String(length=140), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
        sa.UniqueConstraint("key_id", "request_id", name=op.f("uq_orders_key_id_request_id")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_state_update_time", ["state", "update_time"], unique=False)

    op.create_table(
        "saga_log",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("log_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "step", name=op.f("pk_saga_log")),
    )


def downgrade() -> None:
    op.drop_table("saga_log")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_state_update_time")

    op.drop_table("orders")
