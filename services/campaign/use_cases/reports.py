"""The reports' rollups rebuilt from the raw records (coupons, reservations redeemed,
returns), with the same domain functions the live path records them with
(domain/reports.py)."""

from huiyuan.database import Database
from services.campaign.storage.rollups import ROLLUPS, raw_facts


async def rebuild(database: Database) -> int:
    """Recompute every rollup of the service: how many contributions were counted."""
    return await ROLLUPS.rebuild(database, raw_facts)
