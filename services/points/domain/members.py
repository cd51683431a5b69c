"""A member's points as a whole: what is held and owed besides the lots, and the
balance the lots and those add up to. Every change of a member's points takes the
member's row lock first, so concurrent spends queue on it."""

from dataclasses import dataclass
from datetime import datetime

from services.points.domain.lots import Lot, lot_sums


@dataclass
class MemberPoints:
    member_id: str
    held: int = 0
    debt: int = 0

    def pay_debt(self, points: int) -> int:
        """What of a grant of points goes to the member's debt first (debt goes down by it)."""
        paid = min(self.debt, points)
        self.debt -= paid
        return paid


@dataclass
class Balance:
    member_id: str
    available: int
    pending: int
    held: int
    expiring_soon: int
    debt: int


def balance_of(member: MemberPoints, live: list[Lot], now: datetime) -> Balance:
    """The balance of a member as its row and lots stand (in memory: a batch answers
    each call's balance as that call left them, with no read after its writes)."""
    available, pending, expiring_soon = lot_sums(live, now)
    return Balance(member.member_id, available, pending, member.held, expiring_soon, member.debt)
