"""The tier ladder: HQ defines tiers and assigns them; members climb them by what they
paid (spend in all stores, or top-ups), and a return or a refunded top-up undoes the
climbs it no longer pays for."""

from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise

from huiyuan.runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    Violations,
)
from huiyuan.runtime.money import yuan
from services.member.domain.fields import check_name, check_text
from services.member.domain.memberships import Benefit, check_benefits


@dataclass
class Tier:
    tier_id: str
    name: str
    rank: int
    price_rate_bp: int
    points_multiplier_bp: int
    benefits: str
    upgrade_spend_fen: int = 0  # spend in all stores that reaches it; 0: not by spend
    upgrade_top_up_fen: int = 0  # top-ups (principal) that reach it; 0: not by top-ups
    # the benefits every member holding it is granted, as a plan's (domain/memberships.py)
    entitlements: list[Benefit] = field(default_factory=list)

    def reached_by(self, standing: "Standing") -> bool:
        """Does what the member has paid reach this tier, by either measure it names?"""
        return (0 < self.upgrade_spend_fen <= standing.spend_fen) or (
            0 < self.upgrade_top_up_fen <= standing.top_up_fen
        )


@dataclass(frozen=True)
class Standing:
    """What a member has paid the chain, as the tiers count it: their spend in all
    stores (returns taken off) and the principal of their top-ups at the tills
    (refunded ones taken off; the bonus is the chain's gift, not theirs)."""

    spend_fen: int = 0
    top_up_fen: int = 0


@dataclass
class TierChange:
    member_id: str
    from_tier_id: str
    to_tier_id: str
    reason: str
    operator_id: str
    change_time: datetime


CLIMB_OPERATOR = "system:tier-climb"  # who moved a member up by spend or top-ups: nobody did by hand
RETURN_OPERATOR = "system:tier-return"  # who undid a climb a return or a refunded top-up no longer paid for

MAX_SPEND_FEN = 10**12  # the most a visit, a return, a top-up or a tier's upgrade amount may name
# The measures a tier may be climbed by: (Tier's field, refusal reason, words for it).
LADDER_MEASURES = [
    ("upgrade_spend_fen", "UPGRADE_SPEND_OUT_OF_ORDER", "spend", "升级消费额"),
    ("upgrade_top_up_fen", "UPGRADE_TOP_UP_OUT_OF_ORDER", "top-ups", "升级充值额"),
]


def check_tier(
    violations: Violations,
    name: str,
    rank: int,
    price_rate_bp: int,
    points_multiplier_bp: int,
    benefits: str,
    upgrade_spend_fen: int,
    upgrade_top_up_fen: int = 0,
    entitlements: list[Benefit] | None = None,
) -> None:
    check_name(violations, name, "tier.name")
    check_benefits(violations, entitlements or [], "tier.entitlements")
    violations.check(0 <= rank <= 1000, "tier.rank", "RANK_OUT_OF_RANGE", "rank must be 0 to 1000")
    violations.check(
        1 <= price_rate_bp <= 10000,
        "tier.price_rate_bp",
        "RATE_OUT_OF_RANGE",
        "price_rate_bp must be 1 to 10000 (10000 = full price)",
    )
    violations.check(
        0 <= points_multiplier_bp <= 100000,
        "tier.points_multiplier_bp",
        "MULTIPLIER_OUT_OF_RANGE",
        "points_multiplier_bp must be 0 to 100000 (10000 = 1x)",
    )
    check_text(violations, benefits, "tier.benefits", limit=2000)
    for field_name, amount in [("upgrade_spend_fen", upgrade_spend_fen), ("upgrade_top_up_fen", upgrade_top_up_fen)]:
        violations.check(
            0 <= amount <= MAX_SPEND_FEN,
            f"tier.{field_name}",
            "AMOUNT_OUT_OF_RANGE",
            f"{field_name} must be 0 to 10^12 (0: not reached this way)",
        )


def check_ladder(tiers: list[Tier]) -> None:
    """The tiers that name a spend must need more of it the better they are, and so
    must the tiers that name top-ups: else a member would climb past a tier, or never
    reach one. Checked on the whole set, as it will be after a tier is created or changed."""
    for field_name, reason, words, zh in LADDER_MEASURES:
        climbing = sorted((t for t in tiers if getattr(t, field_name)), key=lambda t: t.rank)
        for lower, higher in pairwise(climbing):
            if getattr(higher, field_name) <= getattr(lower, field_name):
                raise FailedPrecondition(
                    reason,
                    f"Tier '{higher.name}' (rank {higher.rank}) must need more {words} than '{lower.name}' "
                    f"(rank {lower.rank}), which needs {getattr(lower, field_name)} fen.",
                    f"等级「{higher.name}」的{zh}须高于「{lower.name}」({getattr(lower, field_name)} 分)。",
                    tier=higher.name,
                    below=lower.name,
                )


def tier_reached(tiers: list[Tier], current: Tier | None, standing: Standing) -> Tier | None:
    """The best tier what the member paid reaches, if it is better than their own;
    else None. It only lifts: a tier assigned by hand above it stays."""
    reached = max((t for t in tiers if t.reached_by(standing)), key=lambda t: t.rank, default=None)
    if reached is None or (current is not None and reached.rank <= current.rank):
        return None
    return reached


def climb_reason(reached: Tier, standing: Standing) -> str:
    """Why a member climbed to reached, as their tier history says it."""
    if 0 < reached.upgrade_spend_fen <= standing.spend_fen:
        return f"累计消费 {yuan(standing.spend_fen)},达到{reached.name}(满 {yuan(reached.upgrade_spend_fen)})"
    return f"累计充值 {yuan(standing.top_up_fen)},达到{reached.name}(充值满 {yuan(reached.upgrade_top_up_fen)})"


def tier_after_return(
    tiers: dict[str, Tier], current_id: str, climbs: list[tuple[str, str]], standing: Standing
) -> str:
    """The tier (its id; "" for none) a member on current_id holds after a return or a
    refunded top-up lowered what they paid to standing. climbs are the (from, to) tier
    ids of the climbs that brought them there, newest first. Each climb that is no
    longer paid for is undone, down to the tier they had before climbing at most
    (assigned by hand, or none); from there they are lifted to the best tier they still
    reach."""
    tier_id = current_id
    for from_id, to_id in climbs:
        if to_id != tier_id or tiers[to_id].reached_by(standing):
            break
        tier_id = from_id
    if tier_id == current_id:
        return current_id
    lifted = tier_reached(list(tiers.values()), tiers.get(tier_id), standing)
    return lifted.tier_id if lifted else tier_id


def fall_reason(cause: str, left: Tier, standing: Standing) -> str:
    """Why a member left the tier `left` after a return or a refunded top-up (the cause,
    as the history says it: 退货后), by the measures that tier names."""
    paid, needs = [], []
    if left.upgrade_spend_fen:
        paid.append(f"累计消费 {yuan(standing.spend_fen)}")
        needs.append(f"消费满 {yuan(left.upgrade_spend_fen)}")
    if left.upgrade_top_up_fen:
        paid.append(f"累计充值 {yuan(standing.top_up_fen)}")
        needs.append(f"充值满 {yuan(left.upgrade_top_up_fen)}")
    return f"{cause}{','.join(paid)},不足{left.name}({'或'.join(needs)})"


def climbs_of(history: list[TierChange]) -> list[tuple[str, str]]:
    """The (from, to) tier ids of the climbs that brought a member to their tier: their
    latest changes, newest first, up to the first one made otherwise (by hand)."""
    climbs = []
    for change in history:
        if change.operator_id != CLIMB_OPERATOR:
            break
        climbs.append((change.from_tier_id, change.to_tier_id))
    return climbs


def tier_not_found(tier_id: str) -> NotFound:
    return NotFound("TIER_NOT_FOUND", f"No tier '{tier_id}'.", f"等级 '{tier_id}' 不存在。", tier_id=tier_id)


def rank_taken(rank: int) -> AlreadyExists:
    return AlreadyExists(
        "TIER_RANK_TAKEN", f"Another tier has rank {rank}.", f"等级序号 {rank} 已被占用。", rank=str(rank)
    )
