"""Proto <-> Python shapes every service needs: enums by name, timestamps, dates."""

from datetime import UTC, date, datetime

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import date_pb2

# The days and times a request may name. Python's datetime ends at years 1 and 9999, and
# a business day's arithmetic goes past the day it is given: its end (the next day's
# start), its start in UTC (0001-01-01 in Shanghai is 0000-12-31 there), a month's end.
# A year of room on either side keeps all of it inside.
FIRST_DAY, LAST_DAY = date(2, 1, 1), date(9998, 12, 31)


def enum_value(enum_type: EnumTypeWrapper, prefix: str, name: str) -> int:
    return enum_type.Value(f"{prefix}_{name}")


def enum_name(enum_type: EnumTypeWrapper, prefix: str, number: int) -> str | None:
    """The domain name of a proto enum number; None for UNSPECIFIED or an unknown number."""
    try:
        name = enum_type.Name(number)
    except ValueError:
        return None
    name = name.removeprefix(prefix + "_")
    return None if name == "UNSPECIFIED" else name


def enum_word(enum_type: EnumTypeWrapper, number: int) -> str:
    """A proto enum number as a command line takes and prints it, its type's prefix
    (that of its UNSPECIFIED value) left out: CARD_ACTION_REPORT_LOST -> report-lost."""
    prefix = enum_type.Name(0).removesuffix("UNSPECIFIED")
    return enum_type.Name(number).removeprefix(prefix).lower().replace("_", "-")


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def from_timestamp(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def calendar_date(value: date_pb2.Date) -> date | None:
    """A full google.type.Date as a date; None when unset, not a real day, or outside
    FIRST_DAY to LAST_DAY."""
    try:
        day = date(value.year, value.month, value.day)
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


def calendar_day(day: date) -> date_pb2.Date:
    """A date as a google.type.Date."""
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)
