"""Rates in basis points: 8800 is what the member pays of 10000 (八八折)."""

BP = 10_000


def pay_rate(amount: int, rate_bp: int) -> int:
    """What a rate leaves to pay, rounded half up to the fen (四舍五入)."""
    return (amount * rate_bp + BP // 2) // BP
