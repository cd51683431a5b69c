"""The members' snapshot (SummarizeMembers): counts and RFM scores of a node's members,
computed in the database, two statements whose cost grows with the node's members (one
index lookup of visit_stats per member; the RFM ranks sort the visiting ones), never
with the visits' history."""

from datetime import date, timedelta

from sqlalchemy import Date, case, cast, func, literal, select

from huiyuan.database import Transaction, dialect_name, under
from huiyuan.runtime.business_time import CHAIN_ZONE, day_start
from services.member.domain import reports
from services.member.storage.tables import members, visit_stats


def _local_day(tx: Transaction, column, as_of: date):
    """SQL: the business day of a UTC timestamp. On SQLite (development) by the zone's
    offset on as_of (exact for the chain's Asia/Shanghai, which keeps no summer time)."""
    if dialect_name(tx) == "postgresql":
        return cast(func.timezone(str(CHAIN_ZONE), column), Date)
    offset = day_start(as_of).utcoffset() or timedelta()
    return func.date(column, f"{int(offset.total_seconds() // 60):+d} minutes")


def _as_day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


async def summarize(tx: Transaction, org_path: str, as_of: date) -> reports.Summary:
    w = reports.windows(as_of)
    m = members.c
    in_node = under(m.home_store_path, org_path)
    last_visit = (
        select(func.max(visit_stats.c.last_visit_time)).where(visit_stats.c.member_id == m.member_id).scalar_subquery()
    )
    per_member = select(last_visit.label("last_visit"), m.birthday).where(in_node).subquery()
    quiet_before = day_start(w.quiet_before)
    counts = (
        await tx.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((per_member.c.last_visit.is_(None), 1), else_=0)), 0),
                func.coalesce(func.sum(case((per_member.c.last_visit < quiet_before, 1), else_=0)), 0),
                func.coalesce(
                    func.sum(case((func.substr(per_member.c.birthday, 6, 5).in_(w.birthday_days), 1), else_=0)), 0
                ),
            ).select_from(per_member)
        )
    ).one()
    # RFM: each visiting member's last visit day, visits and spend, ranked over the node
    s = visit_stats.c
    per = (
        select(
            s.member_id,
            func.max(s.last_visit_time).label("last_time"),
            func.sum(s.visit_count).label("f"),
            func.sum(s.total_spend_fen).label("mon"),
        )
        .join(members, m.member_id == s.member_id)
        .where(in_node)
        .group_by(s.member_id)
        .cte("per")
    )
    days = select(_local_day(tx, per.c.last_time, as_of).label("d"), per.c.f, per.c.mon).cte("days")
    n = func.count().over()

    def scored(column):
        return literal(1) + literal(reports.QUINTILES) * (func.rank().over(order_by=column) - 1) / n

    ranked = select(
        days.c.d,
        days.c.f,
        days.c.mon,
        scored(days.c.d).label("r"),
        scored(days.c.f).label("fs"),
        scored(days.c.mon).label("ms"),
    ).cte("ranked")
    r = ranked.c
    cells = [
        reports.CellRanges(
            reports.RfmCell(int(row.r), int(row.fs), int(row.ms), int(row.members)),
            (_as_day(row.d_min), _as_day(row.d_max)),
            (int(row.f_min), int(row.f_max)),
            (int(row.m_min), int(row.m_max)),
        )
        for row in await tx.execute(
            select(
                r.r,
                r.fs,
                r.ms,
                func.count().label("members"),
                func.min(r.d).label("d_min"),
                func.max(r.d).label("d_max"),
                func.min(r.f).label("f_min"),
                func.max(r.f).label("f_max"),
                func.min(r.mon).label("m_min"),
                func.max(r.mon).label("m_max"),
            ).group_by(r.r, r.fs, r.ms)
        )
    ]
    total, never, quiet, birthdays = (int(x) for x in counts)
    return reports.summary(as_of, total, never, quiet, birthdays, cells)
