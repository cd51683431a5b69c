"""a member's entries numbered in the order they were posted (the statement's order)

Entries posted before this revision are numbered in the order the statement listed
them until now (post time, then entry id), and each member's last_sequence is the
number of their entries.

One transaction: every entry is rewritten and the unique index built under the table's
lock, so the wallet takes no posting meanwhile, and the code before this revision
cannot post after it (it writes no sequence). Run it with the wallet stopped; on a
large ledger, in a maintenance window.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

entries = sa.table(
    "entries", sa.column("entry_id"), sa.column("member_id"), sa.column("post_time"), sa.column("sequence")
)
member_accounts = sa.table("member_accounts", sa.column("member_id"), sa.column("last_sequence"))


def upgrade() -> None:
    op.add_column("entries", sa.Column("sequence", sa.BigInteger(), nullable=True))
    numbered = sa.select(
        entries.c.entry_id,
        sa.func.row_number()
        .over(partition_by=entries.c.member_id, order_by=(entries.c.post_time, entries.c.entry_id))
        .label("n"),
    ).subquery()
    op.execute(entries.update().where(entries.c.entry_id == numbered.c.entry_id).values(sequence=numbered.c.n))
    with op.batch_alter_table("entries") as batch:  # SQLite makes a column NOT NULL by copying the table
        batch.alter_column("sequence", existing_type=sa.BigInteger(), nullable=False)
    op.create_index("ix_entries_member_id_sequence", "entries", ["member_id", "sequence"], unique=True)
    op.drop_index("ix_entries_member_id_entry_id", table_name="entries")

    op.add_column("member_accounts", sa.Column("last_sequence", sa.BigInteger(), nullable=False, server_default="0"))
    last = (
        sa.select(sa.func.max(entries.c.sequence))
        .where(entries.c.member_id == member_accounts.c.member_id)
        .scalar_subquery()
    )
    op.execute(member_accounts.update().values(last_sequence=sa.func.coalesce(last, 0)))
    with op.batch_alter_table("member_accounts") as batch:  # every row is made with its value: no default
        batch.alter_column("last_sequence", existing_type=sa.BigInteger(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("member_accounts") as batch:
        batch.drop_column("last_sequence")
    op.create_index("ix_entries_member_id_entry_id", "entries", ["member_id", "entry_id"])
    op.drop_index("ix_entries_member_id_sequence", table_name="entries")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("sequence")
