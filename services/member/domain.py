"""Member domain rules: plain Python, no gRPC and no SQL, so they can be read and tested
alone. Enum values are the names the contracts use without their prefix."""

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from huiyuan.runtime.clock import CHAIN_ZONE
from huiyuan.runtime.errors import FailedPrecondition, Unauthenticated, Violations
from huiyuan.runtime.requests import ORG_PATH, is_under, store_of  # noqa: F401 - part of the domain's vocabulary

# ---------------------------------------------------------------- org tree


class OrgKind(StrEnum):
    HQ = "HQ"
    REGION = "REGION"
    STORE = "STORE"
    TERMINAL = "TERMINAL"


ORG_LEVELS = [OrgKind.HQ, OrgKind.REGION, OrgKind.STORE, OrgKind.TERMINAL]
ORG_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


def child_kind(parent: OrgKind | None) -> OrgKind | None:
    """The only kind a child of `parent` may have (HQ when there is no parent)."""
    if parent is None:
        return OrgKind.HQ
    level = ORG_LEVELS.index(parent) + 1
    return ORG_LEVELS[level] if level < len(ORG_LEVELS) else None


def valid_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# What a card type may carry. A card names its member, and the member's balances are
# theirs, not the card's (replacing a card keeps them): whatever card is shown, the till
# reaches the member's stored value, points, tier price and count cards alike.
CARD_CAPABILITIES = ("DISCOUNT", "POINTS", "STORED_VALUE", "TIMES")


def check_capabilities(v: Violations, given: list[str], field: str) -> list[str]:
    """A card type's capabilities: all of them (none given: all). A type that carries
    only some would be a promise no till keeps (CAPABILITIES_NOT_SUPPORTED) until cards
    limited to some balances are built."""
    v.check(not given or set(given) == set(CARD_CAPABILITIES), field, "CAPABILITIES_NOT_SUPPORTED",
            "every card reaches all its member's balances (stored value, points, the tier's price, count cards): "
            "list all of STORED_VALUE, POINTS, DISCOUNT and TIMES, or none; a card type limited to some is not "
            "supported yet")
    return list(CARD_CAPABILITIES)


def check_card_form(v: Violations, form: str, field: str) -> None:
    """INDIVIDUAL only: family cards (ASSOCIATED) and company cards (GROUP) share balances
    across members, which nothing supports yet."""
    v.check(form == "INDIVIDUAL", field, "CARD_FORM_NOT_SUPPORTED",
            "only INDIVIDUAL cards are issued: family (ASSOCIATED) and company (GROUP) cards are not supported yet")


def check_time_zone(v: Violations, name: str, field: str) -> None:
    """An org node's zone: an IANA name, and the chain's. Business days, member days and
    expiry are reckoned in the chain's zone (huiyuan/runtime/clock.py) by services that
    do not read the org tree, so a store's own zone would be kept and never used."""
    if v.check(valid_time_zone(name), field, "TIME_ZONE_INVALID", "time_zone must be an IANA name such as Asia/Shanghai"):
        v.check(name == CHAIN_ZONE.key, field, "TIME_ZONE_NOT_SUPPORTED",
                f"every store keeps the chain's business time, {CHAIN_ZONE.key} (HUIYUAN_CHAIN_TIME_ZONE): "
                "a store's own zone is not supported yet")


@dataclass
class OrgNode:
    path: str
    code: str
    name: str
    kind: OrgKind
    time_zone: str
    parent_path: str
    create_time: datetime | None = None


# ---------------------------------------------------------------- members


class Gender(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    FEMALE = "FEMALE"
    MALE = "MALE"
    UNDISCLOSED = "UNDISCLOSED"


class Channel(StrEnum):
    STORE = "STORE"
    CALL_CENTRE = "CALL_CENTRE"
    WEB = "WEB"
    QR_SELF_SERVICE = "QR_SELF_SERVICE"
    BULK_IMPORT = "BULK_IMPORT"


MAX_NAME = 64
MAX_TEXT = 256
_PHONE_SEPARATORS = re.compile(r"[\s\-()]")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalise_phone(raw: str) -> str | None:
    """A mainland China mobile number as its 11 digits, or None when it is not one.
    Accepts spaces, dashes, brackets and a +86 / 0086 / 86 country prefix."""
    digits = _PHONE_SEPARATORS.sub("", raw or "")
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix):]
            break
    return digits if _MOBILE.match(digits) else None


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) == 11 else "****"


def check_name(violations: Violations, name: str, field_path: str) -> str:
    name = (name or "").strip()
    if violations.check(bool(name), field_path, "NAME_REQUIRED", "name is required"):
        violations.check(len(name) <= MAX_NAME, field_path, "NAME_TOO_LONG", f"name has at most {MAX_NAME} characters")
        violations.check(not _CONTROL.search(name), field_path, "NAME_INVALID", "name has control characters")
    return name


def check_text(violations: Violations, value: str, field_path: str, limit: int = MAX_TEXT, required=False) -> str:
    value = (value or "").strip()
    if required:
        violations.check(bool(value), field_path, "REQUIRED", f"{field_path} is required")
    violations.check(len(value) <= limit, field_path, "TOO_LONG", f"{field_path} has at most {limit} characters")
    return value


def check_date(violations: Violations, year: int, month: int, day: int, field_path: str, today: date) -> str | None:
    """A partial date as 'YYYY-MM-DD' ('0000-MM-DD' when the year is unknown), or None."""
    if (year, month, day) == (0, 0, 0):
        return None
    try:
        date(year or 2000, month, day)  # 2000 is a leap year, so 29 February is allowed
    except (ValueError, OverflowError):  # OverflowError: a year past C's long, from a file's cell
        violations.add(field_path, "DATE_INVALID", f"{field_path} is not a calendar date")
        return None
    if year and not violations.check(
        1900 <= year and date(year, month, day) <= today, field_path, "DATE_OUT_OF_RANGE",
        f"{field_path} must be between 1900 and today",
    ):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}"


@dataclass
class Member:
    member_id: str
    name: str
    gender: Gender
    phone: str
    birthday: str | None
    anniversary: str | None
    home_store_path: str
    marketing_consent: bool
    attributes: dict[str, object]
    channel: Channel
    registered_org_path: str
    tier_id: str
    create_time: datetime
    update_time: datetime
    tags: list[str] = field(default_factory=list)


UPDATABLE_MEMBER_FIELDS = {
    "name", "gender", "phone", "birthday", "anniversary", "home_store_path", "marketing_consent", "attributes", "tags",
}
MAX_TAG, MAX_TAGS = 16, 20


def check_tag(violations: Violations, tag: str, field_path: str) -> str:
    tag = tag.strip()
    violations.check(0 < len(tag) <= MAX_TAG and "," not in tag, field_path, "TAG_INVALID",
                     f"a tag is 1 to {MAX_TAG} characters without commas")
    return tag


def check_tags(violations: Violations, tags: list[str], field_path: str) -> list[str]:
    """The tags to keep: trimmed, each once, in the order given."""
    kept = list(dict.fromkeys(check_tag(violations, t, f"{field_path}[{i}]") for i, t in enumerate(tags)))
    violations.check(len(kept) <= MAX_TAGS, field_path, "TOO_MANY_TAGS", f"a member has at most {MAX_TAGS} tags")
    return kept


# ---------------------------------------------------------------- custom attributes


class AttributeType(StrEnum):
    TEXT = "TEXT"
    NUMBER = "NUMBER"
    DATE = "DATE"
    CHOICE = "CHOICE"


ATTRIBUTE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass
class AttributeDefinition:
    key: str
    display_name: str
    type: AttributeType
    choices: list[str] = field(default_factory=list)
    required: bool = False


def check_attribute(violations: Violations, definition: AttributeDefinition | None, key: str, kind: str, value, field_path: str):
    """Validate one attribute value of the given kind ('text', 'number', 'date',
    'choice'); returns the value to store (JSON-safe) or None."""
    if definition is None:
        violations.add(field_path, "ATTRIBUTE_UNKNOWN", f"no attribute '{key}' is defined")
        return None
    if kind != definition.type.lower():
        violations.add(field_path, "ATTRIBUTE_TYPE_MISMATCH", f"'{key}' takes a {definition.type.lower()} value")
        return None
    if definition.type == AttributeType.TEXT:
        return check_text(violations, value, field_path)
    if definition.type == AttributeType.NUMBER:
        try:
            number = Decimal(value)
            if not number.is_finite():
                raise InvalidOperation
        except (InvalidOperation, TypeError):
            violations.add(field_path, "ATTRIBUTE_NUMBER_INVALID", f"'{key}' must be a decimal number")
            return None
        return str(number)
    if definition.type == AttributeType.CHOICE:
        violations.check(value in definition.choices, field_path, "ATTRIBUTE_CHOICE_INVALID",
                         f"'{key}' must be one of: {', '.join(definition.choices)}")
        return value
    return value  # DATE: already checked as a date by the caller


# ---------------------------------------------------------------- cards


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


# How a cashier says them: "该卡已挂失，不能冻结。"
CARD_STATES_ZH = {CardState.ACTIVE: "正常使用中", CardState.LOST: "已挂失", CardState.FROZEN: "已冻结",
                  CardState.REPLACED: "已补换新卡", CardState.CANCELLED: "已销卡"}
CARD_ACTIONS_ZH = {CardAction.ISSUE: "开卡", CardAction.REPORT_LOST: "挂失", CardAction.CANCEL_LOSS: "解挂",
                   CardAction.FREEZE: "冻结", CardAction.UNFREEZE: "解冻", CardAction.REPLACE: "补卡",
                   CardAction.CANCEL: "销卡"}


def next_card_state(card: Card, action: CardAction) -> CardState:
    """The state `action` takes the card to, or a CARD_STATE_CONFLICT refusal."""
    allowed_from, to_state = CARD_TRANSITIONS[action]
    if card.state not in allowed_from:
        raise FailedPrecondition(
            "CARD_STATE_CONFLICT",
            f"Cannot {action.lower().replace('_', ' ')} a card that is {card.state.lower()}.",
            f"该卡{CARD_STATES_ZH[card.state]}，不能{CARD_ACTIONS_ZH[action]}。",
            card_state=card.state, action=action,
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


# ---------------------------------------------------------------- tiers


@dataclass
class Tier:
    tier_id: str
    name: str
    rank: int
    price_rate_bp: int
    points_multiplier_bp: int
    benefits: str
    upgrade_spend_fen: int = 0  # spend in all stores that reaches it; 0: not by spend
    upgrade_top_up_fen: int = 0  # top-ups (principal) that reach it; 0: not by top-ups

    def reached_by(self, standing: "Standing") -> bool:
        """Does what the member has paid reach this tier, by either measure it names?"""
        return (0 < self.upgrade_spend_fen <= standing.spend_fen) or (0 < self.upgrade_top_up_fen <= standing.top_up_fen)


@dataclass(frozen=True)
class Standing:
    """What a member has paid the chain, as the tiers count it: their spend in all
    stores (returns taken off) and the principal of their top-ups at the tills
    (refunded ones taken off; the bonus is the chain's gift, not theirs)."""

    spend_fen: int = 0
    top_up_fen: int = 0


MAX_SPEND_FEN = 10**12  # the most a visit, a return, a top-up or a tier's upgrade amount may name
# The measures a tier may be climbed by: (Tier's field, refusal reason, words for it).
LADDER_MEASURES = [("upgrade_spend_fen", "UPGRADE_SPEND_OUT_OF_ORDER", "spend", "升级消费额"),
                   ("upgrade_top_up_fen", "UPGRADE_TOP_UP_OUT_OF_ORDER", "top-ups", "升级充值额")]


def check_tier(violations: Violations, name: str, rank: int, price_rate_bp: int, points_multiplier_bp: int, benefits: str,
               upgrade_spend_fen: int, upgrade_top_up_fen: int = 0) -> None:
    check_name(violations, name, "tier.name")
    violations.check(0 <= rank <= 1000, "tier.rank", "RANK_OUT_OF_RANGE", "rank must be 0 to 1000")
    violations.check(1 <= price_rate_bp <= 10000, "tier.price_rate_bp", "RATE_OUT_OF_RANGE",
                     "price_rate_bp must be 1 to 10000 (10000 = full price)")
    violations.check(0 <= points_multiplier_bp <= 100000, "tier.points_multiplier_bp", "MULTIPLIER_OUT_OF_RANGE",
                     "points_multiplier_bp must be 0 to 100000 (10000 = 1x)")
    check_text(violations, benefits, "tier.benefits", limit=2000)
    for field_name, amount in [("upgrade_spend_fen", upgrade_spend_fen), ("upgrade_top_up_fen", upgrade_top_up_fen)]:
        violations.check(0 <= amount <= MAX_SPEND_FEN, f"tier.{field_name}", "AMOUNT_OUT_OF_RANGE",
                         f"{field_name} must be 0 to 10^12 (0: not reached this way)")


def check_ladder(tiers: list[Tier]) -> None:
    """The tiers that name a spend must need more of it the better they are, and so
    must the tiers that name top-ups: else a member would climb past a tier, or never
    reach one. Checked on the whole set, as it will be after a tier is created or changed."""
    for field_name, reason, words, zh in LADDER_MEASURES:
        climbing = sorted((t for t in tiers if getattr(t, field_name)), key=lambda t: t.rank)
        for lower, higher in zip(climbing, climbing[1:]):
            if getattr(higher, field_name) <= getattr(lower, field_name):
                raise FailedPrecondition(
                    reason,
                    f"Tier '{higher.name}' (rank {higher.rank}) must need more {words} than '{lower.name}' "
                    f"(rank {lower.rank}), which needs {getattr(lower, field_name)} fen.",
                    f"等级「{higher.name}」的{zh}须高于「{lower.name}」({getattr(lower, field_name)} 分)。",
                    tier=higher.name, below=lower.name)


def tier_reached(tiers: list[Tier], current: Tier | None, standing: Standing) -> Tier | None:
    """The best tier what the member paid reaches, if it is better than their own;
    else None. It only lifts: a tier assigned by hand above it stays."""
    reached = max((t for t in tiers if t.reached_by(standing)), key=lambda t: t.rank, default=None)
    if reached is None or (current is not None and reached.rank <= current.rank):
        return None
    return reached


def tier_after_return(tiers: dict[str, Tier], current_id: str, climbs: list[tuple[str, str]], standing: Standing) -> str:
    """The tier (its id; "" for none) a member on current_id holds after a return or a
    refunded top-up lowered what they paid to standing. climbs are the (from, to) tier
    ids of the climbs that brought them there, newest first. Each climb that is no
    longer paid for is undone, down to the tier they had before climbing at most
    (assigned by hand, or none); from there they are lifted to the best tier they still
    reach."""
    tier_id = current_id
    for from_id, to_id in climbs:
        if to_id != tier_id or tiers[to_id].reached_by(standing):
            break
        tier_id = from_id
    if tier_id == current_id:
        return current_id
    lifted = tier_reached(list(tiers.values()), tiers.get(tier_id), standing)
    return lifted.tier_id if lifted else tier_id


# ---------------------------------------------------------------- QR tokens

QR_TTL_DEFAULT = timedelta(seconds=60)
QR_TTL_MIN = timedelta(seconds=10)
QR_LIFETIME_DEFAULT = timedelta(minutes=5)  # the longest a QR code is issued for (HUIYUAN_QR_LIFETIME_S)
QR_CLOCK_LEEWAY = timedelta(seconds=30)  # the clocks of two replicas may differ by this much


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign_qr_token(member_id: str, expire_time: datetime, secret: str) -> str:
    """'<member_id>.<expiry unix s>.<signature>': short enough for a dense QR code, and
    useless once expired or altered."""
    payload = f"{member_id}.{int(expire_time.timestamp())}"
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:16]
    return f"{payload}.{_b64(signature)}"


def verify_qr_token(token: str, secret: str, now: datetime, longest: timedelta = QR_LIFETIME_DEFAULT) -> str:
    """The member id a token names; refuses altered and expired tokens, and those that
    claim to be good for longer than a QR code is issued for (longest): no token this
    service made does, so its secret has leaked or was a development one."""
    invalid = Unauthenticated("QR_TOKEN_INVALID", "The QR code is not valid.", "二维码无效。")
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise invalid
    payload = f"{parts[0]}.{parts[1]}"
    expected = _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:16])
    if not hmac.compare_digest(expected, parts[2]):
        raise invalid
    if int(parts[1]) <= now.timestamp():
        raise FailedPrecondition("QR_TOKEN_EXPIRED", "The QR code has expired; refresh it.", "二维码已过期,请刷新。")
    if int(parts[1]) > (now + longest + QR_CLOCK_LEEWAY).timestamp():
        raise Unauthenticated("QR_TOKEN_LIFETIME_EXCEEDED",
                              f"The QR code claims to be good for longer than a QR code is issued for "
                              f"({int(longest.total_seconds())} s): it was not made by this chain.",
                              "二维码有效期超出规定，不予受理。")
    return parts[0]


# ---------------------------------------------------------------- a member's profile


@dataclass
class ProfileInput:
    """A profile as a caller gave it, before validation: from a request or a file row.
    Dates are (year, month, day) with 0 for unknown parts; attributes map a key to
    (kind, value) where kind is 'text', 'number', 'date' or 'choice'."""

    name: str
    phone: str
    gender: Gender = Gender.UNSPECIFIED
    birthday: tuple[int, int, int] = (0, 0, 0)
    anniversary: tuple[int, int, int] = (0, 0, 0)
    home_store_path: str = ""
    marketing_consent: bool = False
    attributes: dict[str, tuple[str, object]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


def check_profile(violations: Violations, profile: ProfileInput, prefix: str,
                  definitions: dict[str, AttributeDefinition], today: date, *, partial: set[str] | None = None) -> dict:
    """Validate a profile and return the values to store, keyed by column.
    With `partial`, only those fields are checked (an update with a field mask)."""
    wanted = partial if partial is not None else UPDATABLE_MEMBER_FIELDS
    values: dict = {}
    if "name" in wanted:
        values["name"] = check_name(violations, profile.name, f"{prefix}name")
    if "phone" in wanted:
        phone = normalise_phone(profile.phone)
        if violations.check(phone is not None, f"{prefix}phone", "PHONE_INVALID",
                            "phone must be a mainland China mobile number (11 digits starting 13-19)"):
            values["phone"] = phone
    if "gender" in wanted:
        values["gender"] = profile.gender.value
    if "birthday" in wanted:
        values["birthday"] = check_date(violations, *profile.birthday, f"{prefix}birthday", today)
    if "anniversary" in wanted:
        values["anniversary"] = check_date(violations, *profile.anniversary, f"{prefix}anniversary", today)
    if "home_store_path" in wanted:
        path = profile.home_store_path
        violations.check(not path or bool(ORG_PATH.match(path)), f"{prefix}home_store_path", "ORG_PATH_INVALID",
                         "home_store_path must be an org path such as hq/east/sh-001")
        values["home_store_path"] = path
    if "marketing_consent" in wanted:
        values["marketing_consent"] = profile.marketing_consent
    if "tags" in wanted:
        values["tags"] = check_tags(violations, profile.tags, f"{prefix}tags")
    if "attributes" in wanted or any(f.startswith("attributes.") for f in wanted):
        values["attributes"] = _check_attributes(violations, profile.attributes, prefix, definitions, today,
                                                 whole="attributes" in wanted and partial is None)
    return values


def _check_attributes(violations, attributes, prefix, definitions, today, whole: bool) -> dict:
    stored = {}
    for key, (kind, value) in attributes.items():
        path = f"{prefix}attributes[{key}]"
        if kind == "date":
            value = check_date(violations, *value, path, today)
        checked = check_attribute(violations, definitions.get(key), key, kind, value, path)
        if checked is not None:
            stored[key] = checked
    if whole:
        for key, definition in definitions.items():
            violations.check(not definition.required or key in attributes, f"{prefix}attributes[{key}]",
                             "ATTRIBUTE_REQUIRED", f"'{key}' is required")
    return stored
