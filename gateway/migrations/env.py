"""Alembic environment: the runtime does the work (huiyuan.database.migrate)."""

from gateway.app import metadata
from huiyuan.database.migrate import run_env

run_env(metadata)
