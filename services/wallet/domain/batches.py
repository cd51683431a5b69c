"""Enterprise batches: a company's file of top-ups, one row per member, each row
checked on its own; a row that fails carries its reject reason and the rest load."""

from dataclasses import dataclass

from huiyuan.runtime.errors import invalid
from huiyuan.runtime.ids import is_id
from services.wallet.domain.top_ups import MAX_TOP_UP_FEN

MAX_BATCH_ROWS = 50_000
# The columns a file may name, in English or Chinese.
BATCH_COLUMNS = {"member_id": "member_id", "会员号": "member_id", "amount_fen": "amount_fen", "金额(分)": "amount_fen"}


@dataclass
class BatchRow:
    row_number: int
    member_id: str
    amount: int
    reject_reason: str = ""
    bonus: int = 0  # given with it, once applied


def check_header(header: list[str | None]) -> None:
    if "member_id" not in header or "amount_fen" not in header:
        raise invalid("content", "HEADER_INVALID", "the first row must name the columns member_id and amount_fen")


def check_size(rows_so_far: int) -> None:
    if rows_so_far >= MAX_BATCH_ROWS:
        raise invalid("content", "TOO_MANY_ROWS", f"a batch holds at most {MAX_BATCH_ROWS} rows; split it")


def checked_row(row_number: int, member_id: str, amount: int | None) -> BatchRow:
    """The row, with the reason it is rejected, if any (amount: the cell's whole number)."""
    amount = amount or 0
    if not 0 < amount <= MAX_TOP_UP_FEN:
        amount = 0  # not an amount at all (1e21 in a cell): the row's report says 0
    reason = "MEMBER_ID_INVALID" if not is_id(member_id, "m") else "AMOUNT_INVALID" if not amount else ""
    return BatchRow(row_number, member_id, amount, reason)
