"""Alembic environment: the runtime does the work (huiyuan.runtime.migrate)."""

from huiyuan.runtime.migrate import run_env
from services.wallet.app import metadata

run_env(metadata)
