"""Reading and writing the CSV and XLSX files that imports and exports use.

CSV is UTF-8 (a BOM is accepted, and written so Excel opens Chinese text correctly).
XLSX goes through openpyxl in read-only / write-only mode so large files stream.
"""

import csv
import io
from collections.abc import Iterable, Iterator

from openpyxl import Workbook, load_workbook

from huiyuan.common.v1 import file_pb2
from huiyuan.runtime.errors import Violations, invalid


class FileUnreadable(Exception):
    pass


def check_format(v: Violations, value: int, field: str = "format") -> bool:
    """A request's file format: True for XLSX, False for CSV; anything else is a violation."""
    v.check(value in (file_pb2.FILE_FORMAT_CSV, file_pb2.FILE_FORMAT_XLSX), field, "FORMAT_INVALID",
            f"{field} must be FILE_FORMAT_CSV or FILE_FORMAT_XLSX")
    return value == file_pb2.FILE_FORMAT_XLSX


def read_rows(content: bytes, xlsx: bool) -> Iterator[list[str]]:
    """Every row of the file as a list of cell texts (the header included)."""
    return _read_xlsx(content) if xlsx else _read_csv(content)


def _read_csv(content: bytes) -> Iterator[list[str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = content.decode("gb18030")  # files saved by Excel on Chinese Windows
        except UnicodeDecodeError as error:
            raise invalid("content", "FILE_UNREADABLE", "the CSV is neither UTF-8 nor GB18030") from error
    yield from csv.reader(io.StringIO(text, newline=""))


def _cell_text(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "date") and hasattr(value, "hour"):  # datetime from a date cell
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
        for row in workbook.worksheets[0].iter_rows(values_only=True):
            yield [_cell_text(v) for v in row]
    finally:
        workbook.close()


def write_csv(header: list[str], rows: Iterable[list], chunk_bytes: int = 256 * 1024) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
        if buffer.tell() >= chunk_bytes:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def write_xlsx(header: list[str], rows: Iterable[list], sheet_title: str) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title)
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
