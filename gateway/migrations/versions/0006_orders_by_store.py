"""orders carry their store, indexed: a store's orders and its day without a scan

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 08:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

BATCH = 5_000


def upgrade() -> None:
    op.add_column("orders", sa.Column("store_path", sa.String(length=140), nullable=False, server_default=""))
    # Orders written before: their store is the first three parts of the caller's node
    # (huiyuan.runtime.requests.store_of, written out here as a migration must not change).
    orders = sa.table(
        "orders", sa.column("order_id", sa.String), sa.column("org_path", sa.String), sa.column("store_path", sa.String)
    )
    # Outside the migration's transaction: each batch commits by itself and the indexes
    # are built CONCURRENTLY, so a chain's orders table keeps taking checkouts meanwhile.
    with op.get_context().autocommit_block():
        db = op.get_bind()
        after = ""
        while rows := db.execute(
            sa.select(orders.c.order_id, orders.c.org_path)
            .where(orders.c.order_id > after)
            .order_by(orders.c.order_id)
            .limit(BATCH)
        ).all():
            db.execute(
                orders.update()
                .where(orders.c.order_id == sa.bindparam("key"))
                .values(store_path=sa.bindparam("store")),
                [{"key": order_id, "store": "/".join(org_path.split("/")[:3])} for order_id, org_path in rows],
            )
            after = rows[-1].order_id
        op.create_index(
            "ix_orders_store_path_order_id",
            "orders",
            ["store_path", "order_id"],
            unique=False,
            postgresql_concurrently=True,
        )
        op.create_index(
            "ix_orders_store_path_create_time",
            "orders",
            ["store_path", "create_time"],
            unique=False,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_store_path_create_time")
        batch_op.drop_index("ix_orders_store_path_order_id")
        batch_op.drop_column("store_path")
