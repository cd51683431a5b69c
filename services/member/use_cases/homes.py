"""The homes the wallet has not been told yet (storage/homes.py): listed for the
gateway's relay and completed once the wallet has applied them."""

from huiyuan.database import Transaction
from services.member.storage import homes as stored

MAX_COMPLETED = 5000  # ids a CompleteHomeChanges call names


async def pending(tx: Transaction, after: int | None, limit: int) -> list:
    return await stored.pending(tx, after, limit)


async def complete(tx: Transaction, change_ids: list[int]) -> int:
    return await stored.complete(tx, sorted(set(change_ids)))
