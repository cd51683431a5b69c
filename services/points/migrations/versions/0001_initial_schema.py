"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 18:08:46.664177

"""

from alembic import op

from huiyuan.database import migrate

revision = "0001"
down_revision = None


def upgrade() -> None:
    migrate.create_idempotency_keys()


def downgrade() -> None:
    op.drop_table("idempotency_keys")
