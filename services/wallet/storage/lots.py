"""Lots: what each top-up (or adjustment) loaded and where, and what is left of it."""

from sqlalchemy import bindparam, insert, select, update

from huiyuan.database import Transaction, send
from services.wallet.domain.lots import Draw, Lot
from services.wallet.storage.tables import lots

_LOTS = (
    select(lots)
    .where(lots.c.member_id == bindparam("member_id"), (lots.c.principal_left_fen > 0) | (lots.c.bonus_left_fen > 0))
    .order_by(lots.c.lot_id)
)
_MOVE_LOT = (
    update(lots)
    .where(lots.c.lot_id == bindparam("key"))
    .values(
        principal_left_fen=lots.c.principal_left_fen + bindparam("principal"),
        bonus_left_fen=lots.c.bonus_left_fen + bindparam("bonus"),
    )
)


_INSERT_LOT = insert(lots)  # built once: compiled once (docs/decisions/0004)


def to_lot(row) -> Lot:
    return Lot(row.lot_id, row.loaded_store_path, row.principal_left_fen, row.bonus_left_fen)


async def open_lots(tx: Transaction, member_id: str) -> list[Lot]:
    """The member's lots with value left, oldest first (the member row is locked)."""
    rows = await tx.execute(_LOTS, {"member_id": member_id})
    return [to_lot(r) for r in rows]


async def add_lot(tx: Transaction, lot_id: str, member_id: str, store_path: str, principal: int, bonus: int) -> None:
    await send(
        tx,
        _INSERT_LOT,
        {
            "lot_id": lot_id,
            "member_id": member_id,
            "loaded_store_path": store_path,
            "principal_left_fen": principal,
            "bonus_left_fen": bonus,
        },
    )


async def move_lots(tx: Transaction, draws: list[Draw], sign: int) -> None:
    """Take (sign -1) or give back (sign +1) what the draws say, lot by lot."""
    await send(
        tx, _MOVE_LOT, [{"key": d.lot_id, "principal": sign * d.principal, "bonus": sign * d.bonus} for d in draws]
    )
