"""tags and segments that maintain themselves (issue 40, item 5): tag rules, the members
each selects, the runs' cursors, saved segments; the automatic tags on the member; the
visits by time

Revision ID: 0009s
Revises: 0009t
Create Date: 2026-12-07 16:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0009s"
down_revision = "0009t"  # after the tier programmes', made beside them


def upgrade() -> None:
    # A constant default: PostgreSQL 11+ adds the column without rewriting the table.
    op.add_column("members", sa.Column("automatic_tags", sa.JSON(), server_default="[]", nullable=False))
    op.create_index("ix_visits_visit_time_member_id", "visits", ["visit_time", "member_id", "amount_fen"], unique=False)
    op.create_table(
        "tag_rules",
        sa.Column("rule_id", sa.String(length=40), nullable=False),
        sa.Column("org_path", sa.String(length=140), nullable=False),
        sa.Column("tag", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("segment_id", sa.String(length=40), server_default="", nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("member_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_run_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_tag_rules")),
    )
    op.create_index("ix_tag_rules_tag", "tag_rules", ["tag"], unique=False)
    op.create_table(
        "member_auto_tags",
        sa.Column("rule_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("tag", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.member_id"], name=op.f("fk_member_auto_tags_member_id_members")
        ),
        sa.ForeignKeyConstraint(["rule_id"], ["tag_rules.rule_id"], name=op.f("fk_member_auto_tags_rule_id_tag_rules")),
        sa.PrimaryKeyConstraint("rule_id", "member_id", name=op.f("pk_member_auto_tags")),
    )
    op.create_index("ix_member_auto_tags_tag_member_id", "member_auto_tags", ["tag", "member_id"], unique=False)
    op.create_index("ix_member_auto_tags_member_id", "member_auto_tags", ["member_id"], unique=False)
    op.create_table(
        "tag_runs",
        sa.Column("rule_id", sa.String(length=40), nullable=False),
        sa.Column("run_day", sa.String(length=10), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.String(length=40), nullable=False),
        sa.Column("fixed", sa.JSON(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("added", sa.BigInteger(), nullable=False),
        sa.Column("removed", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["rule_id"], ["tag_rules.rule_id"], name=op.f("fk_tag_runs_rule_id_tag_rules")),
        sa.PrimaryKeyConstraint("rule_id", "run_day", "revision", name=op.f("pk_tag_runs")),
    )
    op.create_table(
        "segments",
        sa.Column("segment_id", sa.String(length=40), nullable=False),
        sa.Column("org_path", sa.String(length=140), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("tag", sa.String(length=16), nullable=False),
        sa.Column("rule_id", sa.String(length=40), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delete_time", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("segment_id", name=op.f("pk_segments")),
    )
    op.create_index(op.f("ix_segments_org_path"), "segments", ["org_path"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_segments_org_path"), table_name="segments")
    op.drop_table("segments")
    op.drop_table("tag_runs")
    op.drop_index("ix_member_auto_tags_member_id", table_name="member_auto_tags")
    op.drop_index("ix_member_auto_tags_tag_member_id", table_name="member_auto_tags")
    op.drop_table("member_auto_tags")
    op.drop_index("ix_tag_rules_tag", table_name="tag_rules")
    op.drop_table("tag_rules")
    op.drop_index("ix_visits_visit_time_member_id", table_name="visits")
    op.drop_column("members", "automatic_tags")
