"""Tier use cases: HQ defines tiers and assigns them, members climb them by spend
(visits.py) and by top-ups (top_ups.py); every change is kept."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from huiyuan.database.engines import take_turn_on, violated_unique
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import AlreadyExists, NotFound
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.money import yuan
from services.member import domain, storage
from services.member.members import require_member
from services.member.storage import tier_changes, tiers, top_ups, visit_stats


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


CLIMB_OPERATOR = "system:tier-climb"  # who moved a member up by spend or top-ups: nobody did by hand
RETURN_OPERATOR = "system:tier-return"  # who undid a climb a return or a refunded top-up no longer paid for
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


async def list_tiers(db, after_rank: int | None = None, limit: int | None = None) -> list[domain.Tier]:
    """The ladder, lowest rank first (ranks are unique); those above after_rank."""
    query = select(tiers).order_by(tiers.c.rank).limit(limit)
    if after_rank is not None:
        query = query.where(tiers.c.rank > after_rank)
    return [storage.to_tier(r) for r in await db.execute(query)]


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


async def climb(session, member: domain.Member, *, spend_fen: int | None = None,
                top_up_fen: int | None = None) -> tuple[TierChange, domain.Tier] | None:
    """Move a member (locked) up to the best tier what they paid reaches, if it is
    better than theirs: the change and the tier, else None. A measure the caller knows
    is not read again."""
    ladder = await list_tiers(session)
    standing = await _standing(session, member.member_id, ladder, spend_fen, top_up_fen)
    current = next((t for t in ladder if t.tier_id == member.tier_id), None)
    reached = domain.tier_reached(ladder, current, standing)
    if reached is None:
        return None
    if 0 < reached.upgrade_spend_fen <= standing.spend_fen:
        reason = f"累计消费 {yuan(standing.spend_fen)},达到{reached.name}(满 {yuan(reached.upgrade_spend_fen)})"
    else:
        reason = f"累计充值 {yuan(standing.top_up_fen)},达到{reached.name}(充值满 {yuan(reached.upgrade_top_up_fen)})"
    return await _move(session, member, reached.tier_id, reason, CLIMB_OPERATOR), reached


async def after_return(session, member: domain.Member, cause: str, *, spend_fen: int | None = None,
                       top_up_fen: int | None = None) -> TierChange | None:
    """Undo the climbs of a member (locked) that a return or a refunded top-up (the
    cause, as the history says it: 退货后) took them below (domain.tier_after_return):
    the change, else None."""
    climbs = []  # the climbs that brought them to their tier, newest first
    for row in await session.execute(_CHANGES, {"member_id": member.member_id}):
        if row.operator_id != CLIMB_OPERATOR:
            break
        climbs.append((row.from_tier_id or "", row.to_tier_id))
    if not climbs:
        return None
    ladder = {t.tier_id: t for t in await list_tiers(session)}
    standing = await _standing(session, member.member_id, list(ladder.values()), spend_fen, top_up_fen)
    tier_id = domain.tier_after_return(ladder, member.tier_id, climbs, standing)
    if tier_id == member.tier_id:
        return None
    left = ladder[member.tier_id]
    paid, needs = [], []  # by the measures the tier left behind names
    if left.upgrade_spend_fen:
        paid.append(f"累计消费 {yuan(standing.spend_fen)}")
        needs.append(f"消费满 {yuan(left.upgrade_spend_fen)}")
    if left.upgrade_top_up_fen:
        paid.append(f"累计充值 {yuan(standing.top_up_fen)}")
        needs.append(f"充值满 {yuan(left.upgrade_top_up_fen)}")
    reason = f"{cause}{','.join(paid)},不足{left.name}({'或'.join(needs)})"
    return await _move(session, member, tier_id, reason, RETURN_OPERATOR)


_SPEND = select(func.coalesce(func.sum(visit_stats.c.total_spend_fen), 0)).where(
    visit_stats.c.member_id == bindparam("member_id"))
TOPPED_UP = select(func.coalesce(func.sum(top_ups.c.amount_fen), 0)).where(
    top_ups.c.member_id == bindparam("member_id"), top_ups.c.refund_time.is_(None))


async def _standing(session, member_id: str, ladder: list[domain.Tier], spend_fen: int | None,
                    top_up_fen: int | None) -> domain.Standing:
    """What the member paid, by the measures the ladder names (the others stay 0:
    nothing is read that no tier asks for, so a chain that climbs by spend alone reads
    no top-ups at its checkouts)."""
    if spend_fen is None:
        spend_fen = await total(session, _SPEND, member_id) if any(t.upgrade_spend_fen for t in ladder) else 0
    if top_up_fen is None:
        top_up_fen = await total(session, TOPPED_UP, member_id) if any(t.upgrade_top_up_fen for t in ladder) else 0
    return domain.Standing(spend_fen, top_up_fen)


async def total(session, statement, member_id: str) -> int:
    """A member's sum (_SPEND, TOPPED_UP) as an int: PostgreSQL's sum of a bigint is a numeric."""
    return int((await session.execute(statement, {"member_id": member_id})).scalar_one())


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
