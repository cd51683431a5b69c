"""Count card plans (计次卡方案): created, listed, ended."""

from dataclasses import replace
from datetime import datetime

from huiyuan.database import Transaction
from huiyuan.runtime.validity import Ending, shortened_end
from services.wallet.domain import count_cards as rules
from services.wallet.domain.count_cards import Plan
from services.wallet.storage import count_cards


async def create_plan(tx: Transaction, plan: Plan, now) -> Plan:
    plan = replace(plan, name=plan.name.strip())
    await count_cards.add_plan(tx, plan, now)
    return plan


async def plan_by_id(tx: Transaction, plan_id: str, lock: bool = False) -> Plan:
    plan = await count_cards.plan_by_id(tx, plan_id, lock)
    if plan is None:
        raise rules.plan_not_found(plan_id)
    return plan


async def plans(
    tx: Transaction, *, store_path: str = "", org_path: str = "", show_ended: bool = False, at
) -> list[Plan]:
    """At a store, the plans on sale there now; for a back office, its line's plans
    (every plan without org_path), ended ones only with show_ended."""
    found = await count_cards.all_plans(tx)
    if store_path:
        return rules.plans_on_sale_at(found, store_path, at)
    return rules.plans_on_line_of(found, org_path, at, show_ended)


async def end_plan(tx: Transaction, plan_id: str, ending: Ending, now: datetime) -> Plan:
    """Stop selling a plan from its new end; the cards sold keep their terms."""
    plan = await plan_by_id(tx, plan_id, lock=True)
    rules.check_may_manage(plan.org_path, ending.actor_path)
    end = shortened_end(plan.start_time, plan.end_time, ending.at(now), now, kind="plan", kind_zh="次卡方案")
    await count_cards.set_plan_end(tx, plan_id, end, ending.operator)
    return replace(plan, end_time=end, ended_by=ending.operator)
