"""Lots: every top-up is also a lot, the value it loaded at the store that loaded it.
Spends take lots oldest first, so each entry knows where its money was loaded and
stores can settle with each other (cross-store settlement)."""

from dataclasses import dataclass


@dataclass
class Lot:
    lot_id: str
    loaded_store_path: str
    principal_left: int
    bonus_left: int


@dataclass(frozen=True)
class Draw:
    """What one spend took from one lot."""

    lot_id: str
    loaded_store_path: str
    principal: int
    bonus: int


def draw_from_lots(lots: list[Lot], principal: int, bonus: int) -> list[Draw]:
    """Take principal and bonus from the lots, oldest first (lots come oldest first).
    The member accounts hold exactly the sum of their lots, so this always suffices."""
    draws = []
    for lot in lots:
        p = min(principal, lot.principal_left)
        b = min(bonus, lot.bonus_left)
        if p or b:
            lot.principal_left -= p
            lot.bonus_left -= b
            principal -= p
            bonus -= b
            draws.append(Draw(lot.lot_id, lot.loaded_store_path, p, b))
        if not principal and not bonus:
            break
    assert principal == 0 and bonus == 0, "lots and accounts disagree"
    return draws


def undraw(draws: list[Draw], principal: int, bonus: int) -> list[Draw]:
    """Which lots a refund returns principal and bonus to: the draws of the spend, the
    latest first, each back up to what it took (minus what earlier refunds returned)."""
    back = []
    for draw in reversed(draws):
        p = min(principal, draw.principal)
        b = min(bonus, draw.bonus)
        if p or b:
            back.append(Draw(draw.lot_id, draw.loaded_store_path, p, b))
            principal -= p
            bonus -= b
    assert principal == 0 and bonus == 0, "refund exceeds the spend"
    return back
