"""Offset at checkout: hold -> capture | release. A hold takes its points out of the
soonest-expiring lots at once (so expiry can never take held points); a capture keeps
what it spends and gives the rest back; a release or a lapse gives everything back
(to lots that may have expired meanwhile: the next expiry run takes those)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select, update

from huiyuan.runtime.direct import send
from huiyuan.runtime.errors import FailedPrecondition, NotFound, invalid
from huiyuan.runtime.holds import HoldState, require_pending
from services.points import domain, ledger
from services.points.storage import hold_draws, holds

_LOCK_HOLD = select(holds).where(holds.c.hold_id == bindparam("hold_id")).with_for_update()
_DRAWS = select(hold_draws.c.lot_id, hold_draws.c.points).where(hold_draws.c.hold_id == bindparam("hold_id"))
_GIVE_BACK_DRAW = update(hold_draws).where(
    hold_draws.c.hold_id == bindparam("key"), hold_draws.c.lot_id == bindparam("lot")).values(
    points=hold_draws.c.points - bindparam("back"))
_DROP_EMPTY_DRAWS = delete(hold_draws).where(hold_draws.c.hold_id == bindparam("key"), hold_draws.c.points == 0)
_INSERT_DRAWS, _INSERT_HOLD = insert(hold_draws), insert(holds)
_END_HOLD = update(holds).where(holds.c.hold_id == bindparam("key")).values(
    state=bindparam("new_state"), captured_points=bindparam("captured"))


@dataclass
class Hold:
    hold_id: str
    member_id: str
    points: int
    captured: int
    state: HoldState
    order_id: str
    store_path: str
    expire_time: datetime


def insufficient(available: int, wanted: int) -> FailedPrecondition:
    return FailedPrecondition("INSUFFICIENT_POINTS", f"Only {available} points are available; {wanted} needed.",
                              f"可用积分仅 {available}，需要 {wanted}。", available_points=available, wanted_points=wanted)


async def place_hold(db, *, hold_id: str, member_id: str, points: int, ttl: timedelta, order_id: str, store_path: str,
                     now) -> Hold:
    member = await ledger.lock_member(db, member_id, now)
    lots = await ledger.spendable_lots(db, member_id, now)
    available = sum(lot.points_left for lot in lots)
    if available < points:
        raise insufficient(available, points)
    draws = domain.draw(lots, points)
    await ledger.move_lots(db, draws, -1)
    await send(db, _INSERT_DRAWS, [{"hold_id": hold_id, "lot_id": d.lot_id, "points": d.points} for d in draws])
    hold = Hold(hold_id, member_id, points, 0, HoldState.PENDING, order_id, store_path, now + ttl)
    await send(db, _INSERT_HOLD, {
        "hold_id": hold_id, "member_id": member_id, "points": points, "captured_points": 0, "state": hold.state.value,
        "order_id": order_id, "store_path": store_path, "expire_time": hold.expire_time, "create_time": now})
    member.held += points
    await ledger.save_member(db, member, now)
    return hold


async def _lock(db, hold_id: str) -> tuple[Hold, ledger.MemberPoints, list[domain.Draw]]:
    member = await ledger.lock_member_of_hold(db, hold_id)  # the member first, then the hold, as everywhere
    if member is None:
        raise NotFound("HOLD_NOT_FOUND", "No such hold.", "冻结记录不存在。", hold_id=hold_id)
    r = (await db.execute(_LOCK_HOLD, {"hold_id": hold_id})).one()
    draws = [domain.Draw(d.lot_id, d.points) for d in await db.execute(_DRAWS, {"hold_id": hold_id})]
    return Hold(r.hold_id, r.member_id, r.points, r.captured_points, HoldState(r.state), r.order_id, r.store_path,
                r.expire_time), member, draws


async def _end(db, hold: Hold, member: ledger.MemberPoints, back: list[domain.Draw], state: HoldState, now,
               captured: int = 0) -> None:
    if back:  # what stays in hold_draws is what the capture spent
        await ledger.move_lots(db, back, +1)
        for d in back:
            await send(db, _GIVE_BACK_DRAW, {"key": hold.hold_id, "lot": d.lot_id, "back": d.points})
        await send(db, _DROP_EMPTY_DRAWS, {"key": hold.hold_id})
    await send(db, _END_HOLD, {"key": hold.hold_id, "new_state": state.value, "captured": captured})
    member.held -= hold.points
    await ledger.save_member(db, member, now)
    hold.state, hold.captured = state, captured


async def capture(db, *, hold_id: str, points: int, now) -> Hold:
    hold, member, draws = await _lock(db, hold_id)
    require_pending(hold_id, hold.state, hold.expire_time, now)
    if points > hold.points:
        raise invalid("points", "CAPTURE_EXCEEDS_HOLD", f"points {points} is more than the {hold.points} held")
    _, back = domain.keep(draws, points)
    await _end(db, hold, member, back, HoldState.CAPTURED, now, captured=points)
    await ledger.record(db, hold.member_id, domain.MovementKind.SPEND, -points, now, order_id=hold.order_id,
                        store_path=hold.store_path, memo="offset at checkout")
    return hold


async def release(db, *, hold_id: str, now) -> Hold:
    """Give a pending hold's points back. A released or lapsed hold stays as it is."""
    hold, member, draws = await _lock(db, hold_id)
    if hold.state == HoldState.CAPTURED:
        require_pending(hold_id, hold.state, hold.expire_time, now)
    if hold.state == HoldState.PENDING:
        state = HoldState.EXPIRED if hold.expire_time <= now else HoldState.RELEASED
        await _end(db, hold, member, draws, state, now)
    return hold


async def lapsed_holds(db, now, limit: int = 500) -> list[str]:
    rows = await db.execute(select(holds.c.hold_id).where(
        holds.c.state == HoldState.PENDING.value, holds.c.expire_time <= now).order_by(holds.c.expire_time).limit(limit))
    return list(rows.scalars())


async def expire(db, hold_id: str, now) -> None:
    hold, member, draws = await _lock(db, hold_id)
    if hold.state == HoldState.PENDING and hold.expire_time <= now:
        await _end(db, hold, member, draws, HoldState.EXPIRED, now)
