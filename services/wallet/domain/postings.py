"""Postings: the ledger entries a use case asks for, and how they move a member's totals."""

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from services.wallet.domain.accounts import MemberAccounts

MAX_MEMO = 200
NO_POLICY = "-"  # entries that spend nothing record no spend policy


class EntryKind(StrEnum):
    TOP_UP = "TOP_UP"
    TOP_UP_BONUS = "TOP_UP_BONUS"
    CONSUMPTION = "CONSUMPTION"
    CONSUMPTION_REFUND = "CONSUMPTION_REFUND"
    TOP_UP_REFUND = "TOP_UP_REFUND"
    ADJUSTMENT = "ADJUSTMENT"


@dataclass(frozen=True)
class Posting:
    """One ledger entry a use case asks for: the member's principal and bonus move by
    these deltas (+ credit, - debit) and counter_account moves by minus their sum."""

    kind: EntryKind
    principal: int
    bonus: int
    counter_account: str
    loaded_store_path: str
    store_path: str
    memo: str = ""


def apply(accounts: MemberAccounts, posting: Posting) -> int:
    """Post the entry to the totals; its sequence in the member's ledger."""
    accounts.principal += posting.principal
    accounts.bonus += posting.bonus
    accounts.last_sequence += 1
    return accounts.last_sequence


@dataclass(frozen=True)
class Entry:
    """A posted entry, as a member's statement lists it."""

    entry_id: str
    kind: str
    principal_delta: int
    bonus_delta: int
    balance_after: int
    loaded_store_path: str
    store_path: str
    operator_id: str
    post_time: datetime
    memo: str
    sequence: int


@dataclass
class StatementQuery:
    """Which of a member's entries a statement lists (dates are business days)."""

    member_id: str
    start_date: date | None = None
    end_date: date | None = None
    store_path: str = ""
    kind: EntryKind | None = None
