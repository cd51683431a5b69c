"""Visits: what a member bought where, counted per store, and the tier their spend reaches.

The checkout records one visit per paid order (RecordVisit); the order_id makes a second
call for the same order change nothing. A refund takes the returned goods back off the
spend (RecordReturn), once per return_id, never more than the visit added. The member's
row is locked first, so two tills recording visits or returns of one member take turns:
the second sees the first's spend, and of two visits that reach a tier exactly one moves
the member up.
"""

from dataclasses import dataclass
from datetime import datetime

from huiyuan.database import Transaction
from services.member.domain.tiers import Tier, TierChange
from services.member.domain.visits import (
    VisitRecord,
    VisitStats,
    check_return_fits,
    order_recorded_for_another,
    return_recorded_for_another,
    visit_not_found,
)
from services.member.storage import visits as stored
from services.member.use_cases import tiers
from services.member.use_cases.members import require_member
from services.member.use_cases.org import require_org_node


@dataclass
class Visit:
    stats: VisitStats
    climbed: TierChange | None = None  # set when this visit took the member up a tier
    tier_reached: Tier | None = None


@dataclass
class Return:
    stats: VisitStats
    fell: TierChange | None = None  # set when the return undid a climb


async def visit_stats_of(tx: Transaction, member_id: str) -> VisitStats:
    await require_member(tx, member_id)
    return await stored.stats_of(tx, member_id)


async def record_visit(
    tx: Transaction, member_id: str, store_path: str, order_id: str, amount_fen: int, visit_time: datetime
) -> Visit:
    await require_org_node(tx, store_path, "store_path")
    member = await require_member(tx, member_id, for_update=True)
    existing, first = await stored.visit_and_first(tx, order_id, member_id)
    if existing is not None:
        if existing.member_id != member_id:
            raise order_recorded_for_another(order_id)
        return Visit(await stored.stats_of(tx, member_id))  # the same order again changes nothing
    await stored.count_visit(tx, VisitRecord(order_id, member_id, store_path, amount_fen, visit_time), first)
    stats = await stored.stats_of(tx, member_id)
    climbed = await tiers.climb(tx, member, spend_fen=stats.total_spend_fen)
    return Visit(stats, *climbed) if climbed else Visit(stats)


async def record_return(
    tx: Transaction, member_id: str, order_id: str, return_id: str, amount_fen: int, return_time: datetime
) -> Return:
    member = await require_member(tx, member_id, for_update=True)
    visit = await stored.get_visit(tx, order_id)
    if visit is None or visit.member_id != member_id:  # another member's order is none of this one's
        raise visit_not_found(order_id)
    done = await stored.order_of_return(tx, return_id)
    if done is not None:
        if done != order_id:
            raise return_recorded_for_another(return_id)
        return Return(await stored.stats_of(tx, member_id))  # the same return again changes nothing
    check_return_fits(visit, await stored.returned_of(tx, order_id), amount_fen)
    await stored.take_back(tx, visit, return_id, amount_fen, return_time)
    stats = await stored.stats_of(tx, member_id)
    return Return(stats, await tiers.after_return(tx, member, "退货后", spend_fen=stats.total_spend_fen))
