"""Count cards (计次卡): the rules, plain Python.

A plan (游泳10次卡, ¥800) is sold as a card: uses_total uses for price fen, usable in
the stores under the plan's node until the card expires. The price is prepaid value
the chain owes the member until the uses are taken. Each use earns its share, counted
cumulatively: after k uses the card has earned price * k // uses_total, so the shares
of all the uses add up to the price exactly (the rounding fen fall to the later uses),
however the uses are punched, one or several at a time. An undone use gives back what
the card's count then says (earned before minus earned after), and a refund returns
what is left: price - earned. The value left is therefore always
price - earned(uses taken), to the fen.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from huiyuan.runtime.business_time import day_start, local
from huiyuan.runtime.errors import FailedPrecondition, NotFound, Violations
from huiyuan.runtime.requests import check_in_scope, check_scope, is_under, on_line
from huiyuan.runtime.validity import has_ended
from services.wallet.domain.top_ups import MAX_TOP_UP_FEN, Tender

MAX_USES = 1000
MAX_VALID_DAYS = 3660
MAX_SKUS = 20
MAX_SKU = 64
MAX_NAME = 64
# A card is sold at a till, so its money is in the till's takings at closing (the
# daily summary): a company's transfer or an online payment is not a till's.
SOLD_WITH = (Tender.CASH, Tender.BANK_CARD, Tender.WECHAT_PAY, Tender.ALIPAY)


class CardState(StrEnum):
    ACTIVE = "ACTIVE"
    USED_UP = "USED_UP"
    EXPIRED = "EXPIRED"
    REFUNDED = "REFUNDED"


class EntryKind(StrEnum):
    """What happened to a card. The other side of each entry: the selling store's till
    for a sale and a refund, the serving store's revenue for a use and its undoing."""

    SALE = "SALE"
    USE = "USE"
    USE_UNDONE = "USE_UNDONE"
    REFUND = "REFUND"


@dataclass
class Plan:
    plan_id: str
    name: str
    org_path: str
    uses: int
    price: int
    valid_days: int = 0  # 0: the cards never expire
    skus: tuple[str, ...] = ()  # empty: a use may be for any service
    start_time: datetime | None = None
    end_time: datetime | None = None
    ended_by: str = ""

    def on_sale(self, at: datetime) -> bool:
        return (self.start_time is None or self.start_time <= at) and not has_ended(self.end_time, at)


def plans_on_sale_at(plans: list[Plan], store_path: str, at: datetime) -> list[Plan]:
    """At a store, the plans on sale there now."""
    return [p for p in plans if p.on_sale(at) and is_under(store_path, p.org_path)]


def plans_on_line_of(plans: list[Plan], org_path: str, at: datetime, show_ended: bool) -> list[Plan]:
    """A back office's view: its line's plans (every plan without org_path), ended ones
    only with show_ended."""
    return [
        p
        for p in plans
        if (not org_path or on_line(p.org_path, org_path)) and (show_ended or not has_ended(p.end_time, at))
    ]


def check_may_manage(org_path: str, actor_org_path: str) -> None:
    """A back office manages the plans of its own node and the nodes under it."""
    check_in_scope(org_path, actor_org_path, "plan", "次卡方案")


def plan_not_found(plan_id: str) -> NotFound:
    return NotFound("COUNT_CARD_PLAN_NOT_FOUND", "No such count card plan.", "次卡方案不存在。", plan_id=plan_id)


def check_plan(v: Violations, plan: Plan, prefix: str = "plan.") -> None:
    v.check(
        0 < len(plan.name.strip()) <= MAX_NAME,
        f"{prefix}name",
        "NAME_REQUIRED",
        f"name is required, at most {MAX_NAME} characters",
    )
    check_scope(v, plan.org_path, f"{prefix}org_path")
    v.check(0 < plan.uses <= MAX_USES, f"{prefix}uses", "USES_INVALID", f"uses must be 1 to {MAX_USES}")
    v.check(
        0 < plan.price <= MAX_TOP_UP_FEN,
        f"{prefix}price_fen",
        "PRICE_INVALID",
        f"price_fen must be 1 to {MAX_TOP_UP_FEN}",
    )
    v.check(
        0 <= plan.valid_days <= MAX_VALID_DAYS,
        f"{prefix}valid_days",
        "VALID_DAYS_INVALID",
        f"valid_days must be 0 (never expires) to {MAX_VALID_DAYS}",
    )
    v.check(len(plan.skus) <= MAX_SKUS, f"{prefix}skus", "SKUS_INVALID", f"at most {MAX_SKUS} skus")
    v.check(
        all(0 < len(s) <= MAX_SKU and s == s.strip() for s in plan.skus),
        f"{prefix}skus",
        "SKUS_INVALID",
        f"each sku is 1 to {MAX_SKU} characters, without spaces around it",
    )
    v.check(len(set(plan.skus)) == len(plan.skus), f"{prefix}skus", "SKUS_REPEATED", "name each sku at most once")
    if plan.start_time and plan.end_time:
        v.check(
            plan.start_time < plan.end_time, f"{prefix}end_time", "DATES_REVERSED", "end_time must be after start_time"
        )


def expire_time(sold: datetime, valid_days: int) -> datetime | None:
    """The first moment a card sold at `sold` is no longer usable: the end of the
    valid_days-th business day after the day of sale (None: never)."""
    if not valid_days:
        return None
    sale_day: date = local(sold).date()
    return day_start(sale_day + timedelta(days=valid_days + 1))


def earned(price: int, uses_total: int, used: int) -> int:
    """What the first `used` uses of a card have earned, in fen."""
    assert 0 <= used <= uses_total
    return price * used // uses_total


@dataclass
class Card:
    card_id: str
    member_id: str
    plan_id: str
    name: str
    org_path: str
    skus: tuple[str, ...]
    uses_total: int
    uses_left: int
    price: int
    sold_store_path: str
    tender: Tender
    tender_reference: str
    expire_time: datetime | None
    create_time: datetime
    refund_time: datetime | None = None

    @property
    def used(self) -> int:
        return self.uses_total - self.uses_left

    @property
    def value_left(self) -> int:
        if self.refund_time is not None:
            return 0
        return self.price - earned(self.price, self.uses_total, self.used)

    def state(self, at: datetime) -> CardState:
        if self.refund_time is not None:
            return CardState.REFUNDED
        if not self.uses_left:
            return CardState.USED_UP
        if has_ended(self.expire_time, at):
            return CardState.EXPIRED
        return CardState.ACTIVE

    def usable_at(self, store_path: str, at: datetime) -> bool:
        return self.state(at) == CardState.ACTIVE and is_under(store_path, self.org_path)


def card_not_found(card_id: str) -> NotFound:
    return NotFound("COUNT_CARD_NOT_FOUND", "No such count card.", "次卡不存在。", card_id=card_id)


@dataclass
class Entry:
    """What happened to a card, once: its history is never changed (an undo is an entry
    of its own, naming the use it gives back)."""

    entry_id: str
    card_id: str
    member_id: str
    kind: EntryKind
    uses_delta: int
    value_delta: int
    uses_left_after: int
    value_left_after: int
    store_path: str
    sold_store_path: str
    sku: str
    operator_id: str
    memo: str
    undoes_entry_id: str
    post_time: datetime
    undone_by_entry_id: str = ""  # of a use: the undo that gave it back


def entry(
    card: Card,
    kind: EntryKind,
    *,
    entry_id: str,
    uses_delta: int,
    value_delta: int,
    store_path: str,
    operator_id: str,
    now: datetime,
    sku: str = "",
    memo: str = "",
    undoes: str = "",
) -> Entry:
    """The entry that says why the card now has what it has."""
    return Entry(
        entry_id,
        card.card_id,
        card.member_id,
        kind,
        uses_delta,
        value_delta,
        card.uses_left,
        card.value_left,
        store_path,
        card.sold_store_path,
        sku,
        operator_id,
        memo[:200],
        undoes,
        now,
    )


def use_not_found(use_id: str) -> NotFound:
    return NotFound("COUNT_CARD_USE_NOT_FOUND", "No such use of a count card.", "次卡使用记录不存在。", use_id=use_id)


def already_undone(use_id: str) -> FailedPrecondition:
    return FailedPrecondition("USE_ALREADY_UNDONE", "This use was already undone.", "该次使用已撤销。", use_id=use_id)


def sell(
    plan: Plan, *, card_id: str, member_id: str, store_path: str, tender: Tender, tender_reference: str, now: datetime
) -> Card:
    if not plan.on_sale(now):
        raise FailedPrecondition(
            "PLAN_NOT_ON_SALE", f"{plan.name} is not on sale now.", f"{plan.name}当前不在售。", plan_id=plan.plan_id
        )
    if not is_under(store_path, plan.org_path):
        raise FailedPrecondition(
            "PLAN_NOT_SOLD_HERE",
            f"{plan.name} is not sold at this store.",
            f"本店不销售{plan.name}。",
            plan_id=plan.plan_id,
        )
    return Card(
        card_id,
        member_id,
        plan.plan_id,
        plan.name,
        plan.org_path,
        plan.skus,
        plan.uses,
        plan.uses,
        plan.price,
        store_path,
        tender,
        tender_reference,
        expire_time(now, plan.valid_days),
        now,
    )


def _refunded(card: Card) -> FailedPrecondition:
    return FailedPrecondition(
        "COUNT_CARD_REFUNDED", "This count card was refunded.", "该次卡已退卡。", card_id=card.card_id
    )


def use(card: Card, *, uses: int, sku: str, store_path: str, now: datetime) -> int:
    """Take uses from the card; returns the value they earn, in fen."""
    if card.refund_time is not None:
        raise _refunded(card)
    if card.expire_time is not None and has_ended(card.expire_time, now):
        raise FailedPrecondition(
            "COUNT_CARD_EXPIRED",
            f"{card.name} expired on {local(card.expire_time):%Y-%m-%d}.",
            f"{card.name}已于 {local(card.expire_time):%Y-%m-%d} 过期。",
            card_id=card.card_id,
        )
    if not is_under(store_path, card.org_path):
        raise FailedPrecondition(
            "COUNT_CARD_NOT_USABLE_HERE",
            f"{card.name} is usable only under {card.org_path}.",
            f"{card.name}仅限 {card.org_path} 下的门店使用。",
            card_id=card.card_id,
        )
    if card.skus and sku not in card.skus:
        raise FailedPrecondition(
            "SKU_NOT_COVERED",
            f"{card.name} covers {', '.join(card.skus)}, not {sku or 'an unnamed service'}.",
            f"{card.name}仅限 {'、'.join(card.skus)} 使用。",
            card_id=card.card_id,
            skus=",".join(card.skus),
        )
    if uses > card.uses_left:
        raise FailedPrecondition(
            "COUNT_CARD_USES_SHORT",
            f"{card.name} has {card.uses_left} uses left, {uses} asked.",
            f"{card.name}剩余 {card.uses_left} 次，不足 {uses} 次。",
            card_id=card.card_id,
            uses_left=card.uses_left,
        )
    before = earned(card.price, card.uses_total, card.used)
    card.uses_left -= uses
    return earned(card.price, card.uses_total, card.used) - before


def undo_use(card: Card, uses: int) -> int:
    """Give uses back to the card; returns the value they give back, in fen. An expired
    card takes them too: the mistake is corrected, and what is left can be refunded."""
    if card.refund_time is not None:
        raise _refunded(card)
    assert uses <= card.used, "an undo gives back more than was used"
    before = earned(card.price, card.uses_total, card.used)
    card.uses_left += uses
    return before - earned(card.price, card.uses_total, card.used)


def refund(card: Card, now: datetime) -> int:
    """End the card; returns the value not yet used, which goes back to the tender. An
    expired card is refunded too: the chain keeps no prepaid money it did not earn."""
    if card.refund_time is not None:
        raise _refunded(card)
    left = card.value_left
    if not left:
        raise FailedPrecondition(
            "NOTHING_TO_REFUND",
            f"Every use of {card.name} was taken: nothing is left to refund.",
            f"{card.name}已用完，无可退金额。",
            card_id=card.card_id,
        )
    card.uses_left, card.refund_time = 0, now
    return left
