"""Orders: the row a checkout writes before any service is called, with the terminal's
request and the lease of the run that wrote it; finished with its answer; read and
listed by the back office; found by the recovery loop."""

import functools

from sqlalchemy import and_, bindparam, or_, select, update

from gateway.domain.orders import NEEDS_ATTENTION, PENDING
from gateway.storage.tables import orders
from huiyuan.database import BUILT_ONCE, Transaction, dialect_name, insert_for, under
from huiyuan.runtime.requests import store_of

# Only a PENDING order is finished: of two runs of one saga, the first to finish answers.
_FINISH_ORDER = (
    update(orders)
    .where(orders.c.order_id == bindparam("key"), orders.c.state == PENDING)
    .values(
        state=bindparam("new_state"),
        response=bindparam("answer"),
        refusal=bindparam("refusal"),
        update_time=bindparam("now"),
        lease_until=None,
    )
)


@functools.cache
def _new_order(dialect: str):
    """The order's insert, unless its terminal's request_id has one already; built
    once per backend, and compiled once (huiyuan/database/direct.py: BUILT_ONCE)."""
    return (
        insert_for(dialect)(orders)
        .on_conflict_do_nothing(index_elements=["key_id", "request_id"])
        .returning(orders.c.order_id)
        .execution_options(**{BUILT_ONCE: True})
    )


async def add(tx: Transaction, order: dict):
    """Write a new order; if its key and request_id have one already, that one's row
    (None: this one was written)."""
    written = await tx.execute(_new_order(dialect_name(tx)), order)
    if written.first():
        return None
    return (
        await tx.execute(
            select(orders).where(orders.c.key_id == order["key_id"], orders.c.request_id == order["request_id"])
        )
    ).one()


async def finish(tx: Transaction, order_id: str, state: str, answer: bytes, refusal: bytes | None, now) -> bool:
    """End a PENDING order with its answer (and refusal); False if it was not PENDING."""
    done = await tx.execute(
        _FINISH_ORDER, {"key": order_id, "new_state": state, "answer": answer, "now": now, "refusal": refusal}
    )
    return done.rowcount != 0


async def get(tx: Transaction, order_id: str, for_update: bool = False):
    """The order's row (locked for the transaction with for_update), None if none."""
    query = select(orders).where(orders.c.order_id == order_id)
    return (await tx.execute(query.with_for_update() if for_update else query)).one_or_none()


async def of_ids(tx: Transaction, order_ids: set[str]) -> dict:
    """order id -> row."""
    return {o.order_id: o for o in await tx.execute(select(orders).where(orders.c.order_id.in_(order_ids)))}


async def needs_attention(tx: Transaction, order_id: str, run_id: str, now) -> None:
    """Only under the run's lease: else an operator may have settled it since."""
    await tx.execute(
        update(orders)
        .where(orders.c.order_id == order_id, orders.c.state == PENDING, orders.c.run_id == run_id)
        .values(state=NEEDS_ATTENTION, update_time=now)
    )


async def set_state(tx: Transaction, order_id: str, state: str, now) -> None:
    await tx.execute(update(orders).where(orders.c.order_id == order_id).values(state=state, update_time=now))


async def left_pending(tx: Transaction, untouched_since, now) -> list:
    """Orders PENDING, untouched since then, no run holding them: the longest left first."""
    return (
        await tx.execute(
            select(orders)
            .where(
                orders.c.state == PENDING,
                orders.c.update_time <= untouched_since,
                or_(orders.c.lease_until.is_(None), orders.c.lease_until < now),
            )
            .order_by(orders.c.update_time)
            .limit(100)
        )
    ).all()


def of_node(node: str):
    """The orders taken under an org node: a till's or a store's (on the store's
    index), a region's or the chain's."""
    if store_of(node):
        till = [orders.c.org_path == node] if node != store_of(node) else []
        return and_(orders.c.store_path == store_of(node), *till)
    return under(orders.c.org_path, node)


async def page(
    tx: Transaction,
    node: str,
    state: str | None,
    before: str | None,
    limit: int,
    *,
    member_id: str = "",
    start=None,
    end=None,
) -> list:
    """Newest first: order ids sort by creation time, so the id is the page position.
    A member's orders are read on their own index (ix_orders_member_id_order_id)."""
    query = select(orders).where(of_node(node))
    if state:
        query = query.where(orders.c.state == state)
    if member_id:
        query = query.where(orders.c.member_id == member_id)
    if start:
        query = query.where(orders.c.create_time >= start)
    if end:
        query = query.where(orders.c.create_time < end)
    if before:
        query = query.where(orders.c.order_id < before)
    return (await tx.execute(query.order_by(orders.c.order_id.desc()).limit(limit))).all()
