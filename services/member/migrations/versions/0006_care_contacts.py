"""care_contacts: the chain's contacts with its members (回访记录)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 23:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "care_contacts",
        sa.Column("contact_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.Column("org_path", sa.String(length=140), nullable=False),
        sa.Column("contact_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], name=op.f("fk_care_contacts_member_id_members")),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_care_contacts")),
    )
    op.create_index(op.f("ix_care_contacts_member_id"), "care_contacts", ["member_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_care_contacts_member_id"), table_name="care_contacts")
    op.drop_table("care_contacts")
