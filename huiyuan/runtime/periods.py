"""Report periods in business days, and how a span of days is tiled by the rollups'
grains (docs/reports.md).

A rollup keeps each counter at three grains: the day, the month and the year (and, for
balances, a running total). A span of days is read as the fewest pieces that tile it -
whole years, then whole months, then the days at its edges - so a chain's year is one
row per node, a region's month one, and no read costs more than about 60 day rows
however long the span: what a report costs depends on its nodes, not on its period or
the history behind it.

Pure: days in, days out (business days come from huiyuan/runtime/business_time.py).
"""

from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum

DAY, MONTH, YEAR, RUNNING = "D", "M", "Y", "A"  # a rollup row's grain
RUNNING_DAY = date(1, 1, 1)  # the day a running total's row carries
MAX_DAYS = 400  # a from-to period: up to 13 months
# The day a rollup counts what never expires on (a lot, a coupon): the last day a
# request may name (huiyuan/runtime/convert.py), so "from today on" can be asked for.
NEVER_EXPIRES = date(9998, 12, 31)


class Kind(Enum):
    DAY = "DAY"
    WEEK = "WEEK"  # Monday to Sunday
    MONTH = "MONTH"
    QUARTER = "QUARTER"
    YEAR = "YEAR"
    RANGE = "RANGE"  # from-to, up to MAX_DAYS


@dataclass(frozen=True)
class Period:
    """Business days first..last, both counted."""

    first: date
    last: date
    kind: Kind = Kind.RANGE

    def __post_init__(self) -> None:
        assert self.first <= self.last, (self.first, self.last)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> "Period":
        """The period just before, of the same kind: last month for a month (环比)."""
        if self.kind in (Kind.MONTH, Kind.QUARTER, Kind.YEAR):
            months = {Kind.MONTH: 1, Kind.QUARTER: 3, Kind.YEAR: 12}[self.kind]
            first = add_months(self.first, -months)
            return Period(first, self.first - timedelta(days=1), self.kind)
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1), self.kind)

    def year_earlier(self) -> "Period":
        """The same period a year before (同比): 29 February falls on the 28th."""
        first = add_months(self.first, -12)
        if self.kind in (Kind.MONTH, Kind.QUARTER, Kind.YEAR):
            return Period(first, add_months(self.last + timedelta(days=1), -12) - timedelta(days=1), self.kind)
        if self.kind == Kind.WEEK:  # the same weekday a year before: 52 weeks back
            return Period(self.first - timedelta(weeks=52), self.last - timedelta(weeks=52), self.kind)
        return Period(first, add_months(self.last, -12), self.kind)

    def contains(self, day: date) -> bool:
        return self.first <= day <= self.last


def period_of(kind: Kind, day: date, last: date | None = None) -> Period:
    """The period of a kind that holds day (RANGE: day..last)."""
    if kind == Kind.DAY:
        return Period(day, day, kind)
    if kind == Kind.WEEK:
        monday = day - timedelta(days=day.weekday())
        return Period(monday, monday + timedelta(days=6), kind)
    if kind == Kind.MONTH:
        first = day.replace(day=1)
        return Period(first, add_months(first, 1) - timedelta(days=1), kind)
    if kind == Kind.QUARTER:
        first = date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
        return Period(first, add_months(first, 3) - timedelta(days=1), kind)
    if kind == Kind.YEAR:
        return Period(date(day.year, 1, 1), date(day.year, 12, 31), kind)
    assert last is not None
    return Period(day, last, kind)


def add_months(day: date, months: int) -> date:
    """The same day of the month, months later (or earlier), cut to the month's end."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, _month_days(year, month + 1)))


def _month_days(year: int, month: int) -> int:
    following = date(year + (month == 12), month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def month_start(day: date) -> date:
    return day.replace(day=1)


def year_start(day: date) -> date:
    return day.replace(month=1, day=1)


def grain_days(day: date) -> list[tuple[str, date]]:
    """The rows a fact of this day adds to: its day, its month and its year."""
    return [(DAY, day), (MONTH, month_start(day)), (YEAR, year_start(day))]


@dataclass(frozen=True)
class Tile:
    """Rows of one grain whose day lies in first..last."""

    grain: str
    first: date
    last: date


def tiles(first: date, last: date) -> list[Tile]:
    """The fewest rows that add up to the days first..last: whole years, whole months,
    then single days at the edges, as ranges of one grain each (at most five)."""
    out: list[Tile] = []
    day = first
    while day <= last:
        year_end = date(day.year, 12, 31)
        month_end = add_months(month_start(day), 1) - timedelta(days=1)
        if day == year_start(day) and year_end <= last:
            # every whole year at once: a balance as of a day reads what came after it up
            # to 9999-12-31, and a year at a time was 8,000 steps of Python per query
            grain, end = YEAR, date(last.year if (last.month, last.day) == (12, 31) else last.year - 1, 12, 31)
        elif day.day == 1 and month_end <= last:
            grain, end = MONTH, month_end
        else:
            grain, end = DAY, day
        if out and out[-1].grain == grain:
            out[-1] = Tile(grain, out[-1].first, _start_of(grain, end))
        else:
            out.append(Tile(grain, _start_of(grain, day), _start_of(grain, end)))
        if end == date.max:
            break
        day = end + timedelta(days=1)
    return out


def _start_of(grain: str, day: date) -> date:
    return {YEAR: year_start, MONTH: month_start}.get(grain, lambda d: d)(day)


def month_tiles(first: date, last: date) -> list[tuple[date, list[Tile]]]:
    """The months that first..last touches, each with the tiles of its part of the span."""
    out = []
    start = month_start(first)
    while start <= last:
        end = add_months(start, 1) - timedelta(days=1)
        out.append((start, tiles(max(start, first), min(end, last))))
        start = end + timedelta(days=1)
    return out
