"""Bulk import of members from CSV/XLSX, and export of a filtered member list.

Import validates every row with the same rules as RegisterMember (domain.check_profile),
then writes in batches of 5,000 rows with INSERT ... ON CONFLICT (phone) DO NOTHING:
rows whose phone is already registered are counted as existing and left alone, so a
re-run imports nothing twice, and 100,000 rows take about 20 round trips, not 100,000.
"""

import asyncio
import re
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from huiyuan.runtime import files, words
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import Violations, invalid
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.requests import is_under
from huiyuan.database.upsert import insert_new
from services.member import domain, storage
from services.member.members import MemberQuery
from services.member.storage import members

MAX_ROWS = 200_000
BATCH = 5_000
YIELD_EVERY = 500

# column name in the file (English or Chinese) -> profile field
COLUMNS = {
    "name": "name", "姓名": "name",
    "phone": "phone", "mobile": "phone", "手机": "phone", "手机号": "phone",
    "gender": "gender", "性别": "gender",
    "birthday": "birthday", "生日": "birthday",
    "anniversary": "anniversary", "纪念日": "anniversary",
    "home_store": "home_store_path", "门店": "home_store_path", "门店编码": "home_store_path",
    "marketing_consent": "marketing_consent", "营销同意": "marketing_consent",
    "tags": "tags", "标签": "tags",
}
TAG_SEPARATORS = re.compile(r"[,，、;；]")  # how a spreadsheet cell lists several tags
GENDERS = {"": domain.Gender.UNSPECIFIED, "f": domain.Gender.FEMALE, "female": domain.Gender.FEMALE, "女": domain.Gender.FEMALE,
           "m": domain.Gender.MALE, "male": domain.Gender.MALE, "男": domain.Gender.MALE,
           "other": domain.Gender.UNDISCLOSED, "undisclosed": domain.Gender.UNDISCLOSED, "保密": domain.Gender.UNDISCLOSED}
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


def _parse_date(text: str) -> tuple[int, int, int] | None:
    """'1990-05-17', '1990/5/17' or '05-17' (no year); None when unreadable."""
    parts = text.strip().replace("/", "-").split("-") if text.strip() else []
    numbers = [files.whole_number(p.strip()) for p in parts]
    if None in numbers:
        return None
    if len(numbers) == 3:
        return numbers[0], numbers[1], numbers[2]
    if len(numbers) == 2:
        return 0, numbers[0], numbers[1]
    return (0, 0, 0) if not numbers else None


def _profile_from_row(cells: dict[str, str], definitions, violations: Violations) -> domain.ProfileInput:
    """Turn the cells of a row into a ProfileInput; unreadable cells become violations."""
    gender = GENDERS.get(cells.get("gender", "").strip().lower())
    violations.check(gender is not None, "gender", "GENDER_INVALID", "gender must be F/M/女/男 or empty")
    dates = {}
    for column in ("birthday", "anniversary"):
        parsed = _parse_date(cells.get(column, ""))
        violations.check(parsed is not None, column, "DATE_INVALID", f"{column} must look like 1990-05-17")
        dates[column] = parsed or (0, 0, 0)
    consent = cells.get("marketing_consent", "").strip().lower()
    violations.check(consent in YES | NO, "marketing_consent", "CONSENT_INVALID", "marketing_consent must be yes/no")
    attributes = {}
    for key, value in cells.items():
        if key.startswith("attr:") and value.strip():
            name = key[5:]
            definition = definitions.get(name)
            kind = definition.type.lower() if definition else "text"
            if kind == "date":
                value = _parse_date(value) or (0, 0, 0)
            attributes[name] = (kind, value.strip() if isinstance(value, str) else value)
    return domain.ProfileInput(
        name=cells.get("name", ""), phone=cells.get("phone", ""), gender=gender or domain.Gender.UNSPECIFIED,
        birthday=dates["birthday"], anniversary=dates["anniversary"],
        home_store_path=cells.get("home_store_path", "").strip(), marketing_consent=consent in YES,
        attributes=attributes, tags=[t for t in TAG_SEPARATORS.split(cells.get("tags", "")) if t.strip()],
    )


def _header(row: list[str]) -> list[str]:
    names = []
    for cell in row:
        cell = cell.strip()
        names.append(cell if cell.lower().startswith("attr:") else files.column_of(COLUMNS, cell))
    if "name" not in names or "phone" not in names:
        raise invalid("content", "HEADER_INVALID", "the first row must name the columns, with at least name and phone")
    return names


async def import_members(session, content: bytes, xlsx: bool, actor_org_path: str) -> ImportResult:
    definitions = await storage.attribute_definitions_by_key(session)
    today = date.today()
    rows = files.read_rows(content, xlsx)
    header = _header(next(rows, []) or [""])
    result = ImportResult()
    valid: list[tuple[int, dict]] = []
    seen_phones: dict[str, int] = {}
    for row_number, row in enumerate(rows, start=2):
        if row_number % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # checking rows is CPU work: let the other calls in
        if not any(cell.strip() for cell in row):
            continue
        result.total_rows += 1
        if result.total_rows > MAX_ROWS:
            raise invalid("content", "TOO_MANY_ROWS", f"a file holds at most {MAX_ROWS} rows; split it")
        cells = {name: cell for name, cell in zip(header, row) if name}
        violations = Violations()
        profile = _profile_from_row(cells, definitions, violations)
        values = domain.check_profile(violations, profile, "", definitions, today)
        phone = values.get("phone")
        if phone and phone in seen_phones:
            violations.add("phone", "PHONE_DUPLICATE_IN_FILE", f"the same phone is on row {seen_phones[phone]}")
        if violations:
            result.rejects += [Reject(row_number, v.field, v.reason, v.description) for v in violations.items]
            continue
        seen_phones[phone] = row_number
        valid.append((row_number, values))
    await _check_home_stores(session, valid, result, actor_org_path)
    rejected = {r.row_number for r in result.rejects}
    valid = [(n, v) for n, v in valid if n not in rejected]
    default_home = domain.store_of(actor_org_path)
    now = utcnow()
    for start in range(0, len(valid), BATCH):
        batch = [
            {**values, "member_id": new_id("m"), "home_store_path": values["home_store_path"] or default_home,
             "channel": domain.Channel.BULK_IMPORT.value, "registered_org_path": actor_org_path, "tier_id": None,
             "create_time": now, "update_time": now}
            for _, values in valid[start:start + BATCH]
        ]
        inserted = set(await insert_new(session, members, batch, conflict="phone"))
        await storage.index_tags(session, {row["member_id"]: row["tags"] for row in batch if row["member_id"] in inserted})
        result.imported_rows += len(inserted)
        result.existing_rows += len(batch) - len(inserted)
    result.rejects.sort(key=lambda r: r.row_number)
    return result


async def _check_home_stores(session, valid, result: ImportResult, actor_org_path: str) -> None:
    """A row's home store is a node there is, under the importing node: a region imports
    members into its own stores only (HQ into any; a till into its store), as it
    registers them."""
    wanted = {values["home_store_path"] for _, values in valid if values["home_store_path"]}
    known = await storage.org_paths_existing(session, wanted)
    scope = domain.store_of(actor_org_path) or actor_org_path
    for row_number, values in valid:
        path = values["home_store_path"]
        if path and not is_under(path, scope):  # said before whether it is there: scope tells nothing
            result.rejects.append(Reject(row_number, "home_store_path", "HOME_STORE_OUT_OF_SCOPE",
                                         f"'{path}' lies outside '{scope}', where the file is imported"))
        elif path and path not in known:
            result.rejects.append(Reject(row_number, "home_store_path", "ORG_NODE_NOT_FOUND", f"no store at '{path}'"))


# The columns the import reads come out under the names it reads (姓名, 手机, 性别, 生日,
# 纪念日, 门店编码, 营销同意, 标签), as it reads them: a file exported can be imported.
EXPORT_COLUMNS = [
    files.Column("会员号", width=30), files.Column("姓名"), files.Column("手机", width=14), files.Column("性别", width=6),
    files.Column("生日", files.DAY), files.Column("纪念日", files.DAY), files.Column("所属门店", width=16),
    files.Column("门店编码", width=18), files.Column("等级"), files.Column("注册渠道", width=10),
    files.Column("注册时间", files.TIME, width=20), files.Column("营销同意", width=8), files.Column("标签", width=20)]


def _day(kept: str | None) -> date | str | None:
    """A stored day ('1990-05-17', or '0000-05-17' with no year) as the export shows it:
    a date, or '05-17' as text (Excel has no day without a year)."""
    if not kept:
        return None
    return kept[5:] if kept.startswith("0000-") else date.fromisoformat(kept)


async def export_rows(connection, query: MemberQuery):
    """Rows of the export, streamed from the database newest first, with the names of
    tiers and stores (read once: a chain has a few tiers and some thousand nodes).
    Phones are exported in full: an export is a back-office act under the caller's
    scope, and the file is what the region asked for. Logs never see it."""
    tier_names = dict((await connection.execute(select(storage.tiers.c.tier_id, storage.tiers.c.name))).all())
    store_names = dict((await connection.execute(select(storage.org_nodes.c.path, storage.org_nodes.c.name))).all())
    result = await connection.stream(select(members).where(query.where()).order_by(members.c.member_id.desc()))
    async for row in result:
        yield [row.member_id, row.name, row.phone, words.chinese(f"GENDER_{row.gender}"), _day(row.birthday),
               _day(row.anniversary), store_names.get(row.home_store_path, ""), row.home_store_path,
               tier_names.get(row.tier_id, ""), words.chinese(f"REGISTRATION_CHANNEL_{row.channel}", row.channel), row.create_time,
               "是" if row.marketing_consent else "否", "、".join(row.tags or [])]
