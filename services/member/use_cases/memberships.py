"""Paid membership (付费会员): plans, purchases at a till or online, stacked terms,
pro-rata refunds, the revenue not yet earned, the tier a term gives, and the service
quotas its benefits grant (domain/memberships.py has the rules)."""

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from huiyuan.database import Transaction, dialect_name
from huiyuan.runtime.business_time import day_start
from huiyuan.runtime.ids import new_id
from services.member.domain import memberships as rules
from services.member.domain.memberships import TRIAL, Benefit, Entitlement, Plan, Term
from services.member.storage import memberships as stored, tiers as stored_tiers
from services.member.use_cases.members import require_member
from services.member.use_cases.tiers import require_tier


async def require_plan(tx: Transaction, plan_id: str) -> Plan:
    plan = await stored.get_plan(tx, plan_id)
    if plan is None:
        raise rules.plan_not_found(plan_id)
    return plan


async def create_plan(tx: Transaction, plan: Plan, now: datetime) -> Plan:
    if plan.tier_id:
        await require_tier(tx, plan.tier_id)
    plan.plan_id, plan.create_time = new_id("plan"), now
    await stored.insert_plan(tx, plan)
    return plan


async def list_plans(tx: Transaction, after_id: str | None, limit: int) -> list[Plan]:
    return await stored.list_plans(tx, after_id, limit)


@dataclass(frozen=True)
class Payment:
    """What pays a term: exactly one of an online reference, an order's line, the trial."""

    source: str  # TILL, ONLINE, TRIAL
    reference: str = ""
    order_id: str = ""
    line_id: str = ""

    def key(self, member_id: str) -> str:
        if self.source == TRIAL:
            return f"trial:{member_id}"  # one trial a member
        if self.source == rules.ONLINE:
            return f"online:{self.reference}"
        return f"order:{self.order_id}:{self.line_id}"


def _last(terms: list[Term]) -> Term | None:
    """The term the next one stacks on: the one that ends last (terms a refund emptied
    before they started are no longer there)."""
    running = [t for t in terms if t.effective_end > t.start_day]
    return max(running, key=lambda t: t.effective_end, default=None)


async def purchase(
    tx: Transaction,
    member_id: str,
    plan_id: str,
    payment: Payment,
    paid_fen: int,
    store_path: str,
    now: datetime,
) -> Term:
    """A term of the plan for the member (locked), starting when their last term ends.
    The same payment again answers the term it bought."""
    await require_member(tx, member_id, for_update=True)
    plan = await require_plan(tx, plan_id)
    key = payment.key(member_id)
    paid_before = await stored.term_paid_by(tx, key)
    if paid_before is not None:
        if payment.source == TRIAL:
            raise rules.trial_used()
        if paid_before.member_id != member_id or paid_before.plan_id != plan_id:
            raise rules.reference_of_another()
        return paid_before
    if payment.source == TRIAL:
        if plan.trial_days == 0:
            raise rules.trial_not_offered(plan)
    elif paid_fen != plan.price_fen:
        raise rules.paid_not_price(plan, paid_fen)
    anchor, start, end = rules.next_term(
        plan, payment.source == TRIAL, _last(await stored.terms_of(tx, member_id)), now
    )
    term = Term(
        new_id("term"),
        member_id,
        plan_id,
        payment.source,
        paid_fen if payment.source != TRIAL else 0,
        anchor,
        start,
        end,
        (end - start).days,
        payment.reference,
        payment.order_id,
        payment.line_id,
        store_path,
        now,
    )
    await stored.insert_term(tx, term, key)
    return term


async def terms_of(tx: Transaction, member_id: str, after_id: str | None, limit: int) -> list[Term]:
    await require_member(tx, member_id)
    return await stored.terms_of(tx, member_id, after_id, limit)


async def refund(
    tx: Transaction, member_id: str, reason: str, operator: str, now: datetime, term_id: str = ""
) -> list[Term]:
    """End the member's (locked) membership at the end of today: each term (or the one
    named) with unused days gives back their share of its price (domain refund_of).
    Later terms keep their days. Unnamed, terms sold at a till are left: the gateway
    names each when its order's line is refunded, and the money goes back with it."""
    await require_member(tx, member_id, for_update=True)
    tomorrow = rules.business_day(now) + timedelta(days=1)
    refunded = []
    for term in await stored.terms_of(tx, member_id):
        if term.refund_time is not None or term.end_day <= tomorrow or term_id not in ("", term.term_id):
            continue
        if not term_id and term.source == rules.TILL:  # its money goes back by a refund of its order's line
            continue
        fen, new_end = rules.refund_of(term, now)
        term.refunded_fen, term.refund_end_day, term.refund_time = fen, new_end, now
        term.refund_reason, term.refund_operator = reason, operator
        await stored.refund_term(tx, term)
        refunded.append(term)
    if not refunded:
        raise rules.nothing_to_refund()
    return refunded


@dataclass(frozen=True)
class Unearned:
    sold_fen: int
    earned_fen: int
    terms: int

    @property
    def unearned_fen(self) -> int:
        return self.sold_fen - self.earned_fen


async def unearned(tx: Transaction, day: date, org_path: str) -> Unearned:
    """As of the end of day: of the terms sold by then and running past it, what they
    kept (price less refunds made by then) and what of it is earned."""
    end_of_day = day_start(day + timedelta(days=1))
    if dialect_name(tx) == "postgresql":  # summed where the terms are (storage.memberships._UNEARNED)
        return Unearned(*await stored.unearned_sums(tx, day, end_of_day, org_path))
    return await unearned_in_python(tx, day, org_path)


async def unearned_in_python(tx: Transaction, day: date, org_path: str) -> Unearned:
    """unearned() term by term (SQLite; the tests hold PostgreSQL's sums to it)."""
    end_of_day = day_start(day + timedelta(days=1))
    sold = earned = count = 0
    for term in await stored.terms_running_after(tx, day, end_of_day, org_path):
        if term.refund_time is not None and term.refund_time >= end_of_day:  # refunded later: not yet then
            term = replace(term, refunded_fen=0, refund_time=None, refund_end_day=None)
        if term.effective_end <= day + timedelta(days=1):  # ended by then (a refund then): all earned
            continue
        sold += term.price_fen - term.refunded_fen
        earned += rules.earned_fen(term, day)
        count += 1
    return Unearned(sold, earned, count)


# ------------------------------------------------------------------ benefits


@dataclass(frozen=True)
class Held:
    """A benefit as the member holds it this benefit month, from a plan or their tier."""

    entitlement: Entitlement
    used: int

    @property
    def benefit(self) -> Benefit:
        return self.entitlement.benefit

    @property
    def left(self) -> int:
        """Uses left this benefit month (quotas; 0 for what the job issues)."""
        return max(0, self.benefit.quantity - self.used) if self.benefit.kind == rules.SERVICE_QUOTA else 0


async def entitlements(
    tx: Transaction,
    member_id: str,
    tier_id: str,
    now: datetime,
    tiers: dict[str, list[Benefit]] | None = None,
    plans: dict[str, Plan] | None = None,
) -> list[Entitlement]:
    """What the member holds now: their plan's benefits while a term is in force, their
    own tier's while they hold it (a tier a plan gives at the till grants nothing more:
    the plan's benefits are the plan's). tiers: the benefits of the tiers that grant
    any, by id, if the caller read them already; plans: the plans read so far, kept
    for a batch's next members."""
    term = rules.term_in_force(await stored.terms_of(tx, member_id), now)
    plan = None
    if term is not None:
        plan = plans.get(term.plan_id) if plans is not None else None
        if plan is None:
            plan = await require_plan(tx, term.plan_id)
            if plans is not None:
                plans[plan.plan_id] = plan
    tier_benefits: list[Benefit] = []
    if tier_id:
        if tiers is None:
            tier = await stored_tiers.get(tx, tier_id)
            tier_benefits = tier.entitlements if tier is not None else []
        else:
            tier_benefits = tiers.get(tier_id, [])
    return rules.entitlements(term, plan, tier_id, tier_benefits, rules.business_day(now))


async def _used(tx: Transaction, member_id: str, e: Entitlement) -> int:
    if e.benefit.kind != rules.SERVICE_QUOTA:
        return 0
    return await stored.uses_in_period(tx, member_id, e.benefit.code, e.period_start, e.source)


async def member_benefits(tx: Transaction, member_id: str, now: datetime) -> list[Held]:
    member = await require_member(tx, member_id)
    return [Held(e, await _used(tx, member_id, e)) for e in await entitlements(tx, member_id, member.tier_id, now)]


async def consume(
    tx: Transaction, member_id: str, code: str, store_path: str, operator: str, now: datetime
) -> tuple[dict, int]:
    """One use of the member's (locked) quota: the use and what is left after it. A
    member whose plan and tier both grant the code has both quotas: the plan's is used
    first, then the tier's."""
    member = await require_member(tx, member_id, for_update=True)
    held = await entitlements(tx, member_id, member.tier_id, now)
    # no membership: neither a term in force nor a benefit of the tier (a term whose plan
    # grants nothing is a membership all the same: the code is not among its benefits)
    if not held and rules.term_in_force(await stored.terms_of(tx, member_id), now) is None:
        raise rules.no_membership()
    quotas = [Held(e, await _used(tx, member_id, e)) for e in held if e.benefit.code == code]
    quotas = [h for h in quotas if h.benefit.kind == rules.SERVICE_QUOTA]
    if not quotas:
        raise rules.not_entitled(code)
    using = next((h for h in quotas if h.left > 0), None)
    if using is None:
        raise rules.quota_exhausted(
            quotas[0].benefit.name,
            sum(h.benefit.quantity for h in quotas),
            sum(h.used for h in quotas),
            min(h.entitlement.period_end for h in quotas),
        )
    e = using.entitlement
    use = {
        "use_id": new_id("use"),
        "member_id": member_id,
        "term_id": e.term_id or None,
        "plan_id": e.source_id if e.source == rules.PLAN else "",
        "source": e.source,
        "tier_id": e.source_id if e.source == rules.TIER else None,
        "benefit_code": code,
        "period_start": e.period_start,
        "store_path": store_path,
        "use_day": rules.business_day(now),
        "use_time": now,
        "undo_time": None,
        "operator_id": operator,
    }
    await stored.insert_use(tx, use)
    return use, sum(h.left for h in quotas) - 1


async def undo(tx: Transaction, use_id: str, now: datetime):
    """Give a use back, on its business day; undone already: as it is."""
    row = await stored.get_use(tx, use_id)
    if row is None:
        raise rules.use_not_found(use_id)
    if row.undo_time is None:
        if row.use_day != rules.business_day(now):
            raise rules.undo_too_late(row.use_day)
        await stored.undo_use(tx, use_id, now)
        row = await stored.get_use(tx, use_id)
    return row


async def uses_of(tx: Transaction, member_id: str, before_id: str | None, limit: int) -> list:
    await require_member(tx, member_id)
    return await stored.uses_of(tx, member_id, before_id, limit)


async def use_counts(tx: Transaction, org_path: str, first: date, last: date) -> list[tuple[str, int, int]]:
    return await stored.use_counts(tx, org_path, first, last)


async def member_use_counts(
    tx: Transaction, org_path: str, first: date, last: date, code: str, after: tuple[str, str] | None, limit: int
) -> list:
    return await stored.member_use_counts(tx, org_path, first, last, code, after, limit)


# ------------------------------------------------------------------ benefit grants


async def plan_grants(tx: Transaction, day: date, after_member_id: str, limit: int, now: datetime) -> tuple[int, str]:
    """Record what is due on day to the next members (by id) with a term running then
    or a tier that grants benefits: (grants recorded, the last member looked at, ""
    when none was left). A tier's are the member's tier when the job runs."""
    granting = await stored.tiers_granting(tx)
    job_kinds = (rules.MONTHLY_COUPONS, rules.BIRTHDAY_COUPONS, rules.BIRTHDAY_POINTS)
    tier_ids = frozenset(t for t, benefits in granting.items() if any(b.kind in job_kinds for b in benefits))
    found = await stored.members_with_terms(tx, day, after_member_id, limit, tier_ids)
    grants = []
    plans: dict[str, Plan] = {}
    at = day_start(day) + timedelta(hours=12)  # a moment of that business day
    for member_id, birthday, tier_id in found:
        held = await entitlements(tx, member_id, tier_id, at, granting, plans)
        grants += rules.grants_due(member_id, birthday, held, day)
    planned = await stored.add_grants(tx, grants, now)
    return planned, found[-1][0] if len(found) == limit else ""


async def pending_grants(tx: Transaction, after_key: str | None, limit: int) -> list:
    return await stored.pending_grants(tx, after_key, limit)


async def complete_grant(tx: Transaction, key: str, now: datetime):
    if await stored.get_grant(tx, key) is None:
        raise rules.grant_not_found(key)
    await stored.complete_grant(tx, key, now)
    return await stored.get_grant(tx, key)
