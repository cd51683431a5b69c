"""every campaign has its stats row from its creation on, so a redemption adds to it
without waiting for the row (services/campaign/use_cases/budgets.py)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 18:00:00

"""

from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    # The campaigns no reservation or issue has touched yet have no row.
    op.execute("""
        INSERT INTO campaign_stats (campaign_id, orders, discount_fen, reserved_fen, coupons_issued, coupons_redeemed)
        SELECT campaign_id, 0, 0, 0, 0, 0 FROM campaigns
        WHERE campaign_id NOT IN (SELECT campaign_id FROM campaign_stats)
    """)


def downgrade() -> None:
    pass  # the rows are correct either way
