"""How the console shows the gateway's typed values: yuan from fen, rates from basis
points, days, and the cells of a report's tables (gateway.v1 ReportCell)."""

from datetime import date

from huiyuan.gateway.v1 import gateway_pb2 as pb

ROLE_WORDS = {
    "STORE_MANAGER": "店长",
    "REGIONAL_MANAGER": "区域经理",
    "HQ_ADMIN": "总部管理员",
    "FINANCE": "财务",
    "MARKETING": "市场",
    "TERMINAL": "收银终端",
}


def yuan(fen: int | None) -> str:
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}¥{fen // 100:,}.{fen % 100:02d}"


def rate(bp: int | None) -> str:
    if bp is None:
        return "—"
    return f"{bp / 100:+.1f}%" if bp else "0.0%"


def share(bp: int | None) -> str:
    return "—" if bp is None else f"{bp / 100:.1f}%"


def day_of(d) -> date | None:
    return date(d.year, d.month, d.day) if d.year else None


def cell_value(cell: pb.ReportCell):
    """The cell's value as a number or text (money in fen), None when unset."""
    kind = cell.WhichOneof("value")
    if kind is None:
        return None
    if kind == "day":
        return day_of(cell.day)
    return getattr(cell, kind)


def cell_text(cell: pb.ReportCell, column: str = "") -> str:
    kind = cell.WhichOneof("value")
    if kind is None:
        return "—"
    if kind == "money_fen":
        return yuan(cell.money_fen)
    if kind == "rate_bp":
        return share(cell.rate_bp) if column in ("share", "returning_rate") else rate(cell.rate_bp)
    if kind == "hundredths":
        return f"{cell.hundredths / 100:.2f}"
    if kind == "day":
        found = day_of(cell.day)
        return found.isoformat() if found else "—"
    if kind in ("count", "points"):
        return f"{getattr(cell, kind):,}"
    return str(cell.text)


def chart_number(cell: pb.ReportCell) -> float | int:
    """A cell as a chart plots it: money in yuan, rates in percent."""
    kind = cell.WhichOneof("value")
    if kind == "money_fen":
        return round(cell.money_fen / 100, 2)
    if kind == "rate_bp":
        return round(cell.rate_bp / 100, 2)
    if kind in ("count", "points", "hundredths"):
        return getattr(cell, kind)
    return 0


def role_of(me: pb.GetSelfResponse) -> str:
    """The role word of whoever is signed in: a person's own role, else the key's."""
    if me.HasField("person"):
        name = pb.PersonRole.Name(me.person.role).removeprefix("PERSON_ROLE_")
    else:
        name = pb.Role.Name(me.role).removeprefix("ROLE_")
    return ROLE_WORDS.get(name, name)
