"""Reversals of refunded orders: what each took back and returned."""

from sqlalchemy import func, insert, select

from huiyuan.database import Transaction
from huiyuan.runtime.ids import new_id
from services.points.storage.tables import order_reversals


async def reversed_before(tx: Transaction, order_id: str) -> tuple[int, int]:
    """(fen refunded, spent points returned) by the order's reversals so far."""
    before = (
        await tx.execute(
            select(
                func.coalesce(func.sum(order_reversals.c.refunded_paid_fen), 0),
                func.coalesce(func.sum(order_reversals.c.returned_points), 0),
            ).where(order_reversals.c.order_id == order_id)
        )
    ).one()
    return int(before[0]), int(before[1])


async def record_reversal(
    tx: Transaction,
    *,
    order_id: str,
    member_id: str,
    refunded_paid_fen: int,
    clawed_back: int,
    returned_points: int,
    new_debt: int,
    now,
) -> None:
    await tx.execute(
        insert(order_reversals),
        {
            "reversal_id": new_id("rv"),
            "order_id": order_id,
            "member_id": member_id,
            "refunded_paid_fen": refunded_paid_fen,
            "clawed_back_points": clawed_back,
            "returned_points": returned_points,
            "new_debt_points": new_debt,
            "create_time": now,
        },
    )
