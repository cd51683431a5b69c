"""What the campaign service's facts add to the reports' rollups (docs/reports.md,
huiyuan/runtime/rollups.py): the same functions serve the live path (recorded with the
fact, in its transaction) and the rebuild from the raw records.

- `campaigns` (key: campaign id; at the order's node, on the redemption's business
  day): `orders`, `discount_fen` (the campaign's own adjustments on the order, not the
  coupons its budget backs), `sales_fen` (the order's amount to pay after all its
  discounts), `members` (+1 on a member's first redeemed order the campaign priced),
  and `returned_fen` (its discount given back by returns, on the return's day).
- `coupons` (key: template id): `issued` at the node that issued them, on the issue's
  day; `redeemed` and `discount_fen` at the redeeming order's node, on its day;
  `voided` (no coupon is voided, cancelled or expired by an event today: 0).
- `coupons_outstanding` (key: template id; at the issuing node; on the coupon's
  expiry business day): `coupons` and `face_fen` (a FIXED coupon's amount, 0 for a
  percentage), + at issue, - at redemption.

Pure: the times are passed in; business days are the chain's (business_time.local).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from huiyuan.runtime.business_time import local
from huiyuan.runtime.periods import NEVER_EXPIRES
from huiyuan.runtime.rollups import Contribution

CAMPAIGNS, COUPONS, COUPONS_OUTSTANDING = "campaigns", "coupons", "coupons_outstanding"
CAMPAIGN_MEASURES = ("orders", "discount_fen", "sales_fen", "members", "returned_fen")
COUPON_MEASURES = ("issued", "redeemed", "discount_fen", "voided")
OUTSTANDING_MEASURES = ("coupons", "face_fen")
NO_EXPIRY = NEVER_EXPIRES  # the last day a request can name, so "from today on" holds it


def business_day(moment: datetime) -> date:
    return local(moment).date()


def expiry_day(valid_until: datetime | None) -> date:
    """The last business day a coupon can be used: valid_until is the first moment it
    no longer is (none: it never expires)."""
    if valid_until is None:
        return NO_EXPIRY
    return business_day(valid_until - timedelta(microseconds=1))


def own_fen(campaign_id: str, adjustments: Iterable[tuple[str, int]]) -> int:
    """A campaign's own discount among an order's adjustments ((campaign_id, fen) each;
    a coupon's has none): not what its coupons gave."""
    return sum(amount for c, amount in adjustments if campaign_id and c == campaign_id)


@dataclass(frozen=True)
class IssuedCoupon:
    """A coupon as issued: its template, where and when, its fixed value (0 when it
    has none, as a percentage) and the first moment it is no longer valid."""

    template_id: str
    issue_path: str
    issue_time: datetime
    face_fen: int
    valid_until: datetime | None


@dataclass(frozen=True)
class RedeemedCoupon:
    coupon: IssuedCoupon
    discount_fen: int  # what it took off the order


@dataclass(frozen=True)
class CampaignUse:
    """A campaign's own discount on a redeemed order; first: the member's first order
    this campaign priced."""

    campaign_id: str
    own_fen: int
    first: bool


@dataclass(frozen=True)
class Redemption:
    """An order's reservation redeemed: at its node (as the reservation names it), when,
    the order's amount to pay, its campaigns' own discounts and its coupons."""

    path: str
    time: datetime
    payable_fen: int
    uses: Sequence[CampaignUse]
    coupons: Sequence[RedeemedCoupon]


def merged(contributions: Iterable[Contribution]) -> list[Contribution]:
    """Contributions to the same counters added into one (an outbox row stays small
    however many coupons an issue made)."""
    out: dict[tuple[str, str, date, str], dict[str, int]] = {}
    for c in contributions:
        into = out.setdefault((c.rollup, c.path, c.day, c.key), {})
        for m, v in c.measures.items():
            into[m] = into.get(m, 0) + v
    return [Contribution(r, p, d, k, m) for (r, p, d, k), m in out.items()]


def issued(coupons: Iterable[IssuedCoupon]) -> list[Contribution]:
    """Coupons issued: counted at the node that issued them, on the issue's day, and
    outstanding until their expiry day."""
    out = []
    for c in coupons:
        out.append(Contribution(COUPONS, c.issue_path, business_day(c.issue_time), c.template_id, {"issued": 1}))
        out.append(_outstanding(c, +1))
    return merged(out)


def _outstanding(c: IssuedCoupon, sign: int) -> Contribution:
    return Contribution(
        COUPONS_OUTSTANDING,
        c.issue_path,
        expiry_day(c.valid_until),
        c.template_id,
        {"coupons": sign, "face_fen": sign * c.face_fen},
    )


def redeemed(r: Redemption) -> list[Contribution]:
    """An order's reservation redeemed: each campaign that priced it, each coupon used
    (no longer outstanding)."""
    day = business_day(r.time)
    out = [
        Contribution(
            CAMPAIGNS,
            r.path,
            day,
            u.campaign_id,
            {"orders": 1, "discount_fen": u.own_fen, "sales_fen": r.payable_fen, "members": int(u.first)},
        )
        for u in r.uses
        if u.own_fen > 0
    ]
    for c in r.coupons:
        out.append(
            Contribution(COUPONS, r.path, day, c.coupon.template_id, {"redeemed": 1, "discount_fen": c.discount_fen})
        )
        out.append(_outstanding(c.coupon, -1))
    return merged(out)


def returned(path: str, time: datetime, own: dict[str, int]) -> list[Contribution]:
    """Discounts given back by a return (own: each campaign's own part, by id), at the
    order's node, on the return's day."""
    day = business_day(time)
    return [
        Contribution(CAMPAIGNS, path, day, campaign_id, {"returned_fen": amount})
        for campaign_id, amount in sorted(own.items())
        if amount > 0
    ]
