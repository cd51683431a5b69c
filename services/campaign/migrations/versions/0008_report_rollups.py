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
    # What the new columns say of the facts from before, in batches that commit one by
    # one (as 0005 indexes): checkouts go on, and no row stays locked long.
    with op.get_context().autocommit_block():
        _backfill(bind)
    # A member's first redeemed order of a campaign before: their earliest (ids sort by time).
    op.execute("""
        INSERT INTO campaign_members (campaign_id, member_id, reservation_id)
        SELECT campaign_id, member_id, MIN(reservation_id) FROM campaign_uses
        WHERE state = 'CAPTURED' AND own_fen > 0
        GROUP BY campaign_id, member_id
    """)


coupons = sa.table(
    "coupons",
    sa.column("coupon_id"),
    sa.column("template_id"),
    sa.column("issue_path"),
    sa.column("face_fen"),
)
templates = sa.table("coupon_templates", sa.column("template_id"), sa.column("body", sa.JSON))
campaigns = sa.table("campaigns", sa.column("campaign_id"), sa.column("kind"))
uses = sa.table(
    "campaign_uses",
    sa.column("reservation_id"),
    sa.column("campaign_id"),
    sa.column("amount_fen"),
    sa.column("own_fen"),
)
BATCH = 2000


def _backfill(bind: sa.Connection) -> None:
    """Coupons from before: issued at their template's scope (the node that issued them
    was not kept), worth their template's fixed amount (0 for a percentage). Uses from
    before: a COUPONS campaign's discount is its coupons', every other campaign's its
    own. A coupon's discount on its order was not kept: 0."""
    terms = dict(bind.execute(sa.select(templates.c.template_id, templates.c.body)).all())
    after = ""
    while rows := bind.execute(
        sa.select(coupons.c.coupon_id, coupons.c.template_id)
        .where(coupons.c.coupon_id > after)
        .order_by(coupons.c.coupon_id)
        .limit(BATCH)
    ).all():
        by_template: dict[str, list[str]] = {}
        for coupon_id, template_id in rows:
            by_template.setdefault(template_id, []).append(coupon_id)
        for template_id, ids in by_template.items():
            body = terms.get(template_id) or {}
            bind.execute(
                sa.update(coupons)
                .where(coupons.c.coupon_id.in_(ids))
                .values(
                    issue_path=body.get("org_path") or "hq",
                    face_fen=body.get("amount_fen", 0) if body.get("kind") == "FIXED" else 0,
                )
            )
        after = rows[-1].coupon_id
    own = sa.select(campaigns.c.campaign_id).where(campaigns.c.kind != "COUPONS").scalar_subquery()
    after = ""
    while (
        keys := bind.execute(
            sa.select(uses.c.reservation_id)
            .where(uses.c.reservation_id > after)
            .group_by(uses.c.reservation_id)
            .order_by(uses.c.reservation_id)
            .limit(BATCH)
        )
        .scalars()
        .all()
    ):
        bind.execute(
            sa.update(uses)
            .where(uses.c.reservation_id.in_(keys), uses.c.campaign_id.in_(own))
            .values(own_fen=uses.c.amount_fen)
        )
        after = keys[-1]


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
