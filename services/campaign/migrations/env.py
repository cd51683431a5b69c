"""Alembic environment: the runtime does the work (huiyuan.runtime.migrate)."""

from huiyuan.runtime.migrate import run_env
from services.campaign.app import metadata

run_env(metadata)
