"""The points mall's gifts, their stock and its changes by hand, and redemptions."""

from sqlalchemy import func, insert, select, update

from huiyuan.database import Transaction, send
from huiyuan.runtime.ids import new_id
from services.points.domain.gifts import Gift, gift_not_found
from services.points.storage.tables import gift_stock_changes, gifts, redemptions

_INSERT_STOCK_CHANGE = insert(gift_stock_changes)  # built once: compiled once


def _gift(row) -> Gift:
    return Gift(row.gift_id, row.name, row.points, row.stock, row.per_member_limit, row.org_path)


async def insert_gift(tx: Transaction, gift: Gift, now) -> None:
    await tx.execute(insert(gifts), {**gift.__dict__, "create_time": now})


async def all_gifts(tx: Transaction) -> list[Gift]:
    """By points, then gift id."""
    return [_gift(r) for r in await tx.execute(select(gifts).order_by(gifts.c.points, gifts.c.gift_id))]


async def gift_by_id(tx: Transaction, gift_id: str) -> Gift:
    row = (await tx.execute(select(gifts).where(gifts.c.gift_id == gift_id))).one_or_none()
    if row is None:
        raise gift_not_found(gift_id)
    return _gift(row)


async def move_stock(tx: Transaction, gift_id: str, delta: int) -> int | None:
    """Stock up or down by delta, never below zero: the stock left, or None if there
    were too few."""
    return (
        await tx.execute(
            update(gifts)
            .where(gifts.c.gift_id == gift_id, gifts.c.stock + delta >= 0)
            .values(stock=gifts.c.stock + delta)
            .returning(gifts.c.stock)
        )
    ).scalar()


async def take_stock(tx: Transaction, gift_id: str, quantity: int) -> int | None:
    """Take quantity items if there are as many: the stock left, or None."""
    took = await tx.execute(
        update(gifts)
        .where(gifts.c.gift_id == gift_id, gifts.c.stock >= quantity)
        .values(stock=gifts.c.stock - quantity)
        .returning(gifts.c.stock)
    )
    return took.scalar()


async def record_stock_change(
    tx: Transaction, *, gift_id: str, delta: int, stock_after: int, reason: str, operator_id: str, org_path: str, now
) -> None:
    await send(
        tx,
        _INSERT_STOCK_CHANGE,
        {
            "change_id": new_id("gs"),
            "gift_id": gift_id,
            "delta": delta,
            "stock_after": stock_after,
            "reason": reason,
            "operator_id": operator_id,
            "org_path": org_path,
            "create_time": now,
        },
    )


async def redeemed(tx: Transaction, member_id: str, gift_id: str) -> int:
    """How many of the gift the member redeemed."""
    return (
        await tx.execute(
            select(func.coalesce(func.sum(redemptions.c.quantity), 0)).where(
                redemptions.c.member_id == member_id, redemptions.c.gift_id == gift_id
            )
        )
    ).scalar()


async def record_redemption(
    tx: Transaction, *, gift_id: str, member_id: str, quantity: int, points: int, store_path: str, now
) -> None:
    await tx.execute(
        insert(redemptions),
        {
            "redemption_id": new_id("rd"),
            "gift_id": gift_id,
            "member_id": member_id,
            "quantity": quantity,
            "points": points,
            "store_path": store_path,
            "create_time": now,
        },
    )
