"""Lots in and out: grants, balances, history, expiry. Every change of a member's
points takes the member's row lock first, so concurrent spends queue on it."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from huiyuan.database import Database, Transaction
from services.points.domain.lots import Expiry, LotSource, MovementKind
from services.points.domain.members import Balance, MemberPoints, balance_of
from services.points.storage import lots, members, movements
from services.points.storage.lots import Expiring
from services.points.storage.movements import Movement


async def grant(
    tx: Transaction,
    *,
    member_id: str,
    points: int,
    source: LotSource,
    expiry: Expiry,
    pending_days: int,
    store_path: str,
    now,
    rule_id: str = "",
    order_id: str = "",
    memo: str = "",
    member: MemberPoints | None = None,
) -> tuple[str, datetime | None, int]:
    """A new lot, after paying the member's points debt first.
    Returns (lot id, expire time, points that paid debt)."""
    member = member or await members.lock_member(tx, member_id, now)
    rows = lots.grant_rows(
        member,
        points,
        source=source,
        expiry=expiry,
        pending_days=pending_days,
        store_path=store_path,
        now=now,
        rule_id=rule_id,
        order_id=order_id,
        memo=memo,
    )
    await lots.write_grants(tx, [rows])
    await members.save_member(tx, member, now)
    return rows.lot_id, rows.expire_time, rows.debt_paid


@dataclass
class Granted:
    lot_id: str
    expire_time: datetime | None
    balance: Balance  # after the grant


async def grant_by_hand(
    tx: Transaction, *, member_id: str, points: int, source: LotSource, store_path: str, memo: str, now
) -> Granted:
    """Points given outside an order (a sign-up, a campaign), with the default expiry
    and no pending days."""
    lot_id, expire_time, _ = await grant(
        tx,
        member_id=member_id,
        points=points,
        source=source,
        expiry=Expiry(),
        pending_days=0,
        store_path=store_path,
        now=now,
        memo=memo,
    )
    return Granted(lot_id, expire_time, await balance(tx, member_id, now))


async def balance(tx: Transaction, member_id: str, now) -> Balance:
    member, live = await members.member_with_lots(tx, member_id, now)
    return balance_of(member, live, now)


async def history(tx: Transaction, member_id: str, before: str | None, limit: int) -> list[Movement]:
    """The member's movements, the latest first, before a movement id (None: from the latest)."""
    return await movements.history(tx, member_id, before, limit)


async def run_expiry(database: Database, as_of: datetime, now: datetime) -> tuple[int, int]:
    """Expire every lot past its date, in batches of their own transactions (a million
    lots is no one transaction). Returns (lots, points) expired."""
    total_lots = total_points = 0
    while True:
        async with database.job_transaction() as tx:
            count, points = await lots.expire_batch(tx, as_of, now)
        if not count:
            break
        total_lots, total_points = total_lots + count, total_points + points
    return total_lots, total_points


async def expiring_members(
    tx: Transaction, now, within: timedelta, org_path: str, after_member_id: str | None, limit: int
) -> list[Expiring]:
    """Members with spendable points expiring within the window, earned under org_path
    ("": anywhere), by member id, for reminders."""
    return await lots.expiring_members(tx, now, within, org_path, after_member_id, limit)


async def store_day(tx: Transaction, store_path: str, day: date) -> tuple[int, int]:
    """(points granted, points spent) at one store on one business day."""
    sums = await movements.store_day(tx, store_path, day)
    return sums.get(MovementKind.GRANT.value, 0), -sums.get(MovementKind.SPEND.value, 0)
