"""The rows of a member import file, as the import reads them (the same rules as
RegisterMember's: members.check_profile), and the rows of an export, which an import
reads back."""

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from huiyuan.runtime import words
from huiyuan.runtime.errors import InvalidArgument, Violations, invalid
from huiyuan.runtime.requests import is_under
from services.member.domain.attributes import AttributeDefinition
from services.member.domain.members import Gender, Member, ProfileInput

MAX_ROWS = 200_000

# column name in the file (English or Chinese) -> profile field
COLUMNS = {
    "name": "name",
    "姓名": "name",
    "phone": "phone",
    "mobile": "phone",
    "手机": "phone",
    "手机号": "phone",
    "gender": "gender",
    "性别": "gender",
    "birthday": "birthday",
    "生日": "birthday",
    "anniversary": "anniversary",
    "纪念日": "anniversary",
    "home_store": "home_store_path",
    "门店": "home_store_path",
    "门店编码": "home_store_path",
    "marketing_consent": "marketing_consent",
    "营销同意": "marketing_consent",
    "tags": "tags",
    "标签": "tags",
}
TAG_SEPARATORS = re.compile(r"[,，、;；]")  # how a spreadsheet cell lists several tags
GENDERS = {
    "": Gender.UNSPECIFIED,
    "f": Gender.FEMALE,
    "female": Gender.FEMALE,
    "女": Gender.FEMALE,
    "m": Gender.MALE,
    "male": Gender.MALE,
    "男": Gender.MALE,
    "other": Gender.UNDISCLOSED,
    "undisclosed": Gender.UNDISCLOSED,
    "保密": Gender.UNDISCLOSED,
}
YES = {"1", "y", "yes", "true", "是"}
NO = {"", "0", "n", "no", "false", "否"}


@dataclass
class Reject:
    row_number: int
    field: str
    reason: str
    message: str


@dataclass
class ImportResult:
    total_rows: int = 0
    imported_rows: int = 0
    existing_rows: int = 0
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        return len({r.row_number for r in self.rejects})


def _whole_number(cell: str) -> int | None:
    """ASCII digits only: "²" and "٣" are digits to str.isdigit but not to int()."""
    return int(cell) if cell.isascii() and cell.isdigit() else None


def parse_date(text: str) -> tuple[int, int, int] | None:
    """'1990-05-17', '1990/5/17' or '05-17' (no year); None when unreadable."""
    parts = text.strip().replace("/", "-").split("-") if text.strip() else []
    numbers = [_whole_number(p.strip()) for p in parts]
    if None in numbers:
        return None
    if len(numbers) == 3:
        return numbers[0], numbers[1], numbers[2]  # type: ignore[return-value]
    if len(numbers) == 2:
        return 0, numbers[0], numbers[1]  # type: ignore[return-value]
    return (0, 0, 0) if not numbers else None


def profile_from_row(
    cells: dict[str, str], definitions: dict[str, AttributeDefinition], violations: Violations
) -> ProfileInput:
    """Turn the cells of a row into a ProfileInput; unreadable cells become violations."""
    gender = GENDERS.get(cells.get("gender", "").strip().lower())
    violations.check(gender is not None, "gender", "GENDER_INVALID", "gender must be F/M/女/男 or empty")
    dates = {}
    for column in ("birthday", "anniversary"):
        parsed = parse_date(cells.get(column, ""))
        violations.check(parsed is not None, column, "DATE_INVALID", f"{column} must look like 1990-05-17")
        dates[column] = parsed or (0, 0, 0)
    consent = cells.get("marketing_consent", "").strip().lower()
    violations.check(consent in YES | NO, "marketing_consent", "CONSENT_INVALID", "marketing_consent must be yes/no")
    attributes: dict[str, tuple[str, object]] = {}
    for key, value in cells.items():
        if key.startswith("attr:") and value.strip():
            name = key[5:]
            definition = definitions.get(name)
            kind = definition.type.lower() if definition else "text"
            attributes[name] = (kind, (parse_date(value) or (0, 0, 0)) if kind == "date" else value.strip())
    return ProfileInput(
        name=cells.get("name", ""),
        phone=cells.get("phone", ""),
        gender=gender or Gender.UNSPECIFIED,
        birthday=dates["birthday"],
        anniversary=dates["anniversary"],
        home_store_path=cells.get("home_store_path", "").strip(),
        marketing_consent=consent in YES,
        attributes=attributes,
        tags=[t for t in TAG_SEPARATORS.split(cells.get("tags", "")) if t.strip()],
    )


def header(row: list[str]) -> list[str]:
    """The profile field each column holds ("" for a column nobody reads; 'attr:<key>'
    for a custom attribute): English names in any case, Chinese as written."""
    names = []
    for cell in row:
        cell = cell.strip()
        names.append(cell if cell.lower().startswith("attr:") else COLUMNS.get(cell.lower(), COLUMNS.get(cell, "")))
    if "name" not in names or "phone" not in names:
        raise invalid("content", "HEADER_INVALID", "the first row must name the columns, with at least name and phone")
    return names


def too_many_rows() -> InvalidArgument:
    return invalid("content", "TOO_MANY_ROWS", f"a file holds at most {MAX_ROWS} rows; split it")


def check_home_stores(valid: list[tuple[int, dict[str, Any]]], known: set[str], scope: str) -> list[Reject]:
    """A row's home store is a node there is, under the importing node's scope: a region
    imports members into its own stores only (HQ into any; a till into its store), as it
    registers them."""
    rejects = []
    for row_number, values in valid:
        path = values["home_store_path"]
        if path and not is_under(path, scope):  # said before whether it is there: scope tells nothing
            rejects.append(
                Reject(
                    row_number,
                    "home_store_path",
                    "HOME_STORE_OUT_OF_SCOPE",
                    f"'{path}' lies outside '{scope}', where the file is imported",
                )
            )
        elif path and path not in known:
            rejects.append(Reject(row_number, "home_store_path", "ORG_NODE_NOT_FOUND", f"no store at '{path}'"))
    return rejects


def _day(kept: str | None) -> date | str | None:
    """A stored day ('1990-05-17', or '0000-05-17' with no year) as the export shows it:
    a date, or '05-17' as text (Excel has no day without a year)."""
    if not kept:
        return None
    return kept[5:] if kept.startswith("0000-") else date.fromisoformat(kept)


def export_row(member: Member, tier_names: dict[str, str], store_names: dict[str, str]) -> list[Any]:
    """A member as a row of the export (use_cases/imports.py: EXPORT_COLUMNS). Phones are
    exported in full: an export is a back-office act under the caller's scope, and the
    file is what the region asked for. Logs never see it."""
    return [
        member.member_id,
        member.name,
        member.phone,
        words.chinese(f"GENDER_{member.gender.value}"),
        _day(member.birthday),
        _day(member.anniversary),
        store_names.get(member.home_store_path, ""),
        member.home_store_path,
        tier_names.get(member.tier_id, ""),
        words.chinese(f"REGISTRATION_CHANNEL_{member.channel.value}", member.channel.value),
        member.create_time,
        "是" if member.marketing_consent else "否",
        "、".join(member.tags or []),
    ]
