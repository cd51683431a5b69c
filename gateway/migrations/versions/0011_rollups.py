"""the reports' rollups of the sales and their outbox; a refund's cashier

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 16:00:00

"""

import sqlalchemy as sa
from alembic import op

from huiyuan.database.migrate import create_rollup, create_rollup_outbox

revision = "0011"
down_revision = "0010"

ROLLUPS = {
    "sales": [
        "orders",
        "units",
        "gross_fen",
        "member_price_fen",
        "campaign_fen",
        "coupon_fen",
        "net_fen",
        "points_offset_fen",
        "stored_value_fen",
        "refunds",
        "refunded_units",
        "refunded_fen",
    ],
    "tenders": ["paid_fen", "refunded_fen"],
    "hours": ["orders", "net_fen"],
    "categories": ["units", "net_fen", "refunded_units", "refunded_fen"],
    "cashiers": ["orders", "net_fen", "refunds", "refunded_fen"],
    "tier_sales": ["orders", "net_fen", "refunded_fen"],
}


def upgrade() -> None:
    create_rollup_outbox()
    for name, measures in ROLLUPS.items():
        create_rollup(name, measures)
    op.add_column("refunds", sa.Column("cashier_id", sa.String(length=64), server_default="", nullable=False))


def downgrade() -> None:
    op.drop_column("refunds", "cashier_id")
    for name in ROLLUPS:
        op.drop_table(f"rollup_{name}")
    op.drop_table("rollup_outbox")
