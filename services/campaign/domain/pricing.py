"""The pricing engine: plain Python, no gRPC, no SQL, no side effects.

A quote runs in a fixed, documented order; each stage sees the lines as the stages
before it left them:
  1. tier price: the member's tier rate or a tier-discount campaign, the better one
     (they never stack with each other);
  2. timed campaigns: category discount, member day, limited-time price, birthday;
  3. threshold offers: 满减 (stepped: the highest step reached) and 满折, on the
     subtotal of the lines they cover;
  4. coupons, fixed-amount ones first, then percentages on what is left, each kind by
     code: the order a cashier scans them in never changes the price; an unusable one
     is rejected with its reason and the order is priced without it;
then what is left is the room for a points offset.
Stacking: of the campaigns that share an exclusive group only the one giving the most
applies; an order takes at most max_discounts adjustments; a campaign marked
on_original_price computes on list amounts, the others on what earlier stages left.
A rate leaves the amount to pay rounded half up to the fen (四舍五入). Every
order-level discount is spread over its lines to the fen (largest remainder), so a
single line can be refunded exactly, and no line is ever discounted below zero.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from huiyuan.runtime.business_time import local
from huiyuan.runtime.money import split_proportionally
from huiyuan.runtime.requests import is_under
from services.campaign.domain.campaigns import THRESHOLD, TIMED, Campaign, Kind
from services.campaign.domain.coupons import CouponKind
from services.campaign.domain.rates import BP, pay_rate

MAX_DISCOUNTS = 8  # the default; HUIYUAN_CAMPAIGN_MAX_DISCOUNTS sets a chain's own


@dataclass
class Member:
    member_id: str = ""
    tier_id: str = ""
    tier_price_rate_bp: int = BP
    tags: list[str] = field(default_factory=list)
    register_time: datetime | None = None
    birthday: date | None = None  # year may be any


@dataclass
class Line:
    line_id: str
    sku: str
    category: str
    quantity: int
    unit_price_fen: int
    discount_fen: int = 0

    @property
    def list_fen(self) -> int:
        return self.quantity * self.unit_price_fen

    @property
    def payable_fen(self) -> int:
        return self.list_fen - self.discount_fen


@dataclass
class Coupon:
    """A coupon the caller presented, with what the store knows of it. reject_reason
    is set by the caller when the coupon is unusable before pricing (not found, not
    this member's, expired, used)."""

    code: str
    kind: CouponKind = CouponKind.FIXED
    amount_fen: int = 0
    rate_bp: int = 0
    cap_fen: int = 0
    threshold_fen: int = 0
    categories: list[str] = field(default_factory=list)
    store_paths: list[str] = field(default_factory=list)
    reject_reason: str = ""
    name: str = ""  # its template's, for the receipt


@dataclass
class Adjustment:
    campaign_id: str
    coupon_code: str
    amount_fen: int
    explanation: str
    line_shares: dict[str, int]
    kind: str = ""  # the campaign's kind (Kind's value); "" for a coupon


@dataclass
class Quote:
    lines: list[Line]
    adjustments: list[Adjustment]
    rejected_coupons: list[tuple[str, str]]
    points_multiplier: "Campaign | None"  # the POINTS_MULTIPLIER campaign the order earns under

    @property
    def points_multiplier_bp(self) -> int:
        return self.points_multiplier.rate_bp if self.points_multiplier else BP

    @property
    def list_total_fen(self) -> int:
        return sum(line.list_fen for line in self.lines)

    @property
    def discount_total_fen(self) -> int:
        return sum(line.discount_fen for line in self.lines)

    @property
    def payable_fen(self) -> int:
        return self.list_total_fen - self.discount_total_fen


def targets(c: Campaign, member: Member, store_path: str, at: datetime, day: datetime) -> bool:
    """Is the campaign for this member, at this store, now (day: at in business time)?"""
    return (
        is_under(store_path, c.org_path)
        and (c.start_time is None or c.start_time <= at)
        and (c.end_time is None or at < c.end_time)
        and (not c.tier_ids or member.tier_id in c.tier_ids)
        and (not c.tags or bool(set(c.tags) & set(member.tags)))
        and (
            c.new_member_within is None
            or (member.register_time is not None and at - member.register_time <= c.new_member_within)
        )
        and (not c.weekdays or day.isoweekday() in c.weekdays)
        and (not c.month_days or day.day in c.month_days)
        and (
            c.kind != Kind.BIRTHDAY
            or (member.birthday is not None and (member.birthday.month, member.birthday.day) == (day.month, day.day))
        )
    )


class _Order:
    def __init__(self, lines: list[Line], max_discounts: int):
        self.lines = lines
        self.adjustments: list[Adjustment] = []
        self.max_discounts = max_discounts

    @property
    def full(self) -> bool:
        return len(self.adjustments) >= self.max_discounts

    def base(self, line: Line, on_original: bool) -> int:
        return line.list_fen if on_original else line.payable_fen

    def per_line(
        self, c: Campaign, eligible: Callable[[Line], bool], discount: Callable[[Line, int], int]
    ) -> dict[str, int]:
        """Line discounts of a line-level campaign: discount(line, base) for each."""
        shares = {}
        for line in self.lines:
            if eligible(line):
                off = min(line.payable_fen, max(0, discount(line, self.base(line, c.on_original_price))))
                if off:
                    shares[line.line_id] = off
        return shares

    def spread(self, amount: int, lines: list[Line]) -> dict[str, int]:
        """An order-level discount over lines, in proportion to what they still cost."""
        amount = min(amount, sum(line.payable_fen for line in lines))
        parts = split_proportionally(amount, [line.payable_fen for line in lines])
        return {line.line_id: part for line, part in zip(lines, parts) if part}

    def apply(
        self, campaign_id: str, coupon_code: str, explanation: str, shares: dict[str, int], kind: str = ""
    ) -> None:
        if not shares or self.full:
            return
        for line in self.lines:
            line.discount_fen += shares.get(line.line_id, 0)
            assert line.payable_fen >= 0
        self.adjustments.append(Adjustment(campaign_id, coupon_code, sum(shares.values()), explanation, shares, kind))


def _rate_off(rate_bp: int) -> Callable[[Line, int], int]:
    return lambda line, base: base - pay_rate(base, rate_bp)


def _campaign_shares(o: _Order, c: Campaign) -> dict[str, int]:
    if c.kind in (Kind.TIER_DISCOUNT, Kind.MEMBER_DAY, Kind.BIRTHDAY):
        return o.per_line(c, lambda line: not c.categories or line.category in c.categories, _rate_off(c.rate_bp))
    if c.kind == Kind.CATEGORY_DISCOUNT:
        return o.per_line(c, lambda line: line.category in c.categories, _rate_off(c.rate_bp))
    if c.kind == Kind.LIMITED_PRICE:
        return o.per_line(
            c,
            lambda line: line.sku in c.sku_prices_fen,
            lambda line, base: base - line.quantity * c.sku_prices_fen[line.sku],
        )
    covered = [line for line in o.lines if (not c.categories or line.category in c.categories) and line.payable_fen]
    subtotal = sum(o.base(line, c.on_original_price) for line in covered)
    reached = [s for s in c.steps if subtotal >= s.threshold_fen]
    if not reached:
        return {}
    step = max(reached, key=lambda s: s.threshold_fen)
    off = step.reduction_fen if c.kind == Kind.THRESHOLD_REDUCTION else subtotal - pay_rate(subtotal, step.rate_bp)
    return o.spread(off, covered)


def _best_of_groups(o: _Order, campaigns: list[Campaign]) -> list[Campaign]:
    """Drop the campaigns an exclusive group mate beats (on the order as it stands)."""
    keep: list[Campaign] = []
    groups: dict[str, list[Campaign]] = {}
    for c in campaigns:
        if c.exclusive_group:
            groups.setdefault(c.exclusive_group, []).append(c)
        else:
            keep.append(c)
    for members in groups.values():  # a group of one has no mate to beat: not priced twice
        keep.append(members[0] if len(members) == 1 else _best(o, members)[0])
    return sorted(keep, key=lambda c: c.campaign_id)


def _best(o: _Order, campaigns: list[Campaign]) -> tuple[Campaign, dict[str, int]]:
    """The campaign that gives the most on the order as it stands (ties: the greater
    id), with its line shares."""
    scored = [(c, _campaign_shares(o, c)) for c in campaigns]
    return max(scored, key=lambda cs: (sum(cs[1].values()), cs[0].campaign_id))


def _coupon_refusal(coupon: Coupon, o: _Order, store_path: str) -> tuple[str, list[Line]]:
    if coupon.reject_reason:
        return coupon.reject_reason, []
    if coupon.store_paths and not any(is_under(store_path, p) for p in coupon.store_paths):
        return "COUPON_NOT_VALID_AT_STORE", []
    covered = [
        line for line in o.lines if (not coupon.categories or line.category in coupon.categories) and line.payable_fen
    ]
    if not covered:
        return "COUPON_NO_ELIGIBLE_LINES", []
    if sum(line.payable_fen for line in covered) < coupon.threshold_fen:
        return "COUPON_THRESHOLD_NOT_MET", []
    if o.full:
        return "TOO_MANY_DISCOUNTS", []
    return "", covered


def quote(
    lines: list[Line],
    member: Member,
    store_path: str,
    at: datetime,
    campaigns: list[Campaign],
    coupons: list[Coupon],
    max_discounts: int = MAX_DISCOUNTS,
) -> Quote:
    o = _Order(lines, max_discounts)
    day = local(at)  # once, not once a campaign
    live = [c for c in campaigns if targets(c, member, store_path, at, day)]
    # 1. tier price: the member's tier rate, or a tier campaign, whichever gives more
    tier = (
        Campaign("", "会员价", Kind.TIER_DISCOUNT, rate_bp=member.tier_price_rate_bp)
        if member.tier_price_rate_bp < BP
        else None
    )
    options = [c for c in live if c.kind == Kind.TIER_DISCOUNT] + ([tier] if tier else [])
    if options:
        best, shares = _best(o, options)
        o.apply(best.campaign_id, "", best.name, shares, best.kind.value)
    # 2. and 3. timed campaigns, then threshold offers
    for stage in (TIMED, THRESHOLD):
        for c in _best_of_groups(o, [c for c in live if c.kind in stage]):
            o.apply(c.campaign_id, "", c.name, _campaign_shares(o, c), c.kind.value)
    # 4. coupons, in a canonical order (see the module's docstring)
    rejected = []
    for coupon in sorted(coupons, key=lambda c: (c.kind != CouponKind.FIXED, c.code)):
        reason, covered = _coupon_refusal(coupon, o, store_path)
        if reason:
            rejected.append((coupon.code, reason))
            continue
        subtotal = sum(line.payable_fen for line in covered)
        if coupon.kind == CouponKind.PERCENTAGE:
            off = subtotal - pay_rate(subtotal, coupon.rate_bp)
            off = min(off, coupon.cap_fen) if coupon.cap_fen else off
        else:
            off = coupon.amount_fen
        o.apply("", coupon.code, f"{coupon.name or '券'} {coupon.code}", o.spread(off, covered))
    # the greatest multiplier (ties: the greater id, as _best): multipliers never combine
    multiplier = max(
        [c for c in live if c.kind == Kind.POINTS_MULTIPLIER], key=lambda c: (c.rate_bp, c.campaign_id), default=None
    )
    return Quote(lines, o.adjustments, rejected, multiplier)
