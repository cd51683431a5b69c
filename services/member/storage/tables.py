"""The member service's tables (SQLAlchemy Core): the schema its migrations make, and
the idempotency keys of its mutations. The statements on them are in the modules
beside this one, one per concept."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from huiyuan.database import UtcDateTime, new_metadata
from huiyuan.database.idempotency import define_table
from huiyuan.database.rollups import define, define_outbox

metadata = new_metadata()
idempotency_keys = define_table(metadata)

org_nodes = Table(
    "org_nodes",
    metadata,
    Column("path", String(140), primary_key=True),
    Column("code", String(32), nullable=False),
    Column("name", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("parent_path", String(140), ForeignKey("org_nodes.path"), nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
)

tiers = Table(
    "tiers",
    metadata,
    Column("tier_id", String(40), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("price_rate_bp", Integer, nullable=False),
    Column("points_multiplier_bp", Integer, nullable=False),
    Column("benefits", String(2000), nullable=False),
    Column("upgrade_spend_fen", BigInteger, nullable=False, server_default="0"),
    Column("upgrade_top_up_fen", BigInteger, nullable=False, server_default="0"),
    # the benefits the tier grants, as a plan's (domain/memberships.py Benefit): [{code, kind, ...}]
    Column("entitlements", JSON, nullable=False, server_default="[]"),
    UniqueConstraint("rank"),
)

members = Table(
    "members",
    metadata,
    Column("member_id", String(40), primary_key=True),  # time-sortable: newest = largest
    Column("name", String(64), nullable=False),
    Column("gender", String(16), nullable=False),
    Column("phone", String(11), nullable=False),
    Column("birthday", String(10), nullable=True),  # 'YYYY-MM-DD', '0000-MM-DD' without a year
    Column("anniversary", String(10), nullable=True),
    Column("home_store_path", String(140), nullable=False),
    Column("marketing_consent", Boolean, nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("channel", String(24), nullable=False),
    Column("registered_org_path", String(140), nullable=False),
    Column("tier_id", String(40), ForeignKey("tiers.tier_id"), nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Column("tags", JSON, nullable=False, server_default="[]"),  # read with the member; member_tags finds them
    Column("cashier_id", String(64), nullable=False, server_default=""),  # who registered them at the till
    UniqueConstraint("phone"),
    Index("ix_members_registered_org_path", "registered_org_path"),
    Index("ix_members_home_store_path", "home_store_path"),
    Index("ix_members_tier_id", "tier_id"),
)

# A member's tags once more, a row each, so that a segment selects by tag through an
# index; written only by index_tags() and reindex_tags(), in the transaction that
# writes the members.tags they mirror.
member_tags = Table(
    "member_tags",
    metadata,
    Column("member_id", String(40), ForeignKey("members.member_id"), primary_key=True),
    Column("tag", String(16), primary_key=True),
    Index("ix_member_tags_tag_member_id", "tag", "member_id"),
)

attribute_definitions = Table(
    "attribute_definitions",
    metadata,
    Column("key", String(32), primary_key=True),
    Column("display_name", String(64), nullable=False),
    Column("type", String(16), nullable=False),
    Column("choices", JSON, nullable=False),
    Column("required", Boolean, nullable=False),
)

card_types = Table(
    "card_types",
    metadata,
    Column("card_type_id", String(40), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("org_path", String(140), ForeignKey("org_nodes.path"), nullable=False),
    Column("capabilities", JSON, nullable=False),
    Column("form", String(16), nullable=False),
    Column("default_tier_id", String(40), ForeignKey("tiers.tier_id"), nullable=True),
    Column("validity_days", Integer, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
)

cards = Table(
    "cards",
    metadata,
    Column("card_number", String(20), primary_key=True),
    Column("member_id", String(40), ForeignKey("members.member_id"), nullable=False, index=True),
    Column("card_type_id", String(40), ForeignKey("card_types.card_type_id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("issued_org_path", String(140), nullable=False),
    Column("issue_time", UtcDateTime, nullable=False),
    Column("expire_time", UtcDateTime, nullable=True),
    Column("replaces_card_number", String(20), nullable=False),
    Column("replaced_by_card_number", String(20), nullable=False),
)

card_events = Table(
    "card_events",
    metadata,
    Column("event_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("card_number", String(20), ForeignKey("cards.card_number"), nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("reason", String(256), nullable=False),
    Column("operator_id", String(64), nullable=False),
    Column("org_path", String(140), nullable=False),
    Column("event_time", UtcDateTime, nullable=False),
)

tier_changes = Table(
    "tier_changes",
    metadata,
    Column("change_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("member_id", String(40), ForeignKey("members.member_id"), nullable=False, index=True),
    Column("from_tier_id", String(40), nullable=True),
    Column("to_tier_id", String(40), nullable=False),
    Column("reason", String(256), nullable=False),
    Column("operator_id", String(64), nullable=False),
    Column("change_time", UtcDateTime, nullable=False),
    Column("home_store_path", String(140), nullable=False, server_default=""),  # the member's, at the change
)

# A member's home store changed (UpdateMember), with the tier they had then: what the
# rebuild of the tiers rollup replays (domain/reports.py: home_moved).
home_store_moves = Table(
    "home_store_moves",
    metadata,
    Column("move_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("member_id", String(40), ForeignKey("members.member_id"), nullable=False, index=True),
    Column("from_path", String(140), nullable=False),
    Column("to_path", String(140), nullable=False),
    Column("tier_id", String(40), nullable=False),  # "": none
    Column("move_time", UtcDateTime, nullable=False),
)

home_changes = Table(  # the wallet's pending news of homes: relayed by the gateway, then deleted
    "home_changes",
    metadata,
    # never reused (SQLite's AUTOINCREMENT): the wallet keeps the last id it applied per member
    Column("change_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("member_id", String(40), nullable=False),
    Column("home_store_path", String(140), nullable=False),
    Column("change_time", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,
)

visits = Table(  # one row per order: what makes RecordVisit idempotent by order_id
    "visits",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("member_id", String(40), ForeignKey("members.member_id"), nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("visit_time", UtcDateTime, nullable=False),
    Index("ix_visits_member_id_visit_time", "member_id", "visit_time"),  # a member's first visit
)

visit_returns = Table(  # one row per return: what makes RecordReturn idempotent by return_id
    "visit_returns",
    metadata,
    Column("return_id", String(64), primary_key=True),
    Column("order_id", String(64), ForeignKey("visits.order_id"), nullable=False, index=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("return_time", UtcDateTime, nullable=False),
    # the visit's member (migration 0012): the nightly jobs read a batch's returns by its id range
    Column("member_id", String(40), nullable=False, server_default=""),
    Index("ix_visit_returns_member_id", "member_id"),
)

top_ups = Table(  # one row per top-up at a till: what its principal counts toward the tiers
    "top_ups",
    metadata,
    Column("top_up_id", String(64), primary_key=True),  # the wallet's id: a second call changes nothing
    Column("member_id", String(40), ForeignKey("members.member_id"), nullable=False, index=True),
    Column("store_path", String(140), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("top_up_time", UtcDateTime, nullable=False),
    Column("refund_time", UtcDateTime, nullable=True),  # set when refunded: it counts no more
)

care_contacts = Table(  # 回访记录: one row per contact, never changed
    "care_contacts",
    metadata,
    Column("contact_id", String(40), primary_key=True),  # time-sortable: newest = largest
    Column("member_id", String(40), ForeignKey("members.member_id"), nullable=False, index=True),
    Column("channel", String(16), nullable=False),
    Column("topic", String(16), nullable=False),
    Column("note", String(500), nullable=False),
    Column("operator_id", String(64), nullable=False),
    Column("org_path", String(140), nullable=False),
    Column("contact_time", UtcDateTime, nullable=False),
)

# A member's payment PIN (domain/pins.py): a slow hash, never the PIN, and
# its wrong tries in a row.
payment_pins = Table(
    "payment_pins",
    metadata,
    Column("member_id", String(40), ForeignKey("members.member_id"), primary_key=True),
    Column("pin_hash", String(160), nullable=False),  # 'scrypt$N$r$p$salt$hash'
    Column("failed_tries", Integer, nullable=False),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("update_time", UtcDateTime, nullable=False),
)

visit_stats = Table(
    "visit_stats",
    metadata,
    Column("member_id", String(40), ForeignKey("members.member_id"), primary_key=True),
    Column("store_path", String(140), primary_key=True),
    Column("visit_count", BigInteger, nullable=False),
    Column("total_spend_fen", BigInteger, nullable=False),
    Column("last_visit_time", UtcDateTime, nullable=False),
)

# The reports' rollups (docs/reports.md; what each fact adds: domain/reports.py), and
# the outbox their contributions wait in until the fold (storage/rollups.py).
outbox = define_outbox(metadata)
registrations = define(metadata, "registrations", ["members"], deepest=4)
registrars = define(metadata, "registrars", ["members"], deepest=4)
visitors = define(metadata, "visitors", ["orders", "spend_fen"], deepest=3)
first_visits = define(metadata, "first_visits", ["members"], deepest=3)
tier_counts = define(metadata, "tiers", ["members"], running=True, deepest=3)
tier_moves = define(metadata, "tier_moves", ["members"], deepest=3)

# Paid membership (issue 40, item 2: 付费会员) and its benefits (item 4): the plans HQ
# defines, the terms members buy (domain/memberships.py) and the uses of their quotas.
membership_plans = Table(
    "membership_plans",
    metadata,
    Column("plan_id", String(40), primary_key=True),  # time-sortable: oldest = smallest
    Column("name", String(40), nullable=False),
    Column("price_fen", BigInteger, nullable=False),
    Column("term", String(16), nullable=False),  # MONTH, QUARTER, YEAR
    Column("trial_days", Integer, nullable=False),
    Column("tier_id", String(40), ForeignKey("tiers.tier_id"), nullable=True),
    Column("benefits", JSON, nullable=False),  # [{code, kind, name, quantity}]
    Column("create_time", UtcDateTime, nullable=False),
)

membership_terms = Table(
    "membership_terms",
    metadata,
    Column("term_id", String(40), primary_key=True),  # time-sortable: earliest = smallest
    Column("member_id", String(40), ForeignKey("members.member_id"), nullable=False, index=True),
    Column("plan_id", String(40), ForeignKey("membership_plans.plan_id"), nullable=False),
    Column("source", String(16), nullable=False),  # TILL, ONLINE, TRIAL
    Column("price_fen", BigInteger, nullable=False),
    Column("anchor_day", Date, nullable=False),  # the first day of its run of terms
    Column("start_day", Date, nullable=False),  # business days, the chain's zone
    Column("end_day", Date, nullable=False),  # exclusive: ends at 00:00 of it
    Column("days", Integer, nullable=False),
    # what paid it: 'online:<reference>', 'order:<order_id>:<line_id>', 'trial:<member_id>'
    # (one trial a member): the same payment never buys two terms
    Column("payment_key", String(220), nullable=False, unique=True),
    Column("payment_reference", String(100), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("line_id", String(64), nullable=False),
    Column("store_path", String(140), nullable=False, index=True),
    Column("create_time", UtcDateTime, nullable=False),
    Column("refunded_fen", BigInteger, nullable=False),
    Column("refund_time", UtcDateTime, nullable=True),
    Column("refund_end_day", Date, nullable=True),  # its end after a refund
    Column("refund_reason", String(200), nullable=False),
    Column("refund_operator", String(64), nullable=False),
    # the terms under a node still running after a day (the liability report's unearned
    # revenue, memberships.terms_running_after): the path's prefix and the end, so a
    # store's or a region's report reads its own terms, not the chain's
    Index(
        "ix_membership_terms_store_path_end_day",
        "store_path",
        "end_day",
        postgresql_ops={"store_path": "varchar_pattern_ops"},
    ),
)

benefit_uses = Table(
    "benefit_uses",
    metadata,
    Column("use_id", String(40), primary_key=True),  # time-sortable: newest = largest
    Column("member_id", String(40), ForeignKey("members.member_id"), nullable=False),
    Column("term_id", String(40), ForeignKey("membership_terms.term_id"), nullable=True),  # a plan's use
    Column("plan_id", String(40), nullable=False),  # "" for a tier's use
    Column("source", String(8), nullable=False, server_default="PLAN"),  # PLAN or TIER: whose quota it counts in
    Column("tier_id", String(40), nullable=True),  # the tier of a tier's use
    Column("benefit_code", String(40), nullable=False),
    Column("period_start", Date, nullable=False),  # the member's benefit month
    Column("store_path", String(140), nullable=False),
    Column("use_day", Date, nullable=False),  # business day
    Column("use_time", UtcDateTime, nullable=False),
    Column("undo_time", UtcDateTime, nullable=True),
    Column("operator_id", String(64), nullable=False),
    Index("ix_benefit_uses_member_benefit_period", "member_id", "benefit_code", "period_start"),
    Index("ix_benefit_uses_use_day", "use_day"),
)

benefit_grants = Table(  # coupons and points a plan's benefit makes due, once each (domain Grant)
    "benefit_grants",
    metadata,
    Column(
        "grant_key", String(200), primary_key=True
    ),  # monthly:<member>:<code>:<month> | birthday:<member>:<code>:<year>
    Column("member_id", String(40), ForeignKey("members.member_id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("coupon_template_id", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("due_day", Date, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("issue_time", UtcDateTime, nullable=True),  # null: pending, for the gateway's job
    Index("ix_benefit_grants_pending", "issue_time", "grant_key"),
)

# --- Issue 40, tier programmes and the value score (storage/loyalty.py) ---

# The versions of the tier programme (domain/loyalty.py: Programme), each in force from
# its effective_from business day until the next one's; never changed once written.
tier_programme_versions = Table(
    "tier_programme_versions",
    metadata,
    Column("version_id", String(40), primary_key=True),
    Column("effective_from", Date, nullable=False),
    Column("measure", String(16), nullable=False),
    Column("window", String(16), nullable=False),
    Column("window_days", Integer, nullable=False),
    Column("term_months", Integer, nullable=False),
    Column("grace_days", Integer, nullable=False),
    Column("downgrade_rule", String(16), nullable=False),
    Column("notice_days", Integer, nullable=False),
    Column("rules", JSON, nullable=False),  # [{"tier_id", "upgrade", "keep"}], lowest rank first
    Column("note", String(256), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    UniqueConstraint("effective_from"),
)

# A member's term on their tier (one row per member, written with every move under a
# programme): the last business day it is held before it is re-evaluated, the last
# business day the re-evaluation decided for them, and a tier given by hand they are
# never moved below until floor_end.
member_tier_terms = Table(
    "member_tier_terms",
    metadata,
    Column("member_id", String(40), ForeignKey("members.member_id"), primary_key=True),
    Column("tier_id", String(40), nullable=False),  # "": none
    Column("term_end", Date, nullable=True),  # None: no term (a tier outside the programme)
    Column("evaluated_on", Date, nullable=True),
    Column("floor_tier_id", String(40), nullable=False, server_default=""),
    Column("floor_end", Date, nullable=True),
    Index("ix_member_tier_terms_term_end", "term_end"),
)

# Where a batched job (the re-evaluation of a business day, the value scores of a month)
# got to: the last member id done, so that a run killed half-way is finished by the next.
loyalty_job_runs = Table(
    "loyalty_job_runs",
    metadata,
    Column("job", String(32), primary_key=True),
    Column("run_key", String(16), primary_key=True),  # the business day or the month, ISO
    Column("cursor", String(40), nullable=False),
    Column("done", Boolean, nullable=False),
    Column("counts", JSON, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
)

value_score_weights = Table(  # every setting kept; the latest is in force
    "value_score_weights",
    metadata,
    Column("weights_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("recency_bp", Integer, nullable=False),
    Column("frequency_bp", Integer, nullable=False),
    Column("spend_bp", Integer, nullable=False),
    Column("tenure_bp", Integer, nullable=False),
    Column("engagement_bp", Integer, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
)

# A member's value score per month (domain/value_score.py): what was counted, each
# component's own score and the weights used, so that it explains itself for ever.
value_scores = Table(
    "value_scores",
    metadata,
    Column("member_id", String(40), ForeignKey("members.member_id"), primary_key=True),
    Column("month", Date, primary_key=True),  # its first day
    Column("score", Integer, nullable=False),
    Column("inputs", JSON, nullable=False),  # Inputs: what was counted
    Column("raw", JSON, nullable=False),  # component -> 0..1000
    Column("weights", JSON, nullable=False),  # component -> bp
    Column("compute_time", UtcDateTime, nullable=False),
)

# --- Issue 40, item 5: tags and segments that maintain themselves (domain/segments.py,
# storage/segments.py). A member's automatic tags, apart from the hand-set ones
# (members.tags / member_tags): member_auto_tags has a row per rule and member it
# selects; members.automatic_tags mirrors their tag names for reading with the member
# (written in the transaction that writes the rows).
tag_rules = Table(
    "tag_rules",
    metadata,
    Column("rule_id", String(40), primary_key=True),  # time-sortable: oldest = smallest
    Column("org_path", String(140), nullable=False),
    Column("tag", String(16), nullable=False),
    Column("kind", String(24), nullable=False),  # domain/segments.py RuleKind
    Column("params", JSON, nullable=False),
    Column("segment_id", String(40), nullable=False, server_default=""),  # a segment's own rule
    Column("live", Boolean, nullable=False),  # False: deleted; its rows are being taken off
    Column("revision", Integer, nullable=False, server_default="1"),  # +1 when its segment changes
    Column("member_count", BigInteger, nullable=False, server_default="0"),
    Column("last_run_time", UtcDateTime, nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
    Index("ix_tag_rules_tag", "tag"),
)

member_auto_tags = Table(
    "member_auto_tags",
    metadata,
    Column("rule_id", String(40), ForeignKey("tag_rules.rule_id"), primary_key=True),
    Column("member_id", String(40), ForeignKey("members.member_id"), primary_key=True),
    Column("tag", String(16), nullable=False),
    Index("ix_member_auto_tags_tag_member_id", "tag", "member_id"),
    Index("ix_member_auto_tags_member_id", "member_id"),
)

# One run of a rule on one business day: its cursor (the last member id whose batch
# committed) and what it fixed at its start (the thresholds of ranks and scores), so
# a run killed half-way resumes where it stopped with the same thresholds.
tag_runs = Table(
    "tag_runs",
    metadata,
    Column("rule_id", String(40), ForeignKey("tag_rules.rule_id"), primary_key=True),
    Column("run_day", String(10), primary_key=True),  # 'YYYY-MM-DD', business day
    Column("revision", Integer, primary_key=True),  # the rule's revision (a segment changed)
    Column("cursor", String(40), nullable=False),  # "": none done yet
    Column("fixed", JSON, nullable=False),
    Column("done", Boolean, nullable=False),
    Column("added", BigInteger, nullable=False),
    Column("removed", BigInteger, nullable=False),
)

segments = Table(
    "segments",
    metadata,
    Column("segment_id", String(40), primary_key=True),  # time-sortable
    Column("org_path", String(140), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("criteria", JSON, nullable=False),  # domain/segments.py Criteria, as a dict
    Column("tag", String(16), nullable=False),  # "": not kept as a tag
    Column("rule_id", String(40), nullable=False),  # "": none
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Column("delete_time", UtcDateTime, nullable=True),  # set: deleted, kept to be read
)

members.append_column(Column("automatic_tags", JSON, nullable=False, server_default="[]"))

# A window of visits (a segment's visits or spend over the last N days) read by time
# across all members, with what it sums, without touching the visits' rows.
Index("ix_visits_visit_time_member_id", visits.c.visit_time, visits.c.member_id, visits.c.amount_fen)
