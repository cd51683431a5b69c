"""Refunds: a refund's plan, written under its order's lock before any service is called;
its answer once done; those a crash left PENDING, for the recovery loop."""

from sqlalchemy import insert, or_, select, update

from gateway.domain.orders import DONE, NEEDS_ATTENTION, PENDING
from gateway.storage.tables import refunds
from huiyuan.database import Transaction


async def by_request(tx: Transaction, key_id: str, request_id: str):
    return (
        await tx.execute(select(refunds).where(refunds.c.key_id == key_id, refunds.c.request_id == request_id))
    ).one_or_none()


async def earlier(tx: Transaction, order_id: str) -> list:
    """(lines, plan) of every refund of the order."""
    return (await tx.execute(select(refunds.c.lines, refunds.c.plan).where(refunds.c.order_id == order_id))).all()


async def lines_of(tx: Transaction, order_id: str) -> list[dict[str, int]]:
    """The lines of every refund of the order."""
    return list((await tx.execute(select(refunds.c.lines).where(refunds.c.order_id == order_id))).scalars())


async def of_orders(tx: Transaction, order_ids: list[str]) -> list:
    """(refund_id, order_id, lines) of every refund of these orders."""
    return list(
        await tx.execute(
            select(refunds.c.refund_id, refunds.c.order_id, refunds.c.lines).where(refunds.c.order_id.in_(order_ids))
        )
    )


async def add(tx: Transaction, refund: dict) -> None:
    await tx.execute(insert(refunds), refund)


async def get(tx: Transaction, refund_id: str):
    return (await tx.execute(select(refunds).where(refunds.c.refund_id == refund_id))).one()


async def needs_attention(tx: Transaction, refund_id: str, run_id: str) -> bool:
    """Only under the run's lease: else it may be settled since. False if it was not."""
    marked = await tx.execute(
        update(refunds)
        .where(refunds.c.refund_id == refund_id, refunds.c.state == PENDING, refunds.c.run_id == run_id)
        .values(state=NEEDS_ATTENTION)
    )
    return bool(marked.rowcount)


async def finish(tx: Transaction, refund_id: str, response: bytes) -> bool:
    """Of two runs, the first to finish answers both: False if it was not PENDING."""
    done = await tx.execute(
        update(refunds)
        .where(refunds.c.refund_id == refund_id, refunds.c.state == PENDING)
        .values(state=DONE, response=response, lease_until=None)
    )
    return done.rowcount != 0


async def waiting_for_an_operator(tx: Transaction, order_id: str) -> list:
    return (
        await tx.execute(select(refunds).where(refunds.c.order_id == order_id, refunds.c.state == NEEDS_ATTENTION))
    ).all()


async def resume(tx: Transaction, refund_ids: list[str]) -> None:
    """Back to PENDING, for a run to finish (an operator settled their refused steps)."""
    await tx.execute(update(refunds).where(refunds.c.refund_id.in_(refund_ids)).values(state=PENDING))


async def left_pending(tx: Transaction, untouched_since, now) -> list:
    """Refunds PENDING, no run taking them on since then nor holding them now: the
    longest left first."""
    return (
        await tx.execute(
            select(refunds)
            .where(
                refunds.c.state == PENDING,
                refunds.c.update_time <= untouched_since,
                or_(refunds.c.lease_until.is_(None), refunds.c.lease_until < now),
            )
            .order_by(refunds.c.update_time)
            .limit(100)
        )
    ).all()
