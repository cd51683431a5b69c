"""The reports' tables (docs/reports.md): typed cells in rows under columns, built from
the rollups' sums; and the arithmetic a report does on them - rates in basis points,
changes against another period, averages - in integers, rounding half up, never a float
near money. Pure: the use case (use_cases/report_runs.py) fetches the sums, the
servicer turns these tables into ReportTable messages.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

TEXT, MONEY, COUNT, RATE, DAY, POINTS, HUNDREDTHS = (
    "text",
    "money_fen",
    "count",
    "rate_bp",
    "day",
    "points",
    "hundredths",
)
Value = str | int | date | None


@dataclass(frozen=True)
class Cell:
    kind: str
    value: Value  # None: nothing to show (a rate over nothing)


@dataclass
class Table:
    name: str
    title: str
    columns: list[tuple[str, str]]  # (name, Chinese title)
    rows: list[tuple[list[Cell], str]] = field(default_factory=list)  # (cells, org path or "")
    note: str = ""

    def add(self, cells: list[Cell], org_path: str = "") -> None:
        assert len(cells) == len(self.columns), (self.name, len(cells), len(self.columns))
        self.rows.append((cells, org_path))


def text(value: str) -> Cell:
    return Cell(TEXT, value)


def money(fen: int) -> Cell:
    return Cell(MONEY, fen)


def count(n: int) -> Cell:
    return Cell(COUNT, n)


def points(n: int) -> Cell:
    return Cell(POINTS, n)


def day(d: date) -> Cell:
    return Cell(DAY, d)


def rate(part: int, whole: int) -> Cell:
    """part of whole in basis points, half up; nothing over nothing."""
    return Cell(RATE, _divided(part * 10000, whole))


def change(now: int, before: int) -> Cell:
    """The change from before to now in basis points (环比, 同比); nothing from nothing."""
    return Cell(RATE, _divided((now - before) * 10000, before) if before else None)


def per(part: int, whole: int, kind: str = MONEY) -> Cell:
    """part per whole (an average ticket in fen, orders per member in hundredths)."""
    if kind == HUNDREDTHS:
        return Cell(HUNDREDTHS, _divided(part * 100, whole))
    return Cell(kind, _divided(part, whole))


def _divided(numerator: int, denominator: int) -> int | None:
    if denominator == 0:
        return None
    sign = -1 if (numerator < 0) != (denominator < 0) else 1
    n, d = abs(numerator), abs(denominator)
    return sign * ((2 * n + d) // (2 * d))


@dataclass(frozen=True)
class Metric:
    """A line of a summary: its name, Chinese label and how it is read off a period's
    sums (a dict of measures, from every rollup the report asked)."""

    name: str
    title: str
    kind: str
    value: Callable[[Mapping[str, int]], int | None]
    compare: bool = True  # show the change against the other periods


COMPARED = [
    ("metric", "指标"),
    ("this", "本期"),
    ("previous", "上期"),
    ("change_previous", "环比"),
    ("year_earlier", "去年同期"),
    ("change_year", "同比"),
]


def compared(name: str, title: str, metrics: Iterable[Metric], periods: list[Mapping[str, int]]) -> Table:
    """A summary: a row per metric, its value this period, the period before and a year
    earlier, and the changes (rates and averages are compared as values, not rated)."""
    this, before, year = periods
    table = Table(name, title, COMPARED)
    for m in metrics:
        now, prev, last_year = m.value(this), m.value(before), m.value(year)
        table.add(
            [
                text(m.title),
                Cell(m.kind, now),
                Cell(m.kind, prev),
                change(now, prev) if m.compare and now is not None and prev is not None else Cell(RATE, None),
                Cell(m.kind, last_year),
                change(now, last_year) if m.compare and now is not None and last_year is not None else Cell(RATE, None),
            ]
        )
    return table


def ratio(part: str, whole: str, scale: int = 1) -> Callable[[Mapping[str, int]], int | None]:
    """A metric's value: sums[part] per sums[whole] (scale 100: in hundredths)."""
    return lambda sums: _divided(sums.get(part, 0) * scale, sums.get(whole, 0))


def measure(name: str) -> Callable[[Mapping[str, int]], int | None]:
    return lambda sums: sums.get(name, 0)


def ranked(rows: list[tuple[str, Mapping[str, int]]], by: str) -> list[tuple[int, str, Mapping[str, int]]]:
    """(rank, path, sums) ordered by sums[by], highest first; equal values share a rank."""
    ordered = sorted(rows, key=lambda r: (-r[1].get(by, 0), r[0]))
    out, rank, last = [], 0, None
    for i, (path, sums) in enumerate(ordered, start=1):
        if sums.get(by, 0) != last:
            rank, last = i, sums.get(by, 0)
        out.append((rank, path, sums))
    return out
