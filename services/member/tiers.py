"""Tier use cases: HQ defines tiers and assigns them, members climb them by spend
(visits.py); every change is kept."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from huiyuan.runtime.db import take_turn_on, utcnow, violated_unique
from huiyuan.runtime.errors import AlreadyExists, NotFound
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.money import yuan
from services.member import domain, storage
from services.member.members import require_member
from services.member.storage import tier_changes, tiers


@dataclass
class TierChange:
    member_id: str
    from_tier_id: str
    to_tier_id: str
    reason: str
    operator_id: str
    change_time: datetime


def tier_not_found(tier_id: str) -> NotFound:
    return NotFound("TIER_NOT_FOUND", f"No tier '{tier_id}'.", f"等级 '{tier_id}' 不存在。", tier_id=tier_id)


async def require_tier(db, tier_id: str) -> domain.Tier:
    tier = await storage.get_tier(db, tier_id)
    if tier is None:
        raise tier_not_found(tier_id)
    return tier


def _rank_taken(rank: int) -> AlreadyExists:
    return AlreadyExists("TIER_RANK_TAKEN", f"Another tier has rank {rank}.", f"等级序号 {rank} 已被占用。", rank=str(rank))


CLIMB_OPERATOR = "system:tier-climb"  # who moved a member up by spend: nobody did by hand
RETURN_OPERATOR = "system:tier-return"  # who undid a climb a return no longer paid for
LADDER = "tiers"  # changes of the tiers take turns on it, so that each checks the ladder as it ends up


async def create_tier(session: AsyncSession, tier: domain.Tier) -> domain.Tier:
    tier.tier_id = new_id("tier")
    await take_turn_on(session, LADDER)
    try:
        await session.execute(insert(tiers).values(**vars(tier)))
    except IntegrityError as error:
        if violated_unique(error, "tiers", "rank"):
            raise _rank_taken(tier.rank)
        raise
    domain.check_ladder(await list_tiers(session))  # raising rolls the insert back
    return tier


async def list_tiers(db) -> list[domain.Tier]:
    return [storage.to_tier(r) for r in await db.execute(select(tiers).order_by(tiers.c.rank))]


async def update_tier(session: AsyncSession, tier_id: str, changes: dict) -> domain.Tier:
    await take_turn_on(session, LADDER)
    await require_tier(session, tier_id)
    try:
        await session.execute(update(tiers).where(tiers.c.tier_id == tier_id).values(**changes))
    except IntegrityError as error:
        if violated_unique(error, "tiers", "rank"):
            raise _rank_taken(changes["rank"])
        raise
    domain.check_ladder(await list_tiers(session))
    return await storage.get_tier(session, tier_id)


async def assign_tier(session: AsyncSession, member_id: str, tier_id: str, reason: str, operator_id: str) -> TierChange:
    member = await require_member(session, member_id, for_update=True)
    await require_tier(session, tier_id)
    return await _move(session, member, tier_id, reason, operator_id)


async def climb(session, member: domain.Member, spend_fen: int) -> tuple[TierChange, domain.Tier] | None:
    """Move a member (locked) up to the best tier their spend in all stores reaches, if
    it is better than theirs: the change and the tier, else None."""
    ladder = await list_tiers(session)
    current = next((t for t in ladder if t.tier_id == member.tier_id), None)
    reached = domain.tier_reached(ladder, current, spend_fen)
    if reached is None:
        return None
    reason = f"累计消费 {yuan(spend_fen)},达到{reached.name}(满 {yuan(reached.upgrade_spend_fen)})"
    return await _move(session, member, reached.tier_id, reason, CLIMB_OPERATOR), reached


async def after_return(session, member: domain.Member, spend_fen: int) -> TierChange | None:
    """Undo the climbs by spend of a member (locked) that a return took their spend
    below (domain.tier_after_return): the change, else None."""
    climbs = []  # the climbs that brought them to their tier, newest first
    for row in await session.execute(_CHANGES, {"member_id": member.member_id}):
        if row.operator_id != CLIMB_OPERATOR:
            break
        climbs.append((row.from_tier_id or "", row.to_tier_id))
    if not climbs:
        return None
    ladder = {t.tier_id: t for t in await list_tiers(session)}
    tier_id = domain.tier_after_return(ladder, member.tier_id, climbs, spend_fen)
    if tier_id == member.tier_id:
        return None
    left = ladder[member.tier_id]
    reason = f"退货后累计消费 {yuan(spend_fen)},不足{left.name}(满 {yuan(left.upgrade_spend_fen)})"
    return await _move(session, member, tier_id, reason, RETURN_OPERATOR)


_CHANGES = (select(tier_changes).where(tier_changes.c.member_id == bindparam("member_id"))
            .order_by(tier_changes.c.change_id.desc()).limit(20))


async def _move(session, member: domain.Member, tier_id: str, reason: str, operator_id: str) -> TierChange:
    """Move a member to a tier ("": none) and keep the change."""
    change = TierChange(member.member_id, member.tier_id, tier_id, reason, operator_id, utcnow())
    await session.execute(update(storage.members).where(storage.members.c.member_id == member.member_id)
                          .values(tier_id=tier_id or None, update_time=change.change_time))
    await session.execute(insert(tier_changes).values(
        member_id=member.member_id, from_tier_id=change.from_tier_id or None, to_tier_id=tier_id,
        reason=reason, operator_id=operator_id, change_time=change.change_time))
    return change


async def tier_history(db, member_id: str, before_id: int | None, limit: int) -> list[tuple[int, TierChange]]:
    await require_member(db, member_id)
    query = select(tier_changes).where(tier_changes.c.member_id == member_id)
    if before_id is not None:
        query = query.where(tier_changes.c.change_id < before_id)
    rows = await db.execute(query.order_by(tier_changes.c.change_id.desc()).limit(limit))
    return [(r.change_id, TierChange(r.member_id, r.from_tier_id or "", r.to_tier_id, r.reason, r.operator_id, r.change_time))
            for r in rows]
