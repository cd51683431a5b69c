"""Holds: spending in two phases, hold -> capture | release (or lapse), and the refunds
of what a capture took."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from huiyuan.runtime.errors import FailedPrecondition, NotFound, invalid
from huiyuan.runtime.holds import HoldState, require_pending
from services.wallet.domain.accounts import MemberAccounts, spend_account
from services.wallet.domain.lots import Draw
from services.wallet.domain.postings import EntryKind, Posting
from services.wallet.domain.spend_policy import split_capture


@dataclass
class Hold:
    hold_id: str
    member_id: str
    amount: int
    principal: int
    bonus: int
    captured_principal: int
    captured_bonus: int
    refunded: int
    state: HoldState
    store_path: str
    order_id: str
    policy: str
    expire_time: datetime

    @property
    def captured(self) -> int:
        return self.captured_principal + self.captured_bonus


@dataclass(frozen=True)
class HoldAsk:
    """One hold to place: what the caller asked, checked."""

    hold_id: str
    member_id: str
    amount: int
    ttl: timedelta
    store_path: str
    order_id: str


@dataclass(frozen=True)
class CaptureAsk:
    hold_id: str
    amount: int
    operator_id: str


@dataclass(frozen=True)
class Captured:
    hold: Hold
    accounts: MemberAccounts  # as this capture left them
    principal: int
    bonus: int


def hold_not_found(hold_id: str) -> NotFound:
    return NotFound("HOLD_NOT_FOUND", "No such hold.", "冻结记录不存在。", hold_id=hold_id)


def end(
    hold: Hold, accounts: MemberAccounts, state: HoldState, captured_principal: int = 0, captured_bonus: int = 0
) -> None:
    """Give the pending amounts back to available and mark the hold final (in memory)."""
    accounts.held_principal -= hold.principal
    accounts.held_bonus -= hold.bonus
    hold.state, hold.captured_principal, hold.captured_bonus = state, captured_principal, captured_bonus


def capturable(ask: CaptureAsk, hold: Hold | None, now: datetime) -> tuple[int, int]:
    """The principal and bonus this capture takes; raises why it cannot."""
    if hold is None:
        raise hold_not_found(ask.hold_id)
    require_pending(ask.hold_id, hold.state, hold.expire_time, now)
    if ask.amount > hold.amount:
        raise invalid(
            "amount_fen", "CAPTURE_EXCEEDS_HOLD", f"amount_fen {ask.amount} is more than the {hold.amount} held"
        )
    return split_capture(ask.amount, hold.principal, hold.bonus)


def consumption(hold: Hold, draws: list[Draw]) -> list[Posting]:
    """A capture's entries: one per lot it drew on, to the spending store's revenue."""
    return [
        Posting(
            EntryKind.CONSUMPTION,
            -d.principal,
            -d.bonus,
            spend_account(hold.store_path),
            d.loaded_store_path,
            hold.store_path,
            hold.order_id,
        )
        for d in draws
    ]


def check_refundable(hold: Hold, amount: int) -> None:
    if hold.state != HoldState.CAPTURED:
        raise FailedPrecondition(
            "HOLD_NOT_CAPTURED",
            "Only a captured hold can be refunded.",
            "只有已扣款的冻结可以退款。",
            hold_id=hold.hold_id,
        )
    if hold.refunded + amount > hold.captured:
        raise FailedPrecondition(
            "REFUND_EXCEEDS_CAPTURE",
            f"Only {hold.captured - hold.refunded} fen of this spend is left to refund.",
            f"该笔消费可退金额仅剩 {hold.captured - hold.refunded} 分。",
            refundable_fen=hold.captured - hold.refunded,
        )


def consumption_refund(hold: Hold, back: list[Draw], store_path: str) -> list[Posting]:
    """A refund's entries: one per lot it gives back to, from the refunding store's revenue."""
    return [
        Posting(
            EntryKind.CONSUMPTION_REFUND,
            d.principal,
            d.bonus,
            spend_account(store_path),
            d.loaded_store_path,
            store_path,
            hold.order_id,
        )
        for d in back
    ]
