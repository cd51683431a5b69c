"""Top-ups: value loaded as principal, with the bonus of the best package, and their
refunds to the tender that paid."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from huiyuan.runtime.errors import FailedPrecondition, NotFound
from services.wallet.domain.accounts import MemberAccounts, bonus_expense_account, tender_account
from services.wallet.domain.lots import Draw
from services.wallet.domain.postings import EntryKind, Posting

MAX_TOP_UP_FEN = 5_000_000_00  # 5 million yuan: above this a top-up is a typing mistake
MAX_CASHIER_ID = 64


class Tender(StrEnum):
    CASH = "CASH"
    BANK_CARD = "BANK_CARD"
    WECHAT_PAY = "WECHAT_PAY"
    ALIPAY = "ALIPAY"
    ONLINE = "ONLINE"
    ENTERPRISE = "ENTERPRISE"


@dataclass
class TopUp:
    top_up_id: str
    member_id: str
    principal: int
    bonus: int
    tender: Tender
    tender_reference: str
    store_path: str
    packages: list[dict[str, Any]] = field(default_factory=list)  # [{"package_id", "name", "bonus_fen"}]
    operator_id: str = ""
    create_time: datetime | None = None
    refund_time: datetime | None = None  # None: not refunded
    cashier_id: str = ""  # the person at the till, for the staff report ("": not said)
    till_path: str = ""  # the till it was taken at, when the caller's node is one under the store

    @property
    def taken_at(self) -> str:
        """The node where it was taken: its till if known, else its store."""
        return self.till_path or self.store_path


def postings(top_up: TopUp) -> list[Posting]:
    """The principal from the tender's till, and the bonus its package gave, if any."""
    store = top_up.store_path
    loaded = [
        Posting(
            EntryKind.TOP_UP,
            top_up.principal,
            0,
            tender_account(store),
            store,
            store,
            f"{top_up.tender.value} {top_up.tender_reference}".strip(),
        )
    ]
    if top_up.bonus:
        loaded.append(
            Posting(
                EntryKind.TOP_UP_BONUS,
                0,
                top_up.bonus,
                bonus_expense_account(store),
                store,
                store,
                top_up.packages[0]["name"],
            )
        )
    return loaded


def check_refundable(top_up: TopUp, accounts: MemberAccounts) -> None:
    """Refused when it was refunded, or when what is left cannot cover both principal
    and bonus: that value was spent."""
    if top_up.refund_time is not None:
        raise FailedPrecondition(
            "TOP_UP_ALREADY_REFUNDED",
            "This top-up was already refunded.",
            "该笔充值已退款。",
            top_up_id=top_up.top_up_id,
        )
    if accounts.available_principal < top_up.principal or accounts.available_bonus < top_up.bonus:
        raise FailedPrecondition(
            "INSUFFICIENT_BALANCE",
            f"The balance left cannot cover the refund: {top_up.principal} fen principal and {top_up.bonus} fen bonus "
            f"needed, {accounts.available_principal} and {accounts.available_bonus} available.",
            f"剩余余额不足以退款：需本金 {top_up.principal} 分、赠送 {top_up.bonus} 分，"
            f"可用本金 {accounts.available_principal} 分、赠送 {accounts.available_bonus} 分。",
            top_up_id=top_up.top_up_id,
        )


def refund_postings(top_up: TopUp, draws: list[Draw], reason: str) -> list[Posting]:
    """The principal back to the tender's till and the bonus back to the bonus expense,
    from the lots drawn."""
    back = []
    for d in draws:
        if d.principal:
            back.append(
                Posting(
                    EntryKind.TOP_UP_REFUND,
                    -d.principal,
                    0,
                    tender_account(top_up.store_path),
                    d.loaded_store_path,
                    top_up.store_path,
                    reason,
                )
            )
        if d.bonus:
            back.append(
                Posting(
                    EntryKind.TOP_UP_REFUND,
                    0,
                    -d.bonus,
                    bonus_expense_account(top_up.store_path),
                    d.loaded_store_path,
                    top_up.store_path,
                    reason,
                )
            )
    return back


def top_up_not_found(top_up_id: str) -> NotFound:
    return NotFound("TOP_UP_NOT_FOUND", "No such top-up.", "充值记录不存在。", top_up_id=top_up_id)
