"""What the member service's facts add to the reports' rollups (docs/reports.md), and the
rules of the members' snapshot (SummarizeMembers).

Each function takes one fact as it is written (live, in its transaction) or as it is
read back from the raw records (the rebuild) and returns its Contributions; the two
paths call the same function, so they cannot disagree. Days are business days in the
chain's zone (huiyuan/runtime/business_time.py).

The rollups:

registrations  registering node (till deep), key the channel (STORE, BULK_IMPORT, ...):
               members
registrars     registering node (till deep), key the cashier_id ("" none): members
visitors       the visit's store, key the member_id: orders, spend_fen (a return takes
               its amount off on its own day, orders unchanged)
first_visits   the store of a member's first visit ever: members
tiers          running, the member's home store, key the tier_id ("" none): members
tier_moves     the member's home store, key "<from>><to>": members
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from huiyuan.runtime.business_time import local
from huiyuan.runtime.rollups import Contribution

REGISTRATIONS = "registrations"
REGISTRARS = "registrars"
VISITORS = "visitors"
FIRST_VISITS = "first_visits"
TIERS = "tiers"
TIER_MOVES = "tier_moves"

MAX_CASHIER_ID = 64
QUIET_DAYS = 90  # a member who visited, but not in the 90 days up to the day asked, is quiet
BIRTHDAY_DAYS = 30  # birthdays in the day asked and the 29 after it
QUINTILES = 5


def day_of(moment: datetime) -> date:
    """The business day of a moment."""
    return local(moment).date()


@dataclass(frozen=True)
class Registration:
    """A member as registered: where, how, by whom, homed where, in which tier."""

    member_id: str
    registered_org_path: str
    channel: str
    cashier_id: str
    home_store_path: str
    tier_id: str
    create_time: datetime


def registered(r: Registration) -> list[Contribution]:
    day = day_of(r.create_time)
    one = {"members": 1}
    return [
        Contribution(REGISTRATIONS, r.registered_org_path, day, r.channel, one),
        Contribution(REGISTRARS, r.registered_org_path, day, r.cashier_id, one),
        Contribution(TIERS, r.home_store_path, day, r.tier_id, one),
    ]


@dataclass(frozen=True)
class Visit:
    """A visit as the reports see it (a row of visits)."""

    order_id: str
    member_id: str
    store_path: str
    amount_fen: int
    visit_time: datetime

    @property
    def order(self) -> tuple[datetime, str]:
        """Which of a member's visits came first: the earlier, ties by order_id."""
        return (self.visit_time, self.order_id)


def visited(v: Visit) -> list[Contribution]:
    return [
        Contribution(
            VISITORS, v.store_path, day_of(v.visit_time), v.member_id, {"orders": 1, "spend_fen": v.amount_fen}
        )
    ]


def returned(visit: Visit, amount_fen: int, return_time: datetime) -> list[Contribution]:
    """A return: its amount off the spend of the visit's store and member, on its own day."""
    return [Contribution(VISITORS, visit.store_path, day_of(return_time), visit.member_id, {"spend_fen": -amount_fen})]


def first_visit(v: Visit) -> list[Contribution]:
    return [Contribution(FIRST_VISITS, v.store_path, day_of(v.visit_time), "", {"members": 1})]


def first_visit_moved(new: Visit, first_so_far: Visit | None) -> list[Contribution]:
    """What a visit just recorded changes in first_visits, given the member's first visit
    before it (None: it is their first): counted if it is the first, moved to it from
    the one before if it came earlier (a till that was offline sends yesterday's visit
    today), nothing otherwise. So the live counts equal the rebuild's (earliest visit
    per member) whatever order the visits arrive in."""
    if first_so_far is None:
        return first_visit(new)
    if new.order < first_so_far.order:
        undo = first_visit(first_so_far)[0]
        return [Contribution(FIRST_VISITS, undo.path, undo.day, "", {"members": -1}), *first_visit(new)]
    return []


def earliest(visits: Iterable[Visit]) -> Visit | None:
    """A member's first visit of those given."""
    return min(visits, key=lambda v: v.order, default=None)


@dataclass(frozen=True)
class TierMove:
    """A member's tier change, at their home store at the time."""

    member_id: str
    home_store_path: str
    from_tier_id: str  # "": none
    to_tier_id: str
    change_time: datetime


def tier_moved(m: TierMove) -> list[Contribution]:
    day = day_of(m.change_time)
    out = [Contribution(TIER_MOVES, m.home_store_path, day, f"{m.from_tier_id}>{m.to_tier_id}", {"members": 1})]
    if m.from_tier_id != m.to_tier_id:
        out += [
            Contribution(TIERS, m.home_store_path, day, m.from_tier_id, {"members": -1}),
            Contribution(TIERS, m.home_store_path, day, m.to_tier_id, {"members": 1}),
        ]
    return out


@dataclass(frozen=True)
class HomeMove:
    """A member's home store changed (UpdateMember), with the tier they had."""

    member_id: str
    from_path: str
    to_path: str
    tier_id: str
    move_time: datetime


def home_moved(m: HomeMove) -> list[Contribution]:
    if m.from_path == m.to_path:
        return []
    day = day_of(m.move_time)
    return [
        Contribution(TIERS, m.from_path, day, m.tier_id, {"members": -1}),
        Contribution(TIERS, m.to_path, day, m.tier_id, {"members": 1}),
    ]


# ---------------------------------------------------------------- the snapshot


@dataclass(frozen=True)
class SnapshotWindows:
    """The cut-offs SummarizeMembers counts by, from the day asked."""

    as_of: date
    quiet_before: date  # a last visit before this day is quiet
    birthday_days: tuple[str, ...]  # 'MM-DD' of the 30 days from as_of


def windows(as_of: date) -> SnapshotWindows:
    days = [as_of + timedelta(days=i) for i in range(BIRTHDAY_DAYS)]
    month_days = {d.strftime("%m-%d") for d in days}
    if "02-28" in month_days and not any(d.month == 2 and d.day == 29 for d in days):
        month_days.add("02-29")  # in a year without one, the 29th's birthday is kept on the 28th
    return SnapshotWindows(as_of, as_of - timedelta(days=QUIET_DAYS - 1), tuple(sorted(month_days)))


def score(worse: int, members: int) -> int:
    """A quintile score, 1 to 5 (5 best): 1 + 5 x the share of the node's members with a
    worse value. Members with equal values share a score (the lowest of their run)."""
    return 1 + QUINTILES * worse // members


@dataclass(frozen=True)
class RfmCell:
    recency_score: int
    frequency_score: int
    monetary_score: int
    members: int


@dataclass(frozen=True)
class QuintileRange:
    score: int
    min_value: int
    max_value: int
    members: int


@dataclass(frozen=True)
class CellRanges:
    """A cell of members with one (r, f, m) score, and the values it holds."""

    cell: RfmCell
    last_days: tuple[date, date]  # the earliest and latest last-visit day
    visits: tuple[int, int]
    spend_fen: tuple[int, int]


@dataclass(frozen=True)
class Summary:
    members: int
    never_visited: int
    quiet_members: int
    birthday_members: int
    cells: list[RfmCell]
    recency: list[QuintileRange]
    frequency: list[QuintileRange]
    monetary: list[QuintileRange]


def summary(as_of: date, members: int, never: int, quiet: int, birthdays: int, cells: list[CellRanges]) -> Summary:
    """The snapshot's answer from its counts and cells: each measure's quintile ranges
    gathered from the cells (recency as days from the last visit to as_of)."""

    def ranges(
        score_of: Callable[[RfmCell], int], low_high: Callable[[CellRanges], tuple[int, int]]
    ) -> list[QuintileRange]:
        by_score: dict[int, tuple[int, int, int]] = {}
        for c in cells:
            s = score_of(c.cell)
            low, high = low_high(c)
            kept = by_score.get(s)
            by_score[s] = (
                (low, high, c.cell.members)
                if kept is None
                else (min(kept[0], low), max(kept[1], high), kept[2] + c.cell.members)
            )
        return [QuintileRange(s, lo, hi, n) for s, (lo, hi, n) in sorted(by_score.items())]

    return Summary(
        members,
        never,
        quiet,
        birthdays,
        sorted((c.cell for c in cells), key=lambda c: (c.recency_score, c.frequency_score, c.monetary_score)),
        ranges(lambda c: c.recency_score, lambda c: ((as_of - c.last_days[1]).days, (as_of - c.last_days[0]).days)),
        ranges(lambda c: c.frequency_score, lambda c: c.visits),
        ranges(lambda c: c.monetary_score, lambda c: c.spend_fen),
    )
