"""Points going back: reversal of a refunded order, and manual adjustments.

A refund takes back what the refunded part earned, in proportion and with cumulative
rounding (partial refunds never take a point too many), from the order's own lots
first. What the member has already spent becomes debt that later accruals pay first:
the balance never goes silently negative. Points the order spent come back to the
lots they were drawn from; a lot that expired meanwhile stays expired.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from huiyuan.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from services.points.domain.lots import Draw, Lot, draw_in_order, spend_order


@dataclass(frozen=True)
class OrderPoints:
    """What an order earned and spent, and what its refunds before took back."""

    earned: int
    paid_fen: int
    spent: int  # points its captured holds spent
    refunded_fen_before: int
    returned_before: int


def check_known(order_id: str, paid_fen: int, spent_holds: int) -> None:
    if not paid_fen and not spent_holds:
        raise NotFound(
            "ORDER_NOT_FOUND",
            "No points were earned or spent on this order.",
            "该订单没有积分记录。",
            order_id=order_id,
        )


def clawback(order_id: str, order: OrderPoints, refunded_paid_fen: int, returned_points: int) -> int:
    """The points a refund takes back of what the order earned; refused if the refund
    goes past what the order paid or spent."""
    paid, spent = order.paid_fen, order.spent
    refunded_before, returned_before = order.refunded_fen_before, order.returned_before
    if refunded_before + refunded_paid_fen > paid or returned_before + returned_points > spent:
        raise FailedPrecondition(
            "REFUND_EXCEEDS_ORDER",
            f"The order has {paid - refunded_before} fen and {spent - returned_before} spent points left to refund.",
            f"该订单剩余可退金额 {paid - refunded_before} 分、积分 {spent - returned_before}。",
            order_id=order_id,
        )

    def share(refunded: int) -> int:  # cumulative: the total taken back never exceeds the exact share
        return order.earned * refunded // paid if paid else 0

    return share(refunded_before + refunded_paid_fen) - share(refunded_before)


def take_back(spendable: list[Lot], own_lot_ids: set[str], claw: int) -> tuple[list[Draw], int]:
    """The draws that take clawed-back points out of the member's spendable lots, the
    order's own lots first, and what is left owed (new debt)."""
    lots_now = spend_order(spendable)
    lots_now.sort(key=lambda lot: lot.lot_id not in own_lot_ids)  # the order's own lots first (a stable sort)
    takeable = min(claw, sum(lot.points_left for lot in lots_now))
    return draw_in_order(lots_now, takeable), claw - takeable


@dataclass(frozen=True)
class SpentDraw:
    """Points a captured hold still holds spent from one lot."""

    hold_id: str
    lot_id: str
    points: int
    expire_time: datetime | None


_FAR = datetime.max.replace(tzinfo=UTC)


def give_back(spent: list[SpentDraw], points: int) -> list[SpentDraw]:
    """What returned points give back to each lot they came from, the latest-expiring
    first (the reverse of how they were taken)."""
    given: list[SpentDraw] = []
    for d in sorted(spent, key=lambda d: (d.expire_time or _FAR, d.lot_id, d.hold_id), reverse=True):
        give = min(points, d.points)
        if not give:
            continue
        points -= give
        given.append(SpentDraw(d.hold_id, d.lot_id, give, d.expire_time))
    assert points == 0, "returning more than was spent"
    return given


def check_may_adjust(org_path: str) -> None:
    """Only HQ and the regional offices adjust a member's points by hand."""
    if org_path.count("/") > 1:
        raise PermissionDenied(
            "ADJUSTMENT_NOT_ALLOWED", "Only HQ and regional offices adjust points.", "只有总部和区域可以调整积分。"
        )
