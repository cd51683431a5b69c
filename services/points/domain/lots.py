"""Lots and their expiry. Every grant is a lot with a source and an expiry; it may be
pending (not yet spendable) for some days. Spending takes the soonest-expiring lots
first and records which, so a reversal puts points back where they came from."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from huiyuan.runtime.business_time import day_start, local
from huiyuan.runtime.errors import FailedPrecondition, Violations


class LotSource(StrEnum):
    PURCHASE = "PURCHASE"
    SIGN_UP = "SIGN_UP"
    CAMPAIGN = "CAMPAIGN"
    ADJUSTMENT = "ADJUSTMENT"
    REFUND = "REFUND"


class MovementKind(StrEnum):
    GRANT = "GRANT"
    SPEND = "SPEND"
    EXPIRE = "EXPIRE"
    REVERSAL = "REVERSAL"
    ADJUSTMENT = "ADJUSTMENT"


class ExpiryPolicy(StrEnum):
    NEVER = "NEVER"
    DAYS = "DAYS"  # param N: usable through the Nth business day after the grant
    END_OF_MONTH = "END_OF_MONTH"  # param k: the end of the month k months on (0: this month)
    END_OF_YEAR = "END_OF_YEAR"  # param k: the end of year N+k (1: points of 2026 expire end of 2027)


@dataclass(frozen=True)
class Expiry:
    policy: ExpiryPolicy = ExpiryPolicy.END_OF_YEAR
    param: int = 1

    def expire_time(self, granted: datetime) -> datetime | None:
        """The first moment the lot is no longer spendable (None: never)."""
        day = local(granted).date()
        if self.policy == ExpiryPolicy.NEVER:
            return None
        if self.policy == ExpiryPolicy.DAYS:
            return day_start(day + timedelta(days=self.param + 1))
        if self.policy == ExpiryPolicy.END_OF_MONTH:
            months = day.year * 12 + day.month - 1 + self.param + 1
            return day_start(date(months // 12, months % 12 + 1, 1))
        return day_start(date(day.year + self.param + 1, 1, 1))


def check_expiry(v: Violations, expiry: Expiry, prefix: str) -> None:
    limits = {
        ExpiryPolicy.NEVER: (0, 0),
        ExpiryPolicy.DAYS: (1, 3650),
        ExpiryPolicy.END_OF_MONTH: (0, 120),
        ExpiryPolicy.END_OF_YEAR: (0, 10),
    }
    low, high = limits[expiry.policy]
    v.check(
        low <= expiry.param <= high,
        f"{prefix}expiry_param",
        "EXPIRY_PARAM_INVALID",
        f"expiry_param must be {low} to {high} for {expiry.policy.value}",
    )


EXPIRING_SOON = timedelta(days=30)


@dataclass
class Lot:
    lot_id: str
    points_left: int
    expire_time: datetime | None
    available_time: datetime | None = None  # None: spendable from the start


def is_live(lot: Lot, now: datetime) -> bool:
    """Points left and not past its date. A lot past its date counts nowhere, even
    before the expiry job reaches it (not even as pending: it will never be spent)."""
    return lot.points_left > 0 and (lot.expire_time is None or lot.expire_time > now)


def is_spendable(lot: Lot, now: datetime) -> bool:
    return is_live(lot, now) and (lot.available_time is None or lot.available_time <= now)


def lot_sums(lots: list[Lot], now: datetime) -> tuple[int, int, int]:
    """What a member's lots add up to: (available: spendable now; pending: spendable
    once the return window closes; expiring soon: spendable now, due within
    EXPIRING_SOON). Held points are out of their lots already."""
    available = pending = expiring = 0
    soon = now + EXPIRING_SOON
    for lot in lots:
        if not is_live(lot, now):
            continue
        if not is_spendable(lot, now):
            pending += lot.points_left
            continue
        available += lot.points_left
        if lot.expire_time is not None and lot.expire_time <= soon:
            expiring += lot.points_left
    return available, pending, expiring


@dataclass(frozen=True)
class Draw:
    lot_id: str
    points: int


_NEVER = datetime.max.replace(tzinfo=UTC)


def spend_key(expire_time: datetime | None, lot_id: str) -> tuple[datetime, str]:
    """Soonest-expiring first; lots that never expire last; then the oldest."""
    return expire_time or _NEVER, lot_id


def spend_order(lots: list[Lot]) -> list[Lot]:
    return sorted(lots, key=lambda lot: spend_key(lot.expire_time, lot.lot_id))


def draw(lots: list[Lot], points: int) -> list[Draw]:
    """Take points from spendable lots, soonest-expiring first."""
    return draw_in_order(spend_order(lots), points)


def draw_in_order(lots: list[Lot], points: int) -> list[Draw]:
    """Take points from the lots in the order given."""
    draws: list[Draw] = []
    for lot in lots:
        take = min(points, lot.points_left)
        if take:
            lot.points_left -= take
            points -= take
            draws.append(Draw(lot.lot_id, take))
        if not points:
            break
    assert points == 0, "not enough points in the lots"
    return draws


def keep(draws: list[Draw], points: int) -> tuple[list[Draw], list[Draw]]:
    """Split a hold's draws into the points a capture keeps (the soonest-expiring,
    as drawn) and those it gives back to their lots."""
    kept: list[Draw] = []
    back: list[Draw] = []
    for d in draws:
        k = min(points, d.points)
        points -= k
        if k:
            kept.append(Draw(d.lot_id, k))
        if d.points - k:
            back.append(Draw(d.lot_id, d.points - k))
    return kept, back


def insufficient(available: int, wanted: int) -> FailedPrecondition:
    return FailedPrecondition(
        "INSUFFICIENT_POINTS",
        f"Only {available} points are available; {wanted} needed.",
        f"可用积分仅 {available}，需要 {wanted}。",
        available_points=available,
        wanted_points=wanted,
    )
