"""Visits, returns and the visit counts per member and store."""

import functools

from sqlalchemy import bindparam, func, insert, select, update

from huiyuan.database import BUILT_ONCE, Transaction, dialect_name, insert_for, send, together
from services.member.domain import reports
from services.member.domain.visits import StoreVisits, VisitRecord, VisitStats
from services.member.storage.rollups import FIRST_VISIT, record
from services.member.storage.tables import visit_returns, visit_stats, visits

_VISIT_STATS = (
    select(visit_stats)
    .where(visit_stats.c.member_id == bindparam("member_id"))
    .order_by(visit_stats.c.visit_count.desc(), visit_stats.c.store_path)
)
_VISIT = select(visits).where(visits.c.order_id == bindparam("order_id"))
_INSERT_VISIT = insert(visits)


@functools.cache
def _count_visit(dialect: str):
    """INSERT ... ON CONFLICT that counts a visit into its store's row, built once per
    backend and compiled once (huiyuan/database/direct.py: BUILT_ONCE)."""
    upsert = insert_for(dialect)(visit_stats).values(
        member_id=bindparam("member_id"),
        store_path=bindparam("store_path"),
        visit_count=1,
        total_spend_fen=bindparam("amount_fen"),
        last_visit_time=bindparam("visit_time", type_=visit_stats.c.last_visit_time.type),
    )
    latest = func.max if dialect == "sqlite" else func.greatest
    return upsert.on_conflict_do_update(
        index_elements=["member_id", "store_path"],
        set_={
            "visit_count": visit_stats.c.visit_count + 1,
            "total_spend_fen": visit_stats.c.total_spend_fen + upsert.excluded.total_spend_fen,
            "last_visit_time": latest(visit_stats.c.last_visit_time, upsert.excluded.last_visit_time),
        },
    ).execution_options(**{BUILT_ONCE: True})


async def stats_of(tx: Transaction, member_id: str) -> VisitStats:
    rows = await tx.execute(_VISIT_STATS, {"member_id": member_id})
    return VisitStats(
        member_id, [StoreVisits(r.store_path, r.visit_count, r.total_spend_fen, r.last_visit_time) for r in rows]
    )


def _visit_record(row) -> VisitRecord:
    return VisitRecord(row.order_id, row.member_id, row.store_path, row.amount_fen, row.visit_time)


async def get_visit(tx: Transaction, order_id: str) -> VisitRecord | None:
    row = (await tx.execute(_VISIT, {"order_id": order_id})).one_or_none()
    return _visit_record(row) if row else None


async def visit_and_first(
    tx: Transaction, order_id: str, member_id: str
) -> tuple[VisitRecord | None, VisitRecord | None]:
    """The visit of order_id if it is recorded, and the member's first visit (None: they
    have none yet), in one round trip. Read under the member's lock (use_cases/visits.py),
    so the first visit is still the first when count_visit writes the next one: of two
    visits of one member at once, the second waits for the first's commit and sees it."""
    visit, first = await together(tx, (_VISIT, {"order_id": order_id}), (FIRST_VISIT, {"member_id": member_id}))
    visit_row, first_row = visit.one_or_none(), first.one_or_none()
    return (_visit_record(visit_row) if visit_row else None), (_visit_record(first_row) if first_row else None)


async def count_visit(tx: Transaction, visit: VisitRecord, first: VisitRecord | None) -> None:
    """The visit kept, and counted into its store's row and the reports' rollups (given
    the member's first visit before it: visit_and_first); sent, not awaited."""
    seen = _seen(visit)
    values = {
        "order_id": visit.order_id,
        "member_id": visit.member_id,
        "store_path": visit.store_path,
        "amount_fen": visit.amount_fen,
        "visit_time": visit.visit_time,
    }
    await send(tx, _INSERT_VISIT, values)
    await send(tx, _count_visit(dialect_name(tx)), values)
    await record(tx, reports.visited(seen) + reports.first_visit_moved(seen, _seen(first) if first else None))


def _seen(visit: VisitRecord) -> reports.Visit:
    return reports.Visit(visit.order_id, visit.member_id, visit.store_path, visit.amount_fen, visit.visit_time)


_RETURN = select(visit_returns).where(visit_returns.c.return_id == bindparam("return_id"))
_RETURNED = select(func.coalesce(func.sum(visit_returns.c.amount_fen), 0)).where(
    visit_returns.c.order_id == bindparam("order_id")
)
_INSERT_RETURN = insert(visit_returns)
_TAKE_BACK = (
    update(visit_stats)
    .where(  # bind names other than the columns': SQLAlchemy keeps those for SET
        visit_stats.c.member_id == bindparam("of_member"), visit_stats.c.store_path == bindparam("at_store")
    )
    .values(total_spend_fen=visit_stats.c.total_spend_fen - bindparam("amount_fen"))
)


async def order_of_return(tx: Transaction, return_id: str) -> str | None:
    """The order a return recorded already was of; None if it is not recorded."""
    row = (await tx.execute(_RETURN, {"return_id": return_id})).one_or_none()
    return row.order_id if row else None


async def returned_of(tx: Transaction, order_id: str) -> int:
    """What the returns of an order took back so far."""
    return (await tx.execute(_RETURNED, {"order_id": order_id})).scalar_one()


async def take_back(tx: Transaction, visit: VisitRecord, return_id: str, amount_fen: int, return_time) -> None:
    """The return kept, and its amount taken off the spend of the visit's store and the
    reports' rollups; sent."""
    await send(
        tx,
        _INSERT_RETURN,
        {
            "return_id": return_id,
            "order_id": visit.order_id,
            "amount_fen": amount_fen,
            "return_time": return_time,
            "member_id": visit.member_id,
        },
    )
    await send(tx, _TAKE_BACK, {"of_member": visit.member_id, "at_store": visit.store_path, "amount_fen": amount_fen})
    await record(tx, reports.returned(_seen(visit), amount_fen, return_time))
