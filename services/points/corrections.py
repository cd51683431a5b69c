"""Points going back: reversal of a refunded order, and manual adjustments.

A refund takes back what the refunded part earned, in proportion and with cumulative
rounding (partial refunds never take a point too many), from the order's own lots
first. What the member has already spent becomes debt that later accruals pay first:
the balance never goes silently negative. Points the order spent come back to the
lots they were drawn from; a lot that expired meanwhile stays expired.
"""

from datetime import datetime, timezone

from sqlalchemy import func, insert, select, update

from huiyuan.runtime.errors import FailedPrecondition, NotFound
from huiyuan.runtime.holds import HoldState
from huiyuan.runtime.ids import new_id
from services.points import domain, ledger
from services.points.spending import insufficient
from services.points.storage import hold_draws, holds, lots, order_accruals, order_reversals


async def reverse(db, *, member_id: str, order_id: str, refunded_paid_fen: int, returned_points: int,
                  now) -> tuple[int, int, int]:
    """Returns (clawed back, returned, new debt)."""
    member = await ledger.lock_member(db, member_id, now)
    earned = (await db.execute(select(func.coalesce(func.sum(order_accruals.c.points), 0),
                                      func.coalesce(func.sum(order_accruals.c.paid_fen), 0))
                               .where(order_accruals.c.order_id == order_id, order_accruals.c.member_id == member_id))).one()
    spent_holds = (await db.execute(select(holds.c.hold_id, holds.c.captured_points).where(
        holds.c.order_id == order_id, holds.c.member_id == member_id, holds.c.state == HoldState.CAPTURED.value))).all()
    points_earned, paid = int(earned[0]), int(earned[1])
    if not paid and not spent_holds:
        raise NotFound("ORDER_NOT_FOUND", "No points were earned or spent on this order.", "该订单没有积分记录。",
                       order_id=order_id)
    before = (await db.execute(select(func.coalesce(func.sum(order_reversals.c.refunded_paid_fen), 0),
                                      func.coalesce(func.sum(order_reversals.c.returned_points), 0))
                               .where(order_reversals.c.order_id == order_id))).one()
    refunded_before, returned_before = int(before[0]), int(before[1])
    spent = sum(h.captured_points for h in spent_holds)
    if refunded_before + refunded_paid_fen > paid or returned_before + returned_points > spent:
        raise FailedPrecondition(
            "REFUND_EXCEEDS_ORDER", f"The order has {paid - refunded_before} fen and {spent - returned_before} spent points "
            "left to refund.", f"该订单剩余可退金额 {paid - refunded_before} 分、积分 {spent - returned_before}。",
            order_id=order_id)

    def share(refunded: int) -> int:  # cumulative: the total taken back never exceeds the exact share
        return points_earned * refunded // paid if paid else 0

    claw = share(refunded_before + refunded_paid_fen) - share(refunded_before)
    own = await _lots_of_order(db, member_id, order_id)
    lots_now = domain.spend_order(await ledger.spendable_lots(db, member_id, now))
    lots_now.sort(key=lambda lot: lot.lot_id not in own)  # the order's own lots first (a stable sort)
    takeable = min(claw, sum(lot.points_left for lot in lots_now))
    draws = domain.draw_in_order(lots_now, takeable)
    await ledger.move_lots(db, draws, -1)
    new_debt = claw - takeable
    member.debt += new_debt
    if returned_points:
        await _return_spent(db, [h.hold_id for h in spent_holds], returned_points)
    await db.execute(insert(order_reversals), {
        "reversal_id": new_id("rv"), "order_id": order_id, "member_id": member_id,
        "refunded_paid_fen": refunded_paid_fen, "clawed_back_points": claw, "returned_points": returned_points,
        "new_debt_points": new_debt, "create_time": now})
    await ledger.record(db, member_id, domain.MovementKind.REVERSAL, returned_points - claw, now, order_id=order_id,
                        memo=f"refund: {claw} earned taken back, {returned_points} spent returned"
                             + (f", {new_debt} owed" if new_debt else ""))
    await ledger.save_member(db, member, now)
    return claw, returned_points, new_debt


async def _lots_of_order(db, member_id: str, order_id: str) -> set[str]:
    # By member first: the member's lots are indexed, and few; all lots with an order are not.
    return set((await db.execute(select(lots.c.lot_id).where(lots.c.member_id == member_id,
                                                             lots.c.order_id == order_id))).scalars())


async def _return_spent(db, hold_ids: list[str], points: int) -> None:
    """Give spent points back to the lots they came from, the latest-expiring first
    (the reverse of how they were taken). What is given back leaves hold_draws, which
    keeps what is still spent, so a second partial return never over-fills a lot."""
    rows = (await db.execute(select(hold_draws.c.hold_id, hold_draws.c.lot_id, hold_draws.c.points, lots.c.expire_time)
                             .join(lots, lots.c.lot_id == hold_draws.c.lot_id)
                             .where(hold_draws.c.hold_id.in_(hold_ids), hold_draws.c.points > 0))).all()
    far = datetime.max.replace(tzinfo=timezone.utc)
    for row in sorted(rows, key=lambda r: (r.expire_time or far, r.lot_id, r.hold_id), reverse=True):
        give = min(points, row.points)
        if not give:
            continue
        points -= give
        await ledger.move_lots(db, [domain.Draw(row.lot_id, give)], +1)
        await db.execute(update(hold_draws).where(hold_draws.c.hold_id == row.hold_id, hold_draws.c.lot_id == row.lot_id)
                         .values(points=hold_draws.c.points - give))
    assert points == 0, "returning more than was spent"


async def adjust(db, *, member_id: str, delta: int, reason: str, store_path: str, now) -> None:
    member = await ledger.lock_member(db, member_id, now)
    if delta > 0:
        await ledger.grant(db, member_id=member_id, points=delta, source=domain.LotSource.ADJUSTMENT,
                           expiry=domain.Expiry(), pending_days=0, store_path=store_path, now=now, memo=reason,
                           member=member)
        return
    lots_now = await ledger.spendable_lots(db, member_id, now)
    available = sum(lot.points_left for lot in lots_now)
    if available < -delta:
        raise insufficient(available, -delta)
    await ledger.move_lots(db, domain.draw(lots_now, -delta), -1)
    await ledger.record(db, member_id, domain.MovementKind.ADJUSTMENT, delta, now, store_path=store_path, memo=reason)
