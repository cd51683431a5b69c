"""Offset at checkout: hold -> capture | release. A hold takes its points out of the
soonest-expiring lots at once (so expiry can never take held points); a capture keeps
what it spends and gives the rest back; a release or a lapse gives everything back
(to lots that may have expired meanwhile: the next expiry run takes those)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select, update

from huiyuan.database.direct import execute_together, send
from huiyuan.runtime.errors import DomainError, FailedPrecondition, NotFound, invalid
from huiyuan.runtime.holds import HoldState, require_pending
from services.points import domain, ledger
from services.points.storage import hold_draws, holds, lots, member_points

# Holds to end (a batch of captures, or one release or lapse): their members, locked
# in member_id order (as ledger.lock_with_lots), then the holds, in hold_id order,
# then their draws, and the members' live lots: one round trip.
_HOLD_IDS = bindparam("hold_ids", expanding=True)
_LOCK_MEMBERS_OF_HOLDS = select(member_points).where(member_points.c.member_id.in_(
    select(holds.c.member_id).where(holds.c.hold_id.in_(_HOLD_IDS)))).order_by(member_points.c.member_id).with_for_update()
_LOCK_HOLDS = select(holds).where(holds.c.hold_id.in_(_HOLD_IDS)).order_by(holds.c.hold_id).with_for_update()
_LIVE_LOTS_OF_HOLDS = ledger.live_lots_where(lots.c.member_id.in_(
    select(holds.c.member_id).where(holds.c.hold_id.in_(_HOLD_IDS))))
_DRAWS_OF_HOLDS = select(hold_draws, lots.c.member_id, lots.c.points_left, lots.c.expire_time, lots.c.available_time
                         ).join(lots, lots.c.lot_id == hold_draws.c.lot_id).where(hold_draws.c.hold_id.in_(_HOLD_IDS))
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


@dataclass(frozen=True)
class HoldAsk:
    hold_id: str
    member_id: str
    points: int
    ttl: timedelta
    order_id: str
    store_path: str


@dataclass(frozen=True)
class CaptureAsk:
    hold_id: str
    points: int


@dataclass
class Captured:
    hold: Hold
    balance: ledger.Balance  # as this capture left it


async def place_holds(db, asks: list[HoldAsk], now) -> list[Hold | DomainError]:
    """Place the holds in the order asked (a batch, database/batching.py; or one), each
    against what the ones before it left in the member's lots: the hold, or the
    refusal, of each. A refused one writes nothing."""
    members, live, _ = await ledger.lock_with_lots(db, [a.member_id for a in asks], now, make=False)
    placed: list[Hold | DomainError] = []
    draws: list[tuple[str, domain.Draw]] = []
    for ask in asks:
        spendable = [lot for lot in live[ask.member_id] if domain.is_spendable(lot, now)]
        available = sum(lot.points_left for lot in spendable)
        if available < ask.points:
            placed.append(insufficient(available, ask.points))
            continue
        # draw() takes the points out of the lots in memory: the next ask sees what is left
        draws += [(ask.hold_id, d) for d in domain.draw(spendable, ask.points)]
        members[ask.member_id].held += ask.points
        placed.append(Hold(ask.hold_id, ask.member_id, ask.points, 0, HoldState.PENDING, ask.order_id, ask.store_path,
                           now + ask.ttl))
    held = [h for h in placed if isinstance(h, Hold)]
    await ledger.move_lots(db, [d for _, d in draws], -1)
    await send(db, _INSERT_DRAWS, [{"hold_id": hold_id, "lot_id": d.lot_id, "points": d.points} for hold_id, d in draws])
    await send(db, _INSERT_HOLD, [{
        "hold_id": h.hold_id, "member_id": h.member_id, "points": h.points, "captured_points": 0, "state": h.state.value,
        "order_id": h.order_id, "store_path": h.store_path, "expire_time": h.expire_time, "create_time": now}
        for h in held])
    await ledger.save_members(db, [members[m] for m in {h.member_id for h in held}], now)
    return placed


async def _lock(db, hold_id: str, now) -> tuple[Hold, ledger.MemberPoints, list[domain.Draw]]:
    """One hold to end, its member and its draws, locked as a batch locks them."""
    members, found, draws, _ = await _lock_holds(db, [hold_id], now)
    if hold_id not in found:
        raise hold_not_found(hold_id)
    hold = found[hold_id]
    return hold, members[hold.member_id], draws[hold_id]


def hold_not_found(hold_id: str) -> NotFound:
    return NotFound("HOLD_NOT_FOUND", "No such hold.", "冻结记录不存在。", hold_id=hold_id)


def _to_hold(r) -> Hold:
    return Hold(r.hold_id, r.member_id, r.points, r.captured_points, HoldState(r.state), r.order_id, r.store_path,
                r.expire_time)


async def _lock_holds(db, hold_ids: list[str], now) -> tuple[dict[str, ledger.MemberPoints], dict[str, Hold],
                                                             dict[str, list[domain.Draw]], dict[str, list[domain.Lot]]]:
    """A batch's holds' members (locked in member_id order, as every batch locks them),
    the holds (locked in hold_id order), their draws and the members' live lots: one
    round trip."""
    ids = {"hold_ids": sorted(set(hold_ids))}
    members, held, drawn, live = (rows.all() for rows in await execute_together(
        db, (_LOCK_MEMBERS_OF_HOLDS, ids), (_LOCK_HOLDS, ids), (_DRAWS_OF_HOLDS, ids),
        (_LIVE_LOTS_OF_HOLDS, {**ids, "now": now})))
    draws: dict[str, list[domain.Draw]] = {r.hold_id: [] for r in held}
    lots_now = ledger.lots_by_member(live, [r.member_id for r in members])
    known = {lot.lot_id for member_lots in lots_now.values() for lot in member_lots}
    for d in sorted(drawn, key=lambda d: domain.spend_key(d.expire_time, d.lot_id)):  # as drawn: keep() keeps the first
        draws[d.hold_id].append(domain.Draw(d.lot_id, d.points))
        if d.lot_id not in known:  # a lot its holds emptied is not live, until a capture gives points back
            lots_now[d.member_id].append(ledger.lot_of(d))
            known.add(d.lot_id)
    return ({r.member_id: ledger.MemberPoints(r.member_id, r.held_points, r.debt_points) for r in members},
            {r.hold_id: _to_hold(r) for r in held}, draws, lots_now)


async def _end_holds(db, ended: list[Hold], back: list[tuple[str, domain.Draw]]) -> None:
    """Write the holds' new states, and give back to their lots what they do not keep
    (what stays in hold_draws is what a capture spent)."""
    await ledger.move_lots(db, [d for _, d in back], +1)
    await send(db, _GIVE_BACK_DRAW, [{"key": hold_id, "lot": d.lot_id, "back": d.points} for hold_id, d in back])
    await send(db, _DROP_EMPTY_DRAWS, [{"key": hold_id} for hold_id in sorted({hold_id for hold_id, _ in back})])
    await send(db, _END_HOLD, [{"key": h.hold_id, "new_state": h.state.value, "captured": h.captured}
                               for h in sorted(ended, key=lambda h: h.hold_id)])


async def _end(db, hold: Hold, member: ledger.MemberPoints, back: list[domain.Draw], state: HoldState, now) -> None:
    hold.state = state
    await _end_holds(db, [hold], [(hold.hold_id, d) for d in back])
    member.held -= hold.points
    await ledger.save_member(db, member, now)


async def capture_holds(db, asks: list[CaptureAsk], now) -> list[Captured | DomainError]:
    """Capture the holds in the order asked (a batch; or one): each keeps the points it
    spends and gives the rest back. The capture, with its member's balance as it left
    it, or the refusal, of each; a refused one writes nothing."""
    members, found, draws, live = await _lock_holds(db, [a.hold_id for a in asks], now)
    outcomes: list[Captured | DomainError] = []
    ended: list[Hold] = []
    back: list[tuple[str, domain.Draw]] = []
    spent: list[dict] = []
    for ask in asks:
        hold = found.get(ask.hold_id)
        try:
            _check_capturable(ask, hold, now)
        except DomainError as refusal:
            outcomes.append(refusal)
            continue
        member, member_lots = members[hold.member_id], {lot.lot_id: lot for lot in live[hold.member_id]}
        for d in domain.keep(draws[hold.hold_id], ask.points)[1]:
            back.append((hold.hold_id, d))
            member_lots[d.lot_id].points_left += d.points  # one past its date meanwhile counts nowhere (is_live)
        hold.state, hold.captured = HoldState.CAPTURED, ask.points
        member.held -= hold.points
        ended.append(hold)
        spent.append(ledger.movement_row(hold.member_id, domain.MovementKind.SPEND, -ask.points, now,
                                         order_id=hold.order_id, store_path=hold.store_path, memo="offset at checkout"))
        outcomes.append(Captured(hold, ledger.balance_of(member, live[hold.member_id], now)))
    await _end_holds(db, ended, back)
    await ledger.record_all(db, spent)
    await ledger.save_members(db, [members[m] for m in {h.member_id for h in ended}], now)
    return outcomes


def _check_capturable(ask: CaptureAsk, hold: Hold | None, now) -> None:
    if hold is None:
        raise hold_not_found(ask.hold_id)
    require_pending(ask.hold_id, hold.state, hold.expire_time, now)
    if ask.points > hold.points:
        raise invalid("points", "CAPTURE_EXCEEDS_HOLD", f"points {ask.points} is more than the {hold.points} held")


async def release(db, *, hold_id: str, now) -> Hold:
    """Give a pending hold's points back. A released or lapsed hold stays as it is."""
    hold, member, draws = await _lock(db, hold_id, now)
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
    hold, member, draws = await _lock(db, hold_id, now)
    if hold.state == HoldState.PENDING and hold.expire_time <= now:
        await _end(db, hold, member, draws, HoldState.EXPIRED, now)
