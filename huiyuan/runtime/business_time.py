"""Business time. Storage is UTC; days, weeks and month ends are the chain's local ones.

The services do not hold each store's own zone (the member service's org tree does),
so business days are days in the chain's zone: every store of a mainland chain shares
Asia/Shanghai. HUIYUAN_CHAIN_TIME_ZONE changes it for a chain elsewhere.

Pure conversions: reading the clock is huiyuan/runtime/clock.py's, which domain
packages may not import (.importlinter): the time is passed in.
"""

import os
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

CHAIN_ZONE = ZoneInfo(os.environ.get("HUIYUAN_CHAIN_TIME_ZONE", "Asia/Shanghai"))


def day_start(day: date) -> datetime:
    """The first moment of a business day, as an aware datetime."""
    return datetime.combine(day, time(0), CHAIN_ZONE)


def local(moment: datetime) -> datetime:
    return moment.astimezone(CHAIN_ZONE)
