"""Accounts: a member's stored value and the system accounts on the other side.

The ledger is double entry. A member's stored value is two accounts, principal (paid
by the customer) and bonus (given by the chain); every movement is a transfer from a
debit account to a credit account. System accounts stand on the other side:

    TENDER:<store>         money taken at a store's till (cash, card, WeChat Pay, ...)
    BONUS_EXPENSE:<store>  bonus the chain gave away with top-ups at a store
    SPEND:<store>          stored value spent at a store (its revenue)
    ADJUSTMENT:hq          HQ's manual corrections

A member account's balance is credits - debits and may never go below zero, pending
holds included (TigerBeetle's debits_must_not_exceed_credits). The sum over all
accounts is zero because every transfer debits one account what it credits another.

Every top-up is also a lot: the value it loaded, at the store that loaded it. Spends
take lots oldest first, so each entry knows where its money was loaded and stores can
settle with each other (cross-store settlement).
"""

from dataclasses import dataclass

from huiyuan.runtime.errors import FailedPrecondition


def principal_account(member_id: str) -> str:
    return f"PRINCIPAL:{member_id}"


def bonus_account(member_id: str) -> str:
    return f"BONUS:{member_id}"


def tender_account(store_path: str) -> str:
    return f"TENDER:{store_path}"


def bonus_expense_account(store_path: str) -> str:
    return f"BONUS_EXPENSE:{store_path}"


def spend_account(store_path: str) -> str:
    return f"SPEND:{store_path}"


ADJUSTMENT_ACCOUNT = "ADJUSTMENT:hq"


@dataclass
class MemberAccounts:
    """The posted and pending totals of a member's two accounts."""

    member_id: str
    principal: int = 0  # posted: credits - debits
    bonus: int = 0
    held_principal: int = 0  # pending debits of holds
    held_bonus: int = 0
    # The sequence of the member's last entry (0: none yet). Each entry takes the next,
    # under the lock on these totals, so the sequence is the order entries were posted
    # in: a statement follows it, not their time stamps (several are taken in one batch).
    last_sequence: int = 0
    # Where the member is homed, as the member service last told the wallet ("": not yet)
    # and the id of that change (domain/homes.py): each entry counts at this home in the
    # report of stored value by home.
    home_store_path: str = ""
    home_change_id: int = 0

    @property
    def held(self) -> int:
        return self.held_principal + self.held_bonus

    @property
    def available_principal(self) -> int:
        return self.principal - self.held_principal

    @property
    def available_bonus(self) -> int:
        return self.bonus - self.held_bonus

    @property
    def available(self) -> int:
        return self.available_principal + self.available_bonus

    def check(self) -> None:
        """The invariant: no account below zero, pending included."""
        assert self.available_principal >= 0 and self.available_bonus >= 0, self
        assert self.held_principal >= 0 and self.held_bonus >= 0, self


def insufficient(accounts: MemberAccounts, wanted: int, what: str = "available") -> FailedPrecondition:
    return FailedPrecondition(
        "INSUFFICIENT_BALANCE",
        f"The stored value is not enough: {what} {accounts.available} fen, {wanted} fen needed.",
        f"储值余额不足：可用 {accounts.available} 分，需要 {wanted} 分。",
        available_fen=accounts.available,
        wanted_fen=wanted,
    )
