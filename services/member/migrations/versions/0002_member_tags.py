"""members' tags: on the member for reading, a row each for finding members by tag

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 16:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    # A constant default: PostgreSQL 11+ adds the column without rewriting the table.
    op.add_column("members", sa.Column("tags", sa.JSON(), server_default="[]", nullable=False))
    op.create_table(
        "member_tags",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("tag", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], name=op.f("fk_member_tags_member_id_members")),
        sa.PrimaryKeyConstraint("member_id", "tag", name=op.f("pk_member_tags")),
    )
    op.create_index("ix_member_tags_tag_member_id", "member_tags", ["tag", "member_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_member_tags_tag_member_id", table_name="member_tags")
    op.drop_table("member_tags")
    op.drop_column("members", "tags")
