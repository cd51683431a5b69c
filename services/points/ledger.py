"""Lots in and out: grants, balances, history, expiry. Every change of a member's
points takes the member's row lock first, so concurrent spends queue on it."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, insert, select, text, union_all, update

from huiyuan.runtime.clock import day_start
from huiyuan.database.engines import dialect_name, under
from huiyuan.database.direct import execute_together, send
from huiyuan.runtime.ids import new_id
from huiyuan.database.upsert import insert_new, lock_or_make
from services.points import domain
from services.points.storage import (
    LOCK_MEMBER, LOCK_MEMBERS, MOVE_LOT, SAVE_MEMBER, lots, member_points, movements,
)

EXPIRY_BATCH = 10_000


@dataclass
class MemberPoints:
    member_id: str
    held: int = 0
    debt: int = 0


@dataclass
class Balance:
    member_id: str
    available: int
    pending: int
    held: int
    expiring_soon: int
    debt: int


async def lock_member(db, member_id: str, now) -> MemberPoints:
    row = await lock_or_make(db, LOCK_MEMBER, {"member_id": member_id}, member_points,
                             {"member_id": member_id, "held_points": 0, "debt_points": 0, "update_time": now})
    return MemberPoints(member_id, row.held_points, row.debt_points)


async def lock_with_lots(db, member_ids, now, *also: tuple, make: bool = True) -> tuple[
        dict[str, MemberPoints], dict[str, list[domain.Lot]], list[list]]:
    """Many members' rows (a batch's), locked in member_id order, as every batch locks
    them: two batches that share members never hold what the other waits for; their
    live lots; and the rows of `also`, further (statement, params) reads: all in one
    round trip. With make, a member with no row yet gets one first (as lock_member
    does); without, an empty one that is not written (a member with no row has no
    lots: grant makes it)."""
    ids = sorted(set(member_ids))
    locked, live, *more = (rows.all() for rows in await execute_together(
        db, (LOCK_MEMBERS, {"member_ids": ids}), (LIVE_LOTS, {"member_ids": ids, "now": now}), *also))
    found = _members(locked)
    missing = [m for m in ids if m not in found]
    if missing and make:
        await insert_new(db, member_points, [{"member_id": m, "held_points": 0, "debt_points": 0, "update_time": now}
                                             for m in missing], conflict="member_id")
        found.update(_members(await db.execute(LOCK_MEMBERS, {"member_ids": missing})))
        # read again under the lock: another call may have made the row, and granted, meanwhile
        live = [r for r in live if r.member_id not in missing] + (await db.execute(
            LIVE_LOTS, {"member_ids": missing, "now": now})).all()
    return {m: found.get(m) or MemberPoints(m) for m in ids}, lots_by_member(live, ids), more


def _members(rows) -> dict[str, MemberPoints]:
    return {r.member_id: MemberPoints(r.member_id, r.held_points, r.debt_points) for r in rows}


async def save_member(db, member: MemberPoints, now) -> None:
    await save_members(db, [member], now)


async def save_members(db, members: list[MemberPoints], now) -> None:
    for m in members:
        assert m.held >= 0 and m.debt >= 0, m
    await send(db, SAVE_MEMBER, [{"key": m.member_id, "held": m.held, "debt": m.debt, "now": now}
                                 for m in sorted(members, key=lambda m: m.member_id)])


# Built once, as every statement of a call's path: building one per call cost SQLAlchemy
# more CPU than sending it (bench/points.py).
_INSERT_MOVEMENT, _INSERT_LOT = insert(movements), insert(lots)
# Lots with points left that have not expired: the only ones a balance or a spend
# looks at (domain.is_live). One past its date that the expiry job has not reached
# yet is not read: with the job a day behind, a member's expired lots were most of
# what each balance read (bench/points.py).
_LOT_COLUMNS = (lots.c.lot_id, lots.c.points_left, lots.c.expire_time, lots.c.available_time)
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
        return select(lots.c.member_id, *_LOT_COLUMNS).where(member_condition, lots.c.points_left > 0, expiry)
    return union_all(arm(lots.c.expire_time > _NOW), arm(lots.c.expire_time.is_(None)))


LIVE_LOTS = live_lots_where(lots.c.member_id.in_(bindparam("member_ids", expanding=True)))


def lot_of(row) -> domain.Lot:
    """A lot from a row with its _LOT_COLUMNS."""
    return domain.Lot(row.lot_id, row.points_left, row.expire_time, row.available_time)


def lots_by_member(rows, member_ids) -> dict[str, list[domain.Lot]]:
    found: dict[str, list[domain.Lot]] = {m: [] for m in member_ids}
    for r in rows:
        found.setdefault(r.member_id, []).append(lot_of(r))
    return found


async def record(db, member_id: str, kind: domain.MovementKind, delta: int, now, *, order_id="", store_path="", memo="") -> None:
    await send(db, _INSERT_MOVEMENT, movement_row(member_id, kind, delta, now, order_id=order_id, store_path=store_path,
                                                  memo=memo))


async def record_all(db, rows: list[dict]) -> None:
    """Movements made by movement_row(), in one statement."""
    await send(db, _INSERT_MOVEMENT, rows)


def movement_row(member_id: str, kind: domain.MovementKind, delta: int, now, *, order_id="", store_path="",
                 memo="") -> dict:
    return {"movement_id": new_id("mv"), "member_id": member_id, "kind": kind.value, "delta_points": delta,
            "order_id": order_id, "store_path": store_path, "memo": memo[:200], "create_time": now}


async def spendable_lots(db, member_id: str, now) -> list[domain.Lot]:
    """The member's spendable lots (the member's row is locked)."""
    rows = await db.execute(LIVE_LOTS, {"member_ids": [member_id], "now": now})
    return [lot for lot in lots_by_member(rows, [member_id])[member_id] if domain.is_spendable(lot, now)]


async def move_lots(db, draws: list[domain.Draw], sign: int) -> None:
    """Take the draws out of their lots (sign -1) or give them back (+1): a statement
    a lot, in lot_id order, however many draws of a batch it had."""
    delta: dict[str, int] = {}
    for d in draws:
        delta[d.lot_id] = delta.get(d.lot_id, 0) + sign * d.points
    await send(db, MOVE_LOT, [{"key": lot_id, "delta": delta[lot_id]} for lot_id in sorted(delta) if delta[lot_id]])


async def grant(db, *, member_id: str, points: int, source: domain.LotSource, expiry: domain.Expiry, pending_days: int,
                store_path: str, now, rule_id: str = "", order_id: str = "", memo: str = "",
                member: MemberPoints | None = None) -> tuple[str, datetime | None, int]:
    """A new lot, after paying the member's points debt first.
    Returns (lot id, expire time, points that paid debt)."""
    member = member or await lock_member(db, member_id, now)
    rows = grant_rows(member, points, source=source, expiry=expiry, pending_days=pending_days, store_path=store_path,
                      now=now, rule_id=rule_id, order_id=order_id, memo=memo)
    await write_grants(db, [rows])
    await save_member(db, member, now)
    return rows.lot_id, rows.expire_time, rows.debt_paid


async def write_grants(db, grants: list["GrantRows"]) -> None:
    """The lots and movements of grant_rows(), a statement each for however many."""
    await send(db, _INSERT_LOT, [lot for g in grants for lot in g.lots])
    await record_all(db, [g.movement for g in grants])


@dataclass
class GrantRows:
    """What a grant writes: its lot (none if debt took every point) and its movement."""
    lot_id: str
    expire_time: datetime | None
    debt_paid: int
    lots: list[dict]
    movement: dict

    def new_lots(self) -> list[domain.Lot]:
        """The lot written, as a member's lots are held in memory."""
        return [domain.Lot(r["lot_id"], r["points_left"], r["expire_time"], r["available_time"]) for r in self.lots]


def grant_rows(member: MemberPoints, points: int, *, source: domain.LotSource, expiry: domain.Expiry,
               pending_days: int, store_path: str, now, rule_id: str = "", order_id: str = "",
               memo: str = "") -> GrantRows:
    """The rows of a grant to a locked member, whose debt it pays first (member.debt
    goes down; the caller saves the member). For one grant and for a batch's many."""
    debt_paid = min(member.debt, points)
    member.debt -= debt_paid
    lot_id, expire_time = new_id("pl"), expiry.expire_time(now)
    lot_rows = [{
        "lot_id": lot_id, "member_id": member.member_id, "source": source.value, "rule_id": rule_id,
        "order_id": order_id, "store_path": store_path, "granted_points": points - debt_paid,
        "points_left": points - debt_paid, "available_time": now + timedelta(days=pending_days),
        "expire_time": expire_time, "create_time": now}] if points - debt_paid else []
    movement = movement_row(member.member_id, domain.MovementKind.GRANT, points, now, order_id=order_id,
                            store_path=store_path, memo=memo + (f" ({debt_paid} paid debt)" if debt_paid else ""))
    return GrantRows(lot_id, expire_time, debt_paid, lot_rows, movement)


# A member's row and live lots, in one statement (a member may have neither yet).
_LIVE_OF_ONE = live_lots_where(lots.c.member_id == bindparam("member_id")).subquery()
_BALANCE = select(member_points.c.held_points, member_points.c.debt_points,
                  *(_LIVE_OF_ONE.c[c.key] for c in _LOT_COLUMNS)).select_from(
    member_points.outerjoin(_LIVE_OF_ONE, _LIVE_OF_ONE.c.member_id == member_points.c.member_id)).where(
    member_points.c.member_id == bindparam("member_id"))


async def balance(db, member_id: str, now) -> Balance:
    rows = (await db.execute(_BALANCE, {"member_id": member_id, "now": now})).all()
    if not rows:
        return balance_of(MemberPoints(member_id), [], now)
    live = [lot_of(r) for r in rows if r.lot_id is not None]
    return balance_of(MemberPoints(member_id, rows[0].held_points, rows[0].debt_points), live, now)


def balance_of(member: MemberPoints, live: list[domain.Lot], now) -> Balance:
    """The balance of a member as its row and lots stand (in memory: a batch answers
    each call's balance as that call left them, with no read after its writes)."""
    available, pending, expiring_soon = domain.lot_sums(live, now)
    return Balance(member.member_id, available, pending, member.held, expiring_soon, member.debt)


async def history(db, member_id: str, before: str | None, limit: int) -> list:
    q = select(movements).where(movements.c.member_id == member_id)
    if before is not None:
        q = q.where(movements.c.movement_id < before)
    return (await db.execute(q.order_by(movements.c.movement_id.desc()).limit(limit))).all()


# On PostgreSQL a batch is one statement: the lots never travel to Python and back,
# which made the job seven times slower. SQLite (the embedded default) takes the
# portable path below.
_EXPIRE_BATCH_PG = text("""
WITH expired AS (
    SELECT lot_id, member_id, store_path, points_left FROM lots
    WHERE expire_time <= :as_of AND points_left > 0
    LIMIT :batch FOR UPDATE SKIP LOCKED
), zeroed AS (
    UPDATE lots SET points_left = 0 FROM expired WHERE lots.lot_id = expired.lot_id
), moved AS (
    INSERT INTO movements (movement_id, member_id, kind, delta_points, order_id, store_path, memo, create_time)
    SELECT :prefix || right(lot_id, 16), member_id, 'EXPIRE', -points_left, '', store_path, 'lot ' || lot_id, :now
    FROM expired
)
SELECT count(*), coalesce(sum(points_left), 0) FROM expired
""")


async def expire_batch(engine, as_of: datetime, now) -> tuple[int, int]:
    """Expire up to one batch of lots past their date, in one transaction. Lots are
    locked (skipping those another run holds), so two runs at once expire each lot
    once. Returns (lots, points) expired; (0, 0) when nothing is left to do.

    Movement ids: one time prefix for the batch, each movement told apart by its
    lot's random tail (a lot expires once); new_id() per row cost more than the SQL."""
    prefix = new_id("mv")[:13]
    async with engine.begin() as db:
        if dialect_name(db) == "postgresql":
            count, points = (await db.execute(_EXPIRE_BATCH_PG, {
                "as_of": as_of, "batch": EXPIRY_BATCH, "prefix": prefix, "now": now})).one()
            return int(count), int(points)
        c = lots.c
        rows = (await db.execute(select(c.lot_id, c.member_id, c.points_left, c.store_path)
                                 .where(c.expire_time <= as_of, c.points_left > 0).limit(EXPIRY_BATCH))).all()
        if not rows:
            return 0, 0
        await db.execute(update(lots).where(c.lot_id.in_([r.lot_id for r in rows])).values(points_left=0))
        await insert_new(db, movements, [
            {"movement_id": f"{prefix}{r.lot_id[-16:]}", "member_id": r.member_id,
             "kind": domain.MovementKind.EXPIRE.value, "delta_points": -r.points_left, "order_id": "",
             "store_path": r.store_path, "memo": f"lot {r.lot_id}", "create_time": now} for r in rows])
        return len(rows), sum(r.points_left for r in rows)


async def expiring_members(db, now, within: timedelta, org_path: str, after_member_id: str | None,
                           limit: int) -> list:
    """Members with spendable points expiring within the window, earned under org_path
    ("": anywhere): (member_id, points, first expire time), by member id, for reminders."""
    c = lots.c
    q = (select(c.member_id, func.sum(c.points_left).label("points"), func.min(c.expire_time).label("first"))
         .where(c.points_left > 0, c.available_time <= now, c.expire_time > now, c.expire_time <= now + within)
         .group_by(c.member_id))
    if org_path:
        q = q.where(under(c.store_path, org_path))
    if after_member_id is not None:
        q = q.where(c.member_id > after_member_id)
    return (await db.execute(q.order_by(c.member_id).limit(limit))).all()


async def store_day(db, store_path: str, day) -> tuple[int, int]:
    """(points granted, points spent) at one store on one business day."""
    c = movements.c
    rows = await db.execute(select(c.kind, func.sum(c.delta_points)).where(
        c.store_path == store_path, c.create_time >= day_start(day), c.create_time < day_start(day + timedelta(days=1)),
        c.kind.in_([domain.MovementKind.GRANT.value, domain.MovementKind.SPEND.value])).group_by(c.kind))
    sums = {kind: int(points) for kind, points in rows}
    return sums.get(domain.MovementKind.GRANT.value, 0), -sums.get(domain.MovementKind.SPEND.value, 0)
