"""The points mall (domain/gifts.py): gifts made, listed and restocked, and redeemed
with points."""

from dataclasses import dataclass, replace

from huiyuan.database import Transaction
from huiyuan.runtime.requests import check_in_scope
from services.points.domain.gifts import Gift, check_limit, check_offered_at, on_line_of, out_of_stock, stock_short
from services.points.domain.lots import MovementKind, draw, insufficient, is_spendable
from services.points.domain.members import Balance
from services.points.storage import gifts, lots, members, movements
from services.points.use_cases import ledger


async def create_gift(tx: Transaction, gift: Gift, now) -> Gift:
    await gifts.insert_gift(tx, gift, now)
    return gift


async def gifts_on_line(tx: Transaction, org_path: str = "") -> list[Gift]:
    """At a store, the gifts redeemable there; above it, also those of the stores below."""
    return on_line_of(await gifts.all_gifts(tx), org_path)


async def gift_by_id(tx: Transaction, gift_id: str) -> Gift:
    return await gifts.gift_by_id(tx, gift_id)


async def adjust_stock(
    tx: Transaction, *, gift_id: str, delta: int, reason: str, operator_id: str, actor_path: str, now
) -> Gift:
    """Add delivered items (delta > 0) or write off lost ones (delta < 0), never below
    zero, however redemptions interleave."""
    gift = await gifts.gift_by_id(tx, gift_id)
    check_in_scope(gift.org_path, actor_path, "gift", "礼品")
    left = await gifts.move_stock(tx, gift_id, delta)
    if left is None:
        raise stock_short(gift_id, delta)
    await gifts.record_stock_change(
        tx,
        gift_id=gift_id,
        delta=delta,
        stock_after=left,
        reason=reason,
        operator_id=operator_id,
        org_path=actor_path,
        now=now,
    )
    return replace(gift, stock=left)


@dataclass
class Redeemed:
    points: int  # spent
    stock_left: int
    balance: Balance  # after the redemption


async def redeem(tx: Transaction, *, member_id: str, gift_id: str, quantity: int, store_path: str, now) -> Redeemed:
    member = await members.lock_member(tx, member_id, now)
    gift = await gifts.gift_by_id(tx, gift_id)
    check_offered_at(gift, store_path)
    if gift.per_member_limit:
        check_limit(gift, await gifts.redeemed(tx, member_id, gift_id), quantity)
    left = await gifts.take_stock(tx, gift_id, quantity)
    if left is None:
        raise out_of_stock(gift_id)
    cost = gift.points * quantity
    lots_now = [lot for lot in await lots.live_lots(tx, member_id, now) if is_spendable(lot, now)]
    available = sum(lot.points_left for lot in lots_now)
    if available < cost:
        raise insufficient(available, cost)
    await lots.move_lots(tx, draw(lots_now, cost), -1)
    await gifts.record_redemption(
        tx, gift_id=gift_id, member_id=member_id, quantity=quantity, points=cost, store_path=store_path, now=now
    )
    await movements.record(
        tx, member_id, MovementKind.SPEND, -cost, now, store_path=store_path, memo=f"{gift.name} x{quantity}"
    )
    await members.save_member(tx, member, now)
    return Redeemed(cost, left, await ledger.balance(tx, member_id, now))
