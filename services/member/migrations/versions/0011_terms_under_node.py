"""the paid membership terms under a node still running after a day, by an index of
the path's prefix and the end: the liability report's unearned revenue read a store's
terms by a scan of the chain's

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 19:40:00

"""

from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.create_index(
        "ix_membership_terms_store_path_end_day",
        "membership_terms",
        ["store_path", "end_day"],
        unique=False,
        postgresql_ops={"store_path": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_membership_terms_store_path_end_day", table_name="membership_terms")
