"""Campaign tables (SQLAlchemy Core). A campaign's configuration is kept as the JSON
body of its fields, beside the columns that queries select on."""

from sqlalchemy import JSON, Column, Index, String, Table

from huiyuan.runtime import idempotency
from huiyuan.runtime.db import UtcDateTime, new_metadata

metadata = new_metadata()

campaigns = Table(
    "campaigns", metadata,
    Column("campaign_id", String(40), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("org_path", String(140), nullable=False),
    Column("exclusive_group", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Index("ix_campaigns_status", "status"),
    Index("ix_campaigns_exclusive_group", "exclusive_group"),
)

idempotency_keys = idempotency.define_table(metadata)
