"""Custom attributes: the fields a chain defines for its members (a car plate, a size)."""

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from huiyuan.runtime.errors import AlreadyExists, Violations
from services.member.domain.fields import check_text


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


def check_attribute(
    violations: Violations, definition: AttributeDefinition | None, key: str, kind: str, value: object, field_path: str
) -> object:
    """Validate one attribute value of the given kind ('text', 'number', 'date',
    'choice'); returns the value to store (JSON-safe) or None."""
    if definition is None:
        violations.add(field_path, "ATTRIBUTE_UNKNOWN", f"no attribute '{key}' is defined")
        return None
    if kind != definition.type.lower():
        violations.add(field_path, "ATTRIBUTE_TYPE_MISMATCH", f"'{key}' takes a {definition.type.lower()} value")
        return None
    if definition.type == AttributeType.TEXT:
        return check_text(violations, value, field_path)  # type: ignore[arg-type]
    if definition.type == AttributeType.NUMBER:
        try:
            number = Decimal(value)  # type: ignore[arg-type]
            if not number.is_finite():
                raise InvalidOperation
        except (InvalidOperation, TypeError):
            violations.add(field_path, "ATTRIBUTE_NUMBER_INVALID", f"'{key}' must be a decimal number")
            return None
        return str(number)
    if definition.type == AttributeType.CHOICE:
        violations.check(
            value in definition.choices,
            field_path,
            "ATTRIBUTE_CHOICE_INVALID",
            f"'{key}' must be one of: {', '.join(definition.choices)}",
        )
        return value
    return value  # DATE: already checked as a date by the caller


def attribute_exists(key: str) -> AlreadyExists:
    return AlreadyExists("ATTRIBUTE_EXISTS", f"Attribute '{key}' exists already.", f"属性 '{key}' 已存在。", key=key)
