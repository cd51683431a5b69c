"""The campaign service's tables (SQLAlchemy Core). A campaign's configuration is kept
as the JSON body of its fields, beside the columns that queries select on."""

from sqlalchemy import JSON, BigInteger, Column, Date, Index, String, Table

from huiyuan.database import UtcDateTime, idempotency, new_metadata

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
