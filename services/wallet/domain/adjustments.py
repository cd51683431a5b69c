"""HQ's adjustments: corrections of a member's stored value, as new entries against
the adjustment account, never edits. Only HQ makes them."""

from huiyuan.runtime.errors import PermissionDenied
from services.wallet.domain.accounts import ADJUSTMENT_ACCOUNT, MemberAccounts, insufficient
from services.wallet.domain.lots import Draw
from services.wallet.domain.postings import EntryKind, Posting

HQ = "hq"


def check_may_adjust(actor_org_path: str) -> None:
    if actor_org_path != HQ:
        raise PermissionDenied("ADJUSTMENT_HQ_ONLY", "Only HQ may adjust stored value.", "只有总部可以调整储值。")


def to_take(accounts: MemberAccounts, principal_delta: int, bonus_delta: int) -> tuple[int, int]:
    """The principal and bonus the adjustment takes away; refused if not available."""
    take_p, take_b = max(0, -principal_delta), max(0, -bonus_delta)
    if accounts.available_principal < take_p or accounts.available_bonus < take_b:
        raise insufficient(accounts, take_p + take_b)
    return take_p, take_b


def to_add(principal_delta: int, bonus_delta: int) -> tuple[int, int]:
    """The principal and bonus the adjustment adds: a lot loaded at HQ."""
    return max(0, principal_delta), max(0, bonus_delta)


def taken(draws: list[Draw], reason: str) -> list[Posting]:
    return [
        Posting(EntryKind.ADJUSTMENT, -d.principal, -d.bonus, ADJUSTMENT_ACCOUNT, d.loaded_store_path, HQ, reason)
        for d in draws
    ]


def added(principal: int, bonus: int, reason: str) -> Posting:
    return Posting(EntryKind.ADJUSTMENT, principal, bonus, ADJUSTMENT_ACCOUNT, HQ, HQ, reason)
