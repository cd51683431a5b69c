"""The accrual rules: made, read, listed and ended early. A rule's terms never change
(huiyuan/runtime/validity.py); ending one shortens it."""

from dataclasses import replace
from datetime import datetime

from huiyuan.database import Transaction
from huiyuan.runtime.requests import check_in_scope
from huiyuan.runtime.validity import Ending, has_ended, shortened_end
from services.points.domain.rules import Rule, by_priority
from services.points.storage import rules as stored


async def create_rule(tx: Transaction, rule: Rule, now) -> Rule:
    await stored.insert_rule(tx, rule, now)
    return rule


async def rule_by_id(tx: Transaction, rule_id: str) -> Rule:
    return await stored.rule_by_id(tx, rule_id)


async def rules_under(tx: Transaction, org_path: str = "") -> list[Rule]:
    """Rules by priority, highest first; with org_path, those that apply to stores under
    it (its own, and those of the nodes above it)."""
    return by_priority(await stored.all_rules(tx), org_path)


async def list_rules(tx: Transaction, org_path: str, show_ended: bool, now) -> list[Rule]:
    """rules_under(), without those that ended unless asked."""
    return [r for r in await rules_under(tx, org_path) if show_ended or not has_ended(r.end_time, now)]


async def end_rule(tx: Transaction, rule_id: str, ending: Ending, now: datetime) -> Rule:
    """Shorten a rule so that orders paid from its new end earn nothing under it."""
    rule = await stored.rule_by_id(tx, rule_id, lock=True)  # two ends of one rule: one after the other
    check_in_scope(rule.org_path, ending.actor_path, "rule", "规则")
    end = shortened_end(rule.start_time, rule.end_time, ending.at(now), now, kind="rule", kind_zh="规则")
    ended = replace(rule, end_time=end, ended_by=ending.operator)
    await stored.save_rule(tx, ended)
    return ended
