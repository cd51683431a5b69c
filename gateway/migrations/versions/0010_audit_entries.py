"""audit_entries: who changed what through the gateway

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 12:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("entry_id", sa.String(length=40), nullable=False),
        sa.Column("entry_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("org_path", sa.String(length=140), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=128), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.String(length=140), nullable=False),
        sa.Column("target_path", sa.String(length=140), nullable=False),
        sa.Column("change", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_audit_entries")),
        sa.UniqueConstraint("key_id", "method", "request_id", name=op.f("uq_audit_entries_key_id_method_request_id")),
    )
    op.create_index("ix_audit_entries_target_path_entry_id", "audit_entries", ["target_path", "entry_id"])
    op.create_index("ix_audit_entries_org_path_entry_id", "audit_entries", ["org_path", "entry_id"])
    op.create_index("ix_audit_entries_target_id", "audit_entries", ["target_id"])


def downgrade() -> None:
    op.drop_table("audit_entries")
