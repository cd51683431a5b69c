"""Members: who they are, how they registered, their profile as a caller gives it, their
tags, and the filters that select them."""

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any, cast

from huiyuan.runtime.errors import AlreadyExists, NotFound, Violations
from huiyuan.runtime.requests import ORG_PATH
from services.member.domain.attributes import AttributeDefinition, check_attribute
from services.member.domain.care import DaySpan
from services.member.domain.fields import check_date, check_name


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


_PHONE_SEPARATORS = re.compile(r"[\s\-()]")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def normalise_phone(raw: str) -> str | None:
    """A mainland China mobile number as its 11 digits, or None when it is not one.
    Accepts spaces, dashes, brackets and a +86 / 0086 / 86 country prefix."""
    digits = _PHONE_SEPARATORS.sub("", raw or "")
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    return digits if _MOBILE.match(digits) else None


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) == 11 else "****"


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
    attributes: dict[str, Any]
    channel: Channel
    registered_org_path: str
    tier_id: str
    create_time: datetime
    update_time: datetime
    tags: list[str] = field(default_factory=list)
    cashier_id: str = ""  # the person at the till who registered them ("" none): the staff report
    automatic_tags: list[str] = field(default_factory=list)  # set by rules (domain/segments.py), never by hand


def counter_view(member: Member) -> Member:
    """What a till needs of a member, no more: the phone masked, no birthday nor anniversary."""
    return replace(member, phone=mask_phone(member.phone), birthday=None, anniversary=None)


UPDATABLE_MEMBER_FIELDS = {
    "name",
    "gender",
    "phone",
    "birthday",
    "anniversary",
    "home_store_path",
    "marketing_consent",
    "attributes",
    "tags",
}
MAX_TAG, MAX_TAGS = 16, 20


def check_tag(violations: Violations, tag: str, field_path: str) -> str:
    tag = tag.strip()
    violations.check(
        0 < len(tag) <= MAX_TAG and "," not in tag,
        field_path,
        "TAG_INVALID",
        f"a tag is 1 to {MAX_TAG} characters without commas",
    )
    return tag


def check_tags(violations: Violations, tags: list[str], field_path: str) -> list[str]:
    """The tags to keep: trimmed, each once, in the order given."""
    kept = list(dict.fromkeys(check_tag(violations, t, f"{field_path}[{i}]") for i, t in enumerate(tags)))
    violations.check(len(kept) <= MAX_TAGS, field_path, "TOO_MANY_TAGS", f"a member has at most {MAX_TAGS} tags")
    return kept


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


def check_profile(
    violations: Violations,
    profile: ProfileInput,
    prefix: str,
    definitions: dict[str, AttributeDefinition],
    today: date,
    *,
    partial: set[str] | None = None,
) -> dict[str, Any]:
    """Validate a profile and return the values to store, keyed by column.
    With `partial`, only those fields are checked (an update with a field mask)."""
    wanted = partial if partial is not None else UPDATABLE_MEMBER_FIELDS
    values: dict[str, Any] = {}
    if "name" in wanted:
        values["name"] = check_name(violations, profile.name, f"{prefix}name")
    if "phone" in wanted:
        phone = normalise_phone(profile.phone)
        if violations.check(
            phone is not None,
            f"{prefix}phone",
            "PHONE_INVALID",
            "phone must be a mainland China mobile number (11 digits starting 13-19)",
        ):
            values["phone"] = phone
    if "gender" in wanted:
        values["gender"] = profile.gender.value
    if "birthday" in wanted:
        values["birthday"] = check_date(violations, *profile.birthday, f"{prefix}birthday", today)
    if "anniversary" in wanted:
        values["anniversary"] = check_date(violations, *profile.anniversary, f"{prefix}anniversary", today)
    if "home_store_path" in wanted:
        path = profile.home_store_path
        violations.check(
            not path or bool(ORG_PATH.match(path)),
            f"{prefix}home_store_path",
            "ORG_PATH_INVALID",
            "home_store_path must be an org path such as hq/east/sh-001",
        )
        values["home_store_path"] = path
    if "marketing_consent" in wanted:
        values["marketing_consent"] = profile.marketing_consent
    if "tags" in wanted:
        values["tags"] = check_tags(violations, profile.tags, f"{prefix}tags")
    if "attributes" in wanted or any(f.startswith("attributes.") for f in wanted):
        values["attributes"] = _check_attributes(
            violations, profile.attributes, prefix, definitions, today, whole="attributes" in wanted and partial is None
        )
    return values


def _check_attributes(
    violations: Violations,
    attributes: dict[str, tuple[str, object]],
    prefix: str,
    definitions: dict[str, AttributeDefinition],
    today: date,
    whole: bool,
) -> dict[str, Any]:
    stored: dict[str, Any] = {}
    for key, (kind, value) in attributes.items():
        path = f"{prefix}attributes[{key}]"
        if kind == "date":
            year, month, day = cast(tuple[int, int, int], value)  # a date attribute's value
            value = check_date(violations, year, month, day, path, today)
        checked = check_attribute(violations, definitions.get(key), key, kind, value, path)
        if checked is not None:
            stored[key] = checked
    if whole:
        for key, definition in definitions.items():
            violations.check(
                not definition.required or key in attributes,
                f"{prefix}attributes[{key}]",
                "ATTRIBUTE_REQUIRED",
                f"'{key}' is required",
            )
    return stored


def new_member(
    member_id: str,
    values: dict[str, Any],
    channel: Channel,
    registered_org_path: str,
    default_home_store: str,
    now: datetime,
    cashier_id: str = "",
) -> Member:
    """A member registered with the values check_profile kept; at the store registering
    them unless they named their home store."""
    return Member(
        member_id=member_id,
        channel=channel,
        cashier_id=cashier_id,
        registered_org_path=registered_org_path,
        tier_id="",
        create_time=now,
        update_time=now,
        **{
            **values,
            "gender": Gender(values["gender"]),
            "home_store_path": values["home_store_path"] or default_home_store,
        },
    )


def merged_attributes(current: dict[str, Any], changed: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    """An update of some attributes (a mask naming attributes.<key>): those keys as
    changed (a key not given is removed), the others as they are."""
    kept = {k: value for k, value in current.items() if k not in keys}
    return {**kept, **changed}


@dataclass
class MemberQuery:
    """The members a list or an export selects; every condition set must hold."""

    org_path: str = ""
    tier_id: str = ""
    channel: Channel | None = None
    name_contains: str = ""
    phone_suffix: str = ""
    registered_after: datetime | None = None
    registered_before: datetime | None = None
    tag: str = ""
    birthday_in: DaySpan | None = None
    anniversary_in: DaySpan | None = None
    no_visit_since: datetime | None = None
    fields: list[str] = field(default_factory=list)


def member_not_found(member_id: str) -> NotFound:
    return NotFound("MEMBER_NOT_FOUND", "No such member.", "会员不存在。", member_id=member_id)


def phone_not_registered() -> NotFound:
    return NotFound("MEMBER_NOT_FOUND", "No member has this phone number.", "该手机号未注册会员。")


def phone_taken(phone: str) -> AlreadyExists:
    return AlreadyExists(
        "PHONE_ALREADY_REGISTERED",
        "This phone number is already registered.",
        "该手机号已注册会员。",
        phone=mask_phone(phone),
    )
