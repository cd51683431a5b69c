"""The campaign service's tables (SQLAlchemy Core). A campaign's configuration is kept
as the JSON body of its fields, beside the columns that queries select on."""

from sqlalchemy import JSON, BigInteger, Column, Date, Index, Integer, String, Table

from huiyuan.database import UtcDateTime, idempotency, new_metadata
from huiyuan.database.rollups import define, define_outbox
from services.campaign.domain.reports import (
    CAMPAIGN_MEASURES,
    CAMPAIGNS,
    COUPON_MEASURES,
    COUPONS,
    COUPONS_OUTSTANDING,
    OUTSTANDING_MEASURES,
)

metadata = new_metadata()

campaigns = Table(
    "campaigns",
    metadata,
    Column("campaign_id", String(40), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("org_path", String(140), nullable=False),
    Column("exclusive_group", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Index("ix_campaigns_status", "status"),
    Index("ix_campaigns_exclusive_group", "exclusive_group"),
)

idempotency_keys = idempotency.define_table(metadata)

coupon_templates = Table(
    "coupon_templates",
    metadata,
    Column("template_id", String(40), primary_key=True),
    Column("campaign_id", String(40), nullable=False),  # "" when no budget backs it
    Column("body", JSON, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
)

coupons = Table(
    "coupons",
    metadata,
    Column("coupon_id", String(40), primary_key=True),  # time-sortable, for listing
    Column("coupon_code", String(16), nullable=False, unique=True),
    Column("template_id", String(40), nullable=False),
    Column("member_id", String(40), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reservation_id", String(40), nullable=True),
    Column("valid_from_time", UtcDateTime, nullable=False),
    Column("valid_until_time", UtcDateTime, nullable=False),
    Column("issue_time", UtcDateTime, nullable=False),
    Column("batch_id", String(64), nullable=True),  # a bulk issue's: one coupon per member and batch
    Column("issue_path", String(140), nullable=False, server_default="hq"),  # the node that issued it
    Column("face_fen", BigInteger, nullable=False, server_default="0"),  # a FIXED template's amount, else 0
    Column("discount_fen", BigInteger, nullable=False, server_default="0"),  # off the order reserving it
    Index("ix_coupons_member_id_coupon_id", "member_id", "coupon_id"),
    Index("ux_coupons_batch_id_member_id", "batch_id", "member_id", unique=True),
    Index("ix_coupons_reservation_id", "reservation_id"),  # a redemption's or release's coupons
)

reservations = Table(
    "reservations",
    metadata,
    Column("reservation_id", String(40), primary_key=True),
    Column("member_id", String(40), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("state", String(16), nullable=False),  # PENDING, CAPTURED (redeemed), RELEASED, EXPIRED
    Column("expire_time", UtcDateTime, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("payable_fen", BigInteger, nullable=False, server_default="0"),  # the order's, after its discounts
    Column("redeem_time", UtcDateTime, nullable=True),  # when CAPTURED
    Index("ix_reservations_state_expire_time", "state", "expire_time"),
    Index("ix_reservations_order_id", "order_id"),
)

# One row per campaign discount an order reserved: what budgets and limits count.
campaign_uses = Table(
    "campaign_uses",
    metadata,
    Column("reservation_id", String(40), primary_key=True),
    Column("campaign_id", String(40), primary_key=True),
    Column("member_id", String(40), nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("business_day", Date, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("returned_fen", BigInteger, nullable=False, server_default="0"),  # given back by refunds
    Column("own_fen", BigInteger, nullable=False, server_default="0"),  # of amount_fen, the campaign's own adjustments
    Column("state", String(16), nullable=False),  # the reservation's
    Index("ix_campaign_uses_campaign_id_member_id", "campaign_id", "member_id"),
    Index("ix_campaign_uses_campaign_id_store_path_business_day", "campaign_id", "store_path", "business_day"),
)

# Live stats, updated in the redemption's own transaction; the row is also the lock
# that makes a campaign's budget and limits hold under concurrency.
campaign_stats = Table(
    "campaign_stats",
    metadata,
    Column("campaign_id", String(40), primary_key=True),
    Column("orders", BigInteger, nullable=False),
    Column("discount_fen", BigInteger, nullable=False),
    Column("reserved_fen", BigInteger, nullable=False),
    Column("coupons_issued", BigInteger, nullable=False),
    Column("coupons_redeemed", BigInteger, nullable=False),
)

# A member's first redeemed order a campaign priced: the unique key settles which,
# however many redemptions run at once (the reports' `members`).
campaign_members = Table(
    "campaign_members",
    metadata,
    Column("campaign_id", String(40), primary_key=True),
    Column("member_id", String(40), primary_key=True),
    Column("reservation_id", String(40), nullable=False),
    Index("ix_campaign_members_reservation_id", "reservation_id"),
)

# One row per campaign and return (ReturnDiscounts): its own discount given back, when.
discount_returns = Table(
    "discount_returns",
    metadata,
    Column("return_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("reservation_id", String(40), nullable=False),
    Column("campaign_id", String(40), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("return_time", UtcDateTime, nullable=False),
)

# The reports' rollups (storage/rollups.py, domain/reports.py) and their outbox.
outbox = define_outbox(metadata)
campaigns_rollup = define(metadata, CAMPAIGNS, CAMPAIGN_MEASURES, deepest=4)
coupons_rollup = define(metadata, COUPONS, COUPON_MEASURES, deepest=4)
coupons_outstanding_rollup = define(metadata, COUPONS_OUTSTANDING, OUTSTANDING_MEASURES, running=False, deepest=3)
