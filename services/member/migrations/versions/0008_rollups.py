"""rollups: the reports' counters of members, visits and tiers, and their outbox; the
cashier who registered a member; the home store a tier change was at; home store moves

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 16:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

ROLLUPS = {  # name -> measures (services/member/storage/tables.py)
    "registrations": ["members"],
    "registrars": ["members"],
    "visitors": ["orders", "spend_fen"],
    "first_visits": ["members"],
    "tiers": ["members"],
    "tier_moves": ["members"],
}


def upgrade() -> None:
    op.add_column("members", sa.Column("cashier_id", sa.String(length=64), server_default="", nullable=False))
    op.add_column(
        "tier_changes", sa.Column("home_store_path", sa.String(length=140), server_default="", nullable=False)
    )
    # the changes before this revision were at the member's home store as it is: no
    # home store moved was kept before it
    op.execute(
        "UPDATE tier_changes SET home_store_path = "
        "(SELECT members.home_store_path FROM members WHERE members.member_id = tier_changes.member_id)"
    )
    op.create_table(
        "home_store_moves",
        sa.Column("move_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("from_path", sa.String(length=140), nullable=False),
        sa.Column("to_path", sa.String(length=140), nullable=False),
        sa.Column("tier_id", sa.String(length=40), nullable=False),
        sa.Column("move_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.member_id"], name=op.f("fk_home_store_moves_member_id_members")
        ),
        sa.PrimaryKeyConstraint("move_id", name=op.f("pk_home_store_moves")),
    )
    op.create_index(op.f("ix_home_store_moves_member_id"), "home_store_moves", ["member_id"], unique=False)
    op.create_index("ix_visits_member_id_visit_time", "visits", ["member_id", "visit_time"], unique=False)
    op.create_table(
        "rollup_outbox",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("contributions", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_rollup_outbox")),
    )
    for name, measures in ROLLUPS.items():
        table = f"rollup_{name}"
        op.create_table(
            table,
            sa.Column("path", sa.String(length=140), nullable=False),
            sa.Column("parent_path", sa.String(length=140), nullable=False),
            sa.Column("grain", sa.String(length=1), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("key", sa.String(length=64), nullable=False),
            *(sa.Column(m, sa.BigInteger(), server_default="0", nullable=False) for m in measures),
            sa.PrimaryKeyConstraint("path", "grain", "day", "key", name=op.f(f"pk_{table}")),
        )
        op.create_index(f"ix_{table}_parent_path_grain_day", table, ["parent_path", "grain", "day"], unique=False)


def downgrade() -> None:
    for name in ROLLUPS:
        op.drop_index(f"ix_rollup_{name}_parent_path_grain_day", table_name=f"rollup_{name}")
        op.drop_table(f"rollup_{name}")
    op.drop_table("rollup_outbox")
    op.drop_index("ix_visits_member_id_visit_time", table_name="visits")
    op.drop_index(op.f("ix_home_store_moves_member_id"), table_name="home_store_moves")
    op.drop_table("home_store_moves")
    with op.batch_alter_table("tier_changes") as batch_op:
        batch_op.drop_column("home_store_path")
    with op.batch_alter_table("members") as batch_op:
        batch_op.drop_column("cashier_id")
