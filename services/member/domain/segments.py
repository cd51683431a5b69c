"""Automatic tags and saved segments (issue 40, item 5): the rules' kinds and their
checks, the windows they count in business days, the thresholds that ranks and RFM
scores come to, and a segment's criteria as they are kept.

An automatic tag is set by a rule on exactly the members of its node (by home store)
the rule selects on the day it runs, and taken off those it no longer selects. It is
kept apart from the tags staff set by hand (Member.tags): a member may carry a tag
both ways; the job never touches the hand-set one, and a filter or a campaign that
asks for the tag finds the member either way.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from huiyuan.runtime.business_time import day_start, local
from huiyuan.runtime.errors import AlreadyExists, FailedPrecondition, NotFound, Violations
from services.member.domain.care import DaySpan
from services.member.domain.members import Channel, MemberQuery

MAX_WINDOW_DAYS = 1_096  # three years: a window longer than kept history is refused
MAX_VISITS = 100_000
MAX_SPEND_FEN = 10**12
MAX_AUTOMATIC_TAGS = 10  # a segment's automatic_tags
QUINTILES = 5  # as SummarizeMembers (domain/reports.py)


class RuleKind(StrEnum):
    VISITS = "VISITS"
    DORMANT = "DORMANT"
    SPEND_RANK = "SPEND_RANK"
    RFM = "RFM"
    BIRTHDAY_MONTH = "BIRTHDAY_MONTH"
    PAID_MEMBER = "PAID_MEMBER"  # a paid term (付费会员, a trial too) in force on the run's day
    VALUE_SCORE_BAND = "VALUE_SCORE_BAND"  # the member's latest value score within a band
    SEGMENT = "SEGMENT"


MAX_SCORE = 1000  # the value score's range is 0 to 1000 (domain/value_score.py)


@dataclass(frozen=True)
class ScoreRange:
    low: int = 1
    high: int = QUINTILES

    def takes_all(self) -> bool:
        return self.low <= 1 and self.high >= QUINTILES


@dataclass(frozen=True)
class Rfm:
    recency: ScoreRange = ScoreRange()
    frequency: ScoreRange = ScoreRange()
    monetary: ScoreRange = ScoreRange()


@dataclass
class TagRule:
    rule_id: str
    org_path: str
    tag: str
    kind: RuleKind
    # by kind: window_days, min_visits, max_visits, days, top_percent, rfm, month, plan_id,
    # min_score, max_score
    params: dict[str, Any]
    create_time: datetime
    segment_id: str = ""
    live: bool = True
    revision: int = 1
    member_count: int = 0
    last_run_time: datetime | None = None


@dataclass
class Segment:
    segment_id: str
    org_path: str
    name: str
    criteria: dict[str, Any]  # criteria_to_dict()
    tag: str
    rule_id: str
    create_time: datetime
    update_time: datetime
    delete_time: datetime | None = None


@dataclass(frozen=True)
class Window:
    """Visits (and their spend) in the last window_days business days, between two
    counts (high 0: no bound)."""

    window_days: int
    low: int = 0
    high: int = 0


@dataclass
class Criteria:
    """What a segment selects: every part set must hold."""

    query: MemberQuery = field(default_factory=MemberQuery)
    visits: Window | None = None
    spend: Window | None = None  # low and high in fen
    rfm: Rfm | None = None
    automatic_tags: list[str] = field(default_factory=list)
    paid_member: bool = False  # a paid term (any plan, a trial too) runs on the day
    value_score: tuple[int, int] | None = None  # the latest score, low to high (high 0: no bound)


# --- checks --------------------------------------------------------------------------


def check_window(v: Violations, days: int, field_path: str) -> None:
    v.check(
        1 <= days <= MAX_WINDOW_DAYS,
        field_path,
        "WINDOW_OUT_OF_RANGE",
        f"a window is 1 to {MAX_WINDOW_DAYS} days (the history kept)",
    )


def check_bounds(v: Violations, low: int, high: int, most: int, field_path: str, low_name: str, high_name: str) -> None:
    v.check(0 <= low <= most, f"{field_path}.{low_name}", "BOUND_OUT_OF_RANGE", f"{low_name} is 0 to {most}")
    v.check(0 <= high <= most, f"{field_path}.{high_name}", "BOUND_OUT_OF_RANGE", f"{high_name} is 0 to {most}")
    v.check(
        high == 0 or high >= low, f"{field_path}.{high_name}", "BOUNDS_REVERSED", f"{high_name} is below {low_name}"
    )


def check_score_range(v: Violations, low: int, high: int, field_path: str) -> ScoreRange:
    """An unset range (0, 0) takes every score."""
    if low == 0 and high == 0:
        return ScoreRange()
    ok = 1 <= low <= QUINTILES and 1 <= high <= QUINTILES and low <= high
    v.check(ok, field_path, "SCORE_RANGE_INVALID", "a score range is min to max, each 1 to 5, min not above max")
    return ScoreRange(low, high) if ok else ScoreRange()


def check_rule_node(v: Violations, org_path: str, field_path: str) -> None:
    """HQ's rules look at the chain, a region's at its region: no rule of a store."""
    v.check(
        0 < len(org_path.split("/")) <= 2,
        field_path,
        "TAG_RULE_NODE_INVALID",
        "an automatic tag is HQ's ('hq') or a region's ('hq/<region>')",
    )


def visits_params(v: Violations, window_days: int, low: int, high: int, field_path: str) -> dict[str, Any]:
    check_window(v, window_days, f"{field_path}.window_days")
    check_bounds(v, low, high, MAX_VISITS, field_path, "min_visits", "max_visits")
    v.check(
        low > 0 or high > 0, field_path, "RULE_SELECTS_EVERYONE", "give min_visits or max_visits: both 0 take everyone"
    )
    return {"window_days": window_days, "min_visits": low, "max_visits": high}


def dormant_params(v: Violations, days: int, field_path: str) -> dict[str, Any]:
    check_window(v, days, f"{field_path}.days")
    return {"days": days}


def spend_rank_params(v: Violations, window_days: int, top_percent: int, field_path: str) -> dict[str, Any]:
    check_window(v, window_days, f"{field_path}.window_days")
    v.check(1 <= top_percent <= 100, f"{field_path}.top_percent", "PERCENT_OUT_OF_RANGE", "top_percent is 1 to 100")
    return {"window_days": window_days, "top_percent": top_percent}


def rfm_params(rfm: Rfm, v: Violations, field_path: str) -> dict[str, Any]:
    v.check(
        not (rfm.recency.takes_all() and rfm.frequency.takes_all() and rfm.monetary.takes_all()),
        field_path,
        "RULE_SELECTS_EVERYONE",
        "give at least one score range narrower than 1 to 5",
    )
    return {"rfm": rfm_to_list(rfm)}


def birthday_month_params(v: Violations, month: int, field_path: str) -> dict[str, Any]:
    v.check(0 <= month <= 12, f"{field_path}.month", "MONTH_INVALID", "month is 1 to 12, or 0 for the current one")
    return {"month": month}


def paid_member_params(plan_id: str) -> dict[str, Any]:
    """plan_id: "" for any plan (the use case finds it)."""
    return {"plan_id": plan_id}


def value_score_params(v: Violations, low: int, high: int, field_path: str) -> dict[str, Any]:
    """A band of the latest value score, low to high (high 0: no upper bound)."""
    check_bounds(v, low, high, MAX_SCORE, field_path, "min_score", "max_score")
    v.check(
        low > 0 or high > 0, field_path, "RULE_SELECTS_EVERYONE", "give min_score or max_score: both 0 take everyone"
    )
    return {"min_score": low, "max_score": high}


def rfm_to_list(rfm: Rfm) -> list[list[int]]:
    return [[r.low, r.high] for r in (rfm.recency, rfm.frequency, rfm.monetary)]


def rfm_from_list(kept: list[list[int]]) -> Rfm:
    r, f, m = (ScoreRange(low, high) for low, high in kept)
    return Rfm(r, f, m)


def tag_taken(tag: str) -> AlreadyExists:
    return AlreadyExists(
        "TAG_RULE_EXISTS",
        f"Another automatic tag rule keeps the tag {tag}.",
        f"自动标签“{tag}”已由另一条规则维护。",
        tag=tag,
    )


def rule_not_found(rule_id: str) -> NotFound:
    return NotFound("TAG_RULE_NOT_FOUND", "No such tag rule.", "自动标签规则不存在。", rule_id=rule_id)


def segment_not_found(segment_id: str) -> NotFound:
    return NotFound("SEGMENT_NOT_FOUND", "No such segment.", "会员分群不存在。", segment_id=segment_id)


def segment_deleted(segment_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "SEGMENT_DELETED", "This segment is deleted.", "该会员分群已删除。", segment_id=segment_id
    )


def rule_of_segment(rule_id: str, segment_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "TAG_RULE_OF_SEGMENT",
        "This rule keeps a segment's tag: change or delete the segment.",
        "该规则维护分群的标签，请修改或删除分群。",
        rule_id=rule_id,
        segment_id=segment_id,
    )


# --- time ----------------------------------------------------------------------------


def run_day(now: datetime) -> date:
    """The business day a run at now computes for."""
    return local(now).date()


def window_start(day: date, window_days: int) -> datetime:
    """The first moment of a window of window_days business days ending with day."""
    return day_start(day - timedelta(days=window_days - 1))


def birthday_month(params: dict[str, Any], day: date) -> str:
    """'MM': the month a birthday-month rule takes on day."""
    return f"{params['month'] or day.month:02d}"


# --- ranks and scores ----------------------------------------------------------------


def top_count(members: int, top_percent: int) -> int:
    """How many of a node's members its top top_percent are: at least one when there
    are members (rounded up)."""
    return -(-members * top_percent // 100) if members else 0


def cut_positions(visiting: int) -> dict[int, int]:
    """For each score s of 2 to 5, the position k (1-based, in ascending order of
    value) such that a value scores s or more exactly when it is above the k-th
    smallest: SummarizeMembers scores a value 1 + 5 x (members with a smaller value)
    // visiting, so it scores s or more when (s - 1) x visiting / 5 members or more are
    smaller, that is when it is above the k-th smallest, k = ceil((s - 1) x n / 5)."""
    return {s: -(-(s - 1) * visiting // QUINTILES) for s in range(2, QUINTILES + 1)}


def score_of(value: Any, cuts: dict[int, Any]) -> int:
    """The score of a value, given each score's cut value (the k-th smallest of
    cut_positions): the highest s whose cut the value is above."""
    score = 1
    for s in range(2, QUINTILES + 1):
        if s in cuts and cuts[s] is not None and value > cuts[s]:
            score = s
    return score


def value_range(cuts: dict[int, Any], scores: ScoreRange) -> tuple[Any, Any]:
    """(above, at_most): values scoring within scores are those above `above` (None: no
    bound) and not above `at_most` (None: no bound)."""
    above = cuts.get(scores.low) if scores.low > 1 else None
    at_most = cuts.get(scores.high + 1) if scores.high < QUINTILES else None
    return above, at_most


# --- a segment's criteria as kept ----------------------------------------------------


def _span(span: DaySpan | None) -> list[str] | None:
    return [span.first, span.last] if span else None


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def criteria_to_dict(c: Criteria) -> dict[str, Any]:
    q = c.query
    return {
        "query": {
            "org_path": q.org_path,
            "tier_id": q.tier_id,
            "channel": q.channel.value if q.channel else "",
            "name_contains": q.name_contains,
            "phone_suffix": q.phone_suffix,
            "registered_after": _time(q.registered_after),
            "registered_before": _time(q.registered_before),
            "tag": q.tag,
            "birthday_in": _span(q.birthday_in),
            "anniversary_in": _span(q.anniversary_in),
            "no_visit_since": _time(q.no_visit_since),
        },
        "visits": [c.visits.window_days, c.visits.low, c.visits.high] if c.visits else None,
        "spend": [c.spend.window_days, c.spend.low, c.spend.high] if c.spend else None,
        "rfm": rfm_to_list(c.rfm) if c.rfm else None,
        "automatic_tags": list(c.automatic_tags),
        "paid_member": c.paid_member,
        "value_score": list(c.value_score) if c.value_score else None,
    }


def criteria_from_dict(kept: dict[str, Any]) -> Criteria:
    q = kept["query"]

    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    def span(value: list[str] | None) -> DaySpan | None:
        return DaySpan(*value) if value else None

    query = MemberQuery(
        org_path=q["org_path"],
        tier_id=q["tier_id"],
        channel=Channel(q["channel"]) if q["channel"] else None,
        name_contains=q["name_contains"],
        phone_suffix=q["phone_suffix"],
        registered_after=when(q["registered_after"]),
        registered_before=when(q["registered_before"]),
        tag=q["tag"],
        birthday_in=span(q["birthday_in"]),
        anniversary_in=span(q["anniversary_in"]),
        no_visit_since=when(q["no_visit_since"]),
    )
    return Criteria(
        query=query,
        visits=Window(*kept["visits"]) if kept.get("visits") else None,
        spend=Window(*kept["spend"]) if kept.get("spend") else None,
        rfm=rfm_from_list(kept["rfm"]) if kept.get("rfm") else None,
        automatic_tags=list(kept.get("automatic_tags") or []),
        paid_member=bool(kept.get("paid_member")),
        value_score=(kept["value_score"][0], kept["value_score"][1]) if kept.get("value_score") else None,
    )
