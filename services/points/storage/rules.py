"""Accrual rules, stored as their contract's fields (a JSON body), and what orders
earned under them (order_accruals: day caps, reversals)."""

from dataclasses import asdict
from datetime import date, datetime

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from huiyuan.database import Transaction, send, violated_unique
from huiyuan.runtime.business_time import local
from services.points.domain.lots import Expiry, ExpiryPolicy, Lot
from services.points.domain.members import MemberPoints
from services.points.domain.rules import LineAccrual, Order, Rule, priority_taken, rule_not_found
from services.points.storage.members import lock_with_lots
from services.points.storage.tables import order_accruals, rules


def _body(rule: Rule) -> dict:
    body = asdict(rule)
    body["expiry"] = [rule.expiry.policy.value, rule.expiry.param]
    for key in ("start_time", "end_time"):
        body[key] = body[key].isoformat() if body[key] else None
    return body


def _rule(body: dict) -> Rule:
    body = dict(body)
    policy, param = body.pop("expiry")
    for key in ("start_time", "end_time"):
        body[key] = datetime.fromisoformat(body[key]) if body[key] else None
    return Rule(**body, expiry=Expiry(ExpiryPolicy(policy), param))


async def insert_rule(tx: Transaction, rule: Rule, now) -> None:
    try:
        await tx.execute(
            insert(rules),
            {
                "rule_id": rule.rule_id,
                "kind": "BASE" if rule.is_base else "MULTIPLIER",
                "priority": rule.priority,
                "org_path": rule.org_path,
                "body": _body(rule),
                "create_time": now,
            },
        )
    except IntegrityError as error:
        if violated_unique(error, "rules", "kind", "priority"):
            raise priority_taken(rule.priority) from None
        raise


async def rule_by_id(tx: Transaction, rule_id: str, lock: bool = False) -> Rule:
    query = select(rules.c.body).where(rules.c.rule_id == rule_id)
    body = (await tx.execute(query.with_for_update() if lock else query)).scalar()
    if body is None:
        raise rule_not_found(rule_id)
    return _rule(body)


async def save_rule(tx: Transaction, rule: Rule) -> None:
    await tx.execute(update(rules).where(rules.c.rule_id == rule.rule_id).values(body=_body(rule)))


# The statements of an accrual, built once.
_RULE_BODIES = select(rules.c.body)
_ACCRUED_ORDERS = select(order_accruals.c.order_id.distinct().label("order_id")).where(
    order_accruals.c.order_id.in_(bindparam("order_ids", expanding=True))
)
_EARNED_TODAY = (
    select(order_accruals.c.rule_id, func.sum(order_accruals.c.points))
    .where(
        order_accruals.c.member_id == bindparam("member_id"),
        order_accruals.c.business_day == bindparam("day"),
        order_accruals.c.rule_id.in_(bindparam("rule_ids", expanding=True)),
    )
    .group_by(order_accruals.c.rule_id)
)
_INSERT_ACCRUALS = insert(order_accruals)


async def all_rules(tx: Transaction) -> list[Rule]:
    return [_rule(row.body) for row in (await tx.execute(_RULE_BODIES)).all()]


async def lock_for_accrual(
    tx: Transaction, member_ids: list[str], order_ids: list[str], now
) -> tuple[dict[str, MemberPoints], dict[str, list[Lot]], set[str], list[Rule]]:
    """A batch's members, locked (members.lock_with_lots), their live lots, which of
    the orders earned before, and the rules: one round trip."""
    members, live, (accrued, rule_rows) = await lock_with_lots(
        tx, member_ids, now, (_ACCRUED_ORDERS, {"order_ids": order_ids}), (_RULE_BODIES, None)
    )
    return members, live, {row.order_id for row in accrued}, [_rule(row.body) for row in rule_rows]


async def earned_today(tx: Transaction, member_id: str, day: date, rule_ids: list[str]) -> dict[str, int]:
    """What the member earned on a business day under each of the rules."""
    rows = await tx.execute(_EARNED_TODAY, {"member_id": member_id, "day": day, "rule_ids": rule_ids})
    return {rule_id: int(points) for rule_id, points in rows}


def accrual_rows(member_id: str, order_id: str, order: Order, accruals: list[LineAccrual]) -> list[dict]:
    """What each line of an order earned, as record_accruals() writes it."""
    day, paid = local(order.paid_time).date(), {line.line_id: line.paid_fen for line in order.lines}
    return [
        {
            "order_id": order_id,
            "line_id": a.line_id,
            "member_id": member_id,
            "rule_id": a.rule_id,
            "points": a.points,
            "paid_fen": paid[a.line_id],
            "business_day": day,
        }
        for a in accruals
    ]


async def record_accruals(tx: Transaction, rows: list[dict]) -> None:
    """The rows of accrual_rows(), a batch's in one statement."""
    await send(tx, _INSERT_ACCRUALS, rows)


async def earned_by_order(tx: Transaction, order_id: str, member_id: str) -> tuple[int, int]:
    """(points earned, fen paid) of an order's lines."""
    earned = (
        await tx.execute(
            select(
                func.coalesce(func.sum(order_accruals.c.points), 0),
                func.coalesce(func.sum(order_accruals.c.paid_fen), 0),
            ).where(order_accruals.c.order_id == order_id, order_accruals.c.member_id == member_id)
        )
    ).one()
    return int(earned[0]), int(earned[1])
