"""Returns: the discounts of returned goods given back to the campaigns that paid them.
Never more than a campaign gave the order; a use given back whole no longer counts as
an order. Coupons stay used, as at the till."""

from collections.abc import Mapping, Sequence
from typing import Protocol

from huiyuan.runtime.errors import FailedPrecondition, NotFound
from huiyuan.runtime.holds import HoldState


class Reservation(Protocol):
    @property
    def reservation_id(self) -> str: ...
    @property
    def state(self) -> str: ...


class Use(Protocol):
    """A campaign's discount on one reservation, and what returns gave back of it."""

    @property
    def amount_fen(self) -> int: ...
    @property
    def returned_fen(self) -> int: ...


def redeemed(order_id: str, reservations: Sequence[Reservation]) -> str:
    """The reservation of the order whose discounts were booked."""
    found = [r.reservation_id for r in reservations if r.state == HoldState.CAPTURED.value]
    if not found:
        if reservations:
            raise FailedPrecondition(
                "RESERVATION_NOT_REDEEMED",
                "The order's discounts were never booked.",
                "该订单的优惠未曾核销。",
                order_id=order_id,
            )
        raise NotFound(
            "RESERVATION_NOT_FOUND", "No reservation for this order.", "该订单没有预占记录。", order_id=order_id
        )
    return found[0]


def check_returns(order_id: str, uses: Mapping[str, Use], amounts: dict[str, int]) -> None:
    """Refuse to give a campaign back more than it gave the order."""
    for campaign_id, amount in sorted(amounts.items()):
        use = uses.get(campaign_id)
        if use is None or use.returned_fen + amount > use.amount_fen:
            given = 0 if use is None else use.amount_fen - use.returned_fen
            raise FailedPrecondition(
                "RETURN_EXCEEDS_DISCOUNT",
                f"Campaign {campaign_id} has {given} fen of this order's discount left to give back, not {amount}.",
                f"活动 {campaign_id} 在本订单上可退回的优惠为 {given} 分，不足 {amount} 分。",
                campaign_id=campaign_id,
                order_id=order_id,
            )


def returned(uses: Mapping[str, Use], amounts: dict[str, int]) -> list[tuple[str, dict[str, int]]]:
    """What the returns take off each campaign's stats, in id order."""
    return [
        (
            campaign_id,
            {
                "discount_fen": -amount,
                "orders": -1 if uses[campaign_id].returned_fen + amount == uses[campaign_id].amount_fen else 0,
            },
        )
        for campaign_id, amount in sorted(amounts.items())
    ]
