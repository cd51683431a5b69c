"""loyalty (issue 40, tiers and value score): tier programme versions, the members'
tier terms, the batched jobs' cursors, value score weights and monthly scores

Revision ID: 0009t
Revises: 0009p
Create Date: 2026-12-07 16:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0009t"
down_revision = "0009p"  # after the paid membership's, made beside it


def upgrade() -> None:
    op.create_table(
        "tier_programme_versions",
        sa.Column("version_id", sa.String(length=40), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("measure", sa.String(length=16), nullable=False),
        sa.Column("window", sa.String(length=16), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("downgrade_rule", sa.String(length=16), nullable=False),
        sa.Column("notice_days", sa.Integer(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=256), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_tier_programme_versions")),
        sa.UniqueConstraint("effective_from", name=op.f("uq_tier_programme_versions_effective_from")),
    )
    op.create_table(
        "member_tier_terms",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("tier_id", sa.String(length=40), nullable=False),
        sa.Column("term_end", sa.Date(), nullable=True),
        sa.Column("evaluated_on", sa.Date(), nullable=True),
        sa.Column("floor_tier_id", sa.String(length=40), server_default="", nullable=False),
        sa.Column("floor_end", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.member_id"], name=op.f("fk_member_tier_terms_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_tier_terms")),
    )
    op.create_index("ix_member_tier_terms_term_end", "member_tier_terms", ["term_end"], unique=False)
    op.create_table(
        "loyalty_job_runs",
        sa.Column("job", sa.String(length=32), nullable=False),
        sa.Column("run_key", sa.String(length=16), nullable=False),
        sa.Column("cursor", sa.String(length=40), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job", "run_key", name=op.f("pk_loyalty_job_runs")),
    )
    op.create_table(
        "value_score_weights",
        sa.Column(
            "weights_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("recency_bp", sa.Integer(), nullable=False),
        sa.Column("frequency_bp", sa.Integer(), nullable=False),
        sa.Column("spend_bp", sa.Integer(), nullable=False),
        sa.Column("tenure_bp", sa.Integer(), nullable=False),
        sa.Column("engagement_bp", sa.Integer(), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("weights_id", name=op.f("pk_value_score_weights")),
    )
    op.create_table(
        "value_scores",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("compute_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], name=op.f("fk_value_scores_member_id_members")),
        sa.PrimaryKeyConstraint("member_id", "month", name=op.f("pk_value_scores")),
    )


def downgrade() -> None:
    op.drop_table("value_scores")
    op.drop_table("value_score_weights")
    op.drop_table("loyalty_job_runs")
    op.drop_index("ix_member_tier_terms_term_end", table_name="member_tier_terms")
    op.drop_table("member_tier_terms")
    op.drop_table("tier_programme_versions")
