"""The points mall: gifts with stock, per-member limits and a scope.

Stock is taken with one conditional change (stock >= quantity), so fifty redemptions
of the last ten never sell eleven; the member's row lock makes the per-member limit
and the points check hold together; a refusal rolls the whole redemption back. A
back office adds stock or writes it off the same way (stock + delta >= 0), and each
such change is recorded with who, why and what was left.
"""

from dataclasses import dataclass

from huiyuan.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from huiyuan.runtime.requests import is_under, on_line


@dataclass
class Gift:
    gift_id: str
    name: str
    points: int
    stock: int
    per_member_limit: int  # 0: no limit
    org_path: str


def on_line_of(gifts: list[Gift], org_path: str) -> list[Gift]:
    """At a store, the gifts redeemable there; above it, also those of the stores below
    ("": every gift)."""
    return [g for g in gifts if not org_path or on_line(g.org_path, org_path)]


def gift_not_found(gift_id: str) -> NotFound:
    return NotFound("GIFT_NOT_FOUND", "No such gift.", "礼品不存在。", gift_id=gift_id)


def check_offered_at(gift: Gift, store_path: str) -> None:
    if not is_under(store_path, gift.org_path):
        raise PermissionDenied("GIFT_NOT_IN_SCOPE", "This gift is not offered at this store.", "该门店不提供此礼品。")


def check_limit(gift: Gift, taken: int, quantity: int) -> None:
    """taken: how many of the gift the member redeemed before."""
    if taken + quantity > gift.per_member_limit:
        raise FailedPrecondition(
            "REDEMPTION_LIMIT_REACHED",
            f"A member may redeem this gift {gift.per_member_limit} times; {taken} done.",
            f"每位会员限兑 {gift.per_member_limit} 次，已兑 {taken} 次。",
        )


def out_of_stock(gift_id: str) -> FailedPrecondition:
    return FailedPrecondition("OUT_OF_STOCK", "This gift is out of stock.", "该礼品库存不足。", gift_id=gift_id)


def stock_short(gift_id: str, delta: int) -> FailedPrecondition:
    return FailedPrecondition(
        "STOCK_SHORT",
        f"Fewer than {-delta} items are left to write off.",
        f"库存不足 {-delta} 件，无法报损。",
        gift_id=gift_id,
    )
