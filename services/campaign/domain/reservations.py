"""Reservations: an order's coupons and campaign discounts held (a hold, as
huiyuan.runtime.holds says) until the order is paid (redeemed, CAPTURED), released, or
the hold lapses; then the coupons are used or AVAILABLE again, and the discounts
given or handed back to the campaigns' budgets."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from huiyuan.runtime.errors import FailedPrecondition, NotFound
from huiyuan.runtime.holds import HoldState
from services.campaign.domain import coupons
from services.campaign.domain.budgets import Adjusted, Limits
from services.campaign.domain.campaigns import not_found as campaign_not_found


@dataclass(frozen=True)
class ReserveAsk:
    """One order's coupons and discounts to reserve, as the caller asked (checked)."""

    reservation_id: str
    member_id: str
    codes: list[str]
    order_id: str
    store_path: str
    ttl: timedelta
    adjustments: list[Adjusted]  # the quote's, each paid by a campaign's budget (budgets.booked)
    payable_fen: int = 0  # the order's amount to pay after its discounts (the reports' sales)


def coupon_discounts(ask: ReserveAsk) -> dict[str, int]:
    """What each of the ask's coupons takes off the order (its adjustments'), by code."""
    found: dict[str, int] = {}
    for a in ask.adjustments:
        if a.coupon_code:
            found[a.coupon_code] = found.get(a.coupon_code, 0) + a.amount_fen
    return found


def not_found(reservation_id: str) -> NotFound:
    return NotFound("RESERVATION_NOT_FOUND", "No such reservation.", "预占记录不存在。", reservation_id=reservation_id)


def check_coupons(ask: ReserveAsk, rows: Mapping[str, coupons.Held], taken: set[str], now: datetime) -> None:
    """Refuse an ask that presents a coupon it cannot use now (taken: reserved by an ask
    before it in the same batch)."""
    for code in ask.codes:
        reason = "COUPON_RESERVED" if code in taken else coupons.refusal(rows.get(code), ask.member_id, now)
        if reason:
            raise coupons.refused(code, reason)


def check_campaigns(discounts: dict[str, int], limits: Mapping[str, Limits]) -> None:
    """Refuse discounts of campaigns there are none of (limits: those there are)."""
    for campaign_id in sorted(discounts):
        if campaign_id not in limits:
            raise campaign_not_found(campaign_id)


def redeeming(reservation_id: str, state: str, expire_time: datetime, now: datetime) -> bool:
    """Whether a redemption redeems the reservation: not one redeemed already (a retry
    with a new request_id: nothing moves twice). One lapsed or released is refused."""
    if state == HoldState.CAPTURED.value:
        return False
    if state != HoldState.PENDING.value or expire_time <= now:
        raise FailedPrecondition(
            "RESERVATION_EXPIRED",
            "The reservation lapsed or was released.",
            "预占已失效或已释放。",
            reservation_id=reservation_id,
        )
    return True


def releasing(reservation_id: str, state: str, expire_time: datetime, now: datetime) -> HoldState | None:
    """How a release ends the reservation (None: it has ended already); one redeemed is
    refused."""
    if state == HoldState.CAPTURED.value:
        raise FailedPrecondition(
            "RESERVATION_REDEEMED",
            "The reservation was already redeemed.",
            "该预占已核销。",
            reservation_id=reservation_id,
        )
    if state != HoldState.PENDING.value:
        return None
    return HoldState.EXPIRED if expire_time <= now else HoldState.RELEASED


def lapsing(state: str, expire_time: datetime, now: datetime) -> bool:
    """Whether the sweeper lapses the reservation: still pending, past its deadline."""
    return state == HoldState.PENDING.value and expire_time <= now
