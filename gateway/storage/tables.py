"""Gateway tables: credentials, orders and the checkout saga's log, the audit trail."""

from sqlalchemy import JSON, Column, Index, Integer, LargeBinary, String, Table, UniqueConstraint

from gateway.domain.reports import ROLLUPS as REPORT_ROLLUPS
from huiyuan.database import UtcDateTime, idempotency, new_metadata
from huiyuan.database.rollups import Rollups, define, define_outbox

metadata = new_metadata()
# The credentials (gateway/domain/callers.py): a key is kept as its SHA-256 only.
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(40), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("org_path", String(140), nullable=False),
    Column("role", String(24), nullable=False),
    Column("label", String(64), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("revoke_time", UtcDateTime, nullable=True),
    Index("ix_api_keys_org_path", "org_path"),
)
idempotency_keys = idempotency.define_table(metadata)

# The back office's people (gateway/domain/people.py): a password as its argon2 hash,
# the wrong passwords in a row and the lock they led to.
persons = Table(
    "persons",
    metadata,
    Column("person_id", String(40), primary_key=True),
    Column("login", String(32), nullable=False, unique=True),
    Column("name", String(64), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("org_path", String(140), nullable=False),
    Column("role", String(24), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("wrong_passwords", Integer, nullable=False, server_default="0"),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("password_time", UtcDateTime, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("disable_time", UtcDateTime, nullable=True),
    Index("ix_persons_org_path_login", "org_path", "login"),
)
# A person's sessions: the token as its SHA-256 only (256 random bits: nothing to guess).
sessions = Table(
    "sessions",
    metadata,
    Column("session_id", String(40), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("person_id", String(40), nullable=False, index=True),
    Column("create_time", UtcDateTime, nullable=False),
    Column("expire_time", UtcDateTime, nullable=False),
    Column("revoke_time", UtcDateTime, nullable=True),
)

# An order and its checkout saga: the row is written before any service is called.
orders = Table(
    "orders",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("key_id", String(40), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("request", LargeBinary, nullable=False),  # the terminal's CheckoutRequest
    Column("member_id", String(40), nullable=False),
    Column("org_path", String(140), nullable=False),  # the caller's node
    Column("store_path", String(140), nullable=False, server_default=""),  # its store, for the store's lists and days
    Column("state", String(16), nullable=False),
    Column("response", LargeBinary, nullable=True),  # the CheckoutResponse, once PAID or REFUSED
    Column("refusal", LargeBinary, nullable=True),  # once REFUSED: the refusal's google.rpc.Status, as it was heard
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    # The run of the saga that works on it now, and until when (use_cases/leases.py).
    Column("run_id", String(40), nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
    UniqueConstraint("key_id", "request_id"),
    Index("ix_orders_state_update_time", "state", "update_time"),
    Index("ix_orders_store_path_order_id", "store_path", "order_id"),
    Index("ix_orders_store_path_create_time", "store_path", "create_time"),
    Index("ix_orders_member_id_order_id", "member_id", "order_id"),  # a member's orders, newest first
)

# A saga's log, by the saga's id (an order's, or a refund's) and step: what its first
# run decided, which every later run goes on from (use_cases/checkout.py).
saga_log = Table(
    "saga_log",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("step", String(32), primary_key=True),
    Column("payload", LargeBinary, nullable=False),
    Column("log_time", UtcDateTime, nullable=False),
)

# A refund of some lines of an order: its plan (what goes back where) is written, under
# the order's lock, before any service is called; its answer once done.
refunds = Table(
    "refunds",
    metadata,
    Column("refund_id", String(40), primary_key=True),
    Column("order_id", String(40), nullable=False, index=True),
    Column("key_id", String(40), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("lines", JSON, nullable=False),  # {line_id: quantity returned}
    Column("cashier_id", String(64), nullable=False, server_default=""),  # the person at the till
    Column("plan", LargeBinary, nullable=False),  # a RefundResponse with the amounts to move
    # A campaign ReturnDiscountsRequest: each adjustment's share of the returned units
    # (empty when the order had no campaign or coupon discount).
    Column("discounts", LargeBinary, nullable=True),
    Column("state", String(16), nullable=False),  # PENDING, DONE or NEEDS_ATTENTION
    Column("response", LargeBinary, nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),  # when a run last took it on
    Column("run_id", String(40), nullable=True),  # as the order's (use_cases/leases.py)
    Column("lease_until", UtcDateTime, nullable=True),
    UniqueConstraint("key_id", "request_id"),
    Index("ix_refunds_state_update_time", "state", "update_time"),  # the recovery loop's unfinished refunds
)

# Who changed what through the gateway (use_cases/audit.py): an entry per change that
# succeeded, once per key, call and request_id.
MAX_TARGET_ID = 140
audit_entries = Table(
    "audit_entries",
    metadata,
    Column("entry_id", String(40), primary_key=True),  # time-sortable: newest = largest
    Column("entry_time", UtcDateTime, nullable=False),
    Column("key_id", String(40), nullable=False),
    Column("role", String(24), nullable=False),
    Column("org_path", String(140), nullable=False),  # the key's node
    Column("operator_id", String(64), nullable=False),
    Column("method", String(128), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("target_id", String(MAX_TARGET_ID), nullable=False),
    Column("target_path", String(140), nullable=False),
    Column("change", JSON, nullable=False),  # the request, without its secrets (use_cases/audit.py)
    UniqueConstraint("key_id", "method", "request_id"),
    Index("ix_audit_entries_target_path_entry_id", "target_path", "entry_id"),
    Index("ix_audit_entries_org_path_entry_id", "org_path", "entry_id"),
    Index("ix_audit_entries_target_id", "target_id"),
)

# The reports' rollups of the sales (gateway/domain/reports.py says what each counts) and
# the outbox that feeds them (huiyuan/database/rollups.py).
rollup_outbox = define_outbox(metadata)
ROLLUPS = Rollups(
    rollup_outbox,
    *(define(metadata, name, measures, deepest=deepest) for name, (measures, deepest) in REPORT_ROLLUPS.items()),
)
