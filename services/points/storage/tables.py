"""Points tables (SQLAlchemy Core).

- lots: every grant, with what is left of it, when it becomes spendable and when it
  expires. A lot never goes below zero (CHECK); held points are out of their lots.
- member_points: one row per member, locked by every spend (held and debt totals).
- holds and hold_draws: pending offsets and the lots they drew from.
- movements: the member's history, append-only.
- order_accruals: what each line of each order earned, by which rule (day caps,
  reversals).
- gifts, redemptions, gift_stock_changes: the points mall.
- rules, offset_policies, idempotency_keys.
- rollup_outbox and rollup_<name>: the reports' rollups (storage/rollups.py).
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    text,
)

from huiyuan.database import UtcDateTime, idempotency, new_metadata
from huiyuan.database.rollups import define, define_outbox
from services.points.domain import reports

metadata = new_metadata()
Points = BigInteger

_EXPIRES = text("expire_time IS NOT NULL")  # the lots ix_lots_expire_time holds (below)

lots = Table(
    "lots",
    metadata,
    Column("lot_id", String(40), primary_key=True),
    Column("member_id", String(40), nullable=False),
    Column("source", String(16), nullable=False),
    Column("rule_id", String(40), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("granted_points", Points, nullable=False),
    Column("points_left", Points, nullable=False),
    Column("available_time", UtcDateTime, nullable=False),
    Column("expire_time", UtcDateTime, nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
    CheckConstraint("points_left >= 0 AND points_left <= granted_points", name="left_within_granted"),
    Index("ix_lots_member_id_expire_time", "member_id", "expire_time"),
    # Only the lots that expire: the expiry job and the reminders look for those by
    # date. Lots that never expire are found by member (storage/lots.py,
    # live_lots_where): with them in this index, PostgreSQL read all of the chain's to
    # find one member's.
    Index("ix_lots_expire_time", "expire_time", postgresql_where=_EXPIRES, sqlite_where=_EXPIRES),
)

member_points = Table(
    "member_points",
    metadata,
    Column("member_id", String(40), primary_key=True),
    Column("held_points", Points, nullable=False),
    Column("debt_points", Points, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    CheckConstraint("held_points >= 0 AND debt_points >= 0", name="not_negative"),
)

holds = Table(
    "holds",
    metadata,
    Column("hold_id", String(40), primary_key=True),
    Column("member_id", String(40), nullable=False),
    Column("points", Points, nullable=False),
    Column("captured_points", Points, nullable=False),
    Column("state", String(16), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("expire_time", UtcDateTime, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Index("ix_holds_state_expire_time", "state", "expire_time"),
    Index("ix_holds_order_id", "order_id"),  # a refund's spent points, found by its order
)

hold_draws = Table(
    "hold_draws",
    metadata,
    Column("hold_id", String(40), primary_key=True),
    Column("lot_id", String(40), primary_key=True),
    Column("points", Points, nullable=False),
)

movements = Table(
    "movements",
    metadata,
    Column("movement_id", String(80), primary_key=True),  # time-sortable
    Column("member_id", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("delta_points", Points, nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("memo", String(200), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Index("ix_movements_member_id_movement_id", "member_id", "movement_id"),
)

order_accruals = Table(
    "order_accruals",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("line_id", String(64), primary_key=True),
    Column("member_id", String(40), nullable=False),
    Column("rule_id", String(40), nullable=False),
    Column("points", Points, nullable=False),
    Column("paid_fen", BigInteger, nullable=False),
    Column("business_day", Date, nullable=False),
    Index("ix_order_accruals_member_id_business_day", "member_id", "business_day"),
)

rules = Table(
    "rules",
    metadata,
    Column("rule_id", String(40), primary_key=True),
    Column("kind", String(16), nullable=False),  # BASE or MULTIPLIER
    Column("priority", Integer, nullable=False),
    Column("org_path", String(140), nullable=False),
    Column("body", JSON, nullable=False),  # every field of the rule, as the contract names them
    Column("create_time", UtcDateTime, nullable=False),
    UniqueConstraint("kind", "priority"),
)

offset_policies = Table(
    "offset_policies",
    metadata,
    Column("org_path", String(140), primary_key=True),
    Column("points_per_yuan", Integer, nullable=False),
    Column("max_share_bp", Integer, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
)

idempotency_keys = idempotency.define_table(metadata)

order_reversals = Table(
    "order_reversals",
    metadata,
    Column("reversal_id", String(40), primary_key=True),
    Column("order_id", String(64), nullable=False, index=True),
    Column("member_id", String(40), nullable=False),
    Column("refunded_paid_fen", BigInteger, nullable=False),
    Column("clawed_back_points", Points, nullable=False),
    Column("returned_points", Points, nullable=False),
    Column("new_debt_points", Points, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
)

gifts = Table(
    "gifts",
    metadata,
    Column("gift_id", String(40), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("points", Points, nullable=False),
    Column("stock", BigInteger, nullable=False),
    Column("per_member_limit", Integer, nullable=False),  # 0: no limit
    Column("org_path", String(140), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    CheckConstraint("stock >= 0", name="stock_not_negative"),
)

# Every change of a gift's stock by hand (补货, 报损): who, why, and what was left.
gift_stock_changes = Table(
    "gift_stock_changes",
    metadata,
    Column("change_id", String(40), primary_key=True),
    Column("gift_id", String(40), nullable=False),
    Column("delta", BigInteger, nullable=False),
    Column("stock_after", BigInteger, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("operator_id", String(64), nullable=False),
    Column("org_path", String(140), nullable=False),  # where the operator acted from
    Column("create_time", UtcDateTime, nullable=False),
    Index("ix_gift_stock_changes_gift_id", "gift_id"),
)

redemptions = Table(
    "redemptions",
    metadata,
    Column("redemption_id", String(40), primary_key=True),
    Column("gift_id", String(40), nullable=False),
    Column("member_id", String(40), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("points", Points, nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Index("ix_redemptions_member_id_gift_id", "member_id", "gift_id"),
)

# The reports' rollups (docs/reports.md; what each fact adds: domain/reports.py).
rollup_outbox = define_outbox(metadata)
points_rollup = define(metadata, reports.POINTS, reports.POINTS_MEASURES, running=True, deepest=3)
points_expiring = define(metadata, reports.POINTS_EXPIRING, reports.EXPIRING_MEASURES, deepest=3)
