"""What every page does first: the person's session from its cookie, who they are (the
gateway's GetSelf), the CSRF token of their forms."""

import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp
from jinja2 import pass_context
from starlette.requests import Request

from console.app import NeedLogin
from console.client import UNKNOWN_OUTCOME, Gateway, Refusal
from console.security import SESSION_COOKIE, check_form
from huiyuan.gateway.v1 import gateway_pb2 as pb


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway


def token(request: Request) -> str:
    found = request.cookies.get(SESSION_COOKIE, "")
    if not found:
        raise NeedLogin
    return found


async def signed_in(request: Request) -> pb.GetSelfResponse:
    """The person of the request (NeedLogin without a session; a session the gateway no
    longer knows is UNAUTHENTICATED, and the page goes to the login too)."""
    session = token(request)
    me = await gateway(request).call(gateway(request).gateway.GetSelf, pb.GetSelfRequest(), session)
    request.state.me = me
    request.state.csrf = request.app.state.keys.csrf_token(session)
    return me


async def posted(request: Request):
    """The form of a POST by a signed-in person, its CSRF token checked."""
    me = await signed_in(request)
    form = await request.form()
    check_form(form, request.state.csrf)
    return me, form


def today(request: Request) -> date:
    return datetime.now(ZoneInfo(request.app.state.settings.chain_time_zone)).date()


def request_id() -> str:
    return str(uuid.uuid4())


def form_request_id(form) -> str:
    """The request_id a form was rendered with (a hidden field, chosen once per render),
    so that the form sent twice - a double click, a reload of the answer - is the same
    request to the gateway, which answers it again and moves nothing twice; a new one if
    the form carries none or a forged one."""
    given = str(form.get("request_id", ""))
    try:
        return str(uuid.UUID(given))
    except ValueError:
        return request_id()


def refused_form(request: Request, refusal: Refusal, form, *key: object) -> str:
    """The message for a form redrawn after refusal. When the answer says nothing was done,
    the gateway's message, and the form is drawn with a new request_id. Otherwise the
    outcome is unknown (a deadline passed, a service was unavailable): the form named by
    the request's path and key is drawn again with the request_id it was sent with
    (`form_id`), so that sending it again completes the change at most once."""
    if refusal.nothing_done:
        return refusal.message
    request.state.kept_request_id = ((request.url.path, *(str(k) for k in key)), form_request_id(form))
    return UNKNOWN_OUTCOME


@pass_context
def form_id(context, action: str = "", *key: object) -> str:
    """A form's request_id as it is rendered (a template's `new_id(action, key...)`): the
    one it was sent with when it is the form redrawn after an unknown outcome
    (`refused_form`), else a new one."""
    request = context.get("request")
    kept = getattr(request.state, "kept_request_id", None) if request is not None else None
    if kept is not None and kept[0] == (action, *(str(k) for k in key)):
        return kept[1]
    return request_id()


# The days a form may name (as huiyuan.runtime.convert's): the gateway refuses a time
# outside them, and a day's end (the next day's start) or its start in UTC (0001-01-01 in
# Shanghai is 0000-12-31 there) would go past what a datetime or a Timestamp holds.
FIRST_DAY, LAST_DAY = date(2, 1, 1), date(9998, 12, 31)
DAY_OUT_OF_RANGE = "日期超出范围。"


def in_chain_zone(request: Request, day: date, end: bool = False) -> Timestamp | None:
    """The start of a business day (or of the next one, for a period's end) in the
    chain's time zone, as a protobuf Timestamp; None for a day outside FIRST_DAY to
    LAST_DAY (the form says DAY_OUT_OF_RANGE beside it)."""
    if not FIRST_DAY <= day <= LAST_DAY:
        return None
    zone = ZoneInfo(request.app.state.settings.chain_time_zone)
    moment = datetime.combine(day + timedelta(days=1) if end else day, time.min, zone)
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def local_time(request: Request, stamp) -> str:
    """A protobuf Timestamp as the chain's local time, to the minute."""
    if not stamp.seconds and not stamp.nanos:
        return ""
    zone = ZoneInfo(request.app.state.settings.chain_time_zone)
    return stamp.ToDatetime(tzinfo=ZoneInfo("UTC")).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def role_name(me: pb.GetSelfResponse) -> str:
    if me.HasField("person"):
        return pb.PersonRole.Name(me.person.role).removeprefix("PERSON_ROLE_")
    return pb.Role.Name(me.role).removeprefix("ROLE_")


def may_configure_marketing(me: pb.GetSelfResponse) -> bool:
    return role_name(me) in ("REGIONAL_MANAGER", "HQ_ADMIN", "MARKETING")


def is_hq_admin(me: pb.GetSelfResponse) -> bool:
    return role_name(me) == "HQ_ADMIN"
