"""Offset at checkout: holds placed, captured, released or lapsed (domain/holds.py).
Holds and captures that arrive together run as one batch, in one transaction."""

from dataclasses import dataclass
from datetime import timedelta

from huiyuan.database import Transaction
from huiyuan.runtime.errors import DomainError
from huiyuan.runtime.holds import HoldState
from services.points.domain.holds import Hold, check_capturable, has_lapsed, hold_not_found, release_state
from services.points.domain.lots import Draw, MovementKind, draw, insufficient, is_spendable, keep
from services.points.domain.members import Balance, MemberPoints, balance_of
from services.points.storage import holds, members, movements


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
    balance: Balance  # as this capture left it


async def place_holds(tx: Transaction, asks: list[HoldAsk], now) -> list[Hold | DomainError]:
    """Place the holds in the order asked (a batch, huiyuan/database/batching.py; or
    one), each against what the ones before it left in the member's lots: the hold, or
    the refusal, of each. A refused one writes nothing."""
    found, live, _ = await members.lock_with_lots(tx, [a.member_id for a in asks], now, make=False)
    placed: list[Hold | DomainError] = []
    draws: list[tuple[str, Draw]] = []
    for ask in asks:
        spendable = [lot for lot in live[ask.member_id] if is_spendable(lot, now)]
        available = sum(lot.points_left for lot in spendable)
        if available < ask.points:
            placed.append(insufficient(available, ask.points))
            continue
        # draw() takes the points out of the lots in memory: the next ask sees what is left
        draws += [(ask.hold_id, d) for d in draw(spendable, ask.points)]
        found[ask.member_id].held += ask.points
        placed.append(
            Hold(
                ask.hold_id,
                ask.member_id,
                ask.points,
                0,
                HoldState.PENDING,
                ask.order_id,
                ask.store_path,
                now + ask.ttl,
            )
        )
    held = [h for h in placed if isinstance(h, Hold)]
    await holds.place(tx, held, draws, now)
    await members.save_members(tx, [found[m] for m in {h.member_id for h in held}], now)
    return placed


async def _lock(tx: Transaction, hold_id: str, now) -> tuple[Hold, MemberPoints, list[Draw]]:
    """One hold to end, its member and its draws, locked as a batch locks them."""
    found_members, found, draws, _ = await holds.lock_holds(tx, [hold_id], now)
    if hold_id not in found:
        raise hold_not_found(hold_id)
    hold = found[hold_id]
    return hold, found_members[hold.member_id], draws[hold_id]


async def _end(tx: Transaction, hold: Hold, member: MemberPoints, back: list[Draw], state: HoldState, now) -> None:
    hold.state = state
    await holds.end_holds(tx, [hold], [(hold.hold_id, d) for d in back])
    member.held -= hold.points
    await members.save_member(tx, member, now)


async def capture_holds(tx: Transaction, asks: list[CaptureAsk], now) -> list[Captured | DomainError]:
    """Capture the holds in the order asked (a batch; or one): each keeps the points it
    spends and gives the rest back. The capture, with its member's balance as it left
    it, or the refusal, of each; a refused one writes nothing."""
    found_members, found, draws, live = await holds.lock_holds(tx, [a.hold_id for a in asks], now)
    outcomes: list[Captured | DomainError] = []
    ended: list[Hold] = []
    back: list[tuple[str, Draw]] = []
    spent: list[dict] = []
    for ask in asks:
        try:
            hold = check_capturable(ask.hold_id, ask.points, found.get(ask.hold_id), now)
        except DomainError as refusal:
            outcomes.append(refusal)
            continue
        member, member_lots = found_members[hold.member_id], {lot.lot_id: lot for lot in live[hold.member_id]}
        for d in keep(draws[hold.hold_id], ask.points)[1]:
            back.append((hold.hold_id, d))
            member_lots[d.lot_id].points_left += d.points  # one past its date meanwhile counts nowhere (is_live)
        hold.state, hold.captured = HoldState.CAPTURED, ask.points
        member.held -= hold.points
        ended.append(hold)
        spent.append(
            movements.movement_row(
                hold.member_id,
                MovementKind.SPEND,
                -ask.points,
                now,
                order_id=hold.order_id,
                store_path=hold.store_path,
                memo="offset at checkout",
            )
        )
        outcomes.append(Captured(hold, balance_of(member, live[hold.member_id], now)))
    await holds.end_holds(tx, ended, back)
    await movements.record_all(tx, spent)
    await members.save_members(tx, [found_members[m] for m in {h.member_id for h in ended}], now)
    return outcomes


async def release(tx: Transaction, *, hold_id: str, now) -> Hold:
    """Give a pending hold's points back. A released or lapsed hold stays as it is."""
    hold, member, draws = await _lock(tx, hold_id, now)
    state = release_state(hold, now)
    if state is not None:
        await _end(tx, hold, member, draws, state, now)
    return hold


async def lapsed_holds(tx: Transaction, now, limit: int = 500) -> list[str]:
    """Pending holds past their deadline, the oldest first (the sweeper's)."""
    return await holds.lapsed_holds(tx, now, limit)


async def expire(tx: Transaction, hold_id: str, now) -> None:
    """Lapse a hold past its deadline; one no longer pending stays as it is."""
    hold, member, draws = await _lock(tx, hold_id, now)
    if has_lapsed(hold, now):
        await _end(tx, hold, member, draws, HoldState.EXPIRED, now)
