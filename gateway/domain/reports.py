"""What an order paid and a refund made add to the gateway's rollups (docs/reports.md):
the sales of a till, a store, a region and the chain by business day, by tender, by
hour, by category, by cashier and by the member's tier.

An order counts on the business day it was made (its create_time, as the store's daily
summary and the orders export count it), at the node of the till that made it; a refund
on the day it was made, at its order's node (a store's sales less its own returns), and
for its cashier. Pure: the use case turns the protobufs into these values.
"""

from dataclasses import dataclass, field
from datetime import datetime

from huiyuan.runtime.business_time import local
from huiyuan.runtime.rollups import Contribution

SALES, TENDERS, HOURS, CATEGORIES, CASHIERS, TIER_SALES = (
    "sales",
    "tenders",
    "hours",
    "categories",
    "cashiers",
    "tier_sales",
)
POINTS_TENDER = "POINTS"  # the points offset, reported as a tender beside the till's own

# rollup -> (measures, deepest level kept): tills for what a till is judged by
ROLLUPS: dict[str, tuple[tuple[str, ...], int]] = {
    SALES: (
        (
            "orders",
            "units",
            "gross_fen",  # list prices
            "member_price_fen",  # discounts by kind: the tier's price (会员价)
            "campaign_fen",  # other campaigns
            "coupon_fen",  # coupons
            "net_fen",  # gross less discounts: what the member paid, points included
            "points_offset_fen",
            "stored_value_fen",
            "refunds",
            "refunded_units",
            "refunded_fen",  # the returned units' part of net
        ),
        4,
    ),
    TENDERS: (("paid_fen", "refunded_fen"), 4),
    HOURS: (("orders", "net_fen"), 3),
    CATEGORIES: (("units", "net_fen", "refunded_units", "refunded_fen"), 3),
    CASHIERS: (("orders", "net_fen", "refunds", "refunded_fen"), 4),
    TIER_SALES: (("orders", "net_fen", "refunded_fen"), 3),
}


@dataclass(frozen=True)
class Line:
    category: str
    units: int
    net_fen: int  # its payable: list price less its share of the discounts


@dataclass(frozen=True)
class Sale:
    """A paid order, as the reports count it."""

    path: str  # the till (or office) that made it
    made: datetime  # its create_time (aware)
    cashier: str
    tier: str  # the member's tier when it was priced ("" none)
    lines: tuple[Line, ...]
    gross_fen: int
    member_price_fen: int
    campaign_fen: int
    coupon_fen: int
    points_offset_fen: int
    stored_value_fen: int
    tenders: dict[str, int] = field(default_factory=dict)  # TenderKind name -> fen, points included

    @property
    def net_fen(self) -> int:
        return self.gross_fen - self.member_price_fen - self.campaign_fen - self.coupon_fen


@dataclass(frozen=True)
class Return:
    """A refund done, as the reports count it."""

    path: str  # its order's node
    made: datetime  # its create_time
    cashier: str  # who made the refund ("" unknown)
    order_cashier: str
    tier: str  # the order's
    lines: tuple[Line, ...]  # returned units, net_fen: their part of the order's net
    value_fen: int  # the returned units' part of the order's net (points offset included)
    tenders: dict[str, int] = field(default_factory=dict)  # given back, points included


def sale_contributions(s: Sale) -> list[Contribution]:
    """What a paid order adds. Written in the transaction that finishes the order, so it
    never refuses one: that its tenders add up to its net is the tests' to hold
    (tests/test_reports.py), not a reason to leave an order unfinished."""
    day, hour = local(s.made).date(), local(s.made).hour
    units = sum(line.units for line in s.lines)
    out = [
        Contribution(
            SALES,
            s.path,
            day,
            "",
            {
                "orders": 1,
                "units": units,
                "gross_fen": s.gross_fen,
                "member_price_fen": s.member_price_fen,
                "campaign_fen": s.campaign_fen,
                "coupon_fen": s.coupon_fen,
                "net_fen": s.net_fen,
                "points_offset_fen": s.points_offset_fen,
                "stored_value_fen": s.stored_value_fen,
            },
        ),
        Contribution(HOURS, s.path, day, f"{hour:02d}", {"orders": 1, "net_fen": s.net_fen}),
        Contribution(CASHIERS, s.path, day, s.cashier, {"orders": 1, "net_fen": s.net_fen}),
        Contribution(TIER_SALES, s.path, day, s.tier, {"orders": 1, "net_fen": s.net_fen}),
    ]
    out += [
        Contribution(TENDERS, s.path, day, kind, {"paid_fen": fen}) for kind, fen in sorted(s.tenders.items()) if fen
    ]
    for category, (units, net) in sorted(_by_category(s.lines).items()):
        out.append(Contribution(CATEGORIES, s.path, day, category, {"units": units, "net_fen": net}))
    return out


def return_contributions(r: Return) -> list[Contribution]:
    """What a refund done adds (in the transaction that finishes it, as a sale's)."""
    day = local(r.made).date()
    units = sum(line.units for line in r.lines)
    out = [
        Contribution(SALES, r.path, day, "", {"refunds": 1, "refunded_units": units, "refunded_fen": r.value_fen}),
        Contribution(CASHIERS, r.path, day, r.cashier, {"refunds": 1, "refunded_fen": r.value_fen}),
        Contribution(TIER_SALES, r.path, day, r.tier, {"refunded_fen": r.value_fen}),
    ]
    out += [
        Contribution(TENDERS, r.path, day, kind, {"refunded_fen": fen})
        for kind, fen in sorted(r.tenders.items())
        if fen
    ]
    for category, (units, net) in sorted(_by_category(r.lines).items()):
        out.append(Contribution(CATEGORIES, r.path, day, category, {"refunded_units": units, "refunded_fen": net}))
    return out


def _by_category(lines: tuple[Line, ...]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for line in lines:
        units, net = out.get(line.category, (0, 0))
        out[line.category] = (units + line.units, net + line.net_fen)
    return out
