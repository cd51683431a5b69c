"""Apportioning integer amounts (fen, points) without losing or making a unit, and
printing them. Wallet refunds, points caps and campaign discounts all split this one way."""


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


def yuan(fen: int) -> str:
    """An amount of fen as a till prints it: ¥1,234.50, or -¥5.00. Integer arithmetic,
    as everywhere near money: no float rounds a fen away."""
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"
