"""Bulk import of members from CSV/XLSX, and export of a filtered member list.

Import validates every row with the same rules as RegisterMember (domain/members.py:
check_profile), then writes in batches of 5,000 rows with INSERT ... ON CONFLICT
(phone) DO NOTHING: rows whose phone is already registered are counted as existing and
left alone, so a re-run imports nothing twice, and 100,000 rows take about 20 round
trips, not 100,000.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from huiyuan.database import Database, Transaction
from huiyuan.runtime import clock, files
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.requests import store_of
from services.member.domain.imports import (
    MAX_ROWS,
    ImportResult,
    Reject,
    check_home_stores,
    export_row,
    header,
    profile_from_row,
    too_many_rows,
)
from services.member.domain.members import Channel, MemberQuery, check_profile
from services.member.storage import attributes, members, org, tiers
from services.member.use_cases.org import require_org_node

BATCH = 5_000
YIELD_EVERY = 500


async def import_members(
    tx: Transaction, content: bytes, xlsx: bool, actor_org_path: str, now: datetime
) -> ImportResult:
    await require_org_node(tx, actor_org_path, "actor.org_path")
    definitions = await attributes.definitions_by_key(tx)
    today = clock.today()
    rows = files.read_rows(content, xlsx)
    columns = header(next(rows, []) or [""])
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
            raise too_many_rows()
        cells = {name: cell for name, cell in zip(columns, row) if name}
        violations = Violations()
        profile = profile_from_row(cells, definitions, violations)
        values = check_profile(violations, profile, "", definitions, today)
        phone = values.get("phone")
        if phone and phone in seen_phones:
            violations.add("phone", "PHONE_DUPLICATE_IN_FILE", f"the same phone is on row {seen_phones[phone]}")
        if violations:
            result.rejects += [Reject(row_number, v.field, v.reason, v.description) for v in violations.items]
            continue
        seen_phones[phone] = row_number
        valid.append((row_number, values))
    known = await org.paths_existing(
        tx, {values["home_store_path"] for _, values in valid if values["home_store_path"]}
    )
    result.rejects += check_home_stores(valid, known, store_of(actor_org_path) or actor_org_path)
    rejected = {r.row_number for r in result.rejects}
    valid = [(n, v) for n, v in valid if n not in rejected]
    default_home = store_of(actor_org_path)
    for start in range(0, len(valid), BATCH):
        batch = [
            {
                **values,
                "member_id": new_id("m"),
                "home_store_path": values["home_store_path"] or default_home,
                "channel": Channel.BULK_IMPORT.value,
                "registered_org_path": actor_org_path,
                "tier_id": None,
                "create_time": now,
                "update_time": now,
            }
            for _, values in valid[start : start + BATCH]
        ]
        inserted = await members.insert_new_members(tx, batch)
        result.imported_rows += len(inserted)
        result.existing_rows += len(batch) - len(inserted)
    result.rejects.sort(key=lambda r: r.row_number)
    return result


# The columns the import reads come out under the names it reads (姓名, 手机, 性别, 生日,
# 纪念日, 门店编码, 营销同意, 标签), as it reads them: a file exported can be imported.
EXPORT_COLUMNS = [
    files.Column("会员号", width=30),
    files.Column("姓名"),
    files.Column("手机", width=14),
    files.Column("性别", width=6),
    files.Column("生日", files.DAY),
    files.Column("纪念日", files.DAY),
    files.Column("所属门店", width=16),
    files.Column("门店编码", width=18),
    files.Column("等级"),
    files.Column("注册渠道", width=10),
    files.Column("注册时间", files.TIME, width=20),
    files.Column("营销同意", width=8),
    files.Column("标签", width=20),
]


@asynccontextmanager
async def exporting(database: Database, query: MemberQuery) -> AsyncIterator[AsyncIterator[list]]:
    """The rows of the export (EXPORT_COLUMNS), streamed from one snapshot of the
    database newest first, with the names of tiers and stores (read once: a chain has a
    few tiers and some thousand nodes)."""
    async with members.snapshot(database) as tx:
        tier_names = await tiers.names(tx)
        store_names = await org.names(tx)

        async def rows() -> AsyncIterator[list]:
            async for member in members.streamed(tx, query):
                yield export_row(member, tier_names, store_names)

        yield rows()
