"""Members' home stores as they are set, kept until the wallet has been told (the
gateway relays them: gateway/use_cases/home_changes.py). An outbox, not a feed read
after a watermark: ids are taken when rows are inserted and commit in another order, so
a reader going by "after the last id I saw" would skip a row committed late; a row here
stays until the relay completes it."""

from datetime import datetime

from sqlalchemy import delete, insert, literal, select

from huiyuan.database import Transaction, send
from services.member.storage.tables import home_changes, members

_INSERT = insert(home_changes).inline()  # many rows, no ids wanted back


async def home_set(tx: Transaction, homes: list[tuple[str, str, datetime]]) -> None:
    """(member id, home store, when) set in tx: at a registration or a move of home store."""
    if homes:
        await send(tx, _INSERT, [{"member_id": m, "home_store_path": h, "change_time": t} for m, h, t in homes])


async def pending(tx: Transaction, after: int | None, limit: int) -> list:
    q = select(home_changes).order_by(home_changes.c.change_id).limit(limit)
    if after is not None:
        q = q.where(home_changes.c.change_id > after)
    return list((await tx.execute(q)).all())


async def complete(tx: Transaction, change_ids: list[int]) -> int:
    result = await tx.execute(delete(home_changes).where(home_changes.c.change_id.in_(change_ids)))
    return int(result.rowcount)


async def queue_every_home(tx: Transaction, now: datetime) -> int:
    """Every member's home queued again (the wallet applies what it knew already as no
    move): so that it learns the homes a replica of an earlier release set unqueued."""
    every = select(members.c.member_id, members.c.home_store_path, literal(now, home_changes.c.change_time.type))
    result = await tx.execute(
        insert(home_changes).from_select(
            ["member_id", "home_store_path", "change_time"], every.order_by(members.c.member_id)
        )
    )
    return int(result.rowcount)
