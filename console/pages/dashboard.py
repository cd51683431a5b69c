"""首页: the person's node today and this month against last month - sales, orders,
members, new members, stored value loaded and outstanding - with the trend by day, the
children ranked and the hour-of-day heat map. Five reports, asked at once."""

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console import charts
from console.app import page
from console.formats import cell_value
from console.pages.common import gateway, signed_in, today, token
from console.pages.reports import report_request
from huiyuan.gateway.v1 import gateway_pb2 as pb


def table(answer: pb.RunReportResponse, name: str) -> pb.ReportTable | None:
    return next((t for t in answer.tables if t.name == name), None)


def row(answer: pb.RunReportResponse, table_name: str, title: str):
    """The cells of the row of a table whose first cell is title, [] if none."""
    found = table(answer, table_name)
    if found is None:
        return []
    return next((list(r.cells) for r in found.rows if r.cells and r.cells[0].text == title), [])


def figure(cells, i: int):
    return cell_value(cells[i]) if len(cells) > i else None


def compared(answer: pb.RunReportResponse, table_name: str, title: str) -> dict:
    """A summary's line: this period, the one before, the change (basis points)."""
    cells = row(answer, table_name, title)
    return {"this": figure(cells, 1), "previous": figure(cells, 2), "change": figure(cells, 3)}


async def dashboard(request: Request) -> Response:
    me = await signed_in(request)
    gw, session, node, day = gateway(request), token(request), me.org_path, today(request)
    asks = [
        report_request("sales", node, "day", day),
        report_request("sales", node, "month", day),
        report_request("members", node, "month", day),
        report_request("liability", node, "month", day),
        report_request("behaviour", node, "month", day),
    ]
    today_sales, month_sales, members, liability, behaviour = await asyncio.gather(
        *(gw.call(gw.gateway.RunReport, ask, session) for ask in asks)
    )
    loaded = row(liability, "stored_value", "充值")
    outstanding = row(liability, "stored_value", "期末余额")
    total_members = row(members, "now", "会员总数")
    tiles = {
        "today_net": compared(today_sales, "summary", "销售额"),
        "today_orders": compared(today_sales, "summary", "订单数"),
        "month_net": compared(month_sales, "summary", "销售额"),
        "month_orders": compared(month_sales, "summary", "订单数"),
        "month_members": compared(month_sales, "summary", "消费会员数"),
        "new_members": compared(members, "summary", "新注册会员"),
        "members": figure(total_members, 1),
        "loaded": figure(loaded, 3),
        "outstanding": figure(outstanding, 3),
    }
    drawn = {}
    for name, answer, table_name in (
        ("trend", month_sales, "trend"),
        ("children", month_sales, "children"),
        ("heat", behaviour, "hour_weekday"),
    ):
        found = table(answer, table_name)
        drawn[name] = charts.of_table(found) if found is not None else None
    return page(
        request,
        "dashboard.html",
        {"tiles": tiles, "charts": drawn, "org_name": me.org_name or me.org_path, "day": day.isoformat()},
    )


ROUTES = [Route("/", dashboard)]
