"""What the back office reads of the gateway's own book of orders: a store's day (for
the daily summary) and the orders of a node and period as a CSV or XLSX file (the
consumption report a region opens in Excel); and the rebuild of the gateway's rollups
(the reports of report_runs.py), as every service's use_cases/reports.py has it."""

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from google.rpc import status_pb2

from gateway.domain.callers import Caller, denied
from gateway.storage import reports
from gateway.storage.tables import ROLLUPS
from gateway.use_cases import sales_facts, tenders
from gateway.use_cases.relay import relayed
from gateway.use_cases.segments import count_members
from huiyuan.database import Database
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2, org_pb2
from huiyuan.points.v1 import points_pb2
from huiyuan.runtime import files, words
from huiyuan.runtime.business_time import day_start, local
from huiyuan.runtime.convert import timestamp
from huiyuan.runtime.status import from_status
from huiyuan.wallet.v1 import wallet_pb2

TILL_TENDERS = list(tenders.ON_RECEIPT)  # a column each: 现金, 银行卡, 微信支付, 支付宝
COLUMNS = [
    files.Column("订单号", width=30),
    files.Column("下单时间", files.TIME, width=20),
    files.Column("门店", width=16),
    files.Column("收银台"),
    files.Column("会员号", width=30),
    files.Column("状态", width=8),
    files.Column("商品原价", files.MONEY),
    files.Column("优惠", files.MONEY),
    files.Column("销售额", files.MONEY),
    files.Column("积分抵扣", files.MONEY),
    files.Column("储值支付", files.MONEY),
    *(files.Column(tenders.ON_RECEIPT[kind], files.MONEY) for kind in TILL_TENDERS),
    files.Column("使用积分", files.COUNT),
    files.Column("获得积分", files.COUNT),
    files.Column("退货件数", files.COUNT),
    files.Column("拒绝原因", width=30),
]


@dataclass
class StoreDay:
    """A store's day in the gateway's book of orders."""

    orders: int = 0
    sales: int = 0  # after discounts
    discount: int = 0
    tender_sales: dict[int, int] = field(default_factory=dict)  # TenderKind -> paid with it, stored value aside
    tender_refunds: dict[int, int] = field(default_factory=dict)  # TenderKind -> given back to it


async def store_summary(
    services, database: Database, caller: Caller, store: str, day, date
) -> pb.GetStoreDailySummaryResponse:
    """The store's day, fanned out: orders from the gateway's own book, stored value
    and points from their services, new members from the member service (date: the
    request's, day: it as a date)."""
    if not caller.covers(store):
        raise denied()
    start, end = day_start(day), day_start(day + timedelta(days=1))
    day_request = {"store_path": store, "date": date}
    async with relayed("wallet, points or member"):
        stored, points, new_members, paid = await asyncio.gather(
            services.wallet.GetStoreActivity(wallet_pb2.GetStoreActivityRequest(**day_request)),
            services.points.GetStoreActivity(points_pb2.GetStoreActivityRequest(**day_request)),
            count_members(
                services.member,
                member_pb2.MemberFilter(
                    org_path=store, registered_after=timestamp(start), registered_before=timestamp(end)
                ),
            ),
            store_day(database, store, start, end),
        )
    return pb.GetStoreDailySummaryResponse(
        orders=paid.orders,
        sales_fen=paid.sales,
        discount_fen=paid.discount,
        top_up_fen=stored.top_up_fen,
        stored_value_spent_fen=stored.spent_fen,
        points_earned=points.earned_points,
        points_spent=points.spent_points,
        new_members=new_members,
        top_up_bonus_fen=stored.bonus_fen,
        store_path=store,
        count_card_sold_fen=stored.count_card_sold_fen,
        count_card_used_fen=stored.count_card_used_fen,
        **takings(paid, stored.top_up_takings),
    )


async def store_day(database: Database, store_path: str, start, end) -> StoreDay:
    """One store's orders created in [start, end), refunded ones counted as sold (their
    refunds are the day's they were made on), and the refunds finished in it."""
    day = StoreDay()
    async with database.reading() as tx:
        sold, returned = await reports.store_day(tx, store_path, start, end)
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
    return {
        "takings": [by_kind[k] for k in sorted(by_kind)],
        "enterprise_top_up_fen": apart[wallet_pb2.TENDER_ENTERPRISE],
        "online_top_up_fen": apart[wallet_pb2.TENDER_ONLINE],
    }


async def export_orders(database: Database, org, caller: Caller, node: str, start, end, state: str | None, xlsx: bool):
    """The file's chunks (ExportOrdersResponse), from one read of the orders (checked:
    servicers/checks.py); org is the member service's OrgService, for the names of the
    stores and tills."""
    node = node or caller.org_path
    if not caller.covers(node):
        raise denied()
    names = await _node_names(org, node)
    last_day = local(end - timedelta(microseconds=1))  # the period's end is not in it
    name = f"orders-{node.replace('/', '_')}-{local(start):%Y%m%d}-{last_day:%Y%m%d}.{'xlsx' if xlsx else 'csv'}"
    writer = files.FileWriter(name, COLUMNS, xlsx, "订单")
    rows = (
        _row(order, returned, names)
        async for order, returned in reports.orders_of_period(database, node, start, end, state)
    )
    async for file_name, chunk in writer.stream(rows):
        yield pb.ExportOrdersResponse(file_name=file_name, chunk=chunk)


async def _node_names(org, node: str) -> dict[str, str]:
    """path -> name of node and every node under it (its stores and tills)."""
    names, request = {}, org_pb2.ListOrgNodesRequest(under_path=node, page_size=1000)
    while True:
        async with relayed("member"):
            page = await org.ListOrgNodes(request)
        names.update((n.path, n.name) for n in page.org_nodes)
        if not page.next_page_token:
            return names
        request.page_token = page.next_page_token


def _row(order, units_returned: int, names: dict[str, str]) -> list:
    """One order as a line of the report: amounts in fen (the writer shows yuan), a
    column for each till tender, so that every column adds up."""
    answer = pb.CheckoutResponse.FromString(order.response) if order.response is not None else None
    r = answer.receipt if answer is not None and answer.HasField("receipt") else None
    amounts = [None] * (8 + len(TILL_TENDERS))  # an order never paid has no receipt
    if r is not None:
        paid = dict.fromkeys(TILL_TENDERS, 0)
        for t in r.tenders:
            if t.kind in paid:
                paid[t.kind] += t.amount_fen
        amounts = [
            r.list_total_fen,
            r.discount_total_fen,
            r.list_total_fen - r.discount_total_fen,
            r.points_offset_fen,
            r.stored_value_paid_fen,
            *(fen or None for fen in paid.values()),  # a tender unused: empty
            r.points_used,
            r.points_earned,
            units_returned,
        ]
    till = names.get(order.org_path, order.org_path) if order.org_path != order.store_path else ""
    return [
        order.order_id,
        order.create_time,
        names.get(order.store_path, order.store_path),
        till,
        order.member_id,
        words.chinese(f"ORDER_STATE_{order.state}", order.state),
        *amounts,
        _refusal(order, answer),
    ]


def _refusal(order, answer) -> str:
    """Why a refused order was refused, in the words the till heard (zh-CN)."""
    if order.refusal is not None:
        return from_status(status_pb2.Status.FromString(order.refusal)).zh or ""
    return answer.refusal_reason if answer is not None else ""


async def rebuild(database: Database) -> int:
    """Recompute the gateway's rollups from its orders and refunds (docs/reports.md); how
    many contributions were counted."""
    return await ROLLUPS.rebuild(database, sales_facts.all_facts)
