"""What orders earn under the rules (domain/rules.py): a preview, and the accrual of
paid orders, a batch at a time."""

from dataclasses import dataclass

from huiyuan.database import RUN_ALONE, Transaction
from huiyuan.runtime.business_time import local
from services.points.domain.lots import LotSource
from services.points.domain.members import Balance, balance_of
from services.points.domain.rules import LineAccrual, Order, Rule, accrue, already_accrued, by_priority
from services.points.storage import lots, members, rules as stored
from services.points.use_cases.rules import rules_under


async def preview(
    tx: Transaction, member_id: str, order: Order, all_rules: list[Rule] | None = None
) -> list[LineAccrual]:
    """What the order would earn (all_rules: the rules, when the caller read them already)."""
    all_rules = await rules_under(tx) if all_rules is None else all_rules
    capped_daily = [r.rule_id for r in all_rules if r.cap_per_day]
    earned = {}
    if member_id and capped_daily:
        earned = await stored.earned_today(tx, member_id, local(order.paid_time).date(), capped_daily)
    return accrue(all_rules, order, earned)


@dataclass(frozen=True)
class AccrueAsk:
    member_id: str
    order_id: str
    order: Order


@dataclass
class Accrued:
    lines: list[LineAccrual]
    debt_paid: int
    balance: Balance  # as this accrual left it


async def accrue_many(tx: Transaction, asks: list[AccrueAsk], now) -> list:
    """Grant what each paid order earns (a batch, huiyuan/database/batching.py; or one):
    one lot per base rule (each rule has its own expiry), the member's debt paid first.
    An order earns once: a second Accrue of it is refused. The outcome of each:
    Accrued, or the refusal. A member's or an order's second ask in a batch answers
    RUN_ALONE: a day cap counts what the member earned before, as the database has it."""
    found, live, done, rule_list = await stored.lock_for_accrual(  # the lock serialises day caps per member
        tx, [a.member_id for a in asks], sorted({a.order_id for a in asks}), now
    )
    all_rules = by_priority(rule_list)
    by_rule = {r.rule_id: r for r in all_rules}
    outcomes: list = []
    seen: set[str] = set()
    accrual_rows: list[dict] = []
    grants: list[lots.GrantRows] = []
    for ask in asks:
        if ask.member_id in seen or ask.order_id in seen:
            outcomes.append(RUN_ALONE)
            continue
        seen |= {ask.member_id, ask.order_id}
        if ask.order_id in done:
            outcomes.append(already_accrued(ask.order_id))
            continue
        member, order = found[ask.member_id], ask.order
        accruals = await preview(tx, ask.member_id, order, all_rules)
        accrual_rows += stored.accrual_rows(ask.member_id, ask.order_id, order, accruals)
        debt_paid = 0
        for rule_id in sorted({a.rule_id for a in accruals if a.rule_id and a.points}):
            rule = by_rule[rule_id]
            grants.append(
                lots.grant_rows(
                    member,
                    sum(a.points for a in accruals if a.rule_id == rule_id),
                    source=LotSource.PURCHASE,
                    expiry=rule.expiry,
                    pending_days=rule.pending_days,
                    store_path=order.store_path,
                    now=now,
                    rule_id=rule_id,
                    order_id=ask.order_id,
                    memo=rule.name,
                )
            )
            debt_paid += grants[-1].debt_paid
            live[ask.member_id] += grants[-1].new_lots()
        outcomes.append(Accrued(accruals, debt_paid, balance_of(member, live[ask.member_id], now)))
    await stored.record_accruals(tx, accrual_rows)
    await lots.write_grants(tx, grants)
    await members.save_members(tx, [found[a.member_id] for a, o in zip(asks, outcomes) if isinstance(o, Accrued)], now)
    return outcomes
