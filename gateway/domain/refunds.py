"""What a refund of some of an order's units gives back of what was paid for them.

A returned line gives back its share of what was paid for it - the list price less its
apportioned discounts - unit by unit, each unit to the nearest fen of the units returned
so far (runtime/money.py: share), so returning a line in parts never returns a fen too
many or too few. Of that, the part the points offset paid goes back as points."""

from dataclasses import dataclass

from huiyuan.runtime.money import share, split_proportionally


@dataclass(frozen=True)
class Returning:
    """The units a refund returns (lines: line id -> units), of the units bought, after
    earlier refunds of the order returned `refunded`."""

    lines: dict[str, int]
    bought: dict[str, int]
    refunded: dict[str, int]

    def carries(self, amount: int, line_id: str) -> int:
        """What this refund's units of the line carry of amount (the line's)."""
        before = self.refunded.get(line_id, 0)
        bought = self.bought[line_id]
        return share(amount, before + self.lines[line_id], bought) - share(amount, before, bought)


def amounts_back(
    returning: Returning,
    payable: list[tuple[str, int]],
    points_offset_fen: int,
    points_used: int,
    prorated: dict[str, tuple[int, int]] | None = None,
) -> tuple[int, int, int]:
    """(money, points, spend) the returned units give back, of an order whose lines were
    payable so much (payable: (line id, fen) in the quote's order) and whose points paid
    points_offset_fen with points_used: the offset is spread over the lines, the points
    over the offset; the spend is what the visit counted, points included. A line in
    prorated (a paid membership's term: line id -> (what its unused days are worth,
    its price)) gives back that part of each, rounded down."""
    prorated = prorated or {}
    offset_fen = split_proportionally(
        min(points_offset_fen, sum(fen for _, fen in payable)), [fen for _, fen in payable]
    )
    offset_points = split_proportionally(points_used, offset_fen)
    money = points = spend = 0
    for (line_id, fen), fen_share, points_share in zip(payable, offset_fen, offset_points):
        if line_id in returning.lines:
            worth, price = prorated.get(line_id, (1, 1))
            money += returning.carries(fen - fen_share, line_id) * worth // price
            points += returning.carries(points_share, line_id) * worth // price
            spend += returning.carries(fen, line_id) * worth // price
    return money, points, spend
