"""The value score (会员价值分, like 京享值): 0 to 1000 per member and month, from five
components each scored 0 to 1000 and weighted as HQ sets (basis points summing to
10000). Counted over the 12 months before the month's first day (the monthly run) or
before now (on demand, for one member):

- recency: days since the last visit: 1000 within 7 days, falling evenly to 0 at 365
  (0 without a visit in the 12 months);
- frequency: visits, 1000 at 52 (one a week) or more;
- spend: spend in all stores, returns taken off, 1000 at ¥20,000 or more;
- tenure: whole months since registration, 1000 at 60 (five years) or more;
- engagement, from what the member service knows of the member: marketing consent
  (300), a birthday on the profile (200), a gender on it (100), and a care contact
  (回访) recorded in the 12 months (400).

A component adds raw * weight_bp // 10000 points (rounded down), and the score is the
sum of the points, so that the explanation adds up to the score exactly. Pure: no I/O,
no clock.
"""

from dataclasses import dataclass
from datetime import date

from huiyuan.runtime.errors import NotFound, Violations
from huiyuan.runtime.money import yuan

COMPONENTS = ["recency", "frequency", "spend", "tenure", "engagement"]
WORDS = {"recency": "最近到店", "frequency": "到店频次", "spend": "消费金额", "tenure": "会龄", "engagement": "互动"}
FULL_SPEND_FEN = 2_000_000  # ¥20,000
FULL_VISITS = 52
FULL_TENURE_MONTHS = 60
RECENT_DAYS, FORGOTTEN_DAYS = 7, 365
ENGAGEMENT = {"consent": 300, "birthday": 200, "gender": 100, "care_contact": 400}
DEFAULT_WEIGHTS = dict.fromkeys(COMPONENTS, 2000)


@dataclass(frozen=True)
class Inputs:
    """What was counted for one member."""

    days_since_visit: int | None  # None: no visit in the 12 months
    visits: int
    spend_fen: int
    tenure_months: int
    consent: bool
    birthday: bool
    gender: bool
    care_contact: bool

    def as_dict(self) -> dict[str, object]:
        return dict(vars(self))


INPUT_NAMES = list(Inputs.__dataclass_fields__)


@dataclass(frozen=True)
class Score:
    member_id: str
    month: date
    score: int
    inputs: Inputs
    raw: dict[str, int]
    weights: dict[str, int]

    def points(self) -> dict[str, int]:
        return {c: self.raw[c] * self.weights[c] // 10000 for c in COMPONENTS}


def check_weights(v: Violations, weights: dict[str, int], prefix: str = "weights") -> None:
    for c in COMPONENTS:
        v.check(0 <= weights[c] <= 10000, f"{prefix}.{c}_bp", "WEIGHT_OUT_OF_RANGE", f"{c}_bp must be 0 to 10000")
    v.check(
        sum(weights.values()) == 10000,
        prefix,
        "WEIGHTS_NOT_10000",
        f"the weights must sum to 10000 basis points, not {sum(weights.values())}",
    )


def raw_of(i: Inputs) -> dict[str, int]:
    if i.days_since_visit is None or i.days_since_visit >= FORGOTTEN_DAYS:
        recency = 0
    elif i.days_since_visit <= RECENT_DAYS:
        recency = 1000
    else:
        recency = 1000 * (FORGOTTEN_DAYS - i.days_since_visit) // (FORGOTTEN_DAYS - RECENT_DAYS)
    engagement = sum(points for key, points in ENGAGEMENT.items() if getattr(i, key))
    return {
        "recency": recency,
        "frequency": min(max(i.visits, 0), FULL_VISITS) * 1000 // FULL_VISITS,
        "spend": min(max(i.spend_fen, 0), FULL_SPEND_FEN) * 1000 // FULL_SPEND_FEN,
        "tenure": min(max(i.tenure_months, 0), FULL_TENURE_MONTHS) * 1000 // FULL_TENURE_MONTHS,
        "engagement": min(engagement, 1000),
    }


def score_of(member_id: str, month: date, inputs: Inputs, weights: dict[str, int]) -> Score:
    raw = raw_of(inputs)
    total = sum(raw[c] * weights[c] // 10000 for c in COMPONENTS)
    return Score(member_id, month, total, inputs, raw, dict(weights))


def months_between(start: date, end: date) -> int:
    """Whole months from start to end (0 if end is before start)."""
    months = (end.year - start.year) * 12 + end.month - start.month - (end.day < start.day)
    return max(0, months)


def detail(component: str, i: Inputs) -> str:
    """What a component counted, in zh-CN."""
    if component == "recency":
        return "近 12 个月未到店" if i.days_since_visit is None else f"最近一次到店在 {i.days_since_visit} 天前"
    if component == "frequency":
        return f"近 12 个月到店 {i.visits} 次"
    if component == "spend":
        return f"近 12 个月消费 {yuan(i.spend_fen)}"
    if component == "tenure":
        return f"入会 {i.tenure_months} 个月"
    done = [
        words
        for key, words in [
            ("consent", "已授权营销"),
            ("birthday", "已填生日"),
            ("gender", "已填性别"),
            ("care_contact", "近 12 个月有回访"),
        ]
        if getattr(i, key)
    ]
    return "、".join(done) or "暂无互动"


@dataclass(frozen=True)
class Line:
    component: str
    raw: int
    weight_bp: int
    points: int
    change: int
    detail: str


def explain(score: Score, previous: Score | None) -> list[Line]:
    """Each component's points and how they moved since the month before: what raised
    the score and what lowered it."""
    now, before = score.points(), previous.points() if previous else None
    return [
        Line(
            c,
            score.raw[c],
            score.weights[c],
            now[c],
            now[c] - before[c] if before else 0,
            detail(c, score.inputs),
        )
        for c in COMPONENTS
    ]


def not_scored(member_id: str) -> NotFound:
    return NotFound(
        "VALUE_SCORE_NOT_FOUND",
        f"No value score of member '{member_id}' is computed yet.",
        "该会员尚未计算会员价值分。",
        member_id=member_id,
    )
