"""The points service's rollups for the reports (docs/reports.md): the ROLLUPS the
facts are recorded to (storage/movements.py and lots.py) and the raw records a rebuild
recomputes them from, with the same domain functions (domain/reports.py)."""

from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import select

from huiyuan.database import Transaction
from huiyuan.database.rollups import Rollups
from huiyuan.runtime.rollups import Contribution
from services.points.domain import reports
from services.points.storage.tables import lots, movements, points_expiring, points_rollup, rollup_outbox

ROLLUPS = Rollups(rollup_outbox, points_rollup, points_expiring)
RAW_BATCH = 5000  # raw rows read per statement by a rebuild


async def _each(
    tx: Transaction, query: Any, key: Any, contributions: Callable[[Any], list[Contribution]]
) -> AsyncIterator[list[Contribution]]:
    """The contributions of query's rows, RAW_BATCH rows at a time by key (the primary key)."""
    after = None
    while True:
        rows = (
            await tx.execute((query if after is None else query.where(key > after)).order_by(key).limit(RAW_BATCH))
        ).all()
        if not rows:
            return
        yield [c for row in rows for c in contributions(row)]
        after = getattr(rows[-1], key.name)


def lot_facts(row: Any) -> list[Contribution]:
    """A lot as it is now: made with what it was granted, less what has left it since."""
    return reports.new_lot_contributions(
        row.store_path, row.granted_points, row.create_time, row.available_time, row.expire_time
    ) + reports.lot_change_contributions(row.store_path, row.expire_time, row.points_left - row.granted_points)


async def raw_facts(tx: Any) -> AsyncIterator[list[Contribution]]:
    """Every fact's contributions, from the movements and the lots, batch by batch."""
    m = movements.c
    async for batch in _each(
        tx,
        select(m.movement_id, m.kind, m.delta_points, m.store_path, m.create_time),
        m.movement_id,
        lambda r: reports.movement_contributions(r.kind, r.delta_points, r.store_path, r.create_time),
    ):
        yield batch
    c = lots.c
    async for batch in _each(
        tx,
        select(c.lot_id, c.store_path, c.granted_points, c.points_left, c.create_time, c.available_time, c.expire_time),
        c.lot_id,
        lot_facts,
    ):
        yield batch
