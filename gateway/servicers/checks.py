"""The shape of the gateway's requests: field violations, before any use case runs."""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.domain.callers import Caller
from gateway.use_cases import tenders
from gateway.use_cases.audit import MAX_TARGET_ID
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.runtime import files, pagination
from huiyuan.runtime.convert import calendar_date, enum_name, from_timestamp
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.periods import MAX_DAYS, Kind, period_of
from huiyuan.runtime.requests import check_member_id, check_order_lines, check_org_path, check_request_id

MAX_LINES = 200
MAX_TENDERS = 10
PIN = re.compile(r"^\d{6}$")  # its form only: its rules are the member service's (services/member/domain/pins.py)
MAX_REASON = 200
BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,47}$")  # 48: the wallet's 64 less the store's prefix
MAX_CASHIER_ID = 64
MAX_PERIOD = timedelta(days=93)  # a quarter: longer reports are the data warehouse's


def cashier(v: Violations, cashier_id: str) -> None:
    """The person at the till, as the chain names its staff: the staff report's key."""
    v.check(
        len(cashier_id) <= MAX_CASHIER_ID, "cashier_id", "CASHIER_ID_TOO_LONG", f"at most {MAX_CASHIER_ID} characters"
    )


def checkout(v: Violations, r: pb.CheckoutRequest) -> None:
    check_request_id(v, r.request_id)
    cashier(v, r.cashier_id)
    order(v, r)
    v.check(
        len(r.tenders) <= MAX_TENDERS,
        "tenders",
        "TENDERS_INVALID",
        f"an order is paid by {MAX_TENDERS} tenders at most",
    )
    for i, t in enumerate(r.tenders[:MAX_TENDERS]):
        v.check(
            t.kind in pb.TenderKind.values() and t.kind != 0, f"tenders[{i}].kind", "TENDER_INVALID", "unknown tender"
        )
        v.check(t.amount_fen > 0, f"tenders[{i}].amount_fen", "AMOUNT_INVALID", "a tender pays more than 0 fen")
        v.check(
            len(t.reference) <= 64,
            f"tenders[{i}].reference",
            "TOO_LONG",
            "a tender's reference is 64 characters at most",
        )
    v.check(
        sum(t.kind == pb.TENDER_KIND_STORED_VALUE for t in r.tenders) <= 1,
        "tenders",
        "TENDERS_INVALID",
        "stored value is one tender at most",
    )
    v.check(not (r.card_number and r.qr_token), "qr_token", "CREDENTIALS_INVALID", "a card or a QR code, not both")
    v.check(
        not r.payment_pin or PIN.match(r.payment_pin) is not None, "payment_pin", "PIN_INVALID", "a PIN is 6 digits"
    )


def order(v: Violations, r: pb.CheckoutRequest | pb.PriceOrderRequest) -> None:
    """The order a checkout or a price check names: member, lines, coupons, points."""
    check_member_id(v, r.member_id)
    check_order_lines(v, r.lines, max_lines=MAX_LINES, sku_required=True)
    for i, line in enumerate(r.lines):  # a paid membership's term: one a line (docs/loyalty.md)
        if line.membership_plan_id:
            v.check(
                len(line.membership_plan_id) <= 64,
                f"lines[{i}].membership_plan_id",
                "PLAN_ID_INVALID",
                "membership_plan_id is at most 64 characters",
            )
            v.check(
                line.quantity == 1,
                f"lines[{i}].quantity",
                "PLAN_LINE_QUANTITY_NOT_ONE",
                "a membership plan's line sells one term",
            )
    v.check(
        len(set(r.coupon_codes)) == len(r.coupon_codes) <= 20,
        "coupon_codes",
        "COUPON_CODES_INVALID",
        "at most 20 coupon codes, each once",
    )
    v.check(0 <= r.points_to_use <= 100_000_000, "points_to_use", "POINTS_INVALID", "points_to_use must be 0 or more")


def refund(v: Violations, request: pb.RefundRequest) -> None:
    check_request_id(v, request.request_id)
    cashier(v, request.cashier_id)
    v.check(bool(request.order_id), "order_id", "ORDER_ID_REQUIRED", "order_id is required")
    seen = set()
    for i, line in enumerate(request.lines):
        v.check(line.line_id not in seen, f"lines[{i}].line_id", "LINE_ID_INVALID", "each line once")
        seen.add(line.line_id)
        v.check(line.quantity > 0, f"lines[{i}].quantity", "QUANTITY_INVALID", "quantity must be 1 or more")
    v.check(len(request.reason) <= 200, "reason", "TOO_LONG", "reason is at most 200 characters")


def settlement(v: Violations, request: pb.SettleOrderRequest) -> None:
    check_request_id(v, request.request_id)
    v.check(bool(request.order_id), "order_id", "ORDER_ID_REQUIRED", "order_id is required")
    v.check(
        0 < len(request.reason.strip()) <= MAX_REASON,
        "reason",
        "REASON_REQUIRED",
        f"say why the order may finish without its refused steps (1 to {MAX_REASON} characters)",
    )


def top_up(v: Violations, request: pb.TopUpRequest) -> None:
    check_request_id(v, request.request_id)
    cashier(v, request.cashier_id)
    v.check(
        request.tender in tenders.TILL_TO_WALLET,
        "tender",
        "TENDER_INVALID",
        "tender must be CASH, BANK_CARD, WECHAT_PAY or ALIPAY",
    )


def segment_coupons(v: Violations, request: pb.IssueSegmentCouponsRequest) -> None:
    check_request_id(v, request.request_id)
    v.check(bool(request.template_id), "template_id", "TEMPLATE_ID_REQUIRED", "template_id is required")
    check_org_path(v, request.segment.org_path, "segment.org_path", required=False)
    v.check(
        not (request.segment_id and request.HasField("segment")),
        "segment_id",
        "SEGMENT_GIVEN_TWICE",
        "give segment (a filter) or segment_id (a saved segment), not both",
    )


def batch_top_up(v: Violations, request: pb.BatchTopUpRequest, caller: Caller) -> tuple[str, bool]:
    """The store that took the money, and whether the file is XLSX."""
    check_request_id(v, request.request_id)
    v.check(
        bool(BATCH_ID.match(request.batch_id)),
        "batch_id",
        "BATCH_ID_INVALID",
        "batch_id: 1 to 48 letters, digits or . _ : -",
    )
    xlsx = files.check_format(v, request.format)
    v.check(bool(request.content), "content", "CONTENT_REQUIRED", "content: the file's bytes are required")
    return caller.store_asked(v, request.store_path, "the store that took the money"), xlsx


def export(v: Violations, request: pb.ExportOrdersRequest):
    """(node or "", start, end, state or None, xlsx) of a well-formed request."""
    node = check_org_path(v, request.org_path, "org_path", required=False)
    start = from_timestamp(request.start_time) if request.HasField("start_time") else None
    end = from_timestamp(request.end_time) if request.HasField("end_time") else None
    v.check(start is not None, "start_time", "PERIOD_REQUIRED", "start_time is required")
    v.check(end is not None, "end_time", "PERIOD_REQUIRED", "end_time is required")
    if start and end:
        v.check(
            start < end <= start + MAX_PERIOD,
            "end_time",
            "PERIOD_INVALID",
            "end_time must be after start_time, by at most 93 days",
        )
    state = enum_name(pb.OrderState, "ORDER_STATE", request.state)
    v.check(request.state == 0 or state is not None, "state", "STATE_INVALID", "unknown order state")
    return node, start, end, state, files.check_format(v, request.format)


@dataclass(frozen=True)
class OrderFilter:
    """Which orders ListOrders lists under its node: of a state, a member, a period."""

    state: str | None = None
    member_id: str = ""
    start: datetime | None = None
    end: datetime | None = None


def order_list(v: Violations, request: pb.ListOrdersRequest, caller: Caller):
    """(node, OrderFilter, page size, page position, fingerprint) of ListOrders; the
    token holds to its filters (AIP-158: a page token of other filters is refused)."""
    node = check_org_path(v, request.org_path, "org_path", required=False) or caller.org_path
    state = enum_name(pb.OrderState, "ORDER_STATE", request.state)
    v.check(request.state == 0 or state is not None, "state", "STATE_INVALID", "unknown order state")
    v.check(len(request.member_id) <= 40, "member_id", "MEMBER_ID_INVALID", "member_id is an id, not a text")
    start = from_timestamp(request.start_time) if request.HasField("start_time") else None
    end = from_timestamp(request.end_time) if request.HasField("end_time") else None
    v.check(start is None or end is None or start < end, "end_time", "PERIOD_INVALID", "end_time is after start_time")
    size = pagination.page_size(request.page_size, 50, 500, v)
    wanted = OrderFilter(state, request.member_id, start, end)
    fingerprint = pagination.fingerprint(
        node, state, request.member_id, start.isoformat() if start else "", end.isoformat() if end else ""
    )
    before = pagination.decode(request.page_token, fingerprint, v)
    return node, wanted, size, before, fingerprint


def audit_list(v: Violations, request: pb.ListAuditEntriesRequest, caller: Caller):
    """(node, start, end, page size, page position, fingerprint) of ListAuditEntries."""
    node = check_org_path(v, request.org_path, "org_path", required=False) or caller.org_path
    start = from_timestamp(request.start_time) if request.HasField("start_time") else None
    end = from_timestamp(request.end_time) if request.HasField("end_time") else None
    v.check(start is None or end is None or start < end, "end_time", "PERIOD_INVALID", "end_time is after start_time")
    v.check(
        len(request.key_id) <= 40 and len(request.method) <= 128 and len(request.target_id) <= MAX_TARGET_ID,
        "key_id",
        "TOO_LONG",
        "key_id, method and target_id are ids and names, not texts",
    )
    size = pagination.page_size(request.page_size, 50, 500, v)
    filters = [
        node,
        request.key_id,
        request.method,
        request.target_id,
        start.isoformat() if start else "",
        end.isoformat() if end else "",
    ]
    fingerprint = pagination.fingerprint(*filters)
    before = pagination.decode(request.page_token, fingerprint, v)
    return node, start, end, size, before, fingerprint


REPORT_KINDS = {
    pb.REPORT_KIND_SALES: "SALES",
    pb.REPORT_KIND_MEMBERS: "MEMBERS",
    pb.REPORT_KIND_BEHAVIOUR: "BEHAVIOUR",
    pb.REPORT_KIND_LIABILITY: "LIABILITY",
    pb.REPORT_KIND_CAMPAIGNS: "CAMPAIGNS",
    pb.REPORT_KIND_STAFF: "STAFF",
}
PERIOD_KINDS = {
    pb.PERIOD_KIND_DAY: Kind.DAY,
    pb.PERIOD_KIND_WEEK: Kind.WEEK,
    pb.PERIOD_KIND_MONTH: Kind.MONTH,
    pb.PERIOD_KIND_QUARTER: Kind.QUARTER,
    pb.PERIOD_KIND_YEAR: Kind.YEAR,
    pb.PERIOD_KIND_RANGE: Kind.RANGE,
}
TRENDS = {
    pb.TREND_BUCKET_UNSPECIFIED: "",
    pb.TREND_BUCKET_DAY: "day",
    pb.TREND_BUCKET_WEEK: "week",
    pb.TREND_BUCKET_MONTH: "month",
}


def report(v: Violations, request: pb.RunReportRequest, at: str = ""):
    """(report kind, node or "", Period or None, trend) of a well-formed RunReportRequest."""
    kind = REPORT_KINDS.get(request.report)
    v.check(kind is not None, f"{at}report", "REPORT_INVALID", "name a report: SALES, MEMBERS, ...")
    node = check_org_path(v, request.org_path, f"{at}org_path", required=False)
    period_kind = PERIOD_KINDS.get(request.period.kind)
    v.check(period_kind is not None, f"{at}period.kind", "PERIOD_KIND_INVALID", "name the period's kind")
    day = calendar_date(request.period.day)
    v.check(day is not None, f"{at}period.day", "DAY_INVALID", "a real day is required")
    period = None
    if period_kind == Kind.RANGE and day is not None:
        last = calendar_date(request.period.last_day)
        v.check(last is not None, f"{at}period.last_day", "DAY_INVALID", "a range needs its last day")
        if last is not None and v.check(
            day <= last and (last - day).days < MAX_DAYS,
            f"{at}period.last_day",
            "PERIOD_INVALID",
            f"last_day must be on or after day, by at most {MAX_DAYS} days",
        ):
            period = period_of(Kind.RANGE, day, last)
    elif period_kind is not None and day is not None:
        v.check(
            not request.period.HasField("last_day"),
            f"{at}period.last_day",
            "LAST_DAY_NOT_SUPPORTED",
            "only a RANGE takes last_day",
        )
        period = period_of(period_kind, day)
    trend = TRENDS.get(request.trend)
    v.check(trend is not None, f"{at}trend", "TREND_INVALID", "unknown trend bucket")
    return kind, node, period, trend or ""


def report_export(v: Violations, request: pb.ExportReportRequest):
    return (*report(v, request.report, "report."), files.check_format(v, request.format))
