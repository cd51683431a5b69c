"""Alembic environment: the runtime does the work (huiyuan.database.migrate)."""

from huiyuan.database.migrate import run_env
from services.member.storage.tables import metadata

run_env(metadata)
