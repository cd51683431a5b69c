"""ECharts options built from the gateway's report tables: plain JSON, put in the page
as a data block (never a script) and drawn by static/console.js. None where a table is
better read as a table."""

from console.formats import chart_number, day_of
from huiyuan.gateway.v1 import gateway_pb2 as pb

PALETTE = ["#c23531", "#2f4554", "#61a0a8", "#d48265", "#91c7ae", "#749f83"]


def _column(table: pb.ReportTable, name: str) -> int | None:
    for i, column in enumerate(table.columns):
        if column.name == name:
            return i
    return None


def trend(table: pb.ReportTable) -> dict | None:
    x = _column(table, "day")
    if x is None or not table.rows:
        return None
    days = []
    for row in table.rows:
        found = day_of(row.cells[x].day)
        days.append(found.isoformat()[5:] if found else "")
    series = []
    for i, column in enumerate(table.columns):
        if i == x or column.name == "average_ticket_fen":
            continue
        is_money = column.name.endswith("_fen")
        series.append(
            {
                "name": column.title + ("（元）" if is_money else ""),
                "type": "line" if is_money else "bar",
                "yAxisIndex": 0 if is_money else 1,
                "data": [chart_number(row.cells[i]) for row in table.rows],
                "smooth": True,
                "barMaxWidth": 24,
            }
        )
    return {
        "color": PALETTE,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 60, "right": 50, "top": 40, "bottom": 30},
        "xAxis": {"type": "category", "data": days},
        "yAxis": [{"type": "value", "name": "元"}, {"type": "value", "name": "数量"}],
        "series": series,
    }


def ranked(table: pb.ReportTable, measure: str = "net_after_refunds_fen") -> dict | None:
    name, value = _column(table, "name"), _column(table, measure)
    if value is None:
        value = next((i for i, c in enumerate(table.columns) if c.name.endswith("_fen") or c.name == "orders"), None)
    if name is None or value is None or not table.rows:
        return None
    rows = list(reversed(table.rows[:15]))  # the best at the top
    return {
        "color": PALETTE[2:],
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 110, "right": 30, "top": 10, "bottom": 30},
        "xAxis": {"type": "value"},
        "yAxis": {"type": "category", "data": [row.cells[name].text for row in rows]},
        "series": [
            {
                "type": "bar",
                "name": table.columns[value].title,
                "barMaxWidth": 28,
                "data": [chart_number(r.cells[value]) for r in rows],
            }
        ],
    }


def heat(table: pb.ReportTable) -> dict | None:
    if not table.rows:
        return None
    weekdays = [c.title for c in table.columns[1:]]
    hours = [row.cells[0].text for row in table.rows]
    data, top = [], 0
    for y, row in enumerate(table.rows):
        for x, cell in enumerate(row.cells[1:]):
            n = chart_number(cell)
            top = max(top, n)
            data.append([x, y, n])
    if not top:
        return None  # no order in the period: "暂无数据" says it better than a blank grid
    return {
        "tooltip": {"position": "top"},
        "grid": {"left": 60, "right": 20, "top": 10, "bottom": 70},
        "xAxis": {"type": "category", "data": weekdays, "splitArea": {"show": True}},
        "yAxis": {"type": "category", "data": hours, "splitArea": {"show": True}},
        "visualMap": {
            "min": 0,
            "max": max(top, 1),
            "calculable": True,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
        },
        "series": [{"type": "heatmap", "name": table.title, "data": data}],
    }


def of_table(table: pb.ReportTable) -> dict | None:
    if table.name == "trend":
        return trend(table)
    if table.name == "children":
        return ranked(table)
    if table.name == "hour_weekday":
        return heat(table)
    return None
