"""Tier programmes (issue 40, 等级体系): how HQ's tiers are earned and kept.

A programme counts one measure (spend, visits, top-ups or the value score) over a
window (the last N business days, or the calendar year of the day counted) and names,
per tier, an upgrade threshold (reached: the member moves up at once) and a keep
threshold (at the end of a term the member keeps the tier if they reach it). A tier
reached, renewed or given is held for term_months; a member below the keep threshold
at the end of their term moves down after grace_days, one level or to the best lower
tier whose keep threshold they reach, never below a tier HQ gave by hand until that
assignment's end date.

Programmes are versions: each is in force from its effective_from business day until
the next one's. Pure rules: no I/O, no clock (the business day is passed in).
"""

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from itertools import pairwise

from huiyuan.runtime.errors import AlreadyExists, FailedPrecondition, Violations
from huiyuan.runtime.money import yuan

HISTORY_DAYS = 730  # the history a window may reach back over: two years of visits and top-ups
MAX_THRESHOLD = 10**12
MAX_TERM_MONTHS = 60
MAX_GRACE_DAYS = 365
MAX_NOTICE_DAYS = 365

JOB_OPERATOR = "system:tier-programme"  # who moved a member at a re-evaluation


class Measure(StrEnum):
    SPEND = "spend"
    POINTS_EARNED = "points_earned"
    VISITS = "visits"
    TOP_UPS = "top_ups"
    VALUE_SCORE = "value_score"


class Window(StrEnum):
    ROLLING_DAYS = "rolling_days"
    CALENDAR_YEAR = "calendar_year"
    NONE = "none"  # the value score: the latest one counts


class Downgrade(StrEnum):
    ONE_LEVEL = "one_level"
    TO_QUALIFIED = "to_qualified"


@dataclass(frozen=True)
class Rule:
    tier_id: str
    upgrade: int  # 0: not reached by the measure
    keep: int  # 0: always kept


@dataclass
class Programme:
    version_id: str
    effective_from: date
    measure: Measure
    window: Window
    window_days: int
    term_months: int
    grace_days: int
    downgrade: Downgrade
    notice_days: int
    rules: list[Rule]  # lowest rank first
    note: str = ""
    create_time: datetime | None = None

    def rule_of(self, tier_id: str) -> Rule | None:
        return next((r for r in self.rules if r.tier_id == tier_id), None)

    def level_of(self, tier_id: str) -> int:
        """The tier's place in the programme, lowest 0; -1 for none or a tier outside it."""
        return next((i for i, r in enumerate(self.rules) if r.tier_id == tier_id), -1)

    def window_start(self, day: date) -> date | None:
        """The first business day counted by a count on day (None: no window)."""
        if self.window == Window.ROLLING_DAYS:
            return day - timedelta(days=self.window_days - 1)
        if self.window == Window.CALENDAR_YEAR:
            return date(day.year, 1, 1)
        return None

    def term_end(self, start: date) -> date:
        """The last day of a term that starts on start."""
        return add_months(start, self.term_months) - timedelta(days=1)


def add_months(day: date, months: int) -> date:
    """The same day months later, the month's last day if it has no such day."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def in_force(versions: list[Programme], day: date) -> Programme | None:
    """The version in force on a business day: the latest effective_from on or before it."""
    return max((p for p in versions if p.effective_from <= day), key=lambda p: p.effective_from, default=None)


# --- Checks -------------------------------------------------------------------------


def check_programme(v: Violations, p: Programme, today: date, prefix: str = "version") -> None:
    """The shape of a version: every number in range, the window within the history
    kept, a measure the member service counts. The order of the thresholds needs the
    tiers' ranks: check_rules."""
    v.check(
        p.effective_from >= today,
        f"{prefix}.effective_from",
        "EFFECTIVE_FROM_IN_PAST",
        "effective_from must be today or later (business time): a programme never applies retroactively",
    )
    v.check(
        p.measure != Measure.POINTS_EARNED,
        f"{prefix}.measure",
        "MEASURE_NOT_AVAILABLE",
        "points earned are kept by the points service, which the member service does not read; "
        "qualify on spend, visits, top-ups or the value score",
    )
    if p.measure == Measure.VALUE_SCORE:
        v.check(
            p.window == Window.NONE and p.window_days == 0,
            f"{prefix}.window",
            "WINDOW_NOT_APPLICABLE",
            "the value score counts its own 12 months: leave window and window_days unset",
        )
    elif p.window == Window.ROLLING_DAYS:
        v.check(
            1 <= p.window_days <= HISTORY_DAYS,
            f"{prefix}.window_days",
            "WINDOW_LONGER_THAN_HISTORY" if p.window_days > HISTORY_DAYS else "WINDOW_DAYS_OUT_OF_RANGE",
            f"window_days must be 1 to {HISTORY_DAYS} (the history kept)",
        )
    elif p.window == Window.CALENDAR_YEAR:
        v.check(
            p.window_days == 0,
            f"{prefix}.window_days",
            "WINDOW_DAYS_NOT_APPLICABLE",
            "a calendar year has no window_days",
        )
    else:
        v.add(f"{prefix}.window", "WINDOW_REQUIRED", "window is required: rolling days or the calendar year")
    v.check(
        1 <= p.term_months <= MAX_TERM_MONTHS,
        f"{prefix}.term_months",
        "TERM_OUT_OF_RANGE",
        f"term_months must be 1 to {MAX_TERM_MONTHS}",
    )
    v.check(
        0 <= p.grace_days <= MAX_GRACE_DAYS, f"{prefix}.grace_days", "GRACE_OUT_OF_RANGE", "grace_days must be 0 to 365"
    )
    v.check(
        0 <= p.notice_days <= MAX_NOTICE_DAYS,
        f"{prefix}.notice_days",
        "NOTICE_OUT_OF_RANGE",
        "notice_days must be 0 to 365",
    )
    v.check(len(p.note) <= 256, f"{prefix}.note", "NOTE_TOO_LONG", "note must be at most 256 characters")
    v.check(bool(p.rules), f"{prefix}.tier_rules", "TIER_RULES_REQUIRED", "at least one tier rule is required")
    v.check(len(p.rules) <= 50, f"{prefix}.tier_rules", "TOO_MANY_TIER_RULES", "at most 50 tier rules")
    seen: set[str] = set()
    for i, r in enumerate(p.rules):
        at = f"{prefix}.tier_rules[{i}]"
        v.check(bool(r.tier_id) and len(r.tier_id) <= 40, f"{at}.tier_id", "TIER_ID_REQUIRED", "tier_id is required")
        v.check(r.tier_id not in seen, f"{at}.tier_id", "TIER_REPEATED", "each tier at most once")
        seen.add(r.tier_id)
        top = 1000 if p.measure == Measure.VALUE_SCORE else MAX_THRESHOLD
        for name, amount in [("upgrade_threshold", r.upgrade), ("keep_threshold", r.keep)]:
            v.check(0 <= amount <= top, f"{at}.{name}", "THRESHOLD_OUT_OF_RANGE", f"{name} must be 0 to {top}")
        v.check(
            r.keep <= r.upgrade or r.upgrade == 0,
            f"{at}.keep_threshold",
            "KEEP_ABOVE_UPGRADE",
            "keep_threshold must not be above upgrade_threshold",
        )


def check_rules(v: Violations, rules: list[Rule], ranks: dict[str, int], prefix: str = "version") -> list[Rule]:
    """The rules ordered by their tiers' ranks (lowest first), refused when the
    thresholds go down with rank or overlap: a better tier must need strictly more to
    reach and strictly more to keep than every worse one that names it (0: not named).
    With keep <= upgrade in each tier (check_programme), the bands [keep, upgrade) then
    follow one another up the ranks and never overlap."""
    ordered = sorted(((i, r) for i, r in enumerate(rules) if r.tier_id in ranks), key=lambda ir: ranks[ir[1].tier_id])
    for name, attr in [("upgrade_threshold", "upgrade"), ("keep_threshold", "keep")]:
        named = [(i, r) for i, r in ordered if getattr(r, attr)]
        for (_, lower), (i, higher) in pairwise(named):
            v.check(
                getattr(higher, attr) > getattr(lower, attr),
                f"{prefix}.tier_rules[{i}].{name}",
                "THRESHOLDS_OUT_OF_ORDER",
                f"a better tier must need more than a worse one: {getattr(higher, attr)} is not above "
                f"{getattr(lower, attr)} of tier {lower.tier_id}",
            )
    return [r for _, r in ordered]


def version_exists(day: date) -> AlreadyExists:
    return AlreadyExists(
        "PROGRAMME_VERSION_EXISTS",
        f"A version of the tier programme already starts on {day}.",
        f"{day} 已有生效的等级规则版本。",
        effective_from=day.isoformat(),
    )


def no_programme() -> FailedPrecondition:
    return FailedPrecondition("NO_TIER_PROGRAMME", "No tier programme is in force.", "当前没有生效的等级规则。")


# --- Words ---------------------------------------------------------------------------


def amount_words(measure: Measure, amount: int) -> str:
    if measure in (Measure.SPEND, Measure.TOP_UPS):
        return yuan(amount)
    if measure == Measure.VISITS:
        return f"{amount} 次"
    return f"{amount} 分"


def counted_words(p: Programme, value: int) -> str:
    """What was counted, as the history says it: 近 365 天消费 ¥3,200.00."""
    period = {
        Window.ROLLING_DAYS: f"近 {p.window_days} 天",
        Window.CALENDAR_YEAR: "本年度",
        Window.NONE: "",
    }[p.window]
    verb = {
        Measure.SPEND: "消费",
        Measure.TOP_UPS: "充值",
        Measure.VISITS: "到店",
        Measure.VALUE_SCORE: "会员价值分",
        Measure.POINTS_EARNED: "获得积分",
    }[p.measure]
    return f"{period}{verb} {amount_words(p.measure, value)}"


def needs_words(measure: Measure, shortfall: int, goal: str) -> str:
    """再消费 ¥120.00 即可保级."""
    verb = {
        Measure.SPEND: "再消费 ",
        Measure.TOP_UPS: "再充值 ",
        Measure.VISITS: "再到店 ",
        Measure.VALUE_SCORE: "会员价值分再提高 ",
        Measure.POINTS_EARNED: "再获得积分 ",
    }[measure]
    return f"{verb}{amount_words(measure, shortfall)} 即可{goal}"


# --- Decisions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A member's term on their tier, as kept."""

    tier_id: str  # "": none
    term_end: date | None
    evaluated_on: date | None = None
    floor_tier_id: str = ""
    floor_end: date | None = None

    def floor_on(self, day: date) -> str:
        """The tier given by hand the member may not go below on day ("": none)."""
        return self.floor_tier_id if self.floor_end is not None and day <= self.floor_end else ""


class Outcome(StrEnum):
    NONE = "none"  # nothing to do
    START = "start"  # a term begins for a member on a tier without one
    RENEW = "renew"
    GRACE = "grace"  # below the keep threshold, moved down at the grace period's end
    HELD = "held"  # below it, the grace period over, but held by a tier given by hand
    DOWN = "down"
    UP = "up"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    tier_id: str  # the tier after it
    term_end: date | None  # the term after it
    reason: str = ""


def climb_to(p: Programme, ranks: dict[str, int], tier_id: str, value: int) -> Rule | None:
    """The best tier of the programme the measure reaches, if better than tier_id (by
    rank: a tier outside the programme, such as a staff tier, counts by its rank)."""
    reached = max((r for r in p.rules if 0 < r.upgrade <= value), key=lambda r: ranks[r.tier_id], default=None)
    if reached is None or (tier_id and ranks.get(tier_id, -1) >= ranks[reached.tier_id]):
        return None
    return reached


def climb_reason(p: Programme, reached: Rule, value: int, tier_names: dict[str, str]) -> str:
    name = tier_names.get(reached.tier_id, reached.tier_id)
    return f"{counted_words(p, value)},达到{name}(满 {amount_words(p.measure, reached.upgrade)})"


def tier_after_return(
    p: Programme, ranks: dict[str, int], current_id: str, climbs: list[tuple[str, str]], value: int
) -> str:
    """As tiers.tier_after_return, by the programme: each climb (from, to; newest first)
    whose tier the measure no longer reaches is undone, down to the tier the member had
    before climbing at most, and from there they are lifted to the best tier still reached."""
    tier_id = current_id
    for from_id, to_id in climbs:
        rule = p.rule_of(to_id)
        if to_id != tier_id or (rule is not None and 0 < rule.upgrade <= value):
            break
        tier_id = from_id
    if tier_id == current_id:
        return current_id
    lifted = climb_to(p, ranks, tier_id, value)
    return lifted.tier_id if lifted else tier_id


def downgrade_date(p: Programme, term: Term) -> date | None:
    """The day a member below the keep threshold moves down: the grace period after the
    term's end, and never while the tier is theirs by hand (the day after its end)."""
    if term.term_end is None:
        return None
    day = term.term_end + timedelta(days=p.grace_days)
    if term.floor_tier_id == term.tier_id and term.floor_end is not None and day <= term.floor_end:
        day = term.floor_end + timedelta(days=1)
    return day


def decide(
    p: Programme,
    ranks: dict[str, int],
    tier_names: dict[str, str],
    tier_id: str,
    term: Term | None,
    value: int | None,
    day: date,
    value_at_end: int | None = None,
) -> Decision:
    """What the re-evaluation of business day `day` does to a member on tier_id ("":
    none) with their term (None: none kept) and the measure counted up to day (None:
    not counted). The tier is kept if the count up to the term's last day reached the
    keep threshold (value_at_end; a run late for that day, after a year end say, still
    counts the year that ended), or if the count up to day does (a member in their
    grace period who caught up)."""
    if term is not None and term.evaluated_on is not None and term.evaluated_on >= day:
        return Decision(Outcome.NONE, tier_id, term.term_end)  # decided already
    if term is not None and term.tier_id != tier_id:
        term = Term(tier_id, None, None, term.floor_tier_id, term.floor_end)  # moved otherwise: no term of this tier
    if value is not None:
        reached = climb_to(p, ranks, tier_id, value)
        if reached is not None:
            return Decision(Outcome.UP, reached.tier_id, p.term_end(day), climb_reason(p, reached, value, tier_names))
    rule = p.rule_of(tier_id)
    if rule is None:  # none, or a tier the programme does not move
        return Decision(Outcome.NONE, tier_id, term.term_end if term else None)
    if term is None or term.term_end is None:
        return Decision(Outcome.START, tier_id, p.term_end(day))
    if day < term.term_end or value is None:
        return Decision(Outcome.NONE, tier_id, term.term_end)
    if value >= rule.keep or (value_at_end is not None and value_at_end >= rule.keep):
        end = p.term_end(term.term_end + timedelta(days=1))  # consecutive terms
        while end < day:
            end = p.term_end(end + timedelta(days=1))
        return Decision(Outcome.RENEW, tier_id, end)
    down_on = downgrade_date(p, term)
    assert down_on is not None
    if day < down_on:
        return Decision(Outcome.GRACE, tier_id, term.term_end)
    target = _target(p, tier_id, value)
    floor = term.floor_on(day)
    if floor and (not target or ranks.get(floor, -1) > ranks.get(target, -1)):
        target = floor
    if target == tier_id:
        return Decision(Outcome.HELD, tier_id, term.term_end)
    name = tier_names.get(tier_id, tier_id)
    reason = f"{counted_words(p, value)},不足{name}保级(需 {amount_words(p.measure, rule.keep)})"
    return Decision(Outcome.DOWN, target, p.term_end(day) if target else None, reason)


def _target(p: Programme, tier_id: str, value: int) -> str:
    level = p.level_of(tier_id)
    lower = p.rules[:level]
    if not lower:
        return ""
    if p.downgrade == Downgrade.ONE_LEVEL:
        return lower[-1].tier_id
    qualified = [r for r in lower if value >= r.keep]
    return qualified[-1].tier_id if qualified else ""


# --- The tier page -------------------------------------------------------------------


@dataclass
class Progress:
    member_id: str
    tier_id: str
    programme: Programme
    value: int
    window_start: date | None
    term_end: date | None = None
    keep_threshold: int = 0
    keep_shortfall: int = 0
    downgrade_date: date | None = None
    next_tier_id: str = ""
    next_threshold: int = 0
    next_shortfall: int = 0
    floor_tier_id: str = ""
    floor_end: date | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def at_risk(self) -> bool:
        return self.downgrade_date is not None


def progress(
    p: Programme,
    ranks: dict[str, int],
    tier_names: dict[str, str],
    member_id: str,
    tier_id: str,
    term: Term | None,
    value: int,
    day: date,
) -> Progress:
    """A member's standing on day: what they lack, in the measure's unit, to keep their
    tier at the end of its term and to reach the next one up."""
    out = Progress(member_id, tier_id, p, value, p.window_start(day))
    if term is not None and term.tier_id == tier_id:
        out.term_end = term.term_end
        out.floor_tier_id = term.floor_on(day)
        out.floor_end = term.floor_end if out.floor_tier_id else None
    rule = p.rule_of(tier_id)
    if rule is not None:
        out.keep_threshold = rule.keep
        out.keep_shortfall = max(0, rule.keep - value)
        if out.keep_shortfall and term is not None and term.tier_id == tier_id:
            out.downgrade_date = downgrade_date(p, term)
            out.messages.append(needs_words(p.measure, out.keep_shortfall, "保级"))
    current_rank = ranks.get(tier_id, -1) if tier_id else -1
    better = [r for r in p.rules if r.upgrade and ranks[r.tier_id] > current_rank]
    if better:
        nxt = better[0]
        out.next_tier_id, out.next_threshold = nxt.tier_id, nxt.upgrade
        out.next_shortfall = max(0, nxt.upgrade - value)
        out.messages.append(needs_words(p.measure, out.next_shortfall, f"升级为{tier_names.get(nxt.tier_id, '')}"))
    return out


def at_risk_on(p: Programme, term: Term, day: date) -> bool:
    """Is the member's move down due within the notice period (their measure aside)?"""
    down_on = downgrade_date(p, term)
    return down_on is not None and day <= down_on <= day + timedelta(days=p.notice_days)
