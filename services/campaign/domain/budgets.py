"""Budgets and limits: what a campaign's discounts draw on, and the arithmetic of its
stats (what it gave, what reservations hold, what is left).

A discount is paid by a campaign's budget: a campaign's own adjustment by the campaign,
a coupon's by the campaign behind its template (none: nobody's budget). The budget and
limits are checked when the discount is reserved, never by a quote."""

from dataclasses import dataclass
from typing import Protocol

from huiyuan.runtime.errors import FailedPrecondition


@dataclass(frozen=True, slots=True)
class Limits:
    """A campaign's budget and limits (0: none)."""

    budget_fen: int = 0
    per_member_limit: int = 0
    per_store_daily_limit: int = 0

    @property
    def limited(self) -> bool:
        """Whether a reservation checks a budget or a limit (under the stats row's lock)."""
        return bool(self.budget_fen or self.per_member_limit or self.per_store_daily_limit)


class Stats(Protocol):
    """What the budget checks read of a campaign's stats (its row)."""

    @property
    def discount_fen(self) -> int: ...
    @property
    def reserved_fen(self) -> int: ...


class Counted(Stats, Protocol):
    """A campaign's stats row, whole."""

    @property
    def orders(self) -> int: ...
    @property
    def coupons_issued(self) -> int: ...
    @property
    def coupons_redeemed(self) -> int: ...


class Adjusted(Protocol):
    """A discount of a quote, as a reservation or a return names it."""

    @property
    def campaign_id(self) -> str: ...
    @property
    def coupon_code(self) -> str: ...
    @property
    def amount_fen(self) -> int: ...


@dataclass(frozen=True, slots=True)
class CampaignStats:
    orders: int
    discount_fen: int
    budget_left_fen: int  # -1: no budget
    coupons_issued: int
    coupons_redeemed: int


def booked(adjustments: "list[Adjusted]", behind: dict[str, str]) -> dict[str, int]:
    """Fen by the campaign whose budget pays each adjustment: a campaign's own, or a
    coupon's under the campaign behind its template (behind; none: nobody's budget)."""
    found: dict[str, int] = {}
    for a in adjustments:
        campaign_id = a.campaign_id or behind.get(a.coupon_code)
        if campaign_id:
            found[campaign_id] = found.get(campaign_id, 0) + a.amount_fen
    return found


def spent(stats: Stats, budget_fen: int) -> bool:
    """Is a campaign's budget (0: none) given or held in full? Then no coupon drawing on
    it is issued."""
    return bool(budget_fen) and stats.discount_fen + stats.reserved_fen >= budget_fen


def budget_exhausted(campaign_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "BUDGET_EXHAUSTED", "The campaign's budget is used up.", "活动预算已用完。", campaign_id=campaign_id
    )


def check_budget(campaign_id: str, stats: Stats, limits: Limits) -> None:
    """stats: the row with this reservation's amount added."""
    if limits.budget_fen and stats.discount_fen + stats.reserved_fen > limits.budget_fen:
        raise budget_exhausted(campaign_id)


# The counts include this reservation's own use, hence "more than the limit".
def check_member_uses(campaign_id: str, used: int, limits: Limits) -> None:
    if used > limits.per_member_limit:
        raise FailedPrecondition(
            "MEMBER_LIMIT_REACHED",
            "The member has used this offer as often as allowed.",
            "该会员已达本活动的使用次数上限。",
            campaign_id=campaign_id,
        )


def check_store_uses(campaign_id: str, used: int, limits: Limits) -> None:
    if used > limits.per_store_daily_limit:
        raise FailedPrecondition(
            "STORE_DAILY_LIMIT_REACHED",
            "This store has used this offer as often as allowed today.",
            "本门店今日已达本活动的使用次数上限。",
            campaign_id=campaign_id,
        )


def merged(additions: list[tuple[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """Many additions to stats, each campaign's summed: its row is added to once."""
    by_campaign: dict[str, dict[str, int]] = {}
    for campaign_id, deltas in additions:
        total = by_campaign.setdefault(campaign_id, {})
        for name, delta in deltas.items():
            total[name] = total.get(name, 0) + delta
    return by_campaign


def settled(amount_fen: int, coupons: int, captured: bool) -> dict[str, int]:
    """What a reservation's use of a campaign adds to its stats when it ends: redeemed
    (captured: the discount is given, an order and its coupons counted), else the amount
    held is given back."""
    if captured:
        return {"reserved_fen": -amount_fen, "discount_fen": amount_fen, "orders": 1, "coupons_redeemed": coupons}
    return {"reserved_fen": -amount_fen}


def stats_of(row: "Counted | None", budget_fen: int) -> CampaignStats:
    """A campaign's stats as reported (row: none yet); what is left of a budget is what
    was neither given nor is held."""
    if row is None:
        return CampaignStats(0, 0, budget_fen if budget_fen else -1, 0, 0)
    return CampaignStats(
        row.orders,
        row.discount_fen,
        budget_fen - row.discount_fen - row.reserved_fen if budget_fen else -1,
        row.coupons_issued,
        row.coupons_redeemed,
    )
