"""Paid membership plans, the terms members bought and the uses of their benefits
(domain/memberships.py)."""

from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, insert, or_, select, text, update

from huiyuan.database import Transaction, insert_new, under
from services.member.domain.memberships import PLAN, Grant, Plan, Term
from services.member.storage.tables import (
    benefit_grants,
    benefit_uses,
    members,
    membership_plans,
    membership_terms,
    tiers,
)
from services.member.storage.tiers import benefits_of


def _plan(row) -> Plan:
    return Plan(
        row.plan_id,
        row.name,
        row.price_fen,
        row.term,
        row.trial_days,
        row.tier_id or "",
        benefits_of(row.benefits),
        row.create_time,
    )


async def insert_plan(tx: Transaction, plan: Plan) -> None:
    await tx.execute(
        insert(membership_plans).values(
            plan_id=plan.plan_id,
            name=plan.name,
            price_fen=plan.price_fen,
            term=plan.term,
            trial_days=plan.trial_days,
            tier_id=plan.tier_id or None,
            benefits=[vars(b) for b in plan.benefits],
            create_time=plan.create_time,
        )
    )


async def any_plan_gives_a_tier(tx: Transaction) -> bool:
    query = select(membership_plans.c.plan_id).where(membership_plans.c.tier_id.is_not(None)).limit(1)
    return (await tx.execute(query)).first() is not None


async def get_plan(tx: Transaction, plan_id: str) -> Plan | None:
    row = (await tx.execute(select(membership_plans).where(membership_plans.c.plan_id == plan_id))).one_or_none()
    return _plan(row) if row else None


async def plans(tx: Transaction, plan_ids: set[str]) -> dict[str, Plan]:
    if not plan_ids:
        return {}
    rows = await tx.execute(select(membership_plans).where(membership_plans.c.plan_id.in_(plan_ids)))
    return {r.plan_id: _plan(r) for r in rows}


async def list_plans(tx: Transaction, after_id: str | None, limit: int) -> list[Plan]:
    query = select(membership_plans).order_by(membership_plans.c.plan_id).limit(limit)
    if after_id is not None:
        query = query.where(membership_plans.c.plan_id > after_id)
    return [_plan(r) for r in await tx.execute(query)]


def _term(row) -> Term:
    return Term(
        row.term_id,
        row.member_id,
        row.plan_id,
        row.source,
        row.price_fen,
        row.anchor_day,
        row.start_day,
        row.end_day,
        row.days,
        row.payment_reference,
        row.order_id,
        row.line_id,
        row.store_path,
        row.create_time,
        row.refunded_fen,
        row.refund_time,
        row.refund_end_day,
        row.refund_reason,
        row.refund_operator,
    )


async def insert_term(tx: Transaction, term: Term, payment_key: str) -> None:
    await tx.execute(insert(membership_terms).values(payment_key=payment_key, **vars(term)))


async def term_paid_by(tx: Transaction, payment_key: str) -> Term | None:
    row = (
        await tx.execute(select(membership_terms).where(membership_terms.c.payment_key == payment_key))
    ).one_or_none()
    return _term(row) if row else None


async def terms_of(
    tx: Transaction, member_id: str, after_id: str | None = None, limit: int | None = None
) -> list[Term]:
    """The member's terms, earliest first."""
    query = (
        select(membership_terms)
        .where(membership_terms.c.member_id == member_id)
        .order_by(membership_terms.c.term_id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(membership_terms.c.term_id > after_id)
    return [_term(r) for r in await tx.execute(query)]


async def refund_term(tx: Transaction, term: Term) -> None:
    await tx.execute(
        update(membership_terms)
        .where(membership_terms.c.term_id == term.term_id, membership_terms.c.refund_time.is_(None))
        .values(
            refunded_fen=term.refunded_fen,
            refund_time=term.refund_time,
            refund_end_day=term.refund_end_day,
            refund_reason=term.refund_reason,
            refund_operator=term.refund_operator,
        )
    )


async def terms_running_after(tx: Transaction, day: date, sold_before: datetime, org_path: str) -> list[Term]:
    """The terms sold before sold_before, under org_path, whose end (before any
    refund) lies after day: those whose revenue may not all be earned by day's end."""
    query = select(membership_terms).where(
        membership_terms.c.create_time < sold_before, membership_terms.c.end_day > day
    )
    if org_path:
        query = query.where(under(membership_terms.c.store_path, org_path))
    return [_term(r) for r in await tx.execute(query)]


# The sums of use_cases.memberships.unearned, in the database (PostgreSQL): the chain's
# liability report read every running term of the chain into Python twice (opening and
# closing), a second a call at 67,000 terms. The same arithmetic as the Python loop and
# rules.earned_fen, term by term: a refund made after the day is not made yet; a term that
# ended by the day's end (a refund then) is all earned and left out; what it kept is
# earned evenly by day over the days it ran, rounded down (integer division of
# non-negative numbers).
_UNEARNED = text(
    """
    WITH t AS (
        SELECT price_fen - CASE WHEN refund_time >= :sold_before THEN 0 ELSE refunded_fen END AS kept,
               CASE WHEN refund_time >= :sold_before THEN end_day
                    ELSE COALESCE(refund_end_day, end_day) END AS effective_end,
               start_day
        FROM membership_terms
        WHERE create_time < :sold_before AND end_day > :day
          AND (store_path = :node OR store_path LIKE :under ESCAPE '!')
    ), r AS (
        SELECT kept, start_day, effective_end - start_day AS ran FROM t WHERE effective_end > :next_day
    ), e AS (
        SELECT kept, CASE
            WHEN ran <= 0 OR kept <= 0 THEN CASE WHEN :day >= start_day THEN kept ELSE 0 END
            WHEN :day - start_day + 1 >= ran THEN kept
            ELSE kept * GREATEST(0, :day - start_day + 1) / ran END AS earned
        FROM r
    )
    SELECT COALESCE(SUM(kept), 0) AS sold, COALESCE(SUM(earned), 0) AS earned, COUNT(*) AS terms FROM e
    """
)


async def unearned_sums(tx: Transaction, day: date, sold_before: datetime, org_path: str) -> tuple[int, int, int]:
    """(kept, earned, terms) of the terms terms_running_after finds, as of day's end,
    summed by PostgreSQL (see _UNEARNED); org_path "" is the whole chain."""
    escaped = org_path.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    row = (
        await tx.execute(
            _UNEARNED,
            {
                "sold_before": sold_before,
                "day": day,
                "next_day": day + timedelta(days=1),
                "node": org_path if org_path else "",
                "under": escaped + "/%" if org_path else "%",
            },
        )
    ).one()
    return int(row.sold), int(row.earned), int(row.terms)


# ------------------------------------------------------------------ benefit uses


async def uses_in_period(tx: Transaction, member_id: str, code: str, period_start: date, source: str = PLAN) -> int:
    """The member's uses (not undone) of a benefit from a source (PLAN, TIER) in a month."""
    return int(
        (
            await tx.execute(
                select(func.count()).where(
                    benefit_uses.c.member_id == member_id,
                    benefit_uses.c.benefit_code == code,
                    benefit_uses.c.period_start == period_start,
                    benefit_uses.c.source == source,
                    benefit_uses.c.undo_time.is_(None),
                )
            )
        ).scalar_one()
    )


async def insert_use(tx: Transaction, use: dict) -> None:
    await tx.execute(insert(benefit_uses).values(**use))


async def get_use(tx: Transaction, use_id: str):
    return (await tx.execute(select(benefit_uses).where(benefit_uses.c.use_id == use_id))).one_or_none()


async def undo_use(tx: Transaction, use_id: str, now: datetime) -> None:
    await tx.execute(
        update(benefit_uses)
        .where(benefit_uses.c.use_id == use_id, benefit_uses.c.undo_time.is_(None))
        .values(undo_time=now)
    )


async def uses_of(tx: Transaction, member_id: str, before_id: str | None, limit: int) -> list:
    query = select(benefit_uses).where(benefit_uses.c.member_id == member_id)
    if before_id is not None:
        query = query.where(benefit_uses.c.use_id < before_id)
    return list(await tx.execute(query.order_by(benefit_uses.c.use_id.desc()).limit(limit)))


async def use_counts(tx: Transaction, org_path: str, first: date, last: date) -> list[tuple[str, int, int]]:
    """(benefit code, uses, members) of the uses not undone at stores under org_path."""
    query = select(
        benefit_uses.c.benefit_code,
        func.count(),
        func.count(func.distinct(benefit_uses.c.member_id)),
    ).where(and_(benefit_uses.c.use_day >= first, benefit_uses.c.use_day <= last, benefit_uses.c.undo_time.is_(None)))
    if org_path:
        query = query.where(under(benefit_uses.c.store_path, org_path))
    rows = await tx.execute(query.group_by(benefit_uses.c.benefit_code).order_by(benefit_uses.c.benefit_code))
    return [(code, int(uses), int(members)) for code, uses, members in rows]


# ------------------------------------------------------------------ benefit grants


async def members_with_terms(
    tx: Transaction, day: date, after_member_id: str, limit: int, tier_ids: frozenset[str] = frozenset()
) -> list[tuple[str, str | None, str]]:
    """(member id, birthday, tier id or "") of the members after after_member_id, by id, with a term
    running on day or on one of tier_ids (the tiers whose benefits the job grants), at
    most limit."""
    end = func.coalesce(membership_terms.c.refund_end_day, membership_terms.c.end_day)
    running = (
        select(membership_terms.c.member_id)
        .where(membership_terms.c.start_day <= day, end > day, membership_terms.c.member_id > after_member_id)
        .distinct()
        .order_by(membership_terms.c.member_id)
        .limit(limit)
        .subquery()
    )
    rows = list(
        await tx.execute(
            select(members.c.member_id, members.c.birthday, members.c.tier_id)
            .join(running, running.c.member_id == members.c.member_id)
            .order_by(members.c.member_id)
        )
    )
    if tier_ids:  # each list is the first `limit` after the cursor: their union's first `limit` are
        rows += await tx.execute(
            select(members.c.member_id, members.c.birthday, members.c.tier_id)
            .where(members.c.tier_id.in_(tier_ids), members.c.member_id > after_member_id)
            .order_by(members.c.member_id)
            .limit(limit)
        )
    found = {r.member_id: (r.member_id, r.birthday, r.tier_id or "") for r in rows}
    return [found[m] for m in sorted(found)][:limit]


async def tiers_granting(tx: Transaction) -> dict[str, list]:
    """The benefits of each tier that grants any, by tier id (a chain has a few tiers)."""
    rows = await tx.execute(select(tiers.c.tier_id, tiers.c.entitlements))
    return {r.tier_id: benefits_of(r.entitlements) for r in rows if r.entitlements}


async def add_grants(tx: Transaction, grants: list[Grant], now: datetime) -> int:
    """Record the grants not recorded yet (a concurrent run's rows are skipped, not
    doubled); how many were new."""
    rows = [{**vars(g), "create_time": now, "issue_time": None} for g in grants]
    return len(await insert_new(tx, benefit_grants, rows, conflict="grant_key"))


async def pending_grants(tx: Transaction, after_key: str | None, limit: int) -> list:
    query = select(benefit_grants).where(benefit_grants.c.issue_time.is_(None))
    if after_key is not None:
        query = query.where(benefit_grants.c.grant_key > after_key)
    return list(await tx.execute(query.order_by(benefit_grants.c.grant_key).limit(limit)))


async def get_grant(tx: Transaction, key: str):
    return (await tx.execute(select(benefit_grants).where(benefit_grants.c.grant_key == key))).one_or_none()


async def complete_grant(tx: Transaction, key: str, now: datetime) -> None:
    await tx.execute(
        update(benefit_grants)
        .where(benefit_grants.c.grant_key == key, benefit_grants.c.issue_time.is_(None))
        .values(issue_time=now)
    )


async def member_use_counts(
    tx: Transaction, org_path: str, first: date, last: date, code: str, after: tuple[str, str] | None, limit: int
) -> list:
    """(member_id, benefit_code, uses, last_use_time) of the uses not undone at stores
    under org_path from first to last (of one benefit: code), by member and code, after
    `after` (a member and a code)."""
    u = benefit_uses.c
    where = [u.use_day >= first, u.use_day <= last, u.undo_time.is_(None)]
    if org_path:
        where.append(under(u.store_path, org_path))
    if code:
        where.append(u.benefit_code == code)
    if after is not None:
        where.append(or_(u.member_id > after[0], and_(u.member_id == after[0], u.benefit_code > after[1])))
    query = (
        select(u.member_id, u.benefit_code, func.count().label("uses"), func.max(u.use_time).label("last_use_time"))
        .where(*where)
        .group_by(u.member_id, u.benefit_code)
        .order_by(u.member_id, u.benefit_code)
        .limit(limit)
    )
    return list(await tx.execute(query))
