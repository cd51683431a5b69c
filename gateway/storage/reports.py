"""What the back office's reports read of the orders and refunds: a store's day, and a
node's orders of a period streamed into a file (use_cases/reports.py)."""

from sqlalchemy import select

from gateway.domain.orders import DONE, REFUSED, SOLD
from gateway.storage.orders import of_node
from gateway.storage.tables import orders, refunds
from huiyuan.database import Database, Transaction
from huiyuan.database.engines import READ_ONLY


async def store_day(tx: Transaction, store_path: str, start, end) -> tuple[list, list]:
    """(the responses of the store's orders created in [start, end) and sold - refunded
    ones too -, the responses of its refunds made then and done)."""
    sold = (
        await tx.execute(
            select(orders.c.response).where(
                orders.c.store_path == store_path,
                orders.c.create_time >= start,
                orders.c.create_time < end,
                orders.c.state.in_(SOLD),
            )
        )
    ).all()
    returned = (
        await tx.execute(
            select(refunds.c.response)
            .join(orders, orders.c.order_id == refunds.c.order_id)
            .where(
                orders.c.store_path == store_path,
                refunds.c.create_time >= start,
                refunds.c.create_time < end,
                refunds.c.state == DONE,
            )
        )
    ).all()
    return sold, returned


async def orders_of_period(database: Database, node: str, start, end, state: str | None):
    """(order, units returned of it) of the orders created under node in [start, end),
    oldest first, from one read on one connection; a refused order (it moved nothing)
    only when asked for by its state."""
    chosen = [
        of_node(node),
        orders.c.create_time >= start,
        orders.c.create_time < end,
        orders.c.state == state if state else orders.c.state != REFUSED,
    ]
    async with database.streaming() as tx:  # one connection: the refunds, then the orders streamed
        await tx.execution_options(**{READ_ONLY: True})  # on SQLite: no write lock meanwhile
        returned = await _units_returned(tx, select(orders.c.order_id).where(*chosen))
        result = await tx.stream(select(orders).where(*chosen).order_by(orders.c.create_time, orders.c.order_id))
        async for order in result:
            yield order, returned.get(order.order_id, 0)


async def _units_returned(tx, chosen_ids) -> dict[str, int]:
    returned: dict[str, int] = {}
    for order_id, lines in await tx.execute(
        select(refunds.c.order_id, refunds.c.lines).where(refunds.c.order_id.in_(chosen_ids))
    ):
        returned[order_id] = returned.get(order_id, 0) + sum(lines.values())
    return returned
