"""A saga's log, by the saga's id (an order's, or a refund's) and step: its decision, the
steps a service refused and an operator settled, the wallet's hold of a paid order.
First writer wins: an entry logged before stays as it was."""

import functools

from sqlalchemy import bindparam, insert, or_, select

from gateway.domain.sagas import refused_step, settled_step
from gateway.storage.tables import saga_log
from huiyuan.database import BUILT_ONCE, Transaction, dialect_name, insert_for, send

_INSERT_ENTRY = insert(saga_log)  # built once: compiled once (docs/decisions/0004)


async def write(tx: Transaction, saga_id: str, entries: dict[str, object], now) -> int:
    """Log entries (step: message) under the saga's id, each unless logged before; how
    many it wrote."""
    params: dict[str, object] = {"order_id": saga_id, "now": now}
    for n, (step, message) in enumerate(entries.items()):
        params[f"step_{n}"], params[f"payload_{n}"] = step, message.SerializeToString()
    return len((await tx.execute(_log_insert(dialect_name(tx), len(entries)), params)).all())


@functools.cache
def _log_insert(dialect: str, entries: int):
    """Built once per backend and number of entries, and compiled once
    (huiyuan/database/direct.py: BUILT_ONCE)."""
    return (
        insert_for(dialect)(saga_log)
        .values(
            [
                {
                    "order_id": bindparam("order_id"),
                    "step": bindparam(f"step_{n}"),
                    "payload": bindparam(f"payload_{n}"),
                    "log_time": bindparam("now", type_=saga_log.c.log_time.type),
                }
                for n in range(entries)
            ]
        )
        .on_conflict_do_nothing(index_elements=["order_id", "step"])
        .returning(saga_log.c.step)
        .execution_options(**{BUILT_ONCE: True})
    )


async def send_entry(tx: Transaction, saga_id: str, step: str, payload: bytes, now) -> None:
    """Log one entry with the transaction's next statement (no answer awaited)."""
    await send(tx, _INSERT_ENTRY, {"order_id": saga_id, "step": step, "payload": payload, "log_time": now})


async def read(tx: Transaction, saga_id: str) -> dict[str, bytes]:
    """step -> payload of every entry of the saga."""
    return dict(
        (await tx.execute(select(saga_log.c.step, saga_log.c.payload).where(saga_log.c.order_id == saga_id))).all()
    )


async def payload(tx: Transaction, saga_id: str, step: str) -> bytes | None:
    return (
        await tx.execute(select(saga_log.c.payload).where(saga_log.c.order_id == saga_id, saga_log.c.step == step))
    ).scalar()


async def settled_steps(tx: Transaction, saga_id: str) -> set[str]:
    """The steps an operator let the saga finish without (use_cases/settlement.py)."""
    logged = await tx.execute(
        select(saga_log.c.step).where(saga_log.c.order_id == saga_id, saga_log.c.step.startswith(settled_step("")))
    )
    return {step.removeprefix(settled_step("")) for step in logged.scalars()}


async def refused_and_settled(tx: Transaction, saga_ids: list[str]) -> list[tuple[str, str, bytes]]:
    """(saga id, step, payload) of the steps of these sagas a service refused or an
    operator settled."""
    return list(
        await tx.execute(
            select(saga_log.c.order_id, saga_log.c.step, saga_log.c.payload).where(
                saga_log.c.order_id.in_(saga_ids),
                or_(saga_log.c.step.startswith(refused_step("")), saga_log.c.step.startswith(settled_step(""))),
            )
        )
    )
