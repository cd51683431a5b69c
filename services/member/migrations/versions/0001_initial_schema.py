"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 18:08:46.584429

"""

import sqlalchemy as sa
from alembic import op

from huiyuan.database import migrate

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "attribute_definitions",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_attribute_definitions")),
    )
    migrate.create_idempotency_keys()
    op.create_table(
        "org_nodes",
        sa.Column("path", sa.String(length=140), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("parent_path", sa.String(length=140), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["parent_path"], ["org_nodes.path"], name=op.f("fk_org_nodes_parent_path_org_nodes")),
        sa.PrimaryKeyConstraint("path", name=op.f("pk_org_nodes")),
    )
    op.create_table(
        "tiers",
        sa.Column("tier_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("price_rate_bp", sa.Integer(), nullable=False),
        sa.Column("points_multiplier_bp", sa.Integer(), nullable=False),
        sa.Column("benefits", sa.String(length=2000), nullable=False),
        sa.PrimaryKeyConstraint("tier_id", name=op.f("pk_tiers")),
        sa.UniqueConstraint("rank", name=op.f("uq_tiers_rank")),
    )
    op.create_table(
        "card_types",
        sa.Column("card_type_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("org_path", sa.String(length=140), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("form", sa.String(length=16), nullable=False),
        sa.Column("default_tier_id", sa.String(length=40), nullable=True),
        sa.Column("validity_days", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["default_tier_id"], ["tiers.tier_id"], name=op.f("fk_card_types_default_tier_id_tiers")
        ),
        sa.ForeignKeyConstraint(["org_path"], ["org_nodes.path"], name=op.f("fk_card_types_org_path_org_nodes")),
        sa.PrimaryKeyConstraint("card_type_id", name=op.f("pk_card_types")),
    )
    op.create_table(
        "members",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("gender", sa.String(length=16), nullable=False),
        sa.Column("phone", sa.String(length=11), nullable=False),
        sa.Column("birthday", sa.String(length=10), nullable=True),
        sa.Column("anniversary", sa.String(length=10), nullable=True),
        sa.Column("home_store_path", sa.String(length=140), nullable=False),
        sa.Column("marketing_consent", sa.Boolean(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("registered_org_path", sa.String(length=140), nullable=False),
        sa.Column("tier_id", sa.String(length=40), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tier_id"], ["tiers.tier_id"], name=op.f("fk_members_tier_id_tiers")),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_members")),
        sa.UniqueConstraint("phone", name=op.f("uq_members_phone")),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index("ix_members_home_store_path", ["home_store_path"], unique=False)
        batch_op.create_index("ix_members_registered_org_path", ["registered_org_path"], unique=False)
        batch_op.create_index("ix_members_tier_id", ["tier_id"], unique=False)

    op.create_table(
        "cards",
        sa.Column("card_number", sa.String(length=20), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("card_type_id", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("issued_org_path", sa.String(length=140), nullable=False),
        sa.Column("issue_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaces_card_number", sa.String(length=20), nullable=False),
        sa.Column("replaced_by_card_number", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_type_id"], ["card_types.card_type_id"], name=op.f("fk_cards_card_type_id_card_types")
        ),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], name=op.f("fk_cards_member_id_members")),
        sa.PrimaryKeyConstraint("card_number", name=op.f("pk_cards")),
    )
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cards_member_id"), ["member_id"], unique=False)

    op.create_table(
        "tier_changes",
        sa.Column(
            "change_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("from_tier_id", sa.String(length=40), nullable=True),
        sa.Column("to_tier_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.Column("change_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], name=op.f("fk_tier_changes_member_id_members")),
        sa.PrimaryKeyConstraint("change_id", name=op.f("pk_tier_changes")),
    )
    with op.batch_alter_table("tier_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tier_changes_member_id"), ["member_id"], unique=False)

    op.create_table(
        "visit_stats",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("visit_count", sa.BigInteger(), nullable=False),
        sa.Column("total_spend_fen", sa.BigInteger(), nullable=False),
        sa.Column("last_visit_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], name=op.f("fk_visit_stats_member_id_members")),
        sa.PrimaryKeyConstraint("member_id", "store_path", name=op.f("pk_visit_stats")),
    )
    op.create_table(
        "visits",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("store_path", sa.String(length=140), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("visit_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], name=op.f("fk_visits_member_id_members")),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_visits")),
    )
    op.create_table(
        "card_events",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("card_number", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.Column("org_path", sa.String(length=140), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["card_number"], ["cards.card_number"], name=op.f("fk_card_events_card_number_cards")),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_card_events")),
    )
    with op.batch_alter_table("card_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_events_card_number"), ["card_number"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("card_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_card_events_card_number"))

    op.drop_table("card_events")
    op.drop_table("visits")
    op.drop_table("visit_stats")
    with op.batch_alter_table("tier_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tier_changes_member_id"))

    op.drop_table("tier_changes")
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cards_member_id"))

    op.drop_table("cards")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_tier_id")
        batch_op.drop_index("ix_members_registered_org_path")
        batch_op.drop_index("ix_members_home_store_path")

    op.drop_table("members")
    op.drop_table("card_types")
    op.drop_table("tiers")
    op.drop_table("org_nodes")
    op.drop_table("idempotency_keys")
    op.drop_table("attribute_definitions")
