"""What the 营销 configuration forms share: amounts typed in yuan, dates in the chain's
time zone, the request id a form carries from its rendering, and the gateway's refusal
put back beside the field it names.

The console judges only what it must to build a request (a number is a number); the
rules (a bonus above its threshold, a negative price) are the services', and their
refusal comes back through the gateway to be shown on the form."""

import re
from collections.abc import Callable
from datetime import date, time
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp
from starlette.datastructures import FormData
from starlette.requests import Request

from console.client import FIELD_WORDS, Refusal
from console.pages.common import DAY_OUT_OF_RANGE, in_chain_zone, request_id

# A sign is kept: "-5" is sent as -500 fen for the service to refuse in its own words.
YUAN = re.compile(r"-?\d{1,10}(\.\d{1,2})?")
WHOLE = re.compile(r"-?\d{1,10}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def fen(text: str) -> int | None:
    """Yuan as typed (12, 12.5, 12.50) in fen; None when it is not an amount."""
    text = text.strip()
    if not YUAN.fullmatch(text):
        return None
    negative = text.startswith("-")
    whole, _, cents = text.lstrip("-").partition(".")
    value = int(whole) * 100 + int((cents + "00")[:2])
    return -value if negative else value


def _int32(value: int | None) -> int | None:
    """The value if a protobuf int32 holds it (a larger one would not even make a
    request), else None: the form says it is not a number it can send."""
    return value if value is not None and -(2**31) <= value < 2**31 else None


def whole(text: str) -> int | None:
    """A whole number as typed, for an int32 field."""
    text = text.strip()
    return _int32(int(text)) if WHOLE.fullmatch(text) else None


def percent_bp(text: str) -> int | None:
    """A percentage as typed (50, 12.5) in basis points: the shape of yuan in fen."""
    return _int32(fen(text))


def times_bp(text: str) -> int | None:
    """A multiplier as typed (2, 1.5) in basis points (20000, 15000)."""
    hundredths = fen(text)
    return _int32(hundredths * 100) if hundredths is not None else None


def day_list(text: str) -> list[int] | None:
    """Days as typed, "1 3 5" or "1,3,5"; None when one is not a number."""
    parts = [p for p in re.split(r"[\s,，、]+", text.strip()) if p]
    if not all(p.isdigit() and len(p) <= 2 for p in parts):
        return None
    return [int(p) for p in parts]


def words(text: str) -> list[str]:
    return [p for p in re.split(r"[\s,，、]+", text.strip()) if p]


def local_time(request: Request, text: str, end: bool = False) -> Timestamp | None:
    """A date picked on a form as a moment of the chain's time zone: its first moment,
    or with end, the first moment of the next day (an end is the first moment no longer
    valid)."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return None
    return in_chain_zone(request, day, end)  # None outside FIRST_DAY to LAST_DAY


def day_note(text: str) -> str:
    """What a form says beside a date local_time took nothing of: out of range, or not a day."""
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return "请选择日期。"
    return DAY_OUT_OF_RANGE


def shown_day(request: Request, stamp: Timestamp, end: bool = False) -> str:
    """A moment as the day a form shows (an end: the last day still valid)."""
    if not stamp.seconds and not stamp.nanos:
        return ""
    zone = ZoneInfo(request.app.state.settings.chain_time_zone)
    moment = stamp.ToDatetime().replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
    if end and moment.time() == time.min:
        return date.fromordinal(moment.date().toordinal() - 1).isoformat()
    return moment.date().isoformat()


def form_request_id(form: FormData) -> str:
    """The request id the form was rendered with: the same form sent twice (a double
    click, a reload after a lost answer) is one request to the gateway, done once."""
    sent = str(form.get("request_id", ""))
    return sent if UUID.fullmatch(sent) else request_id()


def values_of(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    return {name: str(form.get(name, "")).strip()[:200] for name in names}


def page_token(request: Request) -> str:
    return request.query_params.get("page_token", "")[:1024]


def by_table(table: dict[str, str]) -> Callable[[str], str]:
    """A field path the service names, without its indexes ("steps.bonus_fen"), looked
    up in table (or its first part), else kept."""

    def name_of(path: str) -> str:
        bare = re.sub(r"\[\d+\]", "", path)
        return table.get(bare) or table.get(bare.split(".")[0]) or bare

    return name_of


def shown_fields(refusal: Refusal, prefix: str, name_of: Callable[[str], str], texts: dict) -> dict[str, str]:
    """The gateway's field violations as the form's fields and their zh-CN text: name_of
    gives the form's field of a path (its prefix taken off); texts words a reason on
    this form, by (form field, reason) or by reason, before the console's common words."""
    shown: dict[str, str] = {}
    for path in refusal.fields:
        name = name_of(path.removeprefix(prefix))
        reason = refusal.reasons.get(path, "")
        worded = texts.get((name, reason)) or texts.get(reason) or FIELD_WORDS.get(reason)
        shown.setdefault(name, worded or "此项填写有误。")
    return shown
