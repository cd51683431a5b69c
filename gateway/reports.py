"""What the back office reads of the gateway's own book of orders: a store's day (for
the daily summary) and the orders of a node and period as a CSV or XLSX file (the
consumption report a region opens in Excel)."""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.runtime import files
from huiyuan.runtime.clock import local
from huiyuan.runtime.convert import enum_name, enum_word, from_timestamp
from huiyuan.runtime.db import READ_ONLY
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.requests import check_org_path
from huiyuan.wallet.v1 import wallet_pb2
from gateway import auth, tenders
from gateway.auth import Caller
from gateway.orders import of_node
from gateway.storage import orders, refunds

SOLD = ["PAID", "PARTLY_REFUNDED", "REFUNDED"]
MAX_PERIOD = timedelta(days=93)  # a quarter: longer reports are the data warehouse's
HEADER = ["order_id", "store", "till", "member_id", "time", "state", "list_total", "discount", "sale", "points_offset",
          "stored_value", "other_tenders", "points_used", "points_earned", "units_returned", "refusal_reason"]


@dataclass
class StoreDay:
    """A store's day in the gateway's book of orders."""
    orders: int = 0
    sales: int = 0  # after discounts
    discount: int = 0
    tender_sales: dict[int, int] = field(default_factory=dict)  # TenderKind -> paid with it, stored value aside
    tender_refunds: dict[int, int] = field(default_factory=dict)  # TenderKind -> given back to it


async def store_day(direct, store_path: str, start, end) -> StoreDay:
    """One store's orders created in [start, end), refunded ones counted as sold (their
    refunds are the day's they were made on), and the refunds finished in it."""
    day = StoreDay()
    async with direct.reading() as db:
        sold = (await db.execute(select(orders.c.response).where(
            orders.c.store_path == store_path, orders.c.create_time >= start, orders.c.create_time < end,
            orders.c.state.in_(SOLD)))).all()
        returned = (await db.execute(select(refunds.c.response).join(orders, orders.c.order_id == refunds.c.order_id)
                                     .where(orders.c.store_path == store_path, refunds.c.create_time >= start,
                                            refunds.c.create_time < end, refunds.c.state == "DONE"))).all()
    for row in sold:
        receipt = pb.CheckoutResponse.FromString(row.response).receipt
        day.orders += 1
        day.sales += receipt.list_total_fen - receipt.discount_total_fen
        day.discount += receipt.discount_total_fen
        _add_tenders(day.tender_sales, receipt.tenders)
    for row in returned:
        _add_tenders(day.tender_refunds, pb.RefundResponse.FromString(row.response).tenders)
    return day


def _add_tenders(into: dict[int, int], tenders) -> None:
    for t in tenders:
        if t.kind != pb.TENDER_KIND_STORED_VALUE:
            into[t.kind] = into.get(t.kind, 0) + t.amount_fen


def takings(paid: StoreDay, top_ups) -> dict:
    """The summary's takings, by till tender, from the day's orders and the wallet's
    top-ups and count cards by tender (wallet TopUpTakings); a company's or an online
    top-up was not paid at a till, and is reported apart (a count card is always paid
    at a till)."""
    by_kind: dict[int, pb.TenderTakings] = {}

    def of(kind: int) -> pb.TenderTakings:
        return by_kind.setdefault(kind, pb.TenderTakings(kind=kind))

    for kind, fen in paid.tender_sales.items():
        of(kind).sales_fen += fen
    for kind, fen in paid.tender_refunds.items():
        of(kind).refunded_fen += fen
    apart = {wallet_pb2.TENDER_ENTERPRISE: 0, wallet_pb2.TENDER_ONLINE: 0}
    for t in top_ups:
        if t.tender in apart:
            apart[t.tender] += t.top_up_fen - t.refunded_fen
            continue
        taking = of(tenders.WALLET_TO_TILL[t.tender])
        taking.top_up_fen += t.top_up_fen
        taking.count_card_fen += t.count_card_fen
        taking.refunded_fen += t.refunded_fen + t.count_card_refunded_fen
    for taking in by_kind.values():
        taking.net_fen = taking.sales_fen + taking.top_up_fen + taking.count_card_fen - taking.refunded_fen
    return {"takings": [by_kind[k] for k in sorted(by_kind)],
            "enterprise_top_up_fen": apart[wallet_pb2.TENDER_ENTERPRISE],
            "online_top_up_fen": apart[wallet_pb2.TENDER_ONLINE]}


def check_export(v: Violations, request: pb.ExportOrdersRequest):
    """(node or "", start, end, state or None, xlsx) of a well-formed request."""
    node = check_org_path(v, request.org_path, "org_path", required=False)
    start = from_timestamp(request.start_time) if request.HasField("start_time") else None
    end = from_timestamp(request.end_time) if request.HasField("end_time") else None
    v.check(start is not None, "start_time", "PERIOD_REQUIRED", "start_time is required")
    v.check(end is not None, "end_time", "PERIOD_REQUIRED", "end_time is required")
    if start and end:
        v.check(start < end <= start + MAX_PERIOD, "end_time", "PERIOD_INVALID",
                "end_time must be after start_time, by at most 93 days")
    state = enum_name(pb.OrderState, "ORDER_STATE", request.state)
    v.check(request.state == 0 or state is not None, "state", "STATE_INVALID", "unknown order state")
    return node, start, end, state, files.check_format(v, request.format)


async def export_orders(engine, caller: Caller, request: pb.ExportOrdersRequest):
    """The file's chunks (ExportOrdersResponse), from one read of the orders."""
    v = Violations()
    node, start, end, state, xlsx = check_export(v, request)
    v.raise_if_any()
    node = node or caller.org_path
    if not caller.covers(node):
        raise auth.denied()
    chosen = [of_node(node), orders.c.create_time >= start, orders.c.create_time < end]
    if state:
        chosen.append(orders.c.state == state)
    last_day = local(end - timedelta(microseconds=1))  # the period's end is not in it
    name = f"orders-{node.replace('/', '_')}-{local(start):%Y%m%d}-{last_day:%Y%m%d}.{'xlsx' if xlsx else 'csv'}"
    writer = files.FileWriter(name, HEADER, xlsx, "orders")
    async with engine.connect() as db:  # one connection: the refunds, then the orders streamed
        await db.execution_options(**{READ_ONLY: True})  # on SQLite: no write lock meanwhile
        returned = await _units_returned(db, select(orders.c.order_id).where(*chosen))
        result = await db.stream(select(orders).where(*chosen).order_by(orders.c.create_time, orders.c.order_id))
        rows = (_row(order, returned.get(order.order_id, 0)) async for order in result)
        async for file_name, chunk in writer.stream(rows):
            yield pb.ExportOrdersResponse(file_name=file_name, chunk=chunk)


async def _units_returned(db, chosen_ids) -> dict[str, int]:
    returned: dict[str, int] = {}
    for order_id, lines in await db.execute(select(refunds.c.order_id, refunds.c.lines)
                                            .where(refunds.c.order_id.in_(chosen_ids))):
        returned[order_id] = returned.get(order_id, 0) + sum(lines.values())
    return returned


def _row(order, units_returned: int) -> list:
    """One order as a line of the report; amounts in yuan, as numbers Excel can add up."""
    answer = pb.CheckoutResponse.FromString(order.response) if order.response is not None else None
    r = answer.receipt if answer is not None and answer.HasField("receipt") else None
    amounts = [""] * 9  # an order never paid has no receipt
    if r is not None:
        others = "; ".join(f"{enum_word(pb.TenderKind, t.kind)} {_number(t.amount_fen)}"
                           for t in r.tenders if t.kind != pb.TENDER_KIND_STORED_VALUE)
        amounts = [_number(r.list_total_fen), _number(r.discount_total_fen), _number(r.list_total_fen - r.discount_total_fen),
                   _number(r.points_offset_fen), _number(r.stored_value_paid_fen), others, r.points_used, r.points_earned,
                   units_returned]
    till = order.org_path if order.org_path != order.store_path else ""
    return [order.order_id, order.store_path, till, order.member_id, f"{local(order.create_time):%Y-%m-%d %H:%M:%S}",
            order.state, *amounts, answer.refusal_reason if answer is not None else ""]


def _number(fen: int) -> Decimal:
    """Fen as yuan, exactly: 12345 is 123.45, never a float's 123.4499..."""
    return Decimal(fen).scaleb(-2)
