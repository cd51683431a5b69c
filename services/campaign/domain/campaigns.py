"""Campaigns: their kinds, what each kind must say to make sense, and how a campaign's
status moves. How they price is pricing.py."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from huiyuan.runtime.errors import FailedPrecondition, NotFound, Violations, invalid
from huiyuan.runtime.requests import is_under
from services.campaign.domain.rates import BP


class Kind(StrEnum):
    TIER_DISCOUNT = "TIER_DISCOUNT"
    CATEGORY_DISCOUNT = "CATEGORY_DISCOUNT"
    MEMBER_DAY = "MEMBER_DAY"
    LIMITED_PRICE = "LIMITED_PRICE"
    THRESHOLD_REDUCTION = "THRESHOLD_REDUCTION"
    THRESHOLD_DISCOUNT = "THRESHOLD_DISCOUNT"
    BIRTHDAY = "BIRTHDAY"
    NEW_MEMBER_GIFT = "NEW_MEMBER_GIFT"
    POINTS_MULTIPLIER = "POINTS_MULTIPLIER"
    COUPONS = "COUPONS"  # the budget behind coupon templates: prices nothing itself


TIMED = (Kind.CATEGORY_DISCOUNT, Kind.MEMBER_DAY, Kind.LIMITED_PRICE, Kind.BIRTHDAY)
THRESHOLD = (Kind.THRESHOLD_REDUCTION, Kind.THRESHOLD_DISCOUNT)


@dataclass(frozen=True)
class Step:
    threshold_fen: int
    reduction_fen: int = 0
    rate_bp: int = 0


@dataclass
class Campaign:
    campaign_id: str
    name: str
    kind: Kind
    org_path: str = "hq"
    start_time: datetime | None = None
    end_time: datetime | None = None
    tier_ids: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    new_member_within: timedelta | None = None
    rate_bp: int = 0
    categories: list[str] = field(default_factory=list)
    sku_prices_fen: dict[str, int] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    weekdays: list[int] = field(default_factory=list)
    month_days: list[int] = field(default_factory=list)
    exclusive_group: str = ""
    on_original_price: bool = False
    # Limits kept with the campaign and enforced when a discount is reserved (not by a quote).
    budget_fen: int = 0
    per_member_limit: int = 0
    per_store_daily_limit: int = 0
    coupon_template_id: str = ""


DISCOUNT_KINDS = (Kind.TIER_DISCOUNT, Kind.CATEGORY_DISCOUNT, Kind.MEMBER_DAY, Kind.BIRTHDAY)


class Status(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    ENDED = "ENDED"


MOVES = {
    Status.DRAFT: {Status.ACTIVE, Status.ENDED},
    Status.ACTIVE: {Status.PAUSED, Status.ENDED},
    Status.PAUSED: {Status.ACTIVE, Status.ENDED},
    Status.ENDED: set(),
}


STATUS_ZH = {Status.DRAFT: "草稿", Status.ACTIVE: "进行中", Status.PAUSED: "已暂停", Status.ENDED: "已结束"}


def move(current: Status, wanted: Status) -> Status:
    if wanted not in MOVES[current]:
        raise FailedPrecondition(
            "STATUS_TRANSITION_INVALID",
            f"A campaign cannot go from {current} to {wanted}.",
            f"活动不能从“{STATUS_ZH[current]}”改为“{STATUS_ZH[wanted]}”。",
            current=current.value,
            wanted=wanted.value,
        )
    return wanted


def stage(kind: Kind) -> str:
    """Which stage of a quote a kind prices in (exclusive groups live within one)."""
    return (
        "tier"
        if kind == Kind.TIER_DISCOUNT
        else "timed"
        if kind in TIMED
        else "threshold"
        if kind in THRESHOLD
        else "other"
    )


# The fields of a Campaign each kind reads, beside name, kind, org_path and its schedule
# (start_time, end_time), which every kind reads. A field a kind does not read is
# refused (FIELD_NOT_FOR_KIND), not kept unused: nothing is accepted and then ignored.
_TARGETS = {"tier_ids", "tags", "new_member_within", "weekdays", "month_days"}  # pricing.targets
_LIMITS = {"budget_fen", "per_member_limit", "per_store_daily_limit"}  # taken when its discount is reserved
_DISCOUNT = _TARGETS | _LIMITS | {"exclusive_group", "on_original_price"}
READS = {
    Kind.TIER_DISCOUNT: _DISCOUNT | {"rate_bp", "categories"},
    Kind.CATEGORY_DISCOUNT: _DISCOUNT | {"rate_bp", "categories"},
    Kind.MEMBER_DAY: _DISCOUNT | {"rate_bp", "categories"},
    Kind.BIRTHDAY: _DISCOUNT | {"rate_bp", "categories"},
    Kind.LIMITED_PRICE: _DISCOUNT | {"sku_prices_fen"},
    Kind.THRESHOLD_REDUCTION: _DISCOUNT | {"steps", "categories"},
    Kind.THRESHOLD_DISCOUNT: _DISCOUNT | {"steps", "categories"},
    # A multiplier gives no discount: nothing to budget or limit. The greatest one applies
    # (pricing.quote), so an exclusive group of multipliers holds by itself.
    Kind.POINTS_MULTIPLIER: _TARGETS | {"points_multiplier_bp", "exclusive_group"},
    # Given at registration (use_cases/new_member_gifts.py): the member has no tier
    # climbed yet and is new by definition; the coupons draw on the budget of the
    # campaign their template names; every gift that targets a new member is given.
    Kind.NEW_MEMBER_GIFT: {"tags", "weekdays", "month_days", "coupon_template_id"},
    # The budget and limits the coupons of its templates draw on (budgets.booked).
    Kind.COUPONS: _LIMITS,
}
_WHY_NOT = {
    Kind.POINTS_MULTIPLIER: "a points multiplier gives no discount and applies to the whole order",
    Kind.NEW_MEMBER_GIFT: "a new-member gift is a coupon given at registration, to every new member it targets",
    Kind.COUPONS: "it is the budget its templates' coupons draw on, and prices nothing itself",
}


def check_kind_fields(v: Violations, kind: Kind, given: set[str], p: str = "campaign.") -> None:
    """given: the names of the fields the request set (other than the ones every kind reads)."""
    for name in sorted(given - READS[kind] - {"name", "kind", "org_path", "start_time", "end_time"}):
        v.add(
            f"{p}{name}",
            "FIELD_NOT_FOR_KIND",
            f"a {kind.value} campaign does not use {name}" + (f": {_WHY_NOT[kind]}" if kind in _WHY_NOT else ""),
        )


def check_campaign(v: Violations, c: Campaign, p: str = "campaign.") -> None:
    v.check(0 < len(c.name.strip()) <= 64, f"{p}name", "NAME_REQUIRED", "name is required, at most 64 characters")
    if c.kind in DISCOUNT_KINDS:
        v.check(
            0 < c.rate_bp < BP,
            f"{p}rate_bp",
            "RATE_INVALID",
            "rate_bp is what the member pays, 1 to 9999 (8800 = 八八折); over 100% is no discount",
        )
    if c.kind == Kind.CATEGORY_DISCOUNT:
        v.check(bool(c.categories), f"{p}categories", "CATEGORIES_REQUIRED", "a category discount names its categories")
    if c.kind == Kind.MEMBER_DAY:
        v.check(
            bool(c.weekdays) != bool(c.month_days),
            f"{p}weekdays",
            "MEMBER_DAY_INVALID",
            "a member day is some weekdays or some days of the month, one of the two",
        )
    v.check(all(1 <= d <= 7 for d in c.weekdays), f"{p}weekdays", "WEEKDAY_INVALID", "weekdays are 1 (Mon) to 7 (Sun)")
    v.check(all(1 <= d <= 31 for d in c.month_days), f"{p}month_days", "MONTH_DAY_INVALID", "month_days are 1 to 31")
    if c.kind == Kind.LIMITED_PRICE:
        v.check(
            bool(c.sku_prices_fen) and all(price >= 0 for price in c.sku_prices_fen.values()),
            f"{p}sku_prices_fen",
            "SKU_PRICES_INVALID",
            "a limited-time price names SKUs with prices of 0 or more",
        )
    if c.kind in THRESHOLD:
        v.check(bool(c.steps), f"{p}steps", "STEPS_REQUIRED", "a threshold offer needs at least one step")
        thresholds = [s.threshold_fen for s in c.steps]
        v.check(
            thresholds == sorted(set(thresholds)),
            f"{p}steps",
            "STEPS_NOT_ASCENDING",
            "steps must have strictly ascending thresholds",
        )
        for i, s in enumerate(c.steps):
            if c.kind == Kind.THRESHOLD_REDUCTION:
                v.check(
                    0 < s.reduction_fen <= s.threshold_fen,
                    f"{p}steps[{i}].reduction_fen",
                    "THRESHOLD_BELOW_REDUCTION",
                    "a reduction must be above 0 and not above its threshold",
                )
                v.check(
                    not s.rate_bp,
                    f"{p}steps[{i}].rate_bp",
                    "FIELD_NOT_FOR_KIND",
                    "a threshold reduction (满减) takes reduction_fen off, not a rate",
                )
            else:
                v.check(0 < s.rate_bp < BP, f"{p}steps[{i}].rate_bp", "RATE_INVALID", "rate_bp must be 1 to 9999")
                v.check(
                    not s.reduction_fen,
                    f"{p}steps[{i}].reduction_fen",
                    "FIELD_NOT_FOR_KIND",
                    "a threshold discount (满折) takes a rate, not reduction_fen",
                )
    if c.kind == Kind.POINTS_MULTIPLIER:
        v.check(
            BP < c.rate_bp <= 10 * BP,
            f"{p}points_multiplier_bp",
            "MULTIPLIER_INVALID",
            "points_multiplier_bp must be above 10000 (1x) and at most 100000",
        )
    if c.kind == Kind.NEW_MEMBER_GIFT:
        v.check(
            bool(c.coupon_template_id),
            f"{p}coupon_template_id",
            "COUPON_TEMPLATE_REQUIRED",
            "a new-member gift names the coupon template it gives",
        )
    if c.start_time and c.end_time:
        v.check(c.start_time < c.end_time, f"{p}end_time", "SCHEDULE_REVERSED", "end_time must be after start_time")


def check_group(c: Campaign, group_kinds: list[Kind]) -> None:
    """An exclusive group picks one campaign within a stage; a group that spans stages
    would silently let both apply, so it is refused."""
    if any(stage(k) != stage(c.kind) for k in group_kinds):
        raise FailedPrecondition(
            "EXCLUSIVE_GROUP_CONFLICT",
            f"Exclusive group '{c.exclusive_group}' holds campaigns priced at another stage.",
            f"互斥组 '{c.exclusive_group}' 中已有不同计算阶段的活动。",
            exclusive_group=c.exclusive_group,
        )


def check_gift_template(c: Campaign, template_path: str) -> None:
    """A new-member gift gives coupons usable wherever it is given: its template's scope
    covers the campaign's. template_path: the template's org_path."""
    if not is_under(c.org_path, template_path):
        raise invalid(
            "campaign.coupon_template_id",
            "TEMPLATE_OUT_OF_SCOPE",
            f"the template is usable under {template_path} only, not everywhere under {c.org_path} "
            "where the gift is given",
        )


def not_found(campaign_id: str) -> NotFound:
    return NotFound("CAMPAIGN_NOT_FOUND", "No such campaign.", "活动不存在。", campaign_id=campaign_id)


def ended(campaign_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "CAMPAIGN_ENDED",
        "The campaign has ended: its schedule is final.",
        "活动已结束，不能再调整时间。",
        campaign_id=campaign_id,
    )
