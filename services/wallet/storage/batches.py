"""Enterprise batches: the rows applied under each batch id, so a re-run applies none twice."""

from sqlalchemy import bindparam, insert, select

from huiyuan.database import Transaction, send, take_turn_on
from services.wallet.storage.tables import batch_rows

_APPLIED_ROWS = select(batch_rows.c.row_number).where(
    batch_rows.c.batch_id == bindparam("batch_id"),
    batch_rows.c.row_number.in_(bindparam("row_numbers", expanding=True)),
)
_INSERT_ROWS = insert(batch_rows)


async def take_turn(tx: Transaction, batch_id: str) -> None:
    """Wait for a twin run of the batch to commit, so this one reads what it applied."""
    await take_turn_on(tx, f"wallet.batch:{batch_id}")


async def applied_rows(tx: Transaction, batch_id: str, row_numbers: list[int]) -> set[int]:
    """Which of these rows were applied under this batch id before."""
    return set((await tx.execute(_APPLIED_ROWS, {"batch_id": batch_id, "row_numbers": row_numbers})).scalars())


async def add_applied(tx: Transaction, batch_id: str, applied: list[tuple[int, str, int, str]]) -> None:
    """The rows applied now: (row number, member id, amount, top-up id)."""
    await send(
        tx,
        _INSERT_ROWS,
        [
            {
                "batch_id": batch_id,
                "row_number": n,
                "member_id": member_id,
                "amount_fen": amount,
                "top_up_id": top_up_id,
            }
            for n, member_id, amount, top_up_id in applied
        ],
    )
