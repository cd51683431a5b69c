"""the reports' rollups: their outbox and tables (stored_value, count_cards, top_ups),
and the top-up's cashier and till (the staff report's key and node)

The tables are created empty. The previous release keeps working on the migrated
schema (its top-ups get '' for cashier and till) but records nothing in the outbox: once
every replica runs this release, run the wallet's rollup rebuild
(services/wallet/use_cases/reports.py rebuild) once, to count the facts written before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 16:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

# as huiyuan/database/rollups.py define() makes them, frozen here
ROLLUPS = {
    "stored_value": ["principal_fen", "bonus_fen"],
    "count_cards": ["sold_fen", "used_fen", "refunded_fen", "unearned_fen"],
    "top_ups": ["top_ups", "principal_fen", "bonus_fen", "refunds", "refunded_fen"],
}


def upgrade() -> None:
    op.create_table(
        "rollup_outbox",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("contributions", sa.JSON(), nullable=False),
    )
    for name, measures in ROLLUPS.items():
        op.create_table(
            f"rollup_{name}",
            sa.Column("path", sa.String(140), nullable=False),
            sa.Column("parent_path", sa.String(140), nullable=False),
            sa.Column("grain", sa.String(1), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("key", sa.String(64), nullable=False),
            *(sa.Column(m, sa.BigInteger(), nullable=False, server_default="0") for m in measures),
            sa.PrimaryKeyConstraint("path", "grain", "day", "key"),
        )
        op.create_index(f"ix_rollup_{name}_parent_path_grain_day", f"rollup_{name}", ["parent_path", "grain", "day"])
    op.add_column("top_ups", sa.Column("cashier_id", sa.String(64), nullable=False, server_default=""))
    op.add_column("top_ups", sa.Column("till_path", sa.String(140), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("top_ups") as batch:
        batch.drop_column("till_path")
        batch.drop_column("cashier_id")
    for name in ROLLUPS:
        op.drop_index(f"ix_rollup_{name}_parent_path_grain_day", table_name=f"rollup_{name}")
        op.drop_table(f"rollup_{name}")
    op.drop_table("rollup_outbox")
