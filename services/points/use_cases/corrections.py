"""Points going back: reversal of a refunded order, and manual adjustments
(domain/reversals.py)."""

from dataclasses import dataclass

from huiyuan.database import Transaction
from services.points.domain.lots import Expiry, LotSource, MovementKind, draw, insufficient, is_spendable
from services.points.domain.members import Balance
from services.points.domain.reversals import OrderPoints, check_known, clawback, give_back, take_back
from services.points.storage import holds, lots, members, movements, reversals, rules as stored_rules
from services.points.use_cases import ledger


@dataclass
class Reversed:
    clawed_back: int
    returned: int
    new_debt: int
    balance: Balance  # after the reversal


async def reverse(
    tx: Transaction, *, member_id: str, order_id: str, refunded_paid_fen: int, returned_points: int, now
) -> Reversed:
    member = await members.lock_member(tx, member_id, now)
    points_earned, paid = await stored_rules.earned_by_order(tx, order_id, member_id)
    spent_holds = await holds.captured_of_order(tx, order_id, member_id)
    check_known(order_id, paid, len(spent_holds))
    refunded_before, returned_before = await reversals.reversed_before(tx, order_id)
    claw = clawback(
        order_id,
        OrderPoints(points_earned, paid, sum(spent_holds.values()), refunded_before, returned_before),
        refunded_paid_fen,
        returned_points,
    )
    own = await lots.lot_ids_of_order(tx, member_id, order_id)
    spendable = [lot for lot in await lots.live_lots(tx, member_id, now) if is_spendable(lot, now)]
    draws, new_debt = take_back(spendable, own, claw)
    await lots.move_lots(tx, draws, -1)
    member.debt += new_debt
    if returned_points:
        for given in give_back(await holds.spent_draws(tx, list(spent_holds)), returned_points):
            await holds.return_spent(tx, given)
    await reversals.record_reversal(
        tx,
        order_id=order_id,
        member_id=member_id,
        refunded_paid_fen=refunded_paid_fen,
        clawed_back=claw,
        returned_points=returned_points,
        new_debt=new_debt,
        now=now,
    )
    await movements.record(
        tx,
        member_id,
        MovementKind.REVERSAL,
        returned_points - claw,
        now,
        order_id=order_id,
        memo=f"refund: {claw} earned taken back, {returned_points} spent returned"
        + (f", {new_debt} owed" if new_debt else ""),
    )
    await members.save_member(tx, member, now)
    return Reversed(claw, returned_points, new_debt, await ledger.balance(tx, member_id, now))


async def adjust(tx: Transaction, *, member_id: str, delta: int, reason: str, store_path: str, now) -> Balance:
    """Points given (delta > 0) or taken (delta < 0) by hand; the balance after."""
    member = await members.lock_member(tx, member_id, now)
    if delta > 0:
        await ledger.grant(
            tx,
            member_id=member_id,
            points=delta,
            source=LotSource.ADJUSTMENT,
            expiry=Expiry(),
            pending_days=0,
            store_path=store_path,
            now=now,
            memo=reason,
            member=member,
        )
    else:
        lots_now = [lot for lot in await lots.live_lots(tx, member_id, now) if is_spendable(lot, now)]
        available = sum(lot.points_left for lot in lots_now)
        if available < -delta:
            raise insufficient(available, -delta)
        await lots.move_lots(tx, draw(lots_now, -delta), -1)
        await movements.record(tx, member_id, MovementKind.ADJUSTMENT, delta, now, store_path=store_path, memo=reason)
    return await ledger.balance(tx, member_id, now)
