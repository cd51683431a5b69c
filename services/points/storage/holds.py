"""Holds and the lots they drew from (hold_draws). Holds to end are locked as a batch
locks them: their members first, in member_id order (as members.lock_with_lots), then
the holds, in hold_id order."""

from sqlalchemy import bindparam, delete, insert, select, update

from huiyuan.database import Transaction, send, together
from huiyuan.runtime.holds import HoldState
from services.points.domain.holds import Hold
from services.points.domain.lots import Draw, Lot, spend_key
from services.points.domain.members import MemberPoints
from services.points.domain.reversals import SpentDraw
from services.points.storage.lots import live_lots_where, lot_of, lots_by_member, move_lots
from services.points.storage.members import members_of
from services.points.storage.tables import hold_draws, holds, lots, member_points

# Holds to end (a batch of captures, or one release or lapse): their members, locked
# in member_id order, then the holds, in hold_id order, then their draws, and the
# members' live lots: one round trip.
_HOLD_IDS = bindparam("hold_ids", expanding=True)
_LOCK_MEMBERS_OF_HOLDS = (
    select(member_points)
    .where(member_points.c.member_id.in_(select(holds.c.member_id).where(holds.c.hold_id.in_(_HOLD_IDS))))
    .order_by(member_points.c.member_id)
    .with_for_update()
)
_LOCK_HOLDS = select(holds).where(holds.c.hold_id.in_(_HOLD_IDS)).order_by(holds.c.hold_id).with_for_update()
LIVE_LOTS_OF_HOLDS = live_lots_where(
    lots.c.member_id.in_(select(holds.c.member_id).where(holds.c.hold_id.in_(_HOLD_IDS)))
)
_DRAWS_OF_HOLDS = (
    select(hold_draws, lots.c.member_id, lots.c.points_left, lots.c.expire_time, lots.c.available_time)
    .join(lots, lots.c.lot_id == hold_draws.c.lot_id)
    .where(hold_draws.c.hold_id.in_(_HOLD_IDS))
)
_GIVE_BACK_DRAW = (
    update(hold_draws)
    .where(hold_draws.c.hold_id == bindparam("key"), hold_draws.c.lot_id == bindparam("lot"))
    .values(points=hold_draws.c.points - bindparam("back"))
)
_DROP_EMPTY_DRAWS = delete(hold_draws).where(hold_draws.c.hold_id == bindparam("key"), hold_draws.c.points == 0)
_INSERT_DRAWS, _INSERT_HOLD = insert(hold_draws), insert(holds)
_END_HOLD = (
    update(holds)
    .where(holds.c.hold_id == bindparam("key"))
    .values(state=bindparam("new_state"), captured_points=bindparam("captured"))
)


def _to_hold(r) -> Hold:
    return Hold(
        r.hold_id, r.member_id, r.points, r.captured_points, HoldState(r.state), r.order_id, r.store_path, r.expire_time
    )


async def place(tx: Transaction, placed: list[Hold], draws: list[tuple[str, Draw]], now) -> None:
    """New holds and the draws they took (hold_id, draw) from their lots."""
    await move_lots(tx, [d for _, d in draws], -1)
    await send(
        tx, _INSERT_DRAWS, [{"hold_id": hold_id, "lot_id": d.lot_id, "points": d.points} for hold_id, d in draws]
    )
    await send(
        tx,
        _INSERT_HOLD,
        [
            {
                "hold_id": h.hold_id,
                "member_id": h.member_id,
                "points": h.points,
                "captured_points": 0,
                "state": h.state.value,
                "order_id": h.order_id,
                "store_path": h.store_path,
                "expire_time": h.expire_time,
                "create_time": now,
            }
            for h in placed
        ],
    )


async def lock_holds(
    tx: Transaction, hold_ids: list[str], now
) -> tuple[dict[str, MemberPoints], dict[str, Hold], dict[str, list[Draw]], dict[str, list[Lot]]]:
    """A batch's holds' members (locked in member_id order, as every batch locks them),
    the holds (locked in hold_id order), their draws and the members' live lots: one
    round trip."""
    ids = {"hold_ids": sorted(set(hold_ids))}
    members, held, drawn, live = (
        rows.all()
        for rows in await together(
            tx,
            (_LOCK_MEMBERS_OF_HOLDS, ids),
            (_LOCK_HOLDS, ids),
            (_DRAWS_OF_HOLDS, ids),
            (LIVE_LOTS_OF_HOLDS, {**ids, "now": now}),
        )
    )
    draws: dict[str, list[Draw]] = {r.hold_id: [] for r in held}
    lots_now = lots_by_member(live, [r.member_id for r in members])
    known = {lot.lot_id for member_lots in lots_now.values() for lot in member_lots}
    for d in sorted(drawn, key=lambda d: spend_key(d.expire_time, d.lot_id)):  # as drawn: keep() keeps the first
        draws[d.hold_id].append(Draw(d.lot_id, d.points))
        if d.lot_id not in known:  # a lot its holds emptied is not live, until a capture gives points back
            lots_now[d.member_id].append(lot_of(d))
            known.add(d.lot_id)
    return members_of(members), {r.hold_id: _to_hold(r) for r in held}, draws, lots_now


async def end_holds(tx: Transaction, ended: list[Hold], back: list[tuple[str, Draw]]) -> None:
    """Write the holds' new states, and give back to their lots what they do not keep
    (what stays in hold_draws is what a capture spent)."""
    await move_lots(tx, [d for _, d in back], +1)
    await send(tx, _GIVE_BACK_DRAW, [{"key": hold_id, "lot": d.lot_id, "back": d.points} for hold_id, d in back])
    await send(tx, _DROP_EMPTY_DRAWS, [{"key": hold_id} for hold_id in sorted({hold_id for hold_id, _ in back})])
    await send(
        tx,
        _END_HOLD,
        [
            {"key": h.hold_id, "new_state": h.state.value, "captured": h.captured}
            for h in sorted(ended, key=lambda h: h.hold_id)
        ],
    )


async def lapsed_holds(tx: Transaction, now, limit: int = 500) -> list[str]:
    rows = await tx.execute(
        select(holds.c.hold_id)
        .where(holds.c.state == HoldState.PENDING.value, holds.c.expire_time <= now)
        .order_by(holds.c.expire_time)
        .limit(limit)
    )
    return list(rows.scalars())


async def captured_of_order(tx: Transaction, order_id: str, member_id: str) -> dict[str, int]:
    """The order's captured holds: the points each spent, by hold id."""
    rows = (
        await tx.execute(
            select(holds.c.hold_id, holds.c.captured_points).where(
                holds.c.order_id == order_id, holds.c.member_id == member_id, holds.c.state == HoldState.CAPTURED.value
            )
        )
    ).all()
    return {r.hold_id: r.captured_points for r in rows}


async def spent_draws(tx: Transaction, hold_ids: list[str]) -> list[SpentDraw]:
    """What the captured holds still hold spent, lot by lot (what a return gave back
    left hold_draws)."""
    rows = (
        await tx.execute(
            select(hold_draws.c.hold_id, hold_draws.c.lot_id, hold_draws.c.points, lots.c.expire_time)
            .join(lots, lots.c.lot_id == hold_draws.c.lot_id)
            .where(hold_draws.c.hold_id.in_(hold_ids), hold_draws.c.points > 0)
        )
    ).all()
    return [SpentDraw(r.hold_id, r.lot_id, r.points, r.expire_time) for r in rows]


async def return_spent(tx: Transaction, given: SpentDraw) -> None:
    """Give spent points back to their lot; they leave hold_draws, which keeps what is
    still spent, so a second partial return never over-fills a lot."""
    await move_lots(tx, [Draw(given.lot_id, given.points)], +1)
    await tx.execute(
        update(hold_draws)
        .where(hold_draws.c.hold_id == given.hold_id, hold_draws.c.lot_id == given.lot_id)
        .values(points=hold_draws.c.points - given.points)
    )
