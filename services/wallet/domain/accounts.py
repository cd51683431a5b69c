"""Wallet domain rules: plain Python, no gRPC and no SQL.

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
from enum import StrEnum

from huiyuan.runtime.errors import FailedPrecondition, Violations
from huiyuan.runtime.money import share, split_proportionally
from huiyuan.runtime.requests import is_under
from huiyuan.runtime.validity import has_ended

MAX_TOP_UP_FEN = 5_000_000_00  # 5 million yuan: above this a top-up is a typing mistake
MAX_MEMO = 200


class Tender(StrEnum):
    CASH = "CASH"
    BANK_CARD = "BANK_CARD"
    WECHAT_PAY = "WECHAT_PAY"
    ALIPAY = "ALIPAY"
    ONLINE = "ONLINE"
    ENTERPRISE = "ENTERPRISE"


class EntryKind(StrEnum):
    TOP_UP = "TOP_UP"
    TOP_UP_BONUS = "TOP_UP_BONUS"
    CONSUMPTION = "CONSUMPTION"
    CONSUMPTION_REFUND = "CONSUMPTION_REFUND"
    TOP_UP_REFUND = "TOP_UP_REFUND"
    ADJUSTMENT = "ADJUSTMENT"


class SpendPolicy(StrEnum):
    """Which of principal and bonus a spend takes; recorded on every entry."""

    PROPORTIONAL = "PROPORTIONAL"  # in the proportion the member holds them (default)
    PRINCIPAL_FIRST = "PRINCIPAL_FIRST"
    BONUS_FIRST = "BONUS_FIRST"


# ---------------------------------------------------------------- accounts


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
        "INSUFFICIENT_BALANCE", f"The stored value is not enough: {what} {accounts.available} fen, {wanted} fen needed.",
        f"储值余额不足：可用 {accounts.available} 分，需要 {wanted} 分。",
        available_fen=accounts.available, wanted_fen=wanted)


# ---------------------------------------------------------------- splitting money


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
    assert 0 < amount and refunded_before + amount <= captured
    principal = (share(refunded_before + amount, captured_principal, captured)
                 - share(refunded_before, captured_principal, captured))
    return principal, amount - principal


# ---------------------------------------------------------------- lots


@dataclass
class Lot:
    lot_id: str
    loaded_store_path: str
    principal_left: int
    bonus_left: int


@dataclass(frozen=True)
class Draw:
    """What one spend took from one lot."""

    lot_id: str
    loaded_store_path: str
    principal: int
    bonus: int


def draw_from_lots(lots: list[Lot], principal: int, bonus: int) -> list[Draw]:
    """Take principal and bonus from the lots, oldest first (lots come oldest first).
    The member accounts hold exactly the sum of their lots, so this always suffices."""
    draws = []
    for lot in lots:
        p = min(principal, lot.principal_left)
        b = min(bonus, lot.bonus_left)
        if p or b:
            lot.principal_left -= p
            lot.bonus_left -= b
            principal -= p
            bonus -= b
            draws.append(Draw(lot.lot_id, lot.loaded_store_path, p, b))
        if not principal and not bonus:
            break
    assert principal == 0 and bonus == 0, "lots and accounts disagree"
    return draws


def undraw(draws: list[Draw], principal: int, bonus: int) -> list[Draw]:
    """Which lots a refund returns principal and bonus to: the draws of the spend, the
    latest first, each back up to what it took (minus what earlier refunds returned)."""
    back = []
    for draw in reversed(draws):
        p = min(principal, draw.principal)
        b = min(bonus, draw.bonus)
        if p or b:
            back.append(Draw(draw.lot_id, draw.loaded_store_path, p, b))
            principal -= p
            bonus -= b
    assert principal == 0 and bonus == 0, "refund exceeds the spend"
    return back


# ---------------------------------------------------------------- top-up packages


# What a package with no tenders named applies to: money a member pays at a till or
# online. A company's batch is left out: its terms are negotiated, not the shelf offer.
COUNTER_TENDERS = frozenset(Tender) - {Tender.ENTERPRISE}


@dataclass(frozen=True)
class PackageStep:
    threshold_fen: int
    bonus_fen: int


@dataclass
class TopUpPackage:
    package_id: str
    name: str
    org_path: str
    steps: list[PackageStep]
    start_time: object = None  # datetime | None
    end_time: object = None
    ended_by: str = ""  # who ended it early; its steps never change
    tenders: tuple[Tender, ...] = ()  # none named: COUNTER_TENDERS

    def applies(self, store_path: str, at) -> bool:
        started = self.start_time is None or self.start_time <= at
        return is_under(store_path, self.org_path) and started and not has_ended(self.end_time, at)

    def takes(self, tender: Tender) -> bool:
        return tender in (self.tenders or COUNTER_TENDERS)

    def bonus_for(self, amount: int) -> int:
        """The bonus of the highest step the amount reaches (0 below the first)."""
        reached = [s.bonus_fen for s in self.steps if amount >= s.threshold_fen]
        return max(reached, default=0)


def check_package(v: Violations, package: TopUpPackage, prefix: str = "package.") -> None:
    v.check(0 < len(package.name.strip()) <= 64, f"{prefix}name", "NAME_REQUIRED", "name is required, at most 64 characters")
    v.check(bool(package.steps), f"{prefix}steps", "STEPS_REQUIRED", "a package needs at least one step")
    thresholds = [s.threshold_fen for s in package.steps]
    for i, step in enumerate(package.steps):
        field = f"{prefix}steps[{i}]"
        v.check(step.threshold_fen > 0, f"{field}.threshold_fen", "THRESHOLD_INVALID", "threshold_fen must be > 0")
        v.check(0 <= step.bonus_fen <= step.threshold_fen, f"{field}.bonus_fen", "BONUS_INVALID",
                "bonus_fen must be between 0 and the threshold")
    v.check(thresholds == sorted(set(thresholds)), f"{prefix}steps", "STEPS_NOT_ASCENDING",
            "steps must have strictly ascending thresholds")
    bonuses = [s.bonus_fen for s in package.steps]
    v.check(bonuses == sorted(bonuses), f"{prefix}steps", "BONUS_NOT_ASCENDING",
            "a higher step must not give less bonus")
    if package.start_time and package.end_time:
        v.check(package.start_time < package.end_time, f"{prefix}end_time", "DATES_REVERSED",
                "end_time must be after start_time")
    v.check(len(set(package.tenders)) == len(package.tenders), f"{prefix}tenders", "TENDERS_REPEATED",
            "name each tender at most once")


def best_package(packages: list[TopUpPackage], store_path: str, amount: int, at,
                 tender: Tender) -> tuple[TopUpPackage, int] | None:
    """Packages do not stack: the one that gives the most bonus applies (the nearest
    scope, then the oldest id, on a tie, so the choice never depends on edit order)."""
    offers = [(p.bonus_for(amount), p.org_path.count("/"), p) for p in packages
              if p.applies(store_path, at) and p.takes(tender)]
    offers = [o for o in offers if o[0] > 0]
    if not offers:
        return None
    bonus, _, package = min(offers, key=lambda o: (-o[0], -o[1], o[2].package_id))
    return package, bonus


# ---------------------------------------------------------------- postings


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
