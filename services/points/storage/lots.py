"""Lots: the live lots of members, taking points out of lots and giving them back,
new lots, and the expiry job's batches."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, func, insert, select, text, union_all, update

from huiyuan.database import Transaction, dialect_name, insert_new, send, under
from huiyuan.runtime.ids import new_id
from services.points.domain.lots import Draw, Expiry, Lot, LotSource, MovementKind
from services.points.domain.members import MemberPoints
from services.points.domain.reports import lot_change_contributions, movement_contributions, new_lot_contributions
from services.points.storage.movements import movement_row, record_all
from services.points.storage.rollups import ROLLUPS
from services.points.storage.tables import lots, movements

EXPIRY_BATCH = 10_000

MOVE_LOT = (
    update(lots).where(lots.c.lot_id == bindparam("key")).values(points_left=lots.c.points_left + bindparam("delta"))
)
# Built once, as every statement of a call's path: building one per call cost SQLAlchemy
# more CPU than sending it (bench/points.py).
_INSERT_LOT = insert(lots)
# Lots with points left that have not expired: the only ones a balance or a spend
# looks at (domain.lots.is_live). One past its date that the expiry job has not reached
# yet is not read: with the job a day behind, a member's expired lots were most of
# what each balance read (bench/points.py).
LOT_COLUMNS = (lots.c.lot_id, lots.c.points_left, lots.c.expire_time, lots.c.available_time)
_NOW = bindparam("now", type_=lots.c.expire_time.type)


def live_lots_where(member_condition):
    """The live lots of the members a condition on lots.member_id names, as two arms: the
    lots that expire after now, and those that never expire. Written as one condition
    (expire_time IS NULL OR expire_time > now), PostgreSQL could not bound it by the
    index on (member_id, expire_time): for each member a capture read, it read every
    live lot of the chain through the index on expire_time, or every lot of the member,
    expired ones included (bench/points.py: 150 million index entries in one run). Each
    arm here is one range of that index."""

    def arm(expiry):
        return select(lots.c.member_id, *LOT_COLUMNS).where(member_condition, lots.c.points_left > 0, expiry)

    return union_all(arm(lots.c.expire_time > _NOW), arm(lots.c.expire_time.is_(None)))


LIVE_LOTS = live_lots_where(lots.c.member_id.in_(bindparam("member_ids", expanding=True)))
# where the lots moved were earned and when they expire: the rollup points_expiring
_WHERE_LOTS = select(lots.c.lot_id, lots.c.store_path, lots.c.expire_time).where(
    lots.c.lot_id.in_(bindparam("lot_ids", expanding=True))
)


def lot_of(row) -> Lot:
    """A lot from a row with its LOT_COLUMNS."""
    return Lot(row.lot_id, row.points_left, row.expire_time, row.available_time)


def lots_by_member(rows, member_ids) -> dict[str, list[Lot]]:
    found: dict[str, list[Lot]] = {m: [] for m in member_ids}
    for r in rows:
        found.setdefault(r.member_id, []).append(lot_of(r))
    return found


async def live_lots(tx: Transaction, member_id: str, now) -> list[Lot]:
    """The member's live lots (the member's row is locked)."""
    rows = await tx.execute(LIVE_LOTS, {"member_ids": [member_id], "now": now})
    return lots_by_member(rows, [member_id])[member_id]


async def move_lots(tx: Transaction, draws: list[Draw], sign: int) -> None:
    """Take the draws out of their lots (sign -1) or give them back (+1): a statement
    a lot, in lot_id order, however many draws of a batch it had."""
    delta: dict[str, int] = {}
    for d in draws:
        delta[d.lot_id] = delta.get(d.lot_id, 0) + sign * d.points
    moved = [lot_id for lot_id in sorted(delta) if delta[lot_id]]
    if not moved:
        return
    await send(tx, MOVE_LOT, [{"key": lot_id, "delta": delta[lot_id]} for lot_id in moved])
    # every change of a lot's points is made here: what it changes in points_expiring
    where = (await tx.execute(_WHERE_LOTS, {"lot_ids": moved})).all()
    await ROLLUPS.record(
        tx, [c for r in where for c in lot_change_contributions(r.store_path, r.expire_time, delta[r.lot_id])]
    )


async def lot_ids_of_order(tx: Transaction, member_id: str, order_id: str) -> set[str]:
    # By member first: the member's lots are indexed, and few; all lots with an order are not.
    return set(
        (
            await tx.execute(select(lots.c.lot_id).where(lots.c.member_id == member_id, lots.c.order_id == order_id))
        ).scalars()
    )


@dataclass
class GrantRows:
    """What a grant writes: its lot (none if debt took every point) and its movement."""

    lot_id: str
    expire_time: datetime | None
    debt_paid: int
    lots: list[dict]
    movement: dict

    def new_lots(self) -> list[Lot]:
        """The lot written, as a member's lots are held in memory."""
        return [Lot(r["lot_id"], r["points_left"], r["expire_time"], r["available_time"]) for r in self.lots]


def grant_rows(
    member: MemberPoints,
    points: int,
    *,
    source: LotSource,
    expiry: Expiry,
    pending_days: int,
    store_path: str,
    now,
    rule_id: str = "",
    order_id: str = "",
    memo: str = "",
) -> GrantRows:
    """The rows of a grant to a locked member, whose debt it pays first (member.debt
    goes down; the caller saves the member). For one grant and for a batch's many."""
    debt_paid = member.pay_debt(points)
    lot_id, expire_time = new_id("pl"), expiry.expire_time(now)
    lot_rows = (
        [
            {
                "lot_id": lot_id,
                "member_id": member.member_id,
                "source": source.value,
                "rule_id": rule_id,
                "order_id": order_id,
                "store_path": store_path,
                "granted_points": points - debt_paid,
                "points_left": points - debt_paid,
                "available_time": now + timedelta(days=pending_days),
                "expire_time": expire_time,
                "create_time": now,
            }
        ]
        if points - debt_paid
        else []
    )
    movement = movement_row(
        member.member_id,
        MovementKind.GRANT,
        points,
        now,
        order_id=order_id,
        store_path=store_path,
        memo=memo + (f" ({debt_paid} paid debt)" if debt_paid else ""),
    )
    return GrantRows(lot_id, expire_time, debt_paid, lot_rows, movement)


async def write_grants(tx: Transaction, grants: list[GrantRows]) -> None:
    """The lots and movements of grant_rows(), a statement each for however many."""
    new = [lot for g in grants for lot in g.lots]
    await send(tx, _INSERT_LOT, new)
    await record_all(tx, [g.movement for g in grants])
    await ROLLUPS.record(
        tx,
        [
            c
            for r in new
            for c in new_lot_contributions(
                r["store_path"], r["granted_points"], r["create_time"], r["available_time"], r["expire_time"]
            )
        ],
    )


# On PostgreSQL a batch is one statement: the lots never travel to Python and back,
# which made the job seven times slower. SQLite (the embedded default) takes the
# portable path below.
_EXPIRE_BATCH_PG = text("""
WITH expired AS (
    SELECT lot_id, member_id, store_path, expire_time, points_left FROM lots
    WHERE expire_time <= :as_of AND points_left > 0
    LIMIT :batch FOR UPDATE SKIP LOCKED
), zeroed AS (
    UPDATE lots SET points_left = 0 FROM expired WHERE lots.lot_id = expired.lot_id
), moved AS (
    INSERT INTO movements (movement_id, member_id, kind, delta_points, order_id, store_path, memo, create_time)
    SELECT :prefix || right(lot_id, 16), member_id, 'EXPIRE', -points_left, '', store_path, 'lot ' || lot_id, :now
    FROM expired
)
SELECT store_path, expire_time, count(*) AS lots, sum(points_left) AS points FROM expired
GROUP BY store_path, expire_time
""").columns(expire_time=lots.c.expire_time.type)


async def expire_batch(tx: Transaction, as_of: datetime, now) -> tuple[int, int]:
    """Expire up to one batch of lots past their date. Lots are locked (skipping those
    another run holds), so two runs at once expire each lot once. Returns (lots,
    points) expired; (0, 0) when nothing is left to do.

    Movement ids: one time prefix for the batch, each movement told apart by its
    lot's random tail (a lot expires once); new_id() per row cost more than the SQL."""
    prefix = new_id("mv")[:13]
    if dialect_name(tx) == "postgresql":
        groups = (
            await tx.execute(_EXPIRE_BATCH_PG, {"as_of": as_of, "batch": EXPIRY_BATCH, "prefix": prefix, "now": now})
        ).all()
        await _record_expired(tx, [(g.store_path, g.expire_time, int(g.points)) for g in groups], now)
        return sum(int(g.lots) for g in groups), sum(int(g.points) for g in groups)
    c = lots.c
    rows = (
        await tx.execute(
            select(c.lot_id, c.member_id, c.points_left, c.store_path, c.expire_time)
            .where(c.expire_time <= as_of, c.points_left > 0)
            .limit(EXPIRY_BATCH)
        )
    ).all()
    if not rows:
        return 0, 0
    await tx.execute(update(lots).where(c.lot_id.in_([r.lot_id for r in rows])).values(points_left=0))
    await insert_new(
        tx,
        movements,
        [
            {
                "movement_id": f"{prefix}{r.lot_id[-16:]}",
                "member_id": r.member_id,
                "kind": MovementKind.EXPIRE.value,
                "delta_points": -r.points_left,
                "order_id": "",
                "store_path": r.store_path,
                "memo": f"lot {r.lot_id}",
                "create_time": now,
            }
            for r in rows
        ],
    )
    await _record_expired(tx, [(r.store_path, r.expire_time, r.points_left) for r in rows], now)
    return len(rows), sum(r.points_left for r in rows)


async def _record_expired(tx: Transaction, expired: list[tuple[str, datetime | None, int]], now) -> None:
    """What expired lots (store, expire time, points) change in the rollups: their
    EXPIRE movements, and their points gone from points_expiring."""
    kind = MovementKind.EXPIRE.value
    await ROLLUPS.record(
        tx,
        [
            c
            for store_path, expire_time, points in expired
            for c in movement_contributions(kind, -points, store_path, now)
            + lot_change_contributions(store_path, expire_time, -points)
        ],
    )


@dataclass(frozen=True)
class Expiring:
    member_id: str
    points: int
    first_expire_time: datetime


async def expiring_members(
    tx: Transaction, now, within: timedelta, org_path: str, after_member_id: str | None, limit: int
) -> list[Expiring]:
    """Members with spendable points expiring within the window, earned under org_path
    ("": anywhere): (member_id, points, first expire time), by member id, for reminders."""
    c = lots.c
    q = (
        select(c.member_id, func.sum(c.points_left).label("points"), func.min(c.expire_time).label("first"))
        .where(c.points_left > 0, c.available_time <= now, c.expire_time > now, c.expire_time <= now + within)
        .group_by(c.member_id)
    )
    if org_path:
        q = q.where(under(c.store_path, org_path))
    if after_member_id is not None:
        q = q.where(c.member_id > after_member_id)
    return [
        Expiring(r.member_id, int(r.points), _aware(r.first))
        for r in (await tx.execute(q.order_by(c.member_id).limit(limit))).all()
    ]


def _aware(moment: datetime) -> datetime:
    """SQLite hands an aggregate's timestamp back naive (UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
