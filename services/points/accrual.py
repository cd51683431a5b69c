"""Rules and what orders earn under them."""

from dataclasses import asdict, dataclass, replace
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from huiyuan.runtime.clock import local
from huiyuan.database.engines import violated_unique
from huiyuan.database.direct import send
from huiyuan.runtime.errors import AlreadyExists, NotFound
from huiyuan.database.idempotency import RUN_ALONE
from huiyuan.runtime.requests import check_in_scope, on_line
from huiyuan.runtime.validity import shortened_end
from services.points import domain, ledger
from services.points.storage import order_accruals, rules


def _body(rule: domain.Rule) -> dict:
    body = asdict(rule)
    body["expiry"] = [rule.expiry.policy.value, rule.expiry.param]
    for key in ("start_time", "end_time"):
        body[key] = body[key].isoformat() if body[key] else None
    return body


def _rule(body: dict) -> domain.Rule:
    body = dict(body)
    policy, param = body.pop("expiry")
    for key in ("start_time", "end_time"):
        body[key] = datetime.fromisoformat(body[key]) if body[key] else None
    return domain.Rule(**body, expiry=domain.Expiry(domain.ExpiryPolicy(policy), param))


async def create_rule(db, rule: domain.Rule, now) -> domain.Rule:
    try:
        await db.execute(insert(rules), {"rule_id": rule.rule_id, "kind": "BASE" if rule.is_base else "MULTIPLIER",
                                         "priority": rule.priority, "org_path": rule.org_path, "body": _body(rule),
                                         "create_time": now})
    except IntegrityError as error:
        if violated_unique(error, "rules", "kind", "priority"):
            raise AlreadyExists("RULE_PRIORITY_TAKEN", f"Another rule of this kind has priority {rule.priority}.",
                                f"已有同类规则使用优先级 {rule.priority}。", priority=rule.priority)
        raise
    return rule


async def rule_by_id(db, rule_id: str, lock: bool = False) -> domain.Rule:
    query = select(rules.c.body).where(rules.c.rule_id == rule_id)
    body = (await db.execute(query.with_for_update() if lock else query)).scalar()
    if body is None:
        raise NotFound("RULE_NOT_FOUND", "No such rule.", "积分规则不存在。", rule_id=rule_id)
    return _rule(body)


async def end_rule(db, rule_id: str, *, end_time: datetime, operator: str, actor_path: str, now) -> domain.Rule:
    """Shorten a rule so that orders paid from end_time earn nothing under it
    (huiyuan/runtime/validity.py: its terms never change)."""
    rule = await rule_by_id(db, rule_id, lock=True)  # two ends of one rule: one after the other
    check_in_scope(rule.org_path, actor_path, "rule", "规则")
    end = shortened_end(rule.start_time, rule.end_time, end_time, now, kind="rule", kind_zh="规则")
    ended = replace(rule, end_time=end, ended_by=operator)
    await db.execute(update(rules).where(rules.c.rule_id == rule_id).values(body=_body(ended)))
    return ended


# The statements of an accrual, built once.
_RULE_BODIES = select(rules.c.body)
_ACCRUED_ORDERS = select(order_accruals.c.order_id.distinct().label("order_id")).where(
    order_accruals.c.order_id.in_(bindparam("order_ids", expanding=True)))
_EARNED_TODAY = select(order_accruals.c.rule_id, func.sum(order_accruals.c.points)).where(
    order_accruals.c.member_id == bindparam("member_id"), order_accruals.c.business_day == bindparam("day"),
    order_accruals.c.rule_id.in_(bindparam("rule_ids", expanding=True))).group_by(order_accruals.c.rule_id)
_INSERT_ACCRUALS = insert(order_accruals)


async def rules_under(db, org_path: str = "") -> list[domain.Rule]:
    """Rules by priority, highest first; with org_path, those that apply to stores under
    it (its own, and those of the nodes above it)."""
    return _rules_of((await db.execute(_RULE_BODIES)).all(), org_path)


def _rules_of(rows, org_path: str = "") -> list[domain.Rule]:
    found = [_rule(row.body) for row in rows]
    if org_path:
        found = [r for r in found if on_line(r.org_path, org_path)]
    return sorted(found, key=lambda r: (-r.priority, r.rule_id))


async def preview(db, member_id: str, order: domain.Order, all_rules: list[domain.Rule] | None = None,
                  ) -> list[domain.LineAccrual]:
    """What the order would earn (all_rules: the rules, when the caller read them already)."""
    all_rules = await rules_under(db) if all_rules is None else all_rules
    capped_daily = [r.rule_id for r in all_rules if r.cap_per_day]
    earned = {}
    if member_id and capped_daily:
        rows = await db.execute(_EARNED_TODAY, {"member_id": member_id, "day": local(order.paid_time).date(),
                                                "rule_ids": capped_daily})
        earned = {rule_id: int(points) for rule_id, points in rows}
    return domain.accrue(all_rules, order, earned)


@dataclass(frozen=True)
class AccrueAsk:
    member_id: str
    order_id: str
    order: domain.Order


@dataclass
class Accrued:
    lines: list[domain.LineAccrual]
    debt_paid: int
    balance: ledger.Balance  # as this accrual left it


def already_accrued(order_id: str) -> AlreadyExists:
    return AlreadyExists("ORDER_ALREADY_ACCRUED", "This order has already earned its points.", "该订单已累计积分。",
                         order_id=order_id)


async def accrue_many(db, asks: list[AccrueAsk], now) -> list:
    """Grant what each paid order earns (a batch, database/batching.py; or one): one lot
    per base rule (each rule has its own expiry), the member's debt paid first. An
    order earns once: a second Accrue of it is refused. The outcome of each: Accrued,
    or the refusal. A member's or an order's second ask in a batch answers RUN_ALONE:
    a day cap counts what the member earned before, as the database has it."""
    members, live, (accrued, rule_rows) = await ledger.lock_with_lots(  # the lock serialises day caps per member
        db, [a.member_id for a in asks], now,
        (_ACCRUED_ORDERS, {"order_ids": sorted({a.order_id for a in asks})}), (_RULE_BODIES, None))
    done = {row.order_id for row in accrued}
    all_rules = _rules_of(rule_rows)
    by_rule = {r.rule_id: r for r in all_rules}
    outcomes: list = []
    seen: set[str] = set()
    accrual_rows: list[dict] = []
    grants: list[ledger.GrantRows] = []
    for ask in asks:
        if ask.member_id in seen or ask.order_id in seen:
            outcomes.append(RUN_ALONE)
            continue
        seen |= {ask.member_id, ask.order_id}
        if ask.order_id in done:
            outcomes.append(already_accrued(ask.order_id))
            continue
        member, order = members[ask.member_id], ask.order
        accruals = await preview(db, ask.member_id, order, all_rules)
        day, paid = local(order.paid_time).date(), {line.line_id: line.paid_fen for line in order.lines}
        accrual_rows += [
            {"order_id": ask.order_id, "line_id": a.line_id, "member_id": ask.member_id, "rule_id": a.rule_id,
             "points": a.points, "paid_fen": paid[a.line_id], "business_day": day} for a in accruals]
        debt_paid = 0
        for rule_id in sorted({a.rule_id for a in accruals if a.rule_id and a.points}):
            rule = by_rule[rule_id]
            grants.append(ledger.grant_rows(
                member, sum(a.points for a in accruals if a.rule_id == rule_id), source=domain.LotSource.PURCHASE,
                expiry=rule.expiry, pending_days=rule.pending_days, store_path=order.store_path, now=now,
                rule_id=rule_id, order_id=ask.order_id, memo=rule.name))
            debt_paid += grants[-1].debt_paid
            live[ask.member_id] += grants[-1].new_lots()
        outcomes.append(Accrued(accruals, debt_paid, ledger.balance_of(member, live[ask.member_id], now)))
    await send(db, _INSERT_ACCRUALS, accrual_rows)
    await ledger.write_grants(db, grants)
    await ledger.save_members(db, [members[a.member_id] for a, o in zip(asks, outcomes) if isinstance(o, Accrued)], now)
    return outcomes
