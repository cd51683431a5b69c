"""home_changes: members' home stores as set, until the gateway has told the wallet
(stored value by home region, docs/reports.md); one for every member there is now

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 22:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.create_table(
        "home_changes",
        sa.Column(
            "change_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("home_store_path", sa.String(length=140), nullable=False),
        sa.Column("change_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("change_id", name=op.f("pk_home_changes")),
        sqlite_autoincrement=True,
    )
    # the homes of the members registered before: the wallet learns them as it learns new ones
    op.execute(
        "INSERT INTO home_changes (member_id, home_store_path, change_time) "
        "SELECT member_id, home_store_path, update_time FROM members ORDER BY member_id"
    )


def downgrade() -> None:
    op.drop_table("home_changes")
