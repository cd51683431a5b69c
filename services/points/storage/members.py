"""Members' rows (held and owed points), locked by every change of a member's points,
and a member's balance read in one statement."""

from sqlalchemy import bindparam, select, update

from huiyuan.database import Transaction, insert_new, lock_or_make, send, together
from services.points.domain.lots import Lot
from services.points.domain.members import MemberPoints
from services.points.storage.lots import LIVE_LOTS, LOT_COLUMNS, live_lots_where, lot_of, lots_by_member
from services.points.storage.tables import lots, member_points

LOCK_MEMBER = select(member_points).where(member_points.c.member_id == bindparam("member_id")).with_for_update()
LOCK_MEMBERS = (
    select(member_points)
    .where(member_points.c.member_id.in_(bindparam("member_ids", expanding=True)))
    .order_by(member_points.c.member_id)
    .with_for_update()
)
SAVE_MEMBER = (
    update(member_points)
    .where(member_points.c.member_id == bindparam("key"))
    .values(held_points=bindparam("held"), debt_points=bindparam("debt"), update_time=bindparam("now"))
)


async def lock_member(tx: Transaction, member_id: str, now) -> MemberPoints:
    row = await lock_or_make(
        tx,
        LOCK_MEMBER,
        {"member_id": member_id},
        member_points,
        {"member_id": member_id, "held_points": 0, "debt_points": 0, "update_time": now},
    )
    return MemberPoints(member_id, row.held_points, row.debt_points)


async def lock_with_lots(
    tx: Transaction, member_ids, now, *also: tuple, make: bool = True
) -> tuple[dict[str, MemberPoints], dict[str, list[Lot]], list[list]]:
    """Many members' rows (a batch's), locked in member_id order, as every batch locks
    them: two batches that share members never hold what the other waits for; their
    live lots; and the rows of `also`, further (statement, params) reads: all in one
    round trip. With make, a member with no row yet gets one first (as lock_member
    does); without, an empty one that is not written (a member with no row has no
    lots: a grant makes it)."""
    ids = sorted(set(member_ids))
    locked, live, *more = (
        rows.all()
        for rows in await together(
            tx, (LOCK_MEMBERS, {"member_ids": ids}), (LIVE_LOTS, {"member_ids": ids, "now": now}), *also
        )
    )
    found = members_of(locked)
    missing = [m for m in ids if m not in found]
    if missing and make:
        await insert_new(
            tx,
            member_points,
            [{"member_id": m, "held_points": 0, "debt_points": 0, "update_time": now} for m in missing],
            conflict="member_id",
        )
        found.update(members_of(await tx.execute(LOCK_MEMBERS, {"member_ids": missing})))
        # read again under the lock: another call may have made the row, and granted, meanwhile
        live = [r for r in live if r.member_id not in missing] + (
            await tx.execute(LIVE_LOTS, {"member_ids": missing, "now": now})
        ).all()
    return {m: found.get(m) or MemberPoints(m) for m in ids}, lots_by_member(live, ids), more


def members_of(rows) -> dict[str, MemberPoints]:
    return {r.member_id: MemberPoints(r.member_id, r.held_points, r.debt_points) for r in rows}


async def save_member(tx: Transaction, member: MemberPoints, now) -> None:
    await save_members(tx, [member], now)


async def save_members(tx: Transaction, members: list[MemberPoints], now) -> None:
    for m in members:
        assert m.held >= 0 and m.debt >= 0, m
    await send(
        tx,
        SAVE_MEMBER,
        [
            {"key": m.member_id, "held": m.held, "debt": m.debt, "now": now}
            for m in sorted(members, key=lambda m: m.member_id)
        ],
    )


# A member's row and live lots, in one statement (a member may have neither yet).
_LIVE_OF_ONE = live_lots_where(lots.c.member_id == bindparam("member_id")).subquery()
BALANCE = (
    select(member_points.c.held_points, member_points.c.debt_points, *(_LIVE_OF_ONE.c[c.key] for c in LOT_COLUMNS))
    .select_from(member_points.outerjoin(_LIVE_OF_ONE, _LIVE_OF_ONE.c.member_id == member_points.c.member_id))
    .where(member_points.c.member_id == bindparam("member_id"))
)


async def member_with_lots(tx: Transaction, member_id: str, now) -> tuple[MemberPoints, list[Lot]]:
    """A member's row (an empty one if it has none yet) and live lots, unlocked."""
    rows = (await tx.execute(BALANCE, {"member_id": member_id, "now": now})).all()
    if not rows:
        return MemberPoints(member_id), []
    return (
        MemberPoints(member_id, rows[0].held_points, rows[0].debt_points),
        [lot_of(r) for r in rows if r.lot_id is not None],
    )
