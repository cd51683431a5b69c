"""Campaign configuration rules: what a campaign must say to make sense, and how its
status moves. Pricing itself is pricing.py."""

from enum import StrEnum

from huiyuan.runtime.errors import FailedPrecondition, Violations
from services.campaign.pricing import BP, THRESHOLD, TIMED, Campaign, CouponKind, Kind

DISCOUNT_KINDS = (Kind.TIER_DISCOUNT, Kind.CATEGORY_DISCOUNT, Kind.MEMBER_DAY, Kind.BIRTHDAY)


class Status(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    ENDED = "ENDED"


MOVES = {Status.DRAFT: {Status.ACTIVE, Status.ENDED}, Status.ACTIVE: {Status.PAUSED, Status.ENDED},
         Status.PAUSED: {Status.ACTIVE, Status.ENDED}, Status.ENDED: set()}


STATUS_ZH = {Status.DRAFT: "草稿", Status.ACTIVE: "进行中", Status.PAUSED: "已暂停", Status.ENDED: "已结束"}


def move(current: Status, wanted: Status) -> Status:
    if wanted not in MOVES[current]:
        raise FailedPrecondition("STATUS_TRANSITION_INVALID", f"A campaign cannot go from {current} to {wanted}.",
                                 f"活动不能从“{STATUS_ZH[current]}”改为“{STATUS_ZH[wanted]}”。",
                                 current=current.value, wanted=wanted.value)
    return wanted


def stage(kind: Kind) -> str:
    """Which stage of a quote a kind prices in (exclusive groups live within one)."""
    return "tier" if kind == Kind.TIER_DISCOUNT else "timed" if kind in TIMED else "threshold" if kind in THRESHOLD else "other"


def check_campaign(v: Violations, c: Campaign, p: str = "campaign.") -> None:
    v.check(0 < len(c.name.strip()) <= 64, f"{p}name", "NAME_REQUIRED", "name is required, at most 64 characters")
    if c.kind in DISCOUNT_KINDS:
        v.check(0 < c.rate_bp < BP, f"{p}rate_bp", "RATE_INVALID",
                "rate_bp is what the member pays, 1 to 9999 (8800 = 八八折); over 100% is no discount")
    if c.kind == Kind.CATEGORY_DISCOUNT:
        v.check(bool(c.categories), f"{p}categories", "CATEGORIES_REQUIRED", "a category discount names its categories")
    if c.kind == Kind.MEMBER_DAY:
        v.check(bool(c.weekdays) != bool(c.month_days), f"{p}weekdays", "MEMBER_DAY_INVALID",
                "a member day is some weekdays or some days of the month, one of the two")
    v.check(all(1 <= d <= 7 for d in c.weekdays), f"{p}weekdays", "WEEKDAY_INVALID", "weekdays are 1 (Mon) to 7 (Sun)")
    v.check(all(1 <= d <= 31 for d in c.month_days), f"{p}month_days", "MONTH_DAY_INVALID", "month_days are 1 to 31")
    if c.kind == Kind.LIMITED_PRICE:
        v.check(bool(c.sku_prices_fen) and all(price >= 0 for price in c.sku_prices_fen.values()),
                f"{p}sku_prices_fen", "SKU_PRICES_INVALID", "a limited-time price names SKUs with prices of 0 or more")
    if c.kind in THRESHOLD:
        v.check(bool(c.steps), f"{p}steps", "STEPS_REQUIRED", "a threshold offer needs at least one step")
        thresholds = [s.threshold_fen for s in c.steps]
        v.check(thresholds == sorted(set(thresholds)), f"{p}steps", "STEPS_NOT_ASCENDING",
                "steps must have strictly ascending thresholds")
        for i, s in enumerate(c.steps):
            if c.kind == Kind.THRESHOLD_REDUCTION:
                v.check(0 < s.reduction_fen <= s.threshold_fen, f"{p}steps[{i}].reduction_fen",
                        "THRESHOLD_BELOW_REDUCTION", "a reduction must be above 0 and not above its threshold")
            else:
                v.check(0 < s.rate_bp < BP, f"{p}steps[{i}].rate_bp", "RATE_INVALID", "rate_bp must be 1 to 9999")
    if c.kind == Kind.POINTS_MULTIPLIER:
        v.check(BP < c.rate_bp <= 10 * BP, f"{p}points_multiplier_bp", "MULTIPLIER_INVALID",
                "points_multiplier_bp must be above 10000 (1x) and at most 100000")
    if c.start_time and c.end_time:
        v.check(c.start_time < c.end_time, f"{p}end_time", "SCHEDULE_REVERSED", "end_time must be after start_time")


def check_group(c: Campaign, group_kinds: list[Kind]) -> None:
    """An exclusive group picks one campaign within a stage; a group that spans stages
    would silently let both apply, so it is refused."""
    if any(stage(k) != stage(c.kind) for k in group_kinds):
        raise FailedPrecondition(
            "EXCLUSIVE_GROUP_CONFLICT", f"Exclusive group '{c.exclusive_group}' holds campaigns priced at another stage.",
            f"互斥组 '{c.exclusive_group}' 中已有不同计算阶段的活动。", exclusive_group=c.exclusive_group)


def check_template(v: Violations, t, p: str = "template.") -> None:
    """t: a coupons.Template."""
    v.check(0 < len(t.name.strip()) <= 64, f"{p}name", "NAME_REQUIRED", "name is required, at most 64 characters")
    if t.kind == CouponKind.FIXED:
        v.check(t.amount_fen > 0, f"{p}amount_fen", "AMOUNT_INVALID", "a fixed coupon takes amount_fen > 0 off")
        v.check(t.threshold_fen == 0 or t.threshold_fen >= t.amount_fen, f"{p}threshold_fen", "THRESHOLD_BELOW_REDUCTION",
                "a threshold below the amount off would pay the member to buy")
    else:
        v.check(0 < t.rate_bp < BP, f"{p}rate_bp", "RATE_INVALID", "rate_bp is what the member pays, 1 to 9999")
        v.check(t.cap_fen >= 0, f"{p}cap_fen", "CAP_INVALID", "cap_fen must not be negative")
    v.check(t.threshold_fen >= 0, f"{p}threshold_fen", "THRESHOLD_INVALID", "threshold_fen must not be negative")
    v.check((t.valid_days > 0) != (t.valid_until is not None), f"{p}valid_days", "VALIDITY_INVALID",
            "give valid_days (from issue) or valid_until_time (fixed), one of the two")
    v.check(0 <= t.valid_days <= 3660, f"{p}valid_days", "VALIDITY_INVALID", "valid_days is at most 3660")
    if t.valid_from and t.valid_until:
        v.check(t.valid_from < t.valid_until, f"{p}valid_until_time", "VALIDITY_REVERSED",
                "valid_until_time must be after valid_from_time")
