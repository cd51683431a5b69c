"""报表: every report of RunReport, with period and node pickers, its tables, a chart
where a picture says more, and export to Excel (ExportReport)."""

from datetime import date
from urllib.parse import quote

from google.type import date_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console import charts
from console.app import page
from console.client import Refusal
from console.pages.common import gateway, signed_in, today, token
from huiyuan.common.v1 import file_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import org_pb2

KINDS = {
    "sales": (pb.REPORT_KIND_SALES, "经营概况"),
    "members": (pb.REPORT_KIND_MEMBERS, "会员分析"),
    "behaviour": (pb.REPORT_KIND_BEHAVIOUR, "消费行为"),
    "liability": (pb.REPORT_KIND_LIABILITY, "负债"),
    "campaigns": (pb.REPORT_KIND_CAMPAIGNS, "营销效果"),
    "staff": (pb.REPORT_KIND_STAFF, "绩效"),
}
PERIODS = {
    "day": (pb.PERIOD_KIND_DAY, "日", pb.TREND_BUCKET_DAY),
    "week": (pb.PERIOD_KIND_WEEK, "周", pb.TREND_BUCKET_DAY),
    "month": (pb.PERIOD_KIND_MONTH, "月", pb.TREND_BUCKET_DAY),
    "quarter": (pb.PERIOD_KIND_QUARTER, "季度", pb.TREND_BUCKET_WEEK),
    "year": (pb.PERIOD_KIND_YEAR, "年", pb.TREND_BUCKET_MONTH),
}


def report_request(kind: str, node: str, period: str, day: date) -> pb.RunReportRequest:
    report, _ = KINDS[kind]
    period_kind, _, trend = PERIODS[period]
    return pb.RunReportRequest(
        report=report,
        org_path=node,
        period=pb.ReportPeriod(kind=period_kind, day=date_pb2.Date(year=day.year, month=day.month, day=day.day)),
        trend=trend,
    )


def _choice(request: Request, me: pb.GetSelfResponse):
    """(kind, node, period, day) asked in the query, each defaulted and held to what is
    offered (a bad value is the default, not an error page)."""
    query = request.query_params
    kind = query.get("kind", "sales")
    kind = kind if kind in KINDS else "sales"
    period = query.get("period", "month")
    period = period if period in PERIODS else "month"
    try:
        day = date.fromisoformat(query.get("day", ""))
    except ValueError:
        day = today(request)
    node = query.get("node", "") or me.org_path
    return kind, node[:140], period, day


async def nodes_under(request: Request, me: pb.GetSelfResponse) -> list[org_pb2.OrgNode]:
    """The org nodes the person may pick: their own and those under it (stores, not
    tills), a page of them."""
    gw = gateway(request)
    try:
        answer = await gw.call(
            gw.org.ListOrgNodes, org_pb2.ListOrgNodesRequest(under_path=me.org_path, page_size=200), token(request)
        )
    except Refusal:
        return []
    return [n for n in answer.org_nodes if n.kind != org_pb2.ORG_NODE_KIND_TERMINAL]


async def report_page(request: Request) -> Response:
    me = await signed_in(request)
    kind, node, period, day = _choice(request, me)
    gw = gateway(request)
    answer = await gw.call(gw.gateway.RunReport, report_request(kind, node, period, day), token(request))
    nodes = await nodes_under(request, me)
    drawn = [(table, charts.of_table(table)) for table in answer.tables]
    return page(
        request,
        "reports.html",
        {
            "kinds": {k: title for k, (_, title) in KINDS.items()},
            "periods": {k: title for k, (_, title, _) in PERIODS.items()},
            "kind": kind,
            "node": node,
            "period": period,
            "day": day.isoformat(),
            "nodes": nodes,
            "report": answer,
            "tables": drawn,
            "first_day": f"{answer.first_day.year:04d}-{answer.first_day.month:02d}-{answer.first_day.day:02d}",
            "last_day": f"{answer.last_day.year:04d}-{answer.last_day.month:02d}-{answer.last_day.day:02d}",
        },
    )


async def export(request: Request) -> Response:
    me = await signed_in(request)
    kind, node, period, day = _choice(request, me)
    gw = gateway(request)
    ask = pb.ExportReportRequest(report=report_request(kind, node, period, day), format=file_pb2.FILE_FORMAT_XLSX)
    name, chunks = "report.xlsx", []
    async for part in gw.stream(gw.gateway.ExportReport, ask, token(request)):
        name = part.file_name or name
        chunks.append(part.chunk)
    return Response(
        b"".join(chunks),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"content-disposition": f"attachment; filename=\"report.xlsx\"; filename*=UTF-8''{quote(name)}"},
    )


ROUTES = [Route("/reports", report_page), Route("/reports/export", export)]
