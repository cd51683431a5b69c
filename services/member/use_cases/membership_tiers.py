"""The tier a paid term gives (付费会员's tier): at a till the member has their own tier
or the plan's of the term in force, whichever ranks higher. Nothing is moved: when the
term ends, the member is back on their own tier.

A lookup is on every checkout's path: while no plan gives a tier (most chains), it reads
nothing more. Whether one does is kept PLANS_SEEN_S (plans are never edited; one created
on this process is seen at once, on another replica within that)."""

import time
from datetime import datetime

from huiyuan.database import Database
from services.member.domain.memberships import term_in_force
from services.member.domain.tiers import Tier
from services.member.storage import memberships as stored, tiers as stored_tiers

PLANS_SEEN_S = 10.0
_tier_plans: dict[int, tuple[float, bool]] = {}  # id(database) -> (when read, whether a plan gives a tier)


def plan_created(database: Database) -> None:
    """A plan was created here: the next lookup asks again."""
    _tier_plans.pop(id(database), None)


async def tier_in_force(database: Database, member_id: str, own: Tier | None, now: datetime) -> Tier | None:
    """The member's tier at a till: the plan's of a term in force if better than theirs."""
    seen = _tier_plans.get(id(database))
    if seen is None or time.monotonic() - seen[0] > PLANS_SEEN_S:
        async with database.reading() as tx:
            seen = (time.monotonic(), await stored.any_plan_gives_a_tier(tx))
        _tier_plans[id(database)] = seen
    if not seen[1]:
        return own
    async with database.reading() as tx:
        term = term_in_force(await stored.terms_of(tx, member_id), now)
        if term is None:
            return own
        plan = await stored.get_plan(tx, term.plan_id)
        if plan is None or not plan.tier_id or (own is not None and own.tier_id == plan.tier_id):
            return own
        given = await stored_tiers.get(tx, plan.tier_id)
    if given is None or (own is not None and own.rank >= given.rank):
        return own
    return given
