"""The raw records the rollups of the sales are rebuilt from: the orders sold and the
refunds done, each with its order's decision (use_cases/sales_facts.py), read by their
ids in batches (a keyset: a batch costs the same however far the rebuild has come)."""

from collections.abc import AsyncIterator

from sqlalchemy import and_, select

from gateway.domain.orders import DONE, SOLD
from gateway.domain.sagas import DECISION
from gateway.storage.tables import ROLLUPS, orders, refunds, saga_log
from huiyuan.database import RollupQuery, RollupRow

BATCH = 5000

_DECISION = and_(saga_log.c.order_id == orders.c.order_id, saga_log.c.step == DECISION)
_SOLD = (
    select(
        orders.c.order_id,
        orders.c.org_path,
        orders.c.create_time,
        orders.c.request,
        orders.c.response,
        saga_log.c.payload.label("decision"),
    )
    .join(saga_log, _DECISION)
    .where(orders.c.state.in_(SOLD))
    .order_by(orders.c.order_id)
    .limit(BATCH)
)
_DONE = (
    select(
        refunds.c.refund_id,
        refunds.c.create_time,
        refunds.c.cashier_id,
        refunds.c.lines,
        refunds.c.response,
        orders.c.org_path,
        orders.c.request,
        orders.c.response.label("order_response"),
        saga_log.c.payload.label("decision"),
    )
    .join(orders, orders.c.order_id == refunds.c.order_id)
    .join(saga_log, _DECISION)
    .where(refunds.c.state == DONE)
    .order_by(refunds.c.refund_id)
    .limit(BATCH)
)


async def sold_orders(tx) -> AsyncIterator[list]:
    after = ""
    while rows := (await tx.execute(_SOLD.where(orders.c.order_id > after))).all():
        yield rows
        after = rows[-1].order_id


async def done_refunds(tx) -> AsyncIterator[list]:
    after = ""
    while rows := (await tx.execute(_DONE.where(refunds.c.refund_id > after))).all():
        yield rows
        after = rows[-1].refund_id


async def query(tx, q: RollupQuery) -> list[RollupRow]:
    """The gateway's own rollups, as the services' RollupService answers theirs."""
    return await ROLLUPS.query(tx, q)
