"""Which of principal and bonus a spend, a capture and a refund take, to the fen."""

from enum import StrEnum

from huiyuan.runtime.money import share, split_proportionally
from services.wallet.domain.accounts import MemberAccounts


class SpendPolicy(StrEnum):
    """Which of principal and bonus a spend takes; recorded on every entry."""

    PROPORTIONAL = "PROPORTIONAL"  # in the proportion the member holds them (default)
    PRINCIPAL_FIRST = "PRINCIPAL_FIRST"
    BONUS_FIRST = "BONUS_FIRST"


def split_spend(amount: int, accounts: MemberAccounts, policy: SpendPolicy) -> tuple[int, int]:
    """(principal, bonus) a spend of amount takes from what is available."""
    p, b = accounts.available_principal, accounts.available_bonus
    assert 0 <= amount <= p + b
    if policy == SpendPolicy.PRINCIPAL_FIRST:
        principal = min(amount, p)
    elif policy == SpendPolicy.BONUS_FIRST:
        principal = amount - min(amount, b)
    else:
        principal = split_proportionally(amount, [p, b])[0]
    principal = max(amount - b, min(principal, p))  # never more than either account has
    return principal, amount - principal


def split_capture(amount: int, held_principal: int, held_bonus: int) -> tuple[int, int]:
    """A capture of part of a hold takes principal and bonus in the hold's proportion."""
    principal = split_proportionally(amount, [held_principal, held_bonus])[0]
    principal = max(amount - held_bonus, min(principal, held_principal))
    return principal, amount - principal


def split_refund(refunded_before: int, amount: int, captured_principal: int, captured_bonus: int) -> tuple[int, int]:
    """(principal, bonus) to return for a refund of amount after refunded_before.

    Cumulative rounding: the principal returned after every refund is the proportional
    share of everything refunded so far, so partial refunds never lose or make a fen
    and a full refund returns exactly what was taken."""
    captured = captured_principal + captured_bonus
    assert amount > 0 and refunded_before + amount <= captured
    principal = share(refunded_before + amount, captured_principal, captured) - share(
        refunded_before, captured_principal, captured
    )
    return principal, amount - principal
