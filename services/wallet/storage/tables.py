"""The wallet's tables (SQLAlchemy Core); the statements on them are in the storage
module of each concept.

- member_accounts: the posted and pending totals of a member's principal and bonus
  accounts, one row per member so that one row lock covers a spend. CHECK constraints
  repeat the ledger invariant: no account below zero, pending included.
- entries: the ledger, append-only. Each entry moves principal and/or bonus between
  the member's accounts and one system account (counter_account), so the sum over all
  accounts is zero by construction. A member's entries are numbered 1, 2, ... in the
  order they were posted (`sequence`, the next after member_accounts.last_sequence,
  under its row lock): the entries of one batch are written together, so neither a
  database sequence nor the post time says which came first. System
  accounts keep no row of their own: their totals are sums over entries, so a busy
  store's till never becomes a lock that every checkout waits on.
- home_moves: balances moved when a member's home changed (stored value by home).
- lots: what each top-up loaded and where, and how much of it is left.
- holds and hold_draws: pending spends, and the lots each capture drew from.
- top_ups, top_up_packages, batch_rows, idempotency_keys.
- count_card_plans, count_cards, count_card_entries: count cards (计次卡).
- rollup_outbox and rollup_<name>: the reports' rollups (storage/rollups.py).
"""

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, Integer, String, Table

from huiyuan.database import UtcDateTime, idempotency, new_metadata
from huiyuan.database.rollups import define, define_outbox
from services.wallet.domain import reports

metadata = new_metadata()
Money = BigInteger

member_accounts = Table(
    "member_accounts",
    metadata,
    Column("member_id", String(40), primary_key=True),
    Column("principal_fen", Money, nullable=False),
    Column("bonus_fen", Money, nullable=False),
    Column("held_principal_fen", Money, nullable=False),
    Column("held_bonus_fen", Money, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Column("last_sequence", BigInteger, nullable=False),  # of the member's last entry (domain/accounts.py)
    Column("home_store_path", String(140), nullable=False, server_default=""),  # "": not known yet
    Column("home_change_id", BigInteger, nullable=False, server_default="0"),  # the member service's, applied
    CheckConstraint(
        "held_principal_fen >= 0 AND principal_fen - held_principal_fen >= 0", name="principal_covers_holds"
    ),
    CheckConstraint("held_bonus_fen >= 0 AND bonus_fen - held_bonus_fen >= 0", name="bonus_covers_holds"),
)

entries = Table(
    "entries",
    metadata,
    Column("entry_id", String(80), primary_key=True),  # <operation id>:<nnnn>, chosen before writing
    Column("operation_id", String(40), nullable=False, index=True),
    Column("member_id", String(40), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("principal_delta_fen", Money, nullable=False),
    Column("bonus_delta_fen", Money, nullable=False),
    Column("balance_after_fen", Money, nullable=False),
    Column("counter_account", String(160), nullable=False),
    Column("loaded_store_path", String(140), nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("operator_id", String(64), nullable=False),
    Column("policy", String(24), nullable=False),
    Column("memo", String(200), nullable=False),
    Column("post_time", UtcDateTime, nullable=False),
    Column("sequence", BigInteger, nullable=False),  # 1, 2, ... in the order the member's entries were posted
    Column("home_store_path", String(140), nullable=False, server_default=""),  # the member's, as known when posted
    Index("ix_entries_member_id_sequence", "member_id", "sequence", unique=True),
    Index("ix_entries_post_time", "post_time"),
)

lots = Table(
    "lots",
    metadata,
    Column("lot_id", String(40), primary_key=True),  # time-sortable: oldest = smallest
    Column("member_id", String(40), nullable=False),
    Column("loaded_store_path", String(140), nullable=False),
    Column("principal_left_fen", Money, nullable=False),
    Column("bonus_left_fen", Money, nullable=False),
    CheckConstraint("principal_left_fen >= 0 AND bonus_left_fen >= 0", name="not_negative"),
    Index("ix_lots_member_id_lot_id", "member_id", "lot_id"),
)

holds = Table(
    "holds",
    metadata,
    Column("hold_id", String(40), primary_key=True),
    Column("member_id", String(40), nullable=False),
    Column("amount_fen", Money, nullable=False),
    Column("principal_fen", Money, nullable=False),  # the split placed as pending
    Column("bonus_fen", Money, nullable=False),
    Column("captured_principal_fen", Money, nullable=False),
    Column("captured_bonus_fen", Money, nullable=False),
    Column("refunded_fen", Money, nullable=False),
    Column("state", String(16), nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("policy", String(24), nullable=False),
    Column("expire_time", UtcDateTime, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Index("ix_holds_state_expire_time", "state", "expire_time"),
    Index("ix_holds_member_id_state", "member_id", "state"),
)

hold_draws = Table(
    "hold_draws",
    metadata,
    Column("hold_id", String(40), primary_key=True),
    Column("lot_id", String(40), primary_key=True),
    Column("loaded_store_path", String(140), nullable=False),
    Column("principal_fen", Money, nullable=False),
    Column("bonus_fen", Money, nullable=False),
    Column("refunded_principal_fen", Money, nullable=False),
    Column("refunded_bonus_fen", Money, nullable=False),
)

top_ups = Table(
    "top_ups",
    metadata,
    Column("top_up_id", String(40), primary_key=True),
    Column("member_id", String(40), nullable=False, index=True),
    Column("principal_fen", Money, nullable=False),
    Column("bonus_fen", Money, nullable=False),
    Column("tender", String(16), nullable=False),
    Column("tender_reference", String(64), nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("packages", JSON, nullable=False),  # [{"package_id", "name", "bonus_fen"}]
    Column("operator_id", String(64), nullable=False),
    Column("refund_time", UtcDateTime, nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
    Column("cashier_id", String(64), nullable=False, server_default=""),  # the staff report's key
    Column("till_path", String(140), nullable=False, server_default=""),  # "": the till is not known
    Index("ix_top_ups_store_path_create_time", "store_path", "create_time"),  # a store's day
    Index("ix_top_ups_store_path_refund_time", "store_path", "refund_time"),
)

top_up_packages = Table(
    "top_up_packages",
    metadata,
    Column("package_id", String(40), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("org_path", String(140), nullable=False),
    Column("steps", JSON, nullable=False),  # [[threshold_fen, bonus_fen], ...]
    Column("start_time", UtcDateTime, nullable=True),
    Column("end_time", UtcDateTime, nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
    Column("ended_by", String(64), nullable=True),  # who ended it early (EndTopUpPackage)
    Column("tenders", JSON, nullable=True),  # ["CASH", ...]; NULL or []: domain/packages.py COUNTER_TENDERS
)

batch_rows = Table(
    "batch_rows",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("row_number", Integer, primary_key=True),
    Column("member_id", String(40), nullable=False),
    Column("amount_fen", Money, nullable=False),
    Column("top_up_id", String(40), nullable=False),
)

# Count cards (计次卡, domain/count_cards.py): the plans on sale, the
# cards sold (one row each, locked by every change to it), and each card's immutable
# history. An undo names the use it gives back, once (a unique column).
count_card_plans = Table(
    "count_card_plans",
    metadata,
    Column("plan_id", String(40), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("org_path", String(140), nullable=False),
    Column("uses", Integer, nullable=False),
    Column("price_fen", Money, nullable=False),
    Column("valid_days", Integer, nullable=False),
    Column("skus", JSON, nullable=False),
    Column("start_time", UtcDateTime, nullable=True),
    Column("end_time", UtcDateTime, nullable=True),
    Column("ended_by", String(64), nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
)

count_cards = Table(
    "count_cards",
    metadata,
    Column("card_id", String(40), primary_key=True),
    Column("member_id", String(40), nullable=False),
    Column("plan_id", String(40), nullable=False),
    Column("name", String(64), nullable=False),
    Column("org_path", String(140), nullable=False),
    Column("skus", JSON, nullable=False),
    Column("uses_total", Integer, nullable=False),
    Column("uses_left", Integer, nullable=False),
    Column("price_fen", Money, nullable=False),
    Column("sold_store_path", String(140), nullable=False),
    Column("tender", String(16), nullable=False),
    Column("tender_reference", String(64), nullable=False),
    Column("operator_id", String(64), nullable=False),
    Column("expire_time", UtcDateTime, nullable=True),
    Column("refund_time", UtcDateTime, nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
    CheckConstraint("uses_left >= 0 AND uses_left <= uses_total", name="uses_left_in_range"),
    Index("ix_count_cards_member_id_card_id", "member_id", "card_id"),
)

count_card_entries = Table(
    "count_card_entries",
    metadata,
    Column("entry_id", String(40), primary_key=True),
    Column("card_id", String(40), nullable=False),
    Column("member_id", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("uses_delta", Integer, nullable=False),
    Column("value_delta_fen", Money, nullable=False),
    Column("uses_left_after", Integer, nullable=False),
    Column("value_left_after_fen", Money, nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("sold_store_path", String(140), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("operator_id", String(64), nullable=False),
    Column("memo", String(200), nullable=False),
    Column("undoes_entry_id", String(40), nullable=True, unique=True),
    Column("post_time", UtcDateTime, nullable=False),
    Index("ix_count_card_entries_card_id_entry_id", "card_id", "entry_id"),
    Index("ix_count_card_entries_store_path_post_time", "store_path", "post_time"),
)

# A member's posted balance moved from one home to another when the wallet learnt of the
# change (domain/homes.py): with the entries' homes, what stored_value_by_home is rebuilt from.
home_moves = Table(
    "home_moves",
    metadata,
    Column("member_id", String(40), primary_key=True),
    Column("change_id", BigInteger, primary_key=True, autoincrement=False),  # the member service's
    Column("from_path", String(140), nullable=False),  # "": not known before
    Column("to_path", String(140), nullable=False),
    Column("principal_fen", Money, nullable=False),
    Column("bonus_fen", Money, nullable=False),
    Column("move_time", UtcDateTime, nullable=False),
)

idempotency_keys = idempotency.define_table(metadata)

# The reports' rollups (docs/reports.md; what each fact adds: domain/reports.py).
rollup_outbox = define_outbox(metadata)
stored_value = define(metadata, reports.STORED_VALUE, reports.STORED_VALUE_MEASURES, running=True, deepest=3)
stored_value_by_home = define(
    metadata, reports.STORED_VALUE_BY_HOME, reports.STORED_VALUE_MEASURES, running=True, deepest=3
)
count_card_value = define(metadata, reports.COUNT_CARDS, reports.COUNT_CARD_MEASURES, running=True, deepest=3)
top_up_takings = define(metadata, reports.TOP_UPS, reports.TOP_UP_MEASURES, deepest=4)
