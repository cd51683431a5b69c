"""membership_plans, membership_terms, benefit_uses, benefit_grants: paid membership and its benefits

Revision ID: 0009p
Revises: 0008
Create Date: 2026-12-07 16:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0009p"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "membership_plans",
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("term", sa.String(length=16), nullable=False),
        sa.Column("trial_days", sa.Integer(), nullable=False),
        sa.Column("tier_id", sa.String(length=40), nullable=True),
        sa.Column("benefits", sa.JSON(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tier_id"], ["tiers.tier_id"], name=op.f("fk_membership_plans_tier_id_tiers")),
        sa.PrimaryKeyConstraint("plan_id", name=op.f("pk_membership_plans")),
    )
    op.create_table(
        "membership_terms",
        sa.Column("term_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("anchor_day", sa.Date(), nullable=False),
        sa.Column("start_day", sa.Date(), nullable=False),
        sa.Column("end_day", sa.Date(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("payment_key", sa.String(length=220), nullable=False),
        sa.Column("payment_reference", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.Column("refund_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refund_end_day", sa.Date(), nullable=True),
        sa.Column("refund_reason", sa.String(length=200), nullable=False),
        sa.Column("refund_operator", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.member_id"], name=op.f("fk_membership_terms_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["membership_plans.plan_id"], name=op.f("fk_membership_terms_plan_id_membership_plans")
        ),
        sa.PrimaryKeyConstraint("term_id", name=op.f("pk_membership_terms")),
        sa.UniqueConstraint("payment_key", name=op.f("uq_membership_terms_payment_key")),
    )
    op.create_index(op.f("ix_membership_terms_member_id"), "membership_terms", ["member_id"])
    op.create_index(op.f("ix_membership_terms_store_path"), "membership_terms", ["store_path"])
    op.create_table(
        "benefit_uses",
        sa.Column("use_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("term_id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("benefit_code", sa.String(length=40), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("use_day", sa.Date(), nullable=False),
        sa.Column("use_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undo_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], name=op.f("fk_benefit_uses_member_id_members")),
        sa.ForeignKeyConstraint(
            ["term_id"], ["membership_terms.term_id"], name=op.f("fk_benefit_uses_term_id_membership_terms")
        ),
        sa.PrimaryKeyConstraint("use_id", name=op.f("pk_benefit_uses")),
    )
    op.create_index(
        "ix_benefit_uses_member_benefit_period", "benefit_uses", ["member_id", "benefit_code", "period_start"]
    )
    op.create_index("ix_benefit_uses_use_day", "benefit_uses", ["use_day"])
    op.create_table(
        "benefit_grants",
        sa.Column("grant_key", sa.String(length=200), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("coupon_template_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("due_day", sa.Date(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issue_time", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], name=op.f("fk_benefit_grants_member_id_members")),
        sa.PrimaryKeyConstraint("grant_key", name=op.f("pk_benefit_grants")),
    )
    op.create_index("ix_benefit_grants_pending", "benefit_grants", ["issue_time", "grant_key"])


def downgrade() -> None:
    op.drop_table("benefit_grants")
    op.drop_table("benefit_uses")
    op.drop_table("membership_terms")
    op.drop_table("membership_plans")
