"""What the points service's facts add to the reports' rollups (docs/reports.md,
huiyuan/runtime/rollups.py). The live path records these with each fact, in its
transaction; the rebuild (storage/rollups.py) recomputes them from the raw rows with
these same functions.

- points (running, to stores): each movement's signed points, at the store where it
  happened (a movement with no store, such as an order's reversal, at the chain, "hq"),
  keyed by its kind. As of a day, the sum is the points members hold: what is left in
  their lots, plus what holds keep, less their debt. pending_points is the part not
  spendable yet (a grant's return window): + on the grant's day, - on the day its lot
  becomes spendable or expires, whichever comes first, at the store that earned it.
- points_expiring (by day, not running, to stores): what is left in each lot, on the
  last business day it can be spent (a lot that never expires: NEVER, the last day a request can name), at the
  store that earned it: + when the lot is made, - when points leave it (held for an
  offset, redeemed, adjusted, taken back by a reversal, expired), + when they come back
  (a hold released or captured for less, a spend returned).

Pure: no database, no clock.
"""

from datetime import date, datetime, timedelta

from huiyuan.runtime.business_time import local
from huiyuan.runtime.periods import NEVER_EXPIRES
from huiyuan.runtime.rollups import Contribution
from services.points.domain.lots import MovementKind

POINTS = "points"
POINTS_EXPIRING = "points_expiring"
POINTS_MEASURES = ("points", "pending_points")
EXPIRING_MEASURES = ("points",)
CHAIN = "hq"  # where a movement with no store is counted
NEVER = NEVER_EXPIRES  # the expiry day of a lot that never expires


def business_day(moment: datetime) -> date:
    return local(moment).date()


def expiry_day(expire_time: datetime | None) -> date:
    """The last business day a lot can be spent (expire_time is the first moment it
    cannot)."""
    if expire_time is None:
        return NEVER
    return business_day(expire_time - timedelta(microseconds=1))


def movement_contributions(kind: str, delta: int, store_path: str, create_time: datetime) -> list[Contribution]:
    """A movement of a member's points."""
    if not delta:
        return []
    return [Contribution(POINTS, store_path or CHAIN, business_day(create_time), kind, {"points": delta})]


def new_lot_contributions(
    store_path: str,
    points: int,
    create_time: datetime,
    available_time: datetime,
    expire_time: datetime | None,
) -> list[Contribution]:
    """A lot made by a grant: its points expire on its expiry day; those not spendable
    yet are pending from the grant's day until the day it becomes spendable (or expires,
    if that comes first: a lot past its date is pending no more)."""
    if not points:
        return []
    made = [Contribution(POINTS_EXPIRING, store_path, expiry_day(expire_time), "", {"points": points})]
    ends = available_time if expire_time is None else min(available_time, expire_time)
    first, last = business_day(create_time), business_day(ends)
    if last > first:
        grant = MovementKind.GRANT.value
        made += [
            Contribution(POINTS, store_path, first, grant, {"pending_points": points}),
            Contribution(POINTS, store_path, last, grant, {"pending_points": -points}),
        ]
    return made


def lot_change_contributions(store_path: str, expire_time: datetime | None, delta: int) -> list[Contribution]:
    """Points leaving a lot (delta < 0) or coming back to it (> 0)."""
    if not delta:
        return []
    return [Contribution(POINTS_EXPIRING, store_path, expiry_day(expire_time), "", {"points": delta})]
