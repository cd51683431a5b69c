"""The points mall: gifts with stock, per-member limits and a scope.

Stock is taken with one conditional UPDATE (stock >= quantity), so fifty redemptions
of the last ten never sell eleven; the member's row lock makes the per-member limit
and the points check hold together; a refusal rolls the whole redemption back. A
back office adds stock or writes it off the same way (stock + delta >= 0), and each
such change is recorded with who, why and what was left.
"""

from dataclasses import dataclass, replace

from sqlalchemy import func, insert, select, update

from huiyuan.database.direct import send
from huiyuan.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.requests import check_in_scope, is_under, on_line
from services.points import domain, ledger
from services.points.spending import insufficient
from services.points.storage import gift_stock_changes, gifts, redemptions


@dataclass
class Gift:
    gift_id: str
    name: str
    points: int
    stock: int
    per_member_limit: int
    org_path: str


def _gift(row) -> Gift:
    return Gift(row.gift_id, row.name, row.points, row.stock, row.per_member_limit, row.org_path)


async def create_gift(db, gift: Gift, now) -> Gift:
    await db.execute(insert(gifts), {**gift.__dict__, "create_time": now})
    return gift


async def gifts_on_line(db, org_path: str = "") -> list[Gift]:
    """At a store, the gifts redeemable there; above it, also those of the stores below."""
    found = [_gift(r) for r in await db.execute(select(gifts).order_by(gifts.c.points, gifts.c.gift_id))]
    return [g for g in found if not org_path or on_line(g.org_path, org_path)]


async def gift_by_id(db, gift_id: str) -> Gift:
    row = (await db.execute(select(gifts).where(gifts.c.gift_id == gift_id))).one_or_none()
    if row is None:
        raise NotFound("GIFT_NOT_FOUND", "No such gift.", "礼品不存在。", gift_id=gift_id)
    return _gift(row)


async def adjust_stock(db, *, gift_id: str, delta: int, reason: str, operator_id: str, actor_path: str, now) -> Gift:
    """Add delivered items (delta > 0) or write off lost ones (delta < 0), never below
    zero, however redemptions interleave."""
    gift = await gift_by_id(db, gift_id)
    check_in_scope(gift.org_path, actor_path, "gift", "礼品")
    left = (await db.execute(update(gifts).where(gifts.c.gift_id == gift_id, gifts.c.stock + delta >= 0)
                             .values(stock=gifts.c.stock + delta).returning(gifts.c.stock))).scalar()
    if left is None:
        raise FailedPrecondition("STOCK_SHORT", f"Fewer than {-delta} items are left to write off.",
                                 f"库存不足 {-delta} 件，无法报损。", gift_id=gift_id)
    await send(db, insert(gift_stock_changes), {
        "change_id": new_id("gs"), "gift_id": gift_id, "delta": delta, "stock_after": left, "reason": reason,
        "operator_id": operator_id, "org_path": actor_path, "create_time": now})
    return replace(gift, stock=left)


async def redeem(db, *, member_id: str, gift_id: str, quantity: int, store_path: str, now) -> tuple[int, int]:
    """Returns (points spent, stock left)."""
    member = await ledger.lock_member(db, member_id, now)
    gift = await gift_by_id(db, gift_id)
    if not is_under(store_path, gift.org_path):
        raise PermissionDenied("GIFT_NOT_IN_SCOPE", "This gift is not offered at this store.", "该门店不提供此礼品。")
    if gift.per_member_limit:
        taken = (await db.execute(select(func.coalesce(func.sum(redemptions.c.quantity), 0)).where(
            redemptions.c.member_id == member_id, redemptions.c.gift_id == gift_id))).scalar()
        if taken + quantity > gift.per_member_limit:
            raise FailedPrecondition("REDEMPTION_LIMIT_REACHED",
                                     f"A member may redeem this gift {gift.per_member_limit} times; {taken} done.",
                                     f"每位会员限兑 {gift.per_member_limit} 次，已兑 {taken} 次。")
    took = await db.execute(update(gifts).where(gifts.c.gift_id == gift_id, gifts.c.stock >= quantity)
                            .values(stock=gifts.c.stock - quantity).returning(gifts.c.stock))
    left = took.scalar()
    if left is None:
        raise FailedPrecondition("OUT_OF_STOCK", "This gift is out of stock.", "该礼品库存不足。", gift_id=gift_id)
    cost = gift.points * quantity
    lots_now = await ledger.spendable_lots(db, member_id, now)
    available = sum(lot.points_left for lot in lots_now)
    if available < cost:
        raise insufficient(available, cost)
    await ledger.move_lots(db, domain.draw(lots_now, cost), -1)
    await db.execute(insert(redemptions), {"redemption_id": new_id("rd"), "gift_id": gift_id, "member_id": member_id,
                                           "quantity": quantity, "points": cost, "store_path": store_path,
                                           "create_time": now})
    await ledger.record(db, member_id, domain.MovementKind.SPEND, -cost, now, store_path=store_path,
                        memo=f"{gift.name} x{quantity}")
    await ledger.save_member(db, member, now)
    return cost, left
