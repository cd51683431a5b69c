"""Visits: what a member bought where, counted per store, and the tier their spend reaches.

The checkout records one visit per paid order (RecordVisit); the order_id makes a second
call for the same order change nothing. A refund takes the returned goods back off the
spend (RecordReturn), once per return_id, never more than the visit added. The member's
row is locked first, so two tills recording visits or returns of one member take turns:
the second sees the first's spend, and of two visits that reach a tier exactly one moves
the member up.
"""

import functools
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from huiyuan.database.engines import dialect_name
from huiyuan.database.direct import BUILT_ONCE, send
from huiyuan.runtime.errors import FailedPrecondition, NotFound
from huiyuan.database.upsert import insert_for
from services.member import domain, tiers
from services.member.members import require_member
from services.member.storage import visit_returns, visit_stats, visits


@dataclass
class StoreVisits:
    store_path: str
    visit_count: int
    total_spend_fen: int
    last_visit_time: datetime


@dataclass
class VisitStats:
    member_id: str
    stores: list[StoreVisits]

    @property
    def visit_count(self) -> int:
        return sum(s.visit_count for s in self.stores)

    @property
    def total_spend_fen(self) -> int:
        return sum(s.total_spend_fen for s in self.stores)

    @property
    def last_visit_time(self) -> datetime | None:
        return max((s.last_visit_time for s in self.stores), default=None)


@dataclass
class Visit:
    stats: VisitStats
    climbed: tiers.TierChange | None = None  # set when this visit took the member up a tier
    tier_reached: domain.Tier | None = None


@dataclass
class Return:
    stats: VisitStats
    fell: tiers.TierChange | None = None  # set when the return undid a climb


async def visit_stats_of(db, member_id: str) -> VisitStats:
    await require_member(db, member_id)
    return await _visit_stats(db, member_id)


_VISIT_STATS = select(visit_stats).where(visit_stats.c.member_id == bindparam("member_id")).order_by(
    visit_stats.c.visit_count.desc(), visit_stats.c.store_path)
_VISIT = select(visits).where(visits.c.order_id == bindparam("order_id"))
_INSERT_VISIT = insert(visits)


@functools.cache
def _count_visit(dialect: str):
    """INSERT ... ON CONFLICT that counts a visit into its store's row, built once per
    backend and compiled once (database/direct.py: BUILT_ONCE)."""
    upsert = insert_for(dialect)(visit_stats).values(
        member_id=bindparam("member_id"), store_path=bindparam("store_path"), visit_count=1,
        total_spend_fen=bindparam("amount_fen"),
        last_visit_time=bindparam("visit_time", type_=visit_stats.c.last_visit_time.type))
    latest = func.max if dialect == "sqlite" else func.greatest
    return upsert.on_conflict_do_update(index_elements=["member_id", "store_path"], set_={
        "visit_count": visit_stats.c.visit_count + 1,
        "total_spend_fen": visit_stats.c.total_spend_fen + upsert.excluded.total_spend_fen,
        "last_visit_time": latest(visit_stats.c.last_visit_time, upsert.excluded.last_visit_time),
    }).execution_options(**{BUILT_ONCE: True})


async def _visit_stats(db, member_id: str) -> VisitStats:
    rows = await db.execute(_VISIT_STATS, {"member_id": member_id})
    return VisitStats(member_id, [StoreVisits(r.store_path, r.visit_count, r.total_spend_fen, r.last_visit_time) for r in rows])


async def record_visit(session: AsyncSession, member_id: str, store_path: str, order_id: str,
                       amount_fen: int, visit_time: datetime) -> Visit:
    member = await require_member(session, member_id, for_update=True)
    existing = (await session.execute(_VISIT, {"order_id": order_id})).one_or_none()
    if existing is not None:
        if existing.member_id != member_id:
            raise FailedPrecondition("ORDER_ALREADY_RECORDED", "This order is recorded for another member.",
                                     "该订单已记录在其他会员名下。", order_id=order_id)
        return Visit(await _visit_stats(session, member_id))  # the same order again changes nothing
    visit = {"order_id": order_id, "member_id": member_id, "store_path": store_path, "amount_fen": amount_fen,
             "visit_time": visit_time}
    await send(session, _INSERT_VISIT, visit)
    await send(session, _count_visit(dialect_name(session)), visit)
    stats = await _visit_stats(session, member_id)
    climbed = await tiers.climb(session, member, spend_fen=stats.total_spend_fen)
    return Visit(stats, *climbed) if climbed else Visit(stats)


_RETURN = select(visit_returns).where(visit_returns.c.return_id == bindparam("return_id"))
_RETURNED = select(func.coalesce(func.sum(visit_returns.c.amount_fen), 0)).where(
    visit_returns.c.order_id == bindparam("order_id"))
_INSERT_RETURN = insert(visit_returns)
_TAKE_BACK = update(visit_stats).where(  # bind names other than the columns': SQLAlchemy keeps those for SET
    visit_stats.c.member_id == bindparam("of_member"), visit_stats.c.store_path == bindparam("at_store")).values(
    total_spend_fen=visit_stats.c.total_spend_fen - bindparam("amount_fen"))


async def record_return(session: AsyncSession, member_id: str, order_id: str, return_id: str,
                        amount_fen: int, return_time: datetime) -> Return:
    member = await require_member(session, member_id, for_update=True)
    visit = (await session.execute(_VISIT, {"order_id": order_id})).one_or_none()
    if visit is None or visit.member_id != member_id:  # another member's order is none of this one's
        raise NotFound("VISIT_NOT_FOUND", "This member has no visit for this order.", "该会员没有这笔订单的消费记录。",
                       order_id=order_id)
    done = (await session.execute(_RETURN, {"return_id": return_id})).one_or_none()
    if done is not None:
        if done.order_id != order_id:
            raise FailedPrecondition("RETURN_ALREADY_RECORDED", "This return is recorded for another order.",
                                     "该退货已记录在其他订单名下。", return_id=return_id)
        return Return(await _visit_stats(session, member_id))  # the same return again changes nothing
    returned = (await session.execute(_RETURNED, {"order_id": order_id})).scalar_one()
    if returned + amount_fen > visit.amount_fen:
        raise FailedPrecondition(
            "RETURN_EXCEEDS_VISIT", f"The visit added {visit.amount_fen} fen and {returned} went back already.",
            f"该订单消费 {visit.amount_fen} 分，已退回 {returned} 分，不能再退 {amount_fen} 分。",
            order_id=order_id, left_fen=visit.amount_fen - returned)
    await send(session, _INSERT_RETURN, {"return_id": return_id, "order_id": order_id, "amount_fen": amount_fen,
                                         "return_time": return_time})
    await send(session, _TAKE_BACK, {"of_member": member_id, "at_store": visit.store_path, "amount_fen": amount_fen})
    stats = await _visit_stats(session, member_id)
    return Return(stats, await tiers.after_return(session, member, "退货后", spend_fen=stats.total_spend_fen))
