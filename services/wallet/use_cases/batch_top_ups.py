"""Enterprise batches: a company's CSV or XLSX file of top-ups, loaded a part at a time."""

from huiyuan.database import Database, Transaction
from huiyuan.runtime import files
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.faults import crash_point
from huiyuan.runtime.ids import new_id
from services.wallet.domain import batches as rules
from services.wallet.domain.batches import BatchRow
from services.wallet.domain.packages import applying
from services.wallet.domain.top_ups import Tender
from services.wallet.storage import accounts, batches, packages
from services.wallet.use_cases.top_ups import top_up

ROWS_AT_ONCE = 500  # rows of a batch per transaction (bench/batch_top_up.py: 20 parts of 10,000 rows in 7.2 s)


def read_rows(content: bytes, xlsx: bool) -> list[BatchRow]:
    """The file's rows, each checked; a row that fails carries its reject reason."""
    rows = files.read_rows(content, xlsx)
    header = [files.column_of(rules.BATCH_COLUMNS, cell) for cell in next(rows, [])]
    rules.check_header(header)
    report: list[BatchRow] = []
    for row_number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        rules.check_size(len(report))
        cells = {name: cell.strip() for name, cell in zip(header, row) if name}
        member_id, amount_text = cells.get("member_id", ""), cells.get("amount_fen", "")
        report.append(rules.checked_row(row_number, member_id, files.whole_number(amount_text)))
    return report


async def load(
    database: Database, *, batch_id: str, rows: list[BatchRow], store_path: str, operator_id: str
) -> list[BatchRow]:
    """Apply the rows a part at a time, each its own transaction: a run cut short (a
    crash, a lost connection) leaves whole parts applied and recorded, and the retry
    applies the rest, reporting the parts before it ALREADY_APPLIED."""
    for start in range(0, len(rows), ROWS_AT_ONCE):
        async with database.transaction() as tx:
            await load_part(
                tx,
                batch_id=batch_id,
                rows=rows[start : start + ROWS_AT_ONCE],
                store_path=store_path,
                operator_id=operator_id,
                new_id=new_id,
                now=utcnow(),
            )
        crash_point("wallet.batch-part-applied")
    return rows


async def load_part(
    tx: Transaction, *, batch_id: str, rows: list[BatchRow], store_path: str, operator_id: str, new_id, now
) -> list[BatchRow]:
    """Apply each valid row not applied before under this batch_id; a re-run of the
    batch reports those rows ALREADY_APPLIED and moves nothing. One transaction: the
    caller gives it a part of the file (ROWS_AT_ONCE), so that a company's 10,000 staff
    are not all locked, for their cashiers too, until the whole file is loaded."""
    numbers = [row.row_number for row in rows if not row.reject_reason]
    if not numbers:
        return rows
    await batches.take_turn(tx, batch_id)  # a twin run reads what this one applied
    done = await batches.applied_rows(tx, batch_id, numbers)
    to_apply = [row for row in rows if not row.reject_reason and row.row_number not in done]
    for row in rows:
        if row.row_number in done:
            row.reject_reason = "ALREADY_APPLIED"
    if not to_apply:
        return rows
    offered = applying(await packages.all_packages(tx), store_path, now)
    locked = await accounts.lock_accounts_of(tx, [row.member_id for row in to_apply], now)
    applied = []
    for row in to_apply:
        top_up_id = new_id("t")
        loaded, _ = await top_up(
            tx,
            top_up_id=top_up_id,
            member_id=row.member_id,
            amount=row.amount,
            tender=Tender.ENTERPRISE,
            tender_reference=batch_id,
            store_path=store_path,
            operator_id=operator_id,
            now=now,
            packages=offered,
            accounts=locked[row.member_id],
        )
        row.bonus = loaded.bonus
        applied.append((row.row_number, row.member_id, row.amount, top_up_id))
    await batches.add_applied(tx, batch_id, applied)
    return rows
