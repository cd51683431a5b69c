"""What a fact adds to the reports' rollups (docs/reports.md): a service's domain says,
for each fact it writes (an order paid, a ledger entry, a coupon issued), which counters
of which rollup it moves, at the node where it happened, on its business day. The same
function serves the live path (the contributions are written with the fact, in its
transaction) and the rebuild (recomputed from the raw records), so the two cannot
disagree on what a fact means.

Pure: no database, no clock.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Contribution:
    """Add measures to rollup's counters of node path (where the fact happened: a till,
    a store, an office), business day and key ("" where the rollup has no keys); the
    fold adds them to every node above it too."""

    rollup: str
    path: str
    day: date
    key: str
    measures: Mapping[str, int]

    def as_json(self) -> list[object]:
        return [self.rollup, self.path, self.day.isoformat(), self.key, dict(self.measures)]

    @classmethod
    def of_json(cls, value: list[object]) -> "Contribution":
        rollup, path, day, key, measures = value
        assert isinstance(rollup, str) and isinstance(path, str) and isinstance(day, str) and isinstance(key, str)
        assert isinstance(measures, dict)
        return cls(rollup, path, date.fromisoformat(day), key, measures)


def ancestors(path: str, deepest: int = 4) -> list[str]:
    """The node and every node above it, down to depth `deepest` (1: the chain, 2: a
    region, 3: a store, 4: a till): hq/east/s1/pos1 -> hq, hq/east, hq/east/s1, ...."""
    parts = path.split("/")
    return ["/".join(parts[:n]) for n in range(1, min(len(parts), deepest) + 1)]


def parent_of(path: str) -> str:
    """ "hq/east/s1" -> "hq/east"; the chain's root has no parent: ""."""
    return path.rpartition("/")[0]
