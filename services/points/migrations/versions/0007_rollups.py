"""the reports' rollups: their outbox and tables (points, points_expiring)

The tables are created empty. The previous release keeps working on the migrated
schema but records nothing in the outbox: once every replica runs this release, run the
points service's rollup rebuild (services/points/use_cases/reports.py rebuild) once, to
count the facts written before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 16:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

# as huiyuan/database/rollups.py define() makes them, frozen here
ROLLUPS = {
    "points": ["points", "pending_points"],
    "points_expiring": ["points"],
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


def downgrade() -> None:
    for name in ROLLUPS:
        op.drop_index(f"ix_rollup_{name}_parent_path_grain_day", table_name=f"rollup_{name}")
        op.drop_table(f"rollup_{name}")
    op.drop_table("rollup_outbox")
