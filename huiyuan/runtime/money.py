"""Apportioning integer amounts (fen, points) without losing or making a unit, and
printing them. Wallet refunds, points caps and campaign discounts all split this one way."""

from decimal import Decimal


def split_proportionally(amount: int, weights: list[int]) -> list[int]:
    """Split amount into parts proportional to weights, the parts adding up to amount
    exactly (largest remainder; ties go to the earlier part). With no weight at all,
    the first part takes everything."""
    assert amount >= 0 and all(w >= 0 for w in weights)
    total = sum(weights)
    if total == 0:
        return [amount] + [0] * (len(weights) - 1) if weights else []
    floors = [amount * w // total for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in remainders[: amount - sum(floors)]:
        floors[i] += 1
    return floors


def share(amount: int, part: int, whole: int) -> int:
    """What part of whole carries of amount, to the nearest fen (a half up). Never less
    for a larger part, and the whole carries amount exactly: so what the first units of
    a line carry, then the next ones, add up to the line, and a unit is never a fen
    short only for the last one to be a fen over (¥89.99 for 3: ¥30.00, then ¥59.99)."""
    assert 0 <= part <= whole and whole > 0
    return (2 * amount * part + whole) // (2 * whole)


def cumulative_split(so_far: int, weights: list[int]) -> list[int]:
    """How the first so_far fen of an amount paid in parts (weights, adding up to the
    amount) fall to each part, each part its share of what is left after the parts
    before it. Every part grows, or stays, as so_far grows - so amounts given back in
    steps never take from a part - and at the whole amount each part is its weight."""
    assert 0 <= so_far <= sum(weights)
    parts, rest = [], sum(weights)
    for weight in weights[:-1]:
        part = share(so_far, weight, rest) if rest else 0
        parts.append(part)
        so_far, rest = so_far - part, rest - weight
    return [*parts, so_far] if weights else []


def yuan_number(fen: int) -> Decimal:
    """Fen as yuan, exactly, for a spreadsheet's number: 12345 is 123.45, never a
    float's 123.4499..."""
    return Decimal(fen).scaleb(-2)


def yuan(fen: int) -> str:
    """An amount of fen as a till prints it: ¥1,234.50, or -¥5.00. Integer arithmetic,
    as everywhere near money: no float rounds a fen away."""
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"
