"""Reading and writing the CSV and XLSX files that imports and exports use.

CSV is UTF-8 (a BOM is accepted, and written so Excel opens Chinese text correctly).
XLSX goes through openpyxl in read-only / write-only mode so large files stream.

Every export is written by FileWriter, to one set of conventions, as a back office
reads it in Excel: headers in Chinese; amounts in yuan, as numbers formatted #,##0.00
(never text: a column adds up); times as Excel date-times in the chain's time zone
(naive, as Excel knows no zones), days as dates; ids, phones and card numbers as text
(a phone as a number would show as 1.38E+10). A CSV holds the same values as plain
text: 1234.50, 2026-12-07 18:03:00, 2026-12-07. File names carry local days and times.
"""

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from huiyuan.common.v1 import file_pb2
from huiyuan.runtime.business_time import local
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import FailedPrecondition, Violations, invalid
from huiyuan.runtime.money import yuan_number

CHUNK_BYTES = 256 * 1024
XLSX_MAX_ROWS = 1_048_575  # Excel's 1,048,576 rows, less the header


class FileUnreadable(Exception):
    pass


def check_format(v: Violations, value: int, field: str = "format") -> bool:
    """A request's file format: True for XLSX, False for CSV; anything else is a violation."""
    v.check(
        value in (file_pb2.FILE_FORMAT_CSV, file_pb2.FILE_FORMAT_XLSX),
        field,
        "FORMAT_INVALID",
        f"{field} must be FILE_FORMAT_CSV or FILE_FORMAT_XLSX",
    )
    return value == file_pb2.FILE_FORMAT_XLSX


def column_of(names: dict[str, str], header_cell: str) -> str:
    """The column a header cell names, by names (header text -> column): English in
    any case, Chinese as written; "" for a column nobody reads."""
    cell = header_cell.strip()
    return names.get(cell.lower(), names.get(cell, ""))


def whole_number(cell: str) -> int | None:
    """A cell's whole number of ASCII digits (what a column of amounts or a date's parts
    holds), None for anything else: "²" and "٣" are digits to str.isdigit but not to
    int(), and a row holding one is that row's problem, not the file's."""
    return int(cell) if cell.isascii() and cell.isdigit() else None


def read_rows(content: bytes, xlsx: bool) -> Iterator[list[str]]:
    """Every row of the file as a list of cell texts (the header included)."""
    return _read_xlsx(content) if xlsx else _read_csv(content)


def _read_csv(content: bytes) -> Iterator[list[str]]:
    if b"\x00" in content:  # no text of ours holds one (nor can PostgreSQL store it): UTF-16, or not text
        raise invalid("content", "FILE_UNREADABLE", "the CSV holds NUL characters: save it as CSV (UTF-8)")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = content.decode("gb18030")  # files saved by Excel on Chinese Windows
        except UnicodeDecodeError as error:
            raise invalid("content", "FILE_UNREADABLE", "the CSV is neither UTF-8 nor GB18030") from error
    yield from csv.reader(io.StringIO(text, newline=""))


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):  # from a date cell
        return value.date().isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # phone numbers typed as numbers
    return str(value)


def _read_xlsx(content: bytes) -> Iterator[list[str]]:
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a bad file
        raise invalid("content", "FILE_UNREADABLE", "the file is not an XLSX workbook") from error
    try:
        # A sheet is read as the rows are asked for: a broken one fails there, not above.
        rows = _unbroken(workbook.worksheets[0].iter_rows(values_only=True) if workbook.worksheets else iter(()))
        for number, row in enumerate(rows, start=1):
            cells = [_cell_text(v) for v in row]
            if any("\x00" in cell for cell in cells):  # written as _x0000_ in the sheet's XML
                raise invalid("content", "FILE_UNREADABLE", f"row {number} holds a NUL character")
            yield cells
    finally:
        workbook.close()


def _unbroken(rows: Iterator[tuple[object, ...]]) -> Iterator[tuple[object, ...]]:
    """rows, a sheet that breaks off (its XML cut short, say) refused as unreadable."""
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as error:  # the XML parser's, or openpyxl's, many kinds
            raise invalid("content", "FILE_UNREADABLE", "the workbook's first sheet cannot be read") from error
        yield row


# What a column holds; each cell of a row is given as the Python value below (or None: empty).
TEXT = "text"  # str
MONEY = "money"  # int fen, shown in yuan
COUNT = "count"  # int: points, units
TIME = "time"  # an aware datetime, shown in the chain's time zone
DAY = "day"  # a date; or a str for a day with no year ("05-17"), kept as text
MONEY_FORMAT = "#,##0.00"
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DAY_FORMAT = "yyyy-mm-dd"


@dataclass(frozen=True)
class Column:
    """A column of an export: its header, what its cells hold, its width in Excel."""

    title: str
    kind: str = TEXT
    width: int = 12


def export_name(*parts: str, xlsx: bool) -> str:
    """A file name of parts joined by '-', then the local time it was made, as on the
    back office's clock: members-hq_east-20261207-180337.xlsx."""
    stamp = f"{local(utcnow()):%Y%m%d-%H%M%S}"
    return "-".join(p.replace("/", "_") for p in (*parts, stamp) if p) + (".xlsx" if xlsx else ".csv")


def _plain_text(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


# How a CSV writes a cell of each kind (a value, not None)
CSV_TEXT: dict[str, Callable[[Any], str]] = {
    MONEY: lambda fen: str(yuan_number(fen)),
    TIME: lambda moment: f"{local(moment):%Y-%m-%d %H:%M:%S}",
}


class FileWriter:
    """Rows in, the file's bytes out in chunks, without holding the rows: an export of
    a million rows streams. CSV is encoded as the rows come; XLSX (openpyxl's write-only
    workbook keeps its rows in a temporary file) comes out whole when finished, and is
    refused past the rows Excel can open.

    Each chunk comes as (file_name, bytes), the name on the first chunk only, as the
    export responses carry it.

    usage:  writer = FileWriter("members.csv", columns, xlsx=False, sheet_title="会员")
            async for file_name, chunk in writer.stream(rows): ...
    or, row by row: writer.add(row) for each, then writer.finish().
    """

    def __init__(
        self, file_name: str, columns: list[Column], xlsx: bool, sheet_title: str, chunk_bytes: int = CHUNK_BYTES
    ):
        self.name, self.xlsx, self.chunk_bytes, self.rows = file_name, xlsx, chunk_bytes, 0
        # each column's way to a cell, chosen once: an export writes a million rows
        self.csv_texts = [CSV_TEXT.get(c.kind, _plain_text) for c in columns]
        xlsx_cells: dict[str, Callable[[Any], object]] = {
            MONEY: self._money_cell,
            TIME: self._time_cell,
            DAY: self._day_cell,
            COUNT: lambda n: n,
        }
        self.xlsx_cells = [xlsx_cells.get(c.kind, self._text_cell) for c in columns]
        if xlsx:
            self.workbook = Workbook(write_only=True)
            self.sheet = self.workbook.create_sheet(sheet_title)
            self.sheet.freeze_panes = "A2"  # the header stays in sight as the rows scroll
            for number, column in enumerate(columns, start=1):
                self.sheet.column_dimensions[get_column_letter(number)].width = column.width
            self.sheet.append([self._cell(c.title, Font(bold=True)) for c in columns])
        else:
            self.buffer = io.StringIO()
            self.csv = csv.writer(self.buffer)
            self.buffer.write("\ufeff")  # so Excel reads the Chinese as UTF-8
            self.csv.writerow([c.title for c in columns])

    def _cell(self, value: Any, font: Font | None = None, number_format: str = "", text: bool = False) -> Cell:
        cell = WriteOnlyCell(self.sheet, value)
        if font is not None:
            cell.font = font
        if number_format:
            cell.number_format = number_format
        if text:
            cell.data_type = "s"
        return cell

    def _money_cell(self, fen: int) -> Cell:
        return self._cell(yuan_number(fen), number_format=MONEY_FORMAT)

    def _time_cell(self, moment: datetime) -> Cell:
        # to the second, as the CSV says it and the format shows it
        return self._cell(local(moment).replace(tzinfo=None, microsecond=0), number_format=TIME_FORMAT)

    def _day_cell(self, day: date | str) -> Cell | str:
        return self._cell(day, number_format=DAY_FORMAT) if isinstance(day, date) else day  # "05-17": text

    def _text_cell(self, text: object) -> object:
        # a name typed as "=1+1" is a name: openpyxl would write it as a formula
        return self._cell(text, text=True) if isinstance(text, str) and text.startswith("=") else text

    def _xlsx_row(self, row: list[Any]) -> list[object]:
        return [None if value is None or value == "" else cell(value) for cell, value in zip(self.xlsx_cells, row)]

    def add(self, row: list[Any]) -> list[tuple[str, bytes]]:
        """The chunks ready after this row (none, mostly)."""
        self.rows += 1
        if self.xlsx:
            if self.rows > XLSX_MAX_ROWS:
                self.close()
                raise FailedPrecondition(
                    "TOO_MANY_ROWS",
                    f"More than {XLSX_MAX_ROWS:,} rows: Excel cannot open them. Ask for CSV, or a narrower filter.",
                    f"超过 {XLSX_MAX_ROWS:,} 行，Excel 无法打开：请改用 CSV 或缩小范围。",
                )
            self.sheet.append(self._xlsx_row(row))
            return []
        self.csv.writerow(["" if value is None else text(value) for text, value in zip(self.csv_texts, row)])
        return [self._named(self._take())] if self.buffer.tell() >= self.chunk_bytes else []

    def finish(self) -> list[tuple[str, bytes]]:
        """The rest of the file (at least one chunk, so even an empty file has its header)."""
        if not self.xlsx:
            return [self._named(self._take())]
        out = io.BytesIO()
        self.workbook.save(out)  # closes the sheet and removes its temporary file
        self.sheet = None
        content = out.getvalue()
        return [self._named(content[i : i + self.chunk_bytes]) for i in range(0, len(content), self.chunk_bytes)]

    def close(self) -> None:
        """Let go of an XLSX that will not be finished (refused, or its export cancelled):
        openpyxl keeps the rows in a temporary file until the sheet is closed, which a
        long-running service would otherwise pile up until it restarts."""
        if self.xlsx and self.sheet is not None:
            sheet, self.sheet = self.sheet, None
            sheet.close()
            sheet._writer.cleanup()  # removes the temporary file, as save() does

    async def stream(self, rows: AsyncIterator[list[Any]]) -> AsyncIterator[tuple[str, bytes]]:
        """The whole file, chunk by chunk, from rows as they come."""
        try:
            async for row in rows:
                for chunk in self.add(row):
                    yield chunk
            for chunk in self.finish():
                yield chunk
        finally:
            self.close()

    def _take(self) -> bytes:
        chunk = self.buffer.getvalue().encode("utf-8")
        self.buffer.seek(0)
        self.buffer.truncate()
        return chunk

    def _named(self, chunk: bytes) -> tuple[str, bytes]:
        name, self.name = self.name, ""
        return name, chunk


# A report's cells (gateway ReportCell), each typed on its own: a summary's column holds
# money on one row and a count on the next.
RATE = "rate"  # int basis points, shown as a percentage
HUNDREDTHS = "hundredths"  # int hundredths: 135 is 1.35
RATE_FORMAT = "0.0%"
HUNDREDTHS_FORMAT = "0.00"
COUNT_FORMAT = "#,##0"
_SHEET_NAME_BAD = str.maketrans(dict.fromkeys("[]:*?/\\", "_"))


@dataclass(frozen=True)
class Sheet:
    """A report's table: its title, headers, rows of (kind, value) cells, a note."""

    title: str
    headers: list[str]
    rows: list[list[tuple[str, Any]]]
    note: str = ""


def _report_value(kind: str, value: Any) -> tuple[Any, str]:
    """(the spreadsheet's value, its number format)."""
    if value is None:
        return None, ""
    if kind == MONEY:
        return yuan_number(value), MONEY_FORMAT
    if kind == RATE:
        return Decimal(value).scaleb(-4), RATE_FORMAT
    if kind == HUNDREDTHS:
        return Decimal(value).scaleb(-2), HUNDREDTHS_FORMAT
    if kind == COUNT:
        return value, COUNT_FORMAT
    if kind == DAY:
        return value, DAY_FORMAT
    return value, ""


def _report_text(kind: str, value: Any) -> str:
    if value is None:
        return ""
    number, _ = _report_value(kind, value)
    if kind == RATE:
        return f"{number * 100:.1f}%"
    return number.isoformat() if isinstance(number, date) else str(number)


def write_tables(file_name: str, sheets: list[Sheet], xlsx: bool) -> list[tuple[str, bytes]]:
    """A report's tables as one file's chunks: an XLSX with a sheet per table (the
    header bold and frozen, every cell a number or a date where it is one), or a CSV
    with the tables one after another, each under its title."""
    if not xlsx:
        buffer = io.StringIO()
        buffer.write("\ufeff")
        out = csv.writer(buffer)
        for sheet in sheets:
            out.writerow([sheet.title])
            out.writerow(sheet.headers)
            for row in sheet.rows:
                out.writerow([_report_text(kind, value) for kind, value in row])
            if sheet.note:
                out.writerow([sheet.note])
            out.writerow([])
        content = buffer.getvalue().encode("utf-8")
    else:
        workbook = Workbook()
        for first in workbook.worksheets:  # the one it starts with: a sheet per table instead
            workbook.remove(first)
        used: set[str] = set()
        for sheet in sheets:
            title = sheet.title.translate(_SHEET_NAME_BAD)[:28] or "Sheet"
            while title in used:
                title += "_"
            used.add(title)
            ws = workbook.create_sheet(title)
            ws.append(sheet.headers)
            for cell in ws[1]:
                cell.font = Font(bold=True)
            ws.freeze_panes = "A2"
            for number in range(1, len(sheet.headers) + 1):
                ws.column_dimensions[get_column_letter(number)].width = 16
            for row in sheet.rows:
                ws.append([_report_value(kind, value)[0] for kind, value in row])
                for cell, (kind, value) in zip(ws[ws.max_row], row):
                    cell.number_format = _report_value(kind, value)[1] or cell.number_format
                    if kind == TEXT and isinstance(value, str) and value.startswith("="):
                        cell.data_type = "s"  # a name typed as "=1+1" is a name
            if sheet.note:
                ws.append([])
                ws.append([sheet.note])
        out_bytes = io.BytesIO()
        workbook.save(out_bytes)
        content = out_bytes.getvalue()
    chunks = [content[i : i + CHUNK_BYTES] for i in range(0, len(content), CHUNK_BYTES)] or [b""]
    return [(file_name if i == 0 else "", chunk) for i, chunk in enumerate(chunks)]
