"""The lease of a saga's row (an order's or a refund's): who runs it now (run_id), and
until when (use_cases/leases.py)."""

from sqlalchemy import or_, select, update

from gateway.domain.orders import PENDING
from gateway.storage.tables import orders, refunds
from huiyuan.database import Transaction

TABLES = {"order": orders, "refund": refunds}


def _key(of: str):
    table = TABLES[of]
    return table, table.primary_key.columns[0]


async def take(tx: Transaction, of: str, key: str, run_id: str, now, until) -> bool:
    """Take the lease of a PENDING row unless another run holds it; the row's update_time
    says when a run last took it on."""
    t, key_column = _key(of)
    taken = await tx.execute(
        update(t)
        .where(key_column == key, t.c.state == PENDING, or_(t.c.lease_until.is_(None), t.c.lease_until < now))
        .values(run_id=run_id, lease_until=until, update_time=now)
    )
    return taken.rowcount == 1


async def row(tx: Transaction, of: str, key: str):
    t, key_column = _key(of)
    return (await tx.execute(select(t).where(key_column == key))).one()


def _mine(of: str, key: str, run_id: str):
    t, key_column = _key(of)
    return (key_column == key) & (t.c.run_id == run_id)


async def renew(tx: Transaction, of: str, key: str, run_id: str, until) -> None:
    t = TABLES[of]
    await tx.execute(update(t).where(_mine(of, key, run_id), t.c.state == PENDING).values(lease_until=until))


async def give_up(tx: Transaction, of: str, key: str, run_id: str) -> None:
    await tx.execute(update(TABLES[of]).where(_mine(of, key, run_id)).values(lease_until=None))
