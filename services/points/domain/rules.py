"""Accrual rules and what an order earns under them.

A rule applies to an order line when the store lies under the rule's scope,
the member's tier, the line's category, the time window (dates, weekdays, days of the
month, in business time) and the order's minimum spend all match. Two kinds of rule:
- a base rule (points_per_yuan_bp > 0) says how many points a yuan earns;
- a multiplier rule (multiplier_bp > 0, no base) multiplies what the base earned
  (member day x2, a holiday x3).
For each line the matching base rule with the highest priority applies, then the
matching multiplier with the highest priority: one of each, never a pile-up, and never
"the last edited rule wins" (two rules of one kind cannot share a priority). A campaign
that multiplies points (campaign.v1 POINTS_MULTIPLIER, 双倍积分周) stands beside the
multiplier rules: a line takes the greater of the two, never both. The member's tier's
own multiplier (member.v1.Tier: 金卡 1.5倍积分) scales what the rules give, as a rule for
that tier (tier_ids) can: a chain uses one way or the other. Points are rounded down
per line. A rule scoped to a terminal (hq/east/sh-001/pos-1) applies to the orders paid
at that till; a store's, a region's or HQ's to every till under it. A rule's caps (per
order, per member per day) scale its lines down, largest remainder first, so a capped
order never earns a point too many.
"""

from dataclasses import dataclass, field
from datetime import datetime

from huiyuan.runtime.business_time import local
from huiyuan.runtime.errors import AlreadyExists, NotFound, Violations
from huiyuan.runtime.money import split_proportionally
from huiyuan.runtime.requests import is_under, on_line
from services.points.domain.lots import Expiry, check_expiry

BP = 10_000  # basis points: 10000 = 1x


@dataclass
class Rule:
    rule_id: str
    name: str
    org_path: str
    priority: int
    points_per_yuan_bp: int = 0  # 10000 = 1 point per yuan
    multiplier_bp: int = 0  # 20000 = double
    tier_ids: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    weekdays: list[int] = field(default_factory=list)  # 1 = Monday .. 7 = Sunday
    month_days: list[int] = field(default_factory=list)
    start_time: datetime | None = None
    end_time: datetime | None = None
    min_spend_fen: int = 0
    cap_per_order: int = 0  # 0: no cap
    cap_per_day: int = 0
    expiry: Expiry = field(default_factory=Expiry)
    pending_days: int = 0
    ended_by: str = ""  # who ended it early (EndRule); its terms never change

    @property
    def is_base(self) -> bool:
        return self.points_per_yuan_bp > 0

    def in_window(self, at: datetime) -> bool:
        if (self.start_time and at < self.start_time) or (self.end_time and at >= self.end_time):
            return False
        day = local(at)
        return (not self.weekdays or day.isoweekday() in self.weekdays) and (
            not self.month_days or day.day in self.month_days
        )

    def matches(self, order: "Order", line: "Line") -> bool:
        return (
            is_under(order.sold_at, self.org_path)
            and (not self.tier_ids or order.tier_id in self.tier_ids)
            and (not self.categories or line.category in self.categories)
            and order.paid_fen >= self.min_spend_fen
            and self.in_window(order.paid_time)
        )


def check_rule(v: Violations, rule: Rule, prefix: str = "rule.") -> None:
    v.check(
        0 < len(rule.name.strip()) <= 64, f"{prefix}name", "NAME_REQUIRED", "name is required, at most 64 characters"
    )
    v.check(0 <= rule.priority <= 1_000_000, f"{prefix}priority", "PRIORITY_INVALID", "priority must be 0 to 1000000")
    v.check(
        (rule.points_per_yuan_bp > 0) != (rule.multiplier_bp > 0),
        f"{prefix}points_per_yuan_bp",
        "RULE_KIND_INVALID",
        "a rule gives either points_per_yuan_bp (a base rule) or multiplier_bp (a multiplier), exactly one",
    )
    v.check(
        0 <= rule.points_per_yuan_bp <= 100 * BP,
        f"{prefix}points_per_yuan_bp",
        "RATE_INVALID",
        "points_per_yuan_bp must be 0 to 1000000 (100 points a yuan)",
    )
    v.check(
        rule.multiplier_bp == 0 or BP < rule.multiplier_bp <= 10 * BP,
        f"{prefix}multiplier_bp",
        "MULTIPLIER_INVALID",
        "multiplier_bp must be above 10000 (1x) and at most 100000 (10x)",
    )
    v.check(
        all(1 <= d <= 7 for d in rule.weekdays),
        f"{prefix}weekdays",
        "WEEKDAY_INVALID",
        "weekdays are 1 (Mon) to 7 (Sun)",
    )
    v.check(
        all(1 <= d <= 31 for d in rule.month_days), f"{prefix}month_days", "MONTH_DAY_INVALID", "month_days are 1 to 31"
    )
    v.check(
        not (rule.weekdays and rule.month_days),
        f"{prefix}month_days",
        "WINDOW_AMBIGUOUS",
        "give weekdays or month_days, not both (a member day is one or the other)",
    )
    if rule.start_time and rule.end_time:
        v.check(
            rule.start_time < rule.end_time, f"{prefix}end_time", "WINDOW_REVERSED", "end_time must be after start_time"
        )
    for name in ("min_spend_fen", "cap_per_order", "cap_per_day", "pending_days"):
        v.check(getattr(rule, name) >= 0, f"{prefix}{name}", "NEGATIVE", f"{name} must not be negative")
    v.check(rule.pending_days <= 90, f"{prefix}pending_days", "PENDING_DAYS_INVALID", "pending_days is at most 90")
    if rule.multiplier_bp:  # it scales what the base rule gave, granted in the base rule's lot, under its caps
        for name in ("cap_per_order", "cap_per_day", "pending_days"):
            v.check(
                not getattr(rule, name),
                f"{prefix}{name}",
                "NOT_FOR_MULTIPLIER",
                f"{name} is the base rule's: a multiplier's points are granted under the base rule's caps, "
                "expiry and pending days",
            )
    if rule.cap_per_order and rule.cap_per_day:
        v.check(
            rule.cap_per_order <= rule.cap_per_day,
            f"{prefix}cap_per_order",
            "CAPS_INCONSISTENT",
            "cap_per_order cannot exceed cap_per_day",
        )
    check_expiry(v, rule.expiry, prefix)


@dataclass(frozen=True)
class Line:
    line_id: str
    category: str
    paid_fen: int


@dataclass(frozen=True)
class CampaignMultiplier:
    """A campaign's points multiplier for the order (none: 1x)."""

    multiplier_bp: int = BP
    name: str = ""


@dataclass
class Order:
    store_path: str
    tier_id: str
    paid_time: datetime
    lines: list[Line]
    tier_multiplier_bp: int = BP  # the member's tier's own multiplier
    campaign: CampaignMultiplier = CampaignMultiplier()
    terminal_path: str = ""  # the till it was paid at, under store_path ("" : the store)

    @property
    def paid_fen(self) -> int:
        return sum(line.paid_fen for line in self.lines)

    @property
    def sold_at(self) -> str:
        """The deepest node the order is known to be paid at: its terminal, or its store."""
        return self.terminal_path or self.store_path


@dataclass
class LineAccrual:
    line_id: str
    points: int
    rule_id: str  # the base rule ("" when none applied)
    multiplier_rule_id: str
    explanation: str


def _highest(rules: list[Rule]) -> Rule | None:
    return max(rules, key=lambda r: (r.priority, r.rule_id), default=None)


def accrue(rules: list[Rule], order: Order, earned_today: dict[str, int] | None = None) -> list[LineAccrual]:
    """Points per line for a paid order, with the rules that gave them.
    earned_today: points the member already earned today under each rule (day caps)."""
    earned_today = earned_today or {}
    result: list[LineAccrual] = []
    for line in order.lines:
        matching = [r for r in rules if r.matches(order, line)]
        base = _highest([r for r in matching if r.is_base])
        if base is None or line.paid_fen <= 0:
            result.append(LineAccrual(line.line_id, 0, "", "", "no rule applies"))
            continue
        multiplier = _highest([r for r in matching if not r.is_base])
        by_rule = multiplier.multiplier_bp if multiplier else BP
        by_campaign = order.campaign.multiplier_bp > by_rule  # the greater one applies, never both
        times = order.campaign.multiplier_bp if by_campaign else by_rule
        factor = base.points_per_yuan_bp * times * order.tier_multiplier_bp
        points = line.paid_fen * factor // (100 * BP * BP * BP)  # fen -> yuan, and three basis points; rounded down
        why = f"{base.name}: {line.paid_fen / 100:.2f} yuan x {base.points_per_yuan_bp / BP:g}"
        if by_campaign:
            why += f" x {times / BP:g} ({order.campaign.name or '积分活动'})"
        elif multiplier:
            why += f" x {multiplier.multiplier_bp / BP:g} ({multiplier.name})"
        if order.tier_multiplier_bp != BP:
            why += f" x {order.tier_multiplier_bp / BP:g} (会员等级)"
        result.append(
            LineAccrual(
                line.line_id, points, base.rule_id, multiplier.rule_id if multiplier and not by_campaign else "", why
            )
        )
    by_id = {r.rule_id: r for r in rules}
    for rule_id in {a.rule_id for a in result if a.rule_id}:
        rule = by_id[rule_id]
        room = [
            c
            for c in (rule.cap_per_order, rule.cap_per_day and max(0, rule.cap_per_day - earned_today.get(rule_id, 0)))
            if c
        ]
        if room:
            _cap([a for a in result if a.rule_id == rule_id], min(room), rule.name)
    return result


def _cap(accruals: list[LineAccrual], cap: int, rule_name: str) -> None:
    total = sum(a.points for a in accruals)
    if total <= cap:
        return
    for accrual, capped in zip(accruals, split_proportionally(cap, [a.points for a in accruals])):
        accrual.points = capped
        accrual.explanation += f"; capped at {cap} by {rule_name}"


def by_priority(found: list[Rule], org_path: str = "") -> list[Rule]:
    """Rules by priority, highest first; with org_path, those that apply to stores under
    it (its own, and those of the nodes above it)."""
    if org_path:
        found = [r for r in found if on_line(r.org_path, org_path)]
    return sorted(found, key=lambda r: (-r.priority, r.rule_id))


def already_accrued(order_id: str) -> AlreadyExists:
    """An order earns once: a second accrual of it is refused."""
    return AlreadyExists(
        "ORDER_ALREADY_ACCRUED", "This order has already earned its points.", "该订单已累计积分。", order_id=order_id
    )


def rule_not_found(rule_id: str) -> NotFound:
    return NotFound("RULE_NOT_FOUND", "No such rule.", "积分规则不存在。", rule_id=rule_id)


def priority_taken(priority: int) -> AlreadyExists:
    """Two rules of one kind cannot share a priority: which one applies is never "the
    last edited"."""
    return AlreadyExists(
        "RULE_PRIORITY_TAKEN",
        f"Another rule of this kind has priority {priority}.",
        f"已有同类规则使用优先级 {priority}。",
        priority=priority,
    )
