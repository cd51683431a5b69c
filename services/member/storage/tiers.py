"""Tiers, the members' tier changes, and the sums a tier is climbed by."""

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from huiyuan.database import Transaction, take_turn_on, violated_unique
from services.member.domain import reports
from services.member.domain.memberships import Benefit
from services.member.domain.tiers import Tier, TierChange, rank_taken
from services.member.storage.rollups import record
from services.member.storage.tables import (
    members,
    tier_changes,
    tiers,
    top_ups,
    visit_stats,
)

LADDER = "tiers"  # changes of the tiers take turns on it, so that each checks the ladder as it ends up


# prefix: how a join labelled the columns (the lookup's "tier_").
def to_tier(row, prefix: str = "") -> Tier:
    def col(name):
        return getattr(row, prefix + name)

    return Tier(
        col("tier_id"),
        col("name"),
        col("rank"),
        col("price_rate_bp"),
        col("points_multiplier_bp"),
        col("benefits"),
        col("upgrade_spend_fen"),
        col("upgrade_top_up_fen"),
        benefits_of(getattr(row, prefix + "entitlements", None) or []),
    )


def benefits_of(stored: list[dict]) -> list[Benefit]:
    """A plan's or a tier's benefits as kept (JSON)."""
    return [
        Benefit(b["code"], b["kind"], b["name"], b["quantity"], b.get("coupon_template_id", ""), b.get("points", 0))
        for b in stored
    ]


def _kept(values: dict) -> dict:
    if "entitlements" in values:
        values = {**values, "entitlements": [vars(b) for b in values["entitlements"]]}
    return values


async def take_turn_on_ladder(tx: Transaction) -> None:
    """Changes of the tiers run one after another from here."""
    await take_turn_on(tx, LADDER)


async def get(tx: Transaction, tier_id: str) -> Tier | None:
    row = (await tx.execute(select(tiers).where(tiers.c.tier_id == tier_id))).one_or_none()
    return to_tier(row) if row else None


_LADDER = select(tiers).order_by(tiers.c.rank)  # built once: every visit reads the ladder


async def ladder(tx: Transaction, after_rank: int | None = None, limit: int | None = None) -> list[Tier]:
    """The ladder, lowest rank first (ranks are unique); those above after_rank."""
    query = _LADDER
    if limit is not None:
        query = query.limit(limit)
    if after_rank is not None:
        query = query.where(tiers.c.rank > after_rank)
    return [to_tier(r) for r in await tx.execute(query)]


async def names(tx: Transaction) -> dict[str, str]:
    """Every tier's name by its id (a chain has a few)."""
    return dict((await tx.execute(select(tiers.c.tier_id, tiers.c.name))).all())


async def insert_tier(tx: Transaction, tier: Tier) -> None:
    try:
        await tx.execute(insert(tiers).values(**_kept(vars(tier))))
    except IntegrityError as error:
        if violated_unique(error, "tiers", "rank"):
            raise rank_taken(tier.rank) from None
        raise


async def update_tier(tx: Transaction, tier_id: str, changes: dict) -> None:
    try:
        await tx.execute(update(tiers).where(tiers.c.tier_id == tier_id).values(**_kept(changes)))
    except IntegrityError as error:
        if violated_unique(error, "tiers", "rank"):
            raise rank_taken(changes["rank"]) from None
        raise


_SPEND = select(func.coalesce(func.sum(visit_stats.c.total_spend_fen), 0)).where(
    visit_stats.c.member_id == bindparam("member_id")
)
_TOPPED_UP = select(func.coalesce(func.sum(top_ups.c.amount_fen), 0)).where(
    top_ups.c.member_id == bindparam("member_id"), top_ups.c.refund_time.is_(None)
)


async def _total(tx: Transaction, statement, member_id: str) -> int:
    """A member's sum as an int: PostgreSQL's sum of a bigint is a numeric."""
    return int((await tx.execute(statement, {"member_id": member_id})).scalar_one())


async def spend_of(tx: Transaction, member_id: str) -> int:
    """The member's spend in all stores, returns taken off."""
    return await _total(tx, _SPEND, member_id)


async def top_ups_of(tx: Transaction, member_id: str) -> int:
    """The principal of the member's top-ups that are not refunded."""
    return await _total(tx, _TOPPED_UP, member_id)


def _to_change(r) -> TierChange:
    return TierChange(r.member_id, r.from_tier_id or "", r.to_tier_id, r.reason, r.operator_id, r.change_time)


_LATEST_CHANGES = (
    select(tier_changes)
    .where(tier_changes.c.member_id == bindparam("member_id"))
    .order_by(tier_changes.c.change_id.desc())
    .limit(20)
)


async def latest_changes(tx: Transaction, member_id: str) -> list[TierChange]:
    """The member's latest 20 tier changes, newest first."""
    return [_to_change(r) for r in await tx.execute(_LATEST_CHANGES, {"member_id": member_id})]


async def move(tx: Transaction, change: TierChange) -> None:
    """The member to change.to_tier_id ("": none), and the change kept, at the home
    store the member has (read from the row it changes), and counted in the rollups."""
    home = (
        await tx.execute(
            update(members)
            .where(members.c.member_id == change.member_id)
            .values(tier_id=change.to_tier_id or None, update_time=change.change_time)
            .returning(members.c.home_store_path)
        )
    ).scalar_one()
    await tx.execute(
        insert(tier_changes).values(
            member_id=change.member_id,
            from_tier_id=change.from_tier_id or None,
            to_tier_id=change.to_tier_id,
            reason=change.reason,
            operator_id=change.operator_id,
            change_time=change.change_time,
            home_store_path=home,
        )
    )
    await record(
        tx,
        reports.tier_moved(
            reports.TierMove(change.member_id, home, change.from_tier_id, change.to_tier_id, change.change_time)
        ),
    )


async def history(tx: Transaction, member_id: str, before_id: int | None, limit: int) -> list[tuple[int, TierChange]]:
    """Newest first, with each change's id; those before the change before_id."""
    query = select(tier_changes).where(tier_changes.c.member_id == member_id)
    if before_id is not None:
        query = query.where(tier_changes.c.change_id < before_id)
    rows = await tx.execute(query.order_by(tier_changes.c.change_id.desc()).limit(limit))
    return [(r.change_id, _to_change(r)) for r in rows]
