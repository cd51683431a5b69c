"""Names, free text and partial dates, as every form of the member service checks them."""

import re
from datetime import date

from huiyuan.runtime.errors import Violations

MAX_NAME = 64
MAX_TEXT = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_name(violations: Violations, name: str, field_path: str) -> str:
    name = (name or "").strip()
    if violations.check(bool(name), field_path, "NAME_REQUIRED", "name is required"):
        violations.check(len(name) <= MAX_NAME, field_path, "NAME_TOO_LONG", f"name has at most {MAX_NAME} characters")
        violations.check(not _CONTROL.search(name), field_path, "NAME_INVALID", "name has control characters")
    return name


def check_text(
    violations: Violations, value: str, field_path: str, limit: int = MAX_TEXT, required: bool = False
) -> str:
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
        year >= 1900 and date(year, month, day) <= today,
        field_path,
        "DATE_OUT_OF_RANGE",
        f"{field_path} must be between 1900 and today",
    ):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}"
