"""the index of lots by expire_time holds only the lots that expire

Lots that never expire (expire_time NULL) are found by member, through
ix_lots_member_id_expire_time. With them in this index, PostgreSQL planned a member's
lots that never expire as a read of all the chain's (services/points/storage/lots.py,
live_lots_where).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 09:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

_EXPIRES = sa.text("expire_time IS NOT NULL")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":  # SQLite cannot rename an index; its one writer waits anyway
        op.drop_index("ix_lots_expire_time", table_name="lots")
        op.create_index("ix_lots_expire_time", "lots", ["expire_time"], unique=False, sqlite_where=_EXPIRES)
        return
    # CONCURRENTLY, outside the migration's transaction: the lots keep taking accruals
    # and spends while a chain's large table is indexed; then the new index takes the
    # old one's name.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_lots_expire_time_new",
            "lots",
            ["expire_time"],
            unique=False,
            postgresql_where=_EXPIRES,
            postgresql_concurrently=True,
        )
        op.drop_index("ix_lots_expire_time", table_name="lots", postgresql_concurrently=True)
    op.execute("ALTER INDEX ix_lots_expire_time_new RENAME TO ix_lots_expire_time")


def downgrade() -> None:
    op.drop_index("ix_lots_expire_time", table_name="lots")
    op.create_index("ix_lots_expire_time", "lots", ["expire_time"], unique=False)
