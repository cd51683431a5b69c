"""Paid membership (付费会员, like PLUS): plans, the terms members buy of them, the days
a term runs, what of its price is earned by a day and what a refund gives back, and the
service quotas its benefits grant. Pure rules: the time is passed in.

Term arithmetic (business time, the chain's zone):

- A term is a run of whole business days: [start_day, end_day), ending at 00:00 of
  end_day in the chain's zone.
- It starts on the day it is bought, or on the end_day of the member's last term
  (terms stack: a renewal starts when the current term ends).
- Its end is start + 1, 3 or 12 months on the same day of the month; a day the later
  month lacks is its last day. Terms of one uninterrupted run count their months from
  the run's first day (the anchor), so a month bought on 1/31 ends on 2/28 (2/29 in a
  leap year) and the next on 3/31 - never drifting to 3/28.
- A trial is trial_days whole days; it anchors a run like any term.
- Revenue of a term is earned evenly by day: by the end of day D, the days of the term
  up to and including D are earned, price * days_used // days (rounded down: what is
  not yet earned is never understated).
- A refund ends every term not yet ended at the end of today: each gives back its
  unused whole days' share, price * unused // days, rounded down to the fen (the chain
  keeps the fraction of a fen); today counts as used.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from huiyuan.runtime.business_time import day_start, local
from huiyuan.runtime.errors import FailedPrecondition, NotFound, Violations

MONTH, QUARTER, YEAR = "MONTH", "QUARTER", "YEAR"
TERM_MONTHS = {MONTH: 1, QUARTER: 3, YEAR: 12}
TILL, ONLINE, TRIAL = "TILL", "ONLINE", "TRIAL"
SERVICE_QUOTA = "SERVICE_QUOTA"
MONTHLY_COUPONS, BIRTHDAY_COUPONS, BIRTHDAY_POINTS = "MONTHLY_COUPONS", "BIRTHDAY_COUPONS", "BIRTHDAY_POINTS"
KINDS = (SERVICE_QUOTA, MONTHLY_COUPONS, BIRTHDAY_COUPONS, BIRTHDAY_POINTS)
MAX_COUPONS = 100
MAX_POINTS = 1_000_000

MAX_PRICE_FEN = 10**10  # ¥100,000,000
MAX_TRIAL_DAYS = 366
MAX_QUANTITY = 1000
MAX_BENEFITS = 20
CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


@dataclass(frozen=True)
class Benefit:
    code: str
    kind: str
    name: str
    quantity: int
    coupon_template_id: str = ""
    points: int = 0


@dataclass
class Plan:
    plan_id: str
    name: str
    price_fen: int
    term: str
    trial_days: int
    tier_id: str
    benefits: list[Benefit] = field(default_factory=list)
    create_time: datetime | None = None


@dataclass
class Term:
    term_id: str
    member_id: str
    plan_id: str
    source: str
    price_fen: int
    anchor_day: date  # the first day of the run of terms this one belongs to
    start_day: date
    end_day: date  # exclusive: the term ends at 00:00 of this day
    days: int
    payment_reference: str
    order_id: str
    line_id: str
    store_path: str
    create_time: datetime
    refunded_fen: int = 0
    refund_time: datetime | None = None
    refund_end_day: date | None = None  # the term's end after a refund
    refund_reason: str = ""
    refund_operator: str = ""

    @property
    def effective_end(self) -> date:
        return self.refund_end_day if self.refund_end_day is not None else self.end_day

    @property
    def start_time(self) -> datetime:
        return day_start(self.start_day)

    @property
    def end_time(self) -> datetime:
        return day_start(self.effective_end)


# ------------------------------------------------------------------ checks


def check_plan(
    v: Violations,
    name: str,
    price_fen: int,
    term: str,
    trial_days: int,
    auto_renewal: bool,
    benefits: list[Benefit],
    prefix: str = "plan.",
) -> None:
    """The plan's fields (a benefit's kind "": not set)."""
    v.check(bool(name.strip()) and len(name) <= 40, f"{prefix}name", "PLAN_NAME_INVALID", "name: 1 to 40 characters")
    v.check(
        0 < price_fen <= MAX_PRICE_FEN,
        f"{prefix}price_fen",
        "PLAN_PRICE_OUT_OF_RANGE",
        "price_fen must be above zero and at most 10^10",
    )
    v.check(term in TERM_MONTHS, f"{prefix}term", "PLAN_TERM_REQUIRED", "term must be MONTH, QUARTER or YEAR")
    v.check(
        0 <= trial_days <= MAX_TRIAL_DAYS,
        f"{prefix}trial_days",
        "TRIAL_DAYS_OUT_OF_RANGE",
        f"trial_days must be 0 to {MAX_TRIAL_DAYS}",
    )
    v.check(
        not auto_renewal,
        f"{prefix}renewal",
        "AUTO_RENEWAL_NOT_SUPPORTED",
        "automatic renewal is not supported (no payment agreement is kept): renewal is manual",
    )
    check_benefits(v, benefits, f"{prefix}benefits")


def check_benefits(v: Violations, benefits: list[Benefit], at_field: str) -> None:
    """A plan's or a tier's benefits (a kind "": not set), at at_field ("plan.benefits")."""
    v.check(len(benefits) <= MAX_BENEFITS, at_field, "TOO_MANY_BENEFITS", f"at most {MAX_BENEFITS} benefits")
    seen: set[str] = set()
    for i, b in enumerate(benefits):
        at = f"{at_field}[{i}]"
        if v.check(bool(CODE.match(b.code)), f"{at}.code", "BENEFIT_CODE_INVALID", "code: a-z, 0-9 and '-', 1 to 40"):
            v.check(b.code not in seen, f"{at}.code", "BENEFIT_CODE_REPEATED", "codes are unique in a plan or a tier")
            seen.add(b.code)
        v.check(b.kind in KINDS, f"{at}.kind", "BENEFIT_KIND_REQUIRED", "kind is required")
        v.check(
            bool(b.name.strip()) and len(b.name) <= 40,
            f"{at}.name",
            "BENEFIT_NAME_INVALID",
            "name: 1 to 40 characters",
        )
        coupons = b.kind in (MONTHLY_COUPONS, BIRTHDAY_COUPONS)
        if b.kind == SERVICE_QUOTA:
            v.check(
                1 <= b.quantity <= MAX_QUANTITY,
                f"{at}.quantity",
                "BENEFIT_QUANTITY_OUT_OF_RANGE",
                f"quantity must be 1 to {MAX_QUANTITY}",
            )
        elif coupons:
            v.check(
                1 <= b.quantity <= MAX_COUPONS,
                f"{at}.quantity",
                "BENEFIT_QUANTITY_OUT_OF_RANGE",
                f"quantity must be 1 to {MAX_COUPONS} coupons",
            )
        elif b.kind == BIRTHDAY_POINTS:
            v.check(b.quantity == 0, f"{at}.quantity", "BENEFIT_FIELD_NOT_READ", "points are given by points")
        v.check(
            bool(b.coupon_template_id) == coupons and len(b.coupon_template_id) <= 64,
            f"{at}.coupon_template_id",
            "BENEFIT_TEMPLATE_REQUIRED" if coupons else "BENEFIT_FIELD_NOT_READ",
            "a coupon template for coupons, none otherwise",
        )
        if b.kind == BIRTHDAY_POINTS:
            v.check(
                1 <= b.points <= MAX_POINTS,
                f"{at}.points",
                "BENEFIT_POINTS_OUT_OF_RANGE",
                f"points must be 1 to {MAX_POINTS}",
            )
        else:
            v.check(b.points == 0, f"{at}.points", "BENEFIT_FIELD_NOT_READ", "points are for BIRTHDAY_POINTS only")


# ------------------------------------------------------------------ term arithmetic


def add_months(day: date, months: int) -> date:
    """The same day of the month, months later; a day that month lacks is its last."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def months_between(anchor: date, day: date) -> int | None:
    """The n with add_months(anchor, n) == day, if any (a run's month count)."""
    n = (day.year - anchor.year) * 12 + day.month - anchor.month
    return n if n >= 0 and add_months(anchor, n) == day else None


def business_day(moment: datetime) -> date:
    return local(moment).date()


def next_term(plan: Plan, trial: bool, last: Term | None, now: datetime) -> tuple[date, date, date]:
    """(anchor_day, start_day, end_day) of the term bought now after the member's last
    term (None: none in force or to come): it starts when that one ends, or today."""
    today = business_day(now)
    if last is not None and last.effective_end >= today:
        anchor, start = last.anchor_day, last.effective_end
        if last.refund_end_day is not None:  # a refunded run ends there: a new run starts
            anchor = start
    else:
        anchor = start = today
    if trial:
        return start, start, start + timedelta(days=plan.trial_days)
    months = months_between(anchor, start)
    if months is None:  # the run's last term was a trial of whole days: a new count from here
        anchor, months = start, 0
    return anchor, start, add_months(anchor, months + TERM_MONTHS[plan.term])


def term_in_force(terms: list[Term], now: datetime) -> Term | None:
    today = business_day(now)
    return next((t for t in terms if t.start_day <= today < t.effective_end), None)


def days_used(term: Term, as_of: date) -> int:
    """Whole days of the term up to and including as_of (clamped to the term)."""
    return max(0, min((as_of - term.start_day).days + 1, term.days))


def earned_fen(term: Term, as_of: date) -> int:
    """What of what the term kept (its price less its refund) is earned by the end of
    as_of: evenly by day over the days it ran, rounded down."""
    kept = term.price_fen - term.refunded_fen
    ran = (term.effective_end - term.start_day).days
    if ran <= 0 or kept <= 0:
        return kept if as_of >= term.start_day else 0
    used = max(0, min((as_of - term.start_day).days + 1, ran))
    return kept * used // ran if used < ran else kept


def refund_of(term: Term, now: datetime) -> tuple[int, date]:
    """What refunding the term now gives back and the day it then ends at: the unused
    whole days after today, price * unused // days (rounded down); today is used."""
    today = business_day(now)
    new_end = max(term.start_day, min(term.end_day, today + timedelta(days=1)))
    unused = (term.end_day - new_end).days
    return term.price_fen * unused // term.days, new_end


# ------------------------------------------------------------------ benefit months


def benefit_month(anchor: date, today: date) -> tuple[date, date]:
    """The member's benefit month holding today: it starts on the anchor's day of the
    month (clamped), as the run's terms do."""
    n = (today.year - anchor.year) * 12 + today.month - anchor.month
    start = add_months(anchor, n)
    if start > today:
        n -= 1
        start = add_months(anchor, n)
    return start, add_months(anchor, n + 1)


@dataclass(frozen=True)
class Grant:
    """Coupons or points a benefit makes due to a member, once (its key)."""

    grant_key: str
    member_id: str
    kind: str
    coupon_template_id: str
    quantity: int
    points: int
    due_day: date


def birthday_on(year: int, birthday: str | None) -> date | None:
    """The member's birthday ('YYYY-MM-DD', '0000-MM-DD' without a year) in a year;
    2/29 is 2/28 in other years."""
    if not birthday or len(birthday) != 10:
        return None
    month, day = int(birthday[5:7]), int(birthday[8:10])
    if (month, day) == (2, 29) and calendar.monthrange(year, 2)[1] == 28:
        day = 28
    return date(year, month, day)


def birthday_week_year(today: date, birthday: str | None) -> int | None:
    """The year whose birthday's week (Monday to Sunday) holds today, if one does."""
    for year in (today.year - 1, today.year, today.year + 1):
        day = birthday_on(year, birthday)
        if day is not None:
            monday = day - timedelta(days=day.weekday())
            if monday <= today <= monday + timedelta(days=6):
                return year
    return None


# ------------------------------------------------------------------ entitlements

PLAN, TIER = "PLAN", "TIER"  # where a benefit a member holds comes from


@dataclass(frozen=True)
class Entitlement:
    """A benefit a member holds now, and where from: the plan of their term in force
    (counted in the run's benefit months) or their own tier (counted in calendar months
    in business time: docs/decisions/0007-tier-benefit-months.md). One list of these is
    what the benefits are listed, consumed and granted from."""

    benefit: Benefit
    source: str  # PLAN or TIER
    source_id: str  # the plan's id, or the tier's
    term_id: str  # the plan's term in force ("" for a tier's)
    period_start: date  # the benefit month holding today
    period_end: date  # exclusive


def calendar_month(today: date) -> tuple[date, date]:
    """A tier's benefit month holding today: the calendar month, [1st, next 1st)."""
    start = today.replace(day=1)
    return start, add_months(start, 1)


def entitlements(
    term: Term | None, plan: Plan | None, tier_id: str, tier_benefits: list[Benefit], today: date
) -> list[Entitlement]:
    """What a member holds today: the plan's benefits while its term is in force, then
    their tier's while they hold it. A code both grant is held twice: two quotas."""
    held = []
    if term is not None and plan is not None:
        start, end = benefit_month(term.anchor_day, today)
        held += [Entitlement(b, PLAN, plan.plan_id, term.term_id, start, end) for b in plan.benefits]
    if tier_id:
        start, end = calendar_month(today)
        held += [Entitlement(b, TIER, tier_id, "", start, end) for b in tier_benefits]
    return held


def grants_due(member_id: str, birthday: str | None, held: list[Entitlement], today: date) -> list[Grant]:
    """What the member's entitlements make due today: each benefit month's coupons, the
    birthday week's gift (due on the first day a run finds it). A plan's grants are
    keyed monthly:... and birthday:...; a tier's tier-monthly:... and tier-birthday:...
    (by code, not by tier: a member moved to another tier in the month gets a code's
    coupons once)."""
    due = []
    year = birthday_week_year(today, birthday)
    for e in held:
        b, prefix = e.benefit, "" if e.source == PLAN else "tier-"
        if b.kind == MONTHLY_COUPONS:
            key = f"{prefix}monthly:{member_id}:{b.code}:{e.period_start.isoformat()}"
        elif b.kind in (BIRTHDAY_COUPONS, BIRTHDAY_POINTS) and year is not None:
            key = f"{prefix}birthday:{member_id}:{b.code}:{year}"
        else:
            continue
        due.append(Grant(key, member_id, b.kind, b.coupon_template_id, b.quantity, b.points, today))
    return due


def grant_not_found(key: str) -> NotFound:
    return NotFound("BENEFIT_GRANT_NOT_FOUND", f"No benefit grant {key}.", "没有这笔权益发放记录。", grant_key=key)


def quota_exhausted(name: str, quantity: int, used: int, period_end: date) -> FailedPrecondition:
    """Every quota the member holds of a benefit is used (quantity: theirs all added up;
    period_end: when the first of them starts again)."""
    return FailedPrecondition(
        "BENEFIT_QUOTA_EXHAUSTED",
        f"{name}: all {quantity} of this benefit month are used; more from {period_end.isoformat()}.",
        f"本月{name}共 {quantity} 次已用完（已用 {used} 次，剩余 0 次），"
        f"{period_end.month} 月 {period_end.day} 日起可再用。",
        quantity=quantity,
        used=used,
        left=0,
        period_end=period_end.isoformat(),
    )


def undo_too_late(use_day: date) -> FailedPrecondition:
    return FailedPrecondition(
        "BENEFIT_UNDO_TOO_LATE",
        f"A use can be undone only on the day it was made ({use_day.isoformat()}).",
        f"权益使用只能在当天（{use_day.month} 月 {use_day.day} 日）撤销。",
        use_date=use_day.isoformat(),
    )


# ------------------------------------------------------------------ refusals


def plan_not_found(plan_id: str) -> NotFound:
    return NotFound("PLAN_NOT_FOUND", f"No plan {plan_id}.", "没有这个付费会员方案。", plan_id=plan_id)


def paid_not_price(plan: Plan, paid_fen: int) -> FailedPrecondition:
    return FailedPrecondition(
        "PAID_AMOUNT_NOT_PLAN_PRICE",
        f"The plan costs {plan.price_fen} fen; {paid_fen} were paid.",
        f"该付费会员方案价格为 {plan.price_fen / 100:.2f} 元，与实付金额不符。",
        price_fen=plan.price_fen,
        paid_fen=paid_fen,
    )


def trial_not_offered(plan: Plan) -> FailedPrecondition:
    return FailedPrecondition(
        "TRIAL_NOT_OFFERED", "The plan offers no trial.", "该付费会员方案没有试用。", plan_id=plan.plan_id
    )


def trial_used() -> FailedPrecondition:
    return FailedPrecondition("TRIAL_ALREADY_USED", "The member has had a trial.", "该会员已经试用过付费会员。")


def reference_of_another() -> FailedPrecondition:
    return FailedPrecondition(
        "PAYMENT_REFERENCE_OF_ANOTHER_MEMBER",
        "The payment bought a term for another member or plan.",
        "这笔付款已为其他会员或其他方案购买过付费会员。",
    )


def nothing_to_refund() -> FailedPrecondition:
    return FailedPrecondition(
        "NO_MEMBERSHIP_TO_REFUND", "The member has no paid term left to refund.", "该会员没有可退的付费会员期。"
    )


def no_membership() -> FailedPrecondition:
    return FailedPrecondition(
        "NO_MEMBERSHIP_IN_FORCE",
        "The member has no paid term in force and their tier grants no benefits.",
        "该会员当前不是付费会员，所在等级也没有权益。",
    )


def not_entitled(code: str) -> FailedPrecondition:
    return FailedPrecondition(
        "BENEFIT_NOT_ENTITLED",
        f"Neither the member's plan nor their tier grants a benefit {code}.",
        "该会员的付费会员方案和等级都不含这项权益。",
        benefit_code=code,
    )


def use_not_found(use_id: str) -> NotFound:
    return NotFound("BENEFIT_USE_NOT_FOUND", f"No benefit use {use_id}.", "没有这条权益使用记录。", use_id=use_id)
