"""the reports' rollups (campaigns, coupons, coupons_outstanding) and their outbox, and
what the rollups need of each fact: a coupon's issuing node, fixed value and discount,
a reservation's payable amount and redemption time, a use's own discount, a member's
first use of a campaign, and the returns given back (docs/reports.md)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 16:00:00

"""

import sqlalchemy as sa
from alembic import op

from huiyuan.database.rollups import define, define_outbox
from services.campaign.domain.reports import (
    CAMPAIGN_MEASURES,
    CAMPAIGNS,
    COUPON_MEASURES,
    COUPONS,
    COUPONS_OUTSTANDING,
    OUTSTANDING_MEASURES,
)

revision = "0008"
down_revision = "0007"


def _rollup_tables() -> list[sa.Table]:
    """The tables as huiyuan.database.rollups.define() builds them (as of this revision)."""
    metadata = sa.MetaData()
    return [
        define_outbox(metadata),
        define(metadata, CAMPAIGNS, CAMPAIGN_MEASURES, deepest=4).table,
        define(metadata, COUPONS, COUPON_MEASURES, deepest=4).table,
        define(metadata, COUPONS_OUTSTANDING, OUTSTANDING_MEASURES, deepest=3).table,
    ]


def upgrade() -> None:
    # Columns with constant defaults: no table rewrite on PostgreSQL (11+).
    op.add_column("coupons", sa.Column("issue_path", sa.String(length=140), nullable=False, server_default="hq"))
    op.add_column("coupons", sa.Column("face_fen", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("coupons", sa.Column("discount_fen", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("reservations", sa.Column("payable_fen", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("reservations", sa.Column("redeem_time", sa.DateTime(timezone=True), nullable=True))
    op.add_column("campaign_uses", sa.Column("own_fen", sa.BigInteger(), nullable=False, server_default="0"))
    # Uses from before: a COUPONS campaign's are its coupons', every other's its own.
    op.execute("""
        UPDATE campaign_uses SET own_fen = amount_fen
        WHERE campaign_id IN (SELECT campaign_id FROM campaigns WHERE kind <> 'COUPONS')
    """)
    op.create_table(
        "campaign_members",
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("reservation_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "member_id"),
    )
    op.create_index("ix_campaign_members_reservation_id", "campaign_members", ["reservation_id"])
    op.create_table(
        "discount_returns",
        sa.Column("return_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reservation_id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("return_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("return_id"),
    )
    bind = op.get_bind()
    for table in _rollup_tables():
        table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(_rollup_tables()):
        table.drop(bind)
    op.drop_table("discount_returns")
    op.drop_index("ix_campaign_members_reservation_id", table_name="campaign_members")
    op.drop_table("campaign_members")
    op.drop_column("campaign_uses", "own_fen")
    op.drop_column("reservations", "redeem_time")
    op.drop_column("reservations", "payable_fen")
    op.drop_column("coupons", "discount_fen")
    op.drop_column("coupons", "face_fen")
    op.drop_column("coupons", "issue_path")
