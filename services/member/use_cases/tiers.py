"""Tiers: HQ defines tiers and assigns them, members climb them by spend (visits.py)
and by top-ups (top_ups.py); every change is kept."""

from datetime import date

from huiyuan.database import Transaction
from huiyuan.runtime.business_time import local
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.ids import new_id
from services.member.domain.members import Member
from services.member.domain.tiers import (
    CLIMB_OPERATOR,
    RETURN_OPERATOR,
    Standing,
    Tier,
    TierChange,
    check_ladder,
    climb_reason,
    climbs_of,
    fall_reason,
    tier_after_return,
    tier_not_found,
    tier_reached,
)
from services.member.storage import tiers as stored
from services.member.use_cases import loyalty
from services.member.use_cases.members import require_member


async def require_tier(tx: Transaction, tier_id: str) -> Tier:
    tier = await stored.get(tx, tier_id)
    if tier is None:
        raise tier_not_found(tier_id)
    return tier


async def create_tier(tx: Transaction, tier: Tier) -> Tier:
    tier.tier_id = new_id("tier")
    await stored.take_turn_on_ladder(tx)
    await stored.insert_tier(tx, tier)
    check_ladder(await stored.ladder(tx))  # raising rolls the insert back
    return tier


async def list_tiers(tx: Transaction, after_rank: int | None = None, limit: int | None = None) -> list[Tier]:
    """The ladder, lowest rank first (ranks are unique); those above after_rank."""
    return await stored.ladder(tx, after_rank, limit)


async def update_tier(tx: Transaction, tier_id: str, changes: dict) -> Tier:
    await stored.take_turn_on_ladder(tx)
    await require_tier(tx, tier_id)
    await stored.update_tier(tx, tier_id, changes)
    check_ladder(await stored.ladder(tx))
    return await require_tier(tx, tier_id)


async def assign_tier(
    tx: Transaction, member_id: str, tier_id: str, reason: str, operator_id: str, end_date: date | None = None
) -> TierChange:
    """A tier given by hand; with an end date, the tier programme never moves the member
    below it until then (use_cases/loyalty.py: assigned)."""
    member = await require_member(tx, member_id, for_update=True)
    await require_tier(tx, tier_id)
    change = await _move(tx, member, tier_id, reason, operator_id)
    await loyalty.assigned(tx, member_id, tier_id, end_date, change.change_time)
    return change


async def climb(
    tx: Transaction, member: Member, *, spend_fen: int | None = None, top_up_fen: int | None = None
) -> tuple[TierChange, Tier] | None:
    """Move a member (locked) up to the best tier what they paid reaches, if it is
    better than theirs: the change and the tier, else None. A measure the caller knows
    is not read again. While a tier programme is in force, its measure and thresholds
    decide instead (use_cases/loyalty.py: climb)."""
    now = utcnow()
    programme = await loyalty.programme_on(tx, local(now).date())
    if programme is not None:
        return await loyalty.climb(tx, member, programme, now)
    ladder = await stored.ladder(tx)
    standing = await _standing(tx, member.member_id, ladder, spend_fen, top_up_fen)
    current = next((t for t in ladder if t.tier_id == member.tier_id), None)
    reached = tier_reached(ladder, current, standing)
    if reached is None:
        return None
    return await _move(tx, member, reached.tier_id, climb_reason(reached, standing), CLIMB_OPERATOR), reached


async def after_return(
    tx: Transaction, member: Member, cause: str, *, spend_fen: int | None = None, top_up_fen: int | None = None
) -> TierChange | None:
    """Undo the climbs of a member (locked) that a return or a refunded top-up (the
    cause, as the history says it: 退货后) took them below (domain tier_after_return):
    the change, else None."""
    climbs = climbs_of(await stored.latest_changes(tx, member.member_id))
    if not climbs:
        return None
    now = utcnow()
    programme = await loyalty.programme_on(tx, local(now).date())
    if programme is not None:
        return await loyalty.after_return(tx, member, programme, climbs, cause, now)
    ladder = {t.tier_id: t for t in await stored.ladder(tx)}
    standing = await _standing(tx, member.member_id, list(ladder.values()), spend_fen, top_up_fen)
    tier_id = tier_after_return(ladder, member.tier_id, climbs, standing)
    if tier_id == member.tier_id:
        return None
    return await _move(tx, member, tier_id, fall_reason(cause, ladder[member.tier_id], standing), RETURN_OPERATOR)


async def _standing(
    tx: Transaction, member_id: str, ladder: list[Tier], spend_fen: int | None, top_up_fen: int | None
) -> Standing:
    """What the member paid, by the measures the ladder names (the others stay 0:
    nothing is read that no tier asks for, so a chain that climbs by spend alone reads
    no top-ups at its checkouts)."""
    if spend_fen is None:
        spend_fen = await stored.spend_of(tx, member_id) if any(t.upgrade_spend_fen for t in ladder) else 0
    if top_up_fen is None:
        top_up_fen = await stored.top_ups_of(tx, member_id) if any(t.upgrade_top_up_fen for t in ladder) else 0
    return Standing(spend_fen, top_up_fen)


async def _move(tx: Transaction, member: Member, tier_id: str, reason: str, operator_id: str) -> TierChange:
    """Move a member to a tier ("": none) and keep the change."""
    change = TierChange(member.member_id, member.tier_id, tier_id, reason, operator_id, utcnow())
    await stored.move(tx, change)
    return change


async def tier_history(
    tx: Transaction, member_id: str, before_id: int | None, limit: int
) -> list[tuple[int, TierChange]]:
    await require_member(tx, member_id)
    return await stored.history(tx, member_id, before_id, limit)
