"""The reports' rollups of points (domain/reports.py): their rebuild from the raw records."""

from huiyuan.database import Database
from services.points.storage.rollups import ROLLUPS, raw_facts


async def rebuild(database: Database) -> int:
    """Recompute the rollups from the movements and the lots (storage/rollups.py); how
    many contributions were counted."""
    return await ROLLUPS.rebuild(database, raw_facts)
