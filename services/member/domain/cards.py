"""Card types and cards: the states a card passes through, who may pay with it, and its
number. Every change of a card's state is kept as a card event (who, where, when, why)."""

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from huiyuan.runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    Violations,
)
from huiyuan.runtime.requests import is_under


class CardState(StrEnum):
    ACTIVE = "ACTIVE"
    LOST = "LOST"
    FROZEN = "FROZEN"
    REPLACED = "REPLACED"
    CANCELLED = "CANCELLED"


class CardAction(StrEnum):
    ISSUE = "ISSUE"
    REPORT_LOST = "REPORT_LOST"
    CANCEL_LOSS = "CANCEL_LOSS"
    FREEZE = "FREEZE"
    UNFREEZE = "UNFREEZE"
    REPLACE = "REPLACE"
    CANCEL = "CANCEL"


class CardCapability(StrEnum):
    STORED_VALUE = "STORED_VALUE"
    POINTS = "POINTS"
    DISCOUNT = "DISCOUNT"
    TIMES = "TIMES"


class CardForm(StrEnum):
    INDIVIDUAL = "INDIVIDUAL"
    ASSOCIATED = "ASSOCIATED"
    GROUP = "GROUP"


# What a card type may carry. A card names its member, and the member's balances are
# theirs, not the card's (replacing a card keeps them): whatever card is shown, the till
# reaches the member's stored value, points, tier price and count cards alike.
CARD_CAPABILITIES = ("DISCOUNT", "POINTS", "STORED_VALUE", "TIMES")


def check_capabilities(v: Violations, given: list[str], field: str) -> list[str]:
    """A card type's capabilities: all of them (none given: all). A type that carries
    only some would be a promise no till keeps (CAPABILITIES_NOT_SUPPORTED) until cards
    limited to some balances are built."""
    v.check(
        not given or set(given) == set(CARD_CAPABILITIES),
        field,
        "CAPABILITIES_NOT_SUPPORTED",
        "every card reaches all its member's balances (stored value, points, the tier's price, count cards): "
        "list all of STORED_VALUE, POINTS, DISCOUNT and TIMES, or none; a card type limited to some is not "
        "supported yet",
    )
    return list(CARD_CAPABILITIES)


def check_card_form(v: Violations, form: str, field: str) -> None:
    """INDIVIDUAL only: family cards (ASSOCIATED) and company cards (GROUP) share balances
    across members, which nothing supports yet."""
    v.check(
        form == "INDIVIDUAL",
        field,
        "CARD_FORM_NOT_SUPPORTED",
        "only INDIVIDUAL cards are issued: family (ASSOCIATED) and company (GROUP) cards are not supported yet",
    )


@dataclass
class CardType:
    card_type_id: str
    name: str
    org_path: str  # issued here and below
    capabilities: list[str]
    form: str
    default_tier_id: str  # "" for none: the tier a member without one gets with the card
    validity_days: int  # 0: never expires
    create_time: datetime


def card_type_out_of_scope(card_type_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "CARD_TYPE_OUT_OF_SCOPE",
        "This card type is not issued at this org node.",
        "该卡类型不适用于当前门店。",
        card_type_id=card_type_id,
    )


# action -> (states it may start from, state it leads to)
CARD_TRANSITIONS: dict[CardAction, tuple[frozenset[CardState], CardState]] = {
    CardAction.REPORT_LOST: (frozenset({CardState.ACTIVE, CardState.FROZEN}), CardState.LOST),
    CardAction.CANCEL_LOSS: (frozenset({CardState.LOST}), CardState.ACTIVE),
    CardAction.FREEZE: (frozenset({CardState.ACTIVE}), CardState.FROZEN),
    CardAction.UNFREEZE: (frozenset({CardState.FROZEN}), CardState.ACTIVE),
    CardAction.REPLACE: (frozenset({CardState.ACTIVE, CardState.LOST, CardState.FROZEN}), CardState.REPLACED),
    CardAction.CANCEL: (frozenset({CardState.ACTIVE, CardState.LOST, CardState.FROZEN}), CardState.CANCELLED),
}

CARD_NUMBER = re.compile(r"^\d{8,20}$")

_PAYMENT_REFUSALS = {
    CardState.LOST: ("CARD_LOST", "The card was reported lost.", "该卡已挂失。"),
    CardState.FROZEN: ("CARD_FROZEN", "The card is frozen.", "该卡已冻结。"),
    CardState.REPLACED: ("CARD_REPLACED", "The card was replaced by a new card.", "该卡已补换新卡。"),
    CardState.CANCELLED: ("CARD_CANCELLED", "The card was cancelled.", "该卡已注销。"),
}


@dataclass
class Card:
    card_number: str
    member_id: str
    card_type_id: str
    state: CardState
    issued_org_path: str
    issue_time: datetime
    expire_time: datetime | None
    replaces_card_number: str = ""
    replaced_by_card_number: str = ""


@dataclass
class CardEvent:
    """One change of a card's state, as it is kept."""

    event_id: int
    card_number: str
    action: str
    from_state: str | None  # None for ISSUE
    to_state: str
    reason: str
    operator_id: str
    org_path: str
    event_time: datetime


# How a cashier says them: "该卡已挂失，不能冻结。"
CARD_STATES_ZH = {
    CardState.ACTIVE: "正常使用中",
    CardState.LOST: "已挂失",
    CardState.FROZEN: "已冻结",
    CardState.REPLACED: "已补换新卡",
    CardState.CANCELLED: "已销卡",
}
CARD_ACTIONS_ZH = {
    CardAction.ISSUE: "开卡",
    CardAction.REPORT_LOST: "挂失",
    CardAction.CANCEL_LOSS: "解挂",
    CardAction.FREEZE: "冻结",
    CardAction.UNFREEZE: "解冻",
    CardAction.REPLACE: "补卡",
    CardAction.CANCEL: "销卡",
}


def next_card_state(card: Card, action: CardAction) -> CardState:
    """The state `action` takes the card to, or a CARD_STATE_CONFLICT refusal."""
    allowed_from, to_state = CARD_TRANSITIONS[action]
    if card.state not in allowed_from:
        raise FailedPrecondition(
            "CARD_STATE_CONFLICT",
            f"Cannot {action.lower().replace('_', ' ')} a card that is {card.state.lower()}.",
            f"该卡{CARD_STATES_ZH[card.state]}，不能{CARD_ACTIONS_ZH[action]}。",
            card_state=card.state,
            action=action,
        )
    return to_state


def ensure_payable(card: Card, now: datetime) -> None:
    """Refuse a card that cannot pay, with the reason the till shows."""
    if card.state in _PAYMENT_REFUSALS:
        reason, en, zh = _PAYMENT_REFUSALS[card.state]
        raise FailedPrecondition(reason, en, zh, card_number=card.card_number)
    if card.expire_time is not None and card.expire_time <= now:
        raise FailedPrecondition("CARD_EXPIRED", "The card has expired.", "该卡已过期。", card_number=card.card_number)


def luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return str((10 - total % 10) % 10)


def new_card_number() -> str:
    """16 digits: '8', 14 random digits and a Luhn check digit (catches mistyped numbers)."""
    body = "8" + "".join(secrets.choice("0123456789") for _ in range(14))
    return body + luhn_digit(body)


def new_card(
    card_type: CardType, member_id: str, card_number: str, org_path: str, now: datetime, replaces: str = ""
) -> Card:
    """A card of card_type issued at org_path (where the type is issued), ACTIVE, with the
    number given or a new one, expiring after the type's validity."""
    if not is_under(org_path, card_type.org_path):
        raise card_type_out_of_scope(card_type.card_type_id)
    validity = card_type.validity_days
    return Card(
        card_number=card_number or new_card_number(),
        member_id=member_id,
        card_type_id=card_type.card_type_id,
        state=CardState.ACTIVE,
        issued_org_path=org_path,
        issue_time=now,
        expire_time=now + timedelta(days=validity) if validity else None,
        replaces_card_number=replaces,
    )


def card_type_not_found(card_type_id: str) -> NotFound:
    return NotFound("CARD_TYPE_NOT_FOUND", "No such card type.", "卡类型不存在。", card_type_id=card_type_id)


def card_not_found(card_number: str) -> NotFound:
    return NotFound("CARD_NOT_FOUND", "No such card.", "卡号不存在。", card_number=card_number)


def card_number_taken(card_number: str) -> AlreadyExists:
    return AlreadyExists(
        "CARD_NUMBER_TAKEN", "This card number is already issued.", "该卡号已被使用。", card_number=card_number
    )
