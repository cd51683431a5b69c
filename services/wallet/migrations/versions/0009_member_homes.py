"""members' homes (stored value by home region, docs/reports.md): the home the wallet
knows on each member's accounts, the home each entry counted at, the balances moved
when a home changed, and the rollup stored_value_by_home

Entries posted before have home '': they count at the chain until the member's home is
applied (the member service's migration 0013 queues every member's home for the
gateway's relay), which moves the member's balance to their home then. Run
`huiyuan rebuild-reports` once every replica runs this release: it queues every
member's home again (the homes a replica of the member service's release before set
unqueued). Upgrade the wallet before the gateway (docs/deployment.md): a wallet replica
of the release before, still posting after the relay applied a member's home, would post
without it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 22:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"

MEASURES = ["principal_fen", "bonus_fen"]  # as services/wallet/domain/reports.py, frozen here


def upgrade() -> None:
    op.add_column("member_accounts", sa.Column("home_store_path", sa.String(140), nullable=False, server_default=""))
    op.add_column("member_accounts", sa.Column("home_change_id", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("entries", sa.Column("home_store_path", sa.String(140), nullable=False, server_default=""))
    op.create_table(
        "home_moves",
        sa.Column("member_id", sa.String(40), nullable=False),
        sa.Column("change_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("from_path", sa.String(140), nullable=False),
        sa.Column("to_path", sa.String(140), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("bonus_fen", sa.BigInteger(), nullable=False),
        sa.Column("move_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("member_id", "change_id", name=op.f("pk_home_moves")),
    )
    op.create_table(
        "rollup_stored_value_by_home",
        sa.Column("path", sa.String(140), nullable=False),
        sa.Column("parent_path", sa.String(140), nullable=False),
        sa.Column("grain", sa.String(1), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        *(sa.Column(m, sa.BigInteger(), nullable=False, server_default="0") for m in MEASURES),
        sa.PrimaryKeyConstraint("path", "grain", "day", "key"),
    )
    op.create_index(
        "ix_rollup_stored_value_by_home_parent_path_grain_day",
        "rollup_stored_value_by_home",
        ["parent_path", "grain", "day"],
    )


def downgrade() -> None:
    op.drop_index("ix_rollup_stored_value_by_home_parent_path_grain_day", table_name="rollup_stored_value_by_home")
    op.drop_table("rollup_stored_value_by_home")
    op.drop_table("home_moves")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("home_store_path")
    with op.batch_alter_table("member_accounts") as batch:
        batch.drop_column("home_change_id")
        batch.drop_column("home_store_path")
