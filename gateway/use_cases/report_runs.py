"""RunReport and ExportReport (docs/reports.md): the back offices' reports, composed from
the rollups each service keeps of its own facts - the gateway's of the sales, the
member service's of members and visits, the wallet's of stored value, count cards and
top-ups, the points service's of points, the campaign service's of campaigns and
coupons - asked for at once, for the period, the one before and the same a year
earlier. What each figure means, and where it comes from: docs/reports.md.
"""

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from gateway.domain import report_tables as t
from gateway.domain.callers import Caller, denied
from gateway.domain.report_tables import Metric, Table, measure, ratio
from gateway.storage import sales_facts
from gateway.use_cases.relay import relayed
from huiyuan.campaign.v1 import campaign_pb2
from huiyuan.common.v1 import rollup_pb2
from huiyuan.database import Database, RollupQuery, RollupRow
from huiyuan.member.v1 import member_pb2, membership_pb2
from huiyuan.points.v1 import points_pb2
from huiyuan.runtime import files, words
from huiyuan.runtime.clock import today
from huiyuan.runtime.convert import calendar_day
from huiyuan.runtime.errors import NotFound
from huiyuan.runtime.periods import DAY, MONTH, NEVER_EXPIRES, Period

GATEWAY = "gateway"
log = logging.getLogger("huiyuan.gateway.reports")
TREND_DAY, TREND_WEEK, TREND_MONTH = "day", "week", "month"
WEEKDAYS = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
MOVEMENT_WORDS = {  # the ledgers' entry and movement kinds, as a finance department reads them
    "TOP_UP": "充值",
    "TOP_UP_BONUS": "充值赠送",
    "TOP_UP_REFUND": "充值退款",
    "CONSUMPTION": "消费",
    "CONSUMPTION_REFUND": "消费退回",
    "ADJUSTMENT": "调整",
    "GRANT": "获得",
    "SPEND": "使用",
    "EXPIRE": "过期",
    "REVERSAL": "退货扣回",
}


@dataclass(frozen=True)
class Ask:
    """One rollup query, of one source (the gateway's own rollups or a service's)."""

    source: str
    query: RollupQuery


async def fetch(services, database: Database, asks: list[Ask]) -> list[list[RollupRow]]:
    """The answers to every ask, in order: one call per service, all at once."""
    unique = list(dict.fromkeys(asks))  # a year's period before is the year earlier: asked once
    by_source: dict[str, list[int]] = {}
    for i, ask in enumerate(unique):
        by_source.setdefault(ask.source, []).append(i)
    answers: list[list[RollupRow]] = [[] for _ in unique]

    async def local(indexes: list[int]) -> None:
        async with database.reading() as tx:
            for i in indexes:
                answers[i] = await sales_facts.query(tx, unique[i].query)

    async def remote(source: str, indexes: list[int]) -> None:
        request = rollup_pb2.QueryRollupsRequest(queries=[_message(unique[i].query) for i in indexes])
        async with relayed(source):
            response = await services.rollups[source].QueryRollups(request)
        for i, result in zip(indexes, response.results):
            answers[i] = [
                RollupRow(
                    r.org_path,
                    date(r.day.year, r.day.month, r.day.day) if r.HasField("day") else None,
                    r.key,
                    dict(r.measures),
                )
                for r in result.rows
            ]

    await asyncio.gather(*(local(ix) if source == GATEWAY else remote(source, ix) for source, ix in by_source.items()))
    position = {ask: i for i, ask in enumerate(unique)}
    return [answers[position[ask]] for ask in asks]


def _message(q: RollupQuery) -> rollup_pb2.RollupQuery:
    bucket = {"": 0, DAY: rollup_pb2.ROLLUP_BUCKET_DAY, MONTH: rollup_pb2.ROLLUP_BUCKET_MONTH}[q.bucket]
    message = rollup_pb2.RollupQuery(
        rollup=q.rollup,
        org_path=q.node,
        last_day=calendar_day(q.last),
        grouping=rollup_pb2.RollupGrouping(by_child=q.by_child, bucket=bucket, by_key=q.by_key),
        keys=list(q.keys),
        count_distinct_keys=q.distinct_keys,
        counted_measure=q.counted,
    )
    if q.first is not None:
        message.first_day.CopyFrom(calendar_day(q.first))
    return message


def sums(rows: list[RollupRow]) -> dict[str, int]:
    """The measures of rows added up."""
    out: dict[str, int] = {}
    for r in rows:
        for m, v in r.measures.items():
            out[m] = out.get(m, 0) + v
    return out


def by(rows: list[RollupRow], field: str) -> dict:
    """Rows' measures added up by path, day or key."""
    out: dict = {}
    for r in rows:
        into = out.setdefault(getattr(r, field), {})
        for m, v in r.measures.items():
            into[m] = into.get(m, 0) + v
    return out


# ---------------------------------------------------------------------- the request


@dataclass(frozen=True)
class Report:
    node: str
    period: Period
    trend: str  # TREND_DAY, TREND_WEEK or TREND_MONTH

    @property
    def periods(self) -> list[Period]:
        return [self.period, self.period.previous(), self.period.year_earlier()]


def default_trend(period: Period) -> str:
    return TREND_DAY if period.days <= 31 else TREND_WEEK if period.days <= 92 else TREND_MONTH


async def start(services, caller: Caller, node: str, period: Period, trend: str) -> tuple[Report, dict[str, str]]:
    """The report's request, checked against the caller's scope and the org tree."""
    node = node or caller.org_path
    if not caller.covers(node):
        raise denied()
    names = await services.org_names.of(services.org, node)
    return Report(node, period, trend or default_trend(period)), names


def q(rollup: str, r: Report, period: Period | None = None, **how) -> RollupQuery:
    p = period or r.period
    return RollupQuery(rollup=rollup, node=r.node, first=p.first, last=p.last, **how)


def as_of(rollup: str, node: str, day: date, **how) -> RollupQuery:
    return RollupQuery(rollup=rollup, node=node, first=None, last=day, **how)


def trend_query(rollup: str, r: Report, **how) -> RollupQuery:
    return q(rollup, r, bucket=MONTH if r.trend == TREND_MONTH else DAY, **how)


def trend_rows(rows: list[RollupRow], r: Report) -> list[tuple[date, dict[str, int]]]:
    """The trend's buckets in order, each with its sums (a week starts on Monday)."""
    out: dict[date, dict[str, int]] = {}
    for row in rows:
        assert row.day is not None
        start = row.day - timedelta(days=row.day.weekday()) if r.trend == TREND_WEEK else row.day
        into = out.setdefault(start, {})
        for m, v in row.measures.items():
            into[m] = into.get(m, 0) + v
    return sorted(out.items())


def child_name(names: Mapping[str, str], path: str) -> str:
    return names.get(path, path.rsplit("/", 1)[-1])


# ---------------------------------------------------------------------- 经营概况


SALES_METRICS = [
    Metric("orders", "订单数", t.COUNT, measure("orders")),
    Metric("units", "商品件数", t.COUNT, measure("units")),
    Metric("gross_fen", "商品原价", t.MONEY, measure("gross_fen")),
    Metric("member_price_fen", "会员价优惠", t.MONEY, measure("member_price_fen")),
    Metric("campaign_fen", "活动优惠", t.MONEY, measure("campaign_fen")),
    Metric("coupon_fen", "优惠券优惠", t.MONEY, measure("coupon_fen")),
    Metric("net_fen", "销售额", t.MONEY, measure("net_fen")),
    Metric("points_offset_fen", "其中积分抵扣", t.MONEY, measure("points_offset_fen")),
    Metric("stored_value_fen", "其中储值支付", t.MONEY, measure("stored_value_fen")),
    Metric("refunds", "退货单数", t.COUNT, measure("refunds")),
    Metric("refunded_fen", "退货金额", t.MONEY, measure("refunded_fen")),
    Metric("net_after_refunds_fen", "净销售额", t.MONEY, lambda s: s.get("net_fen", 0) - s.get("refunded_fen", 0)),
    Metric("average_ticket_fen", "客单价", t.MONEY, ratio("net_fen", "orders")),
    Metric("members", "消费会员数", t.COUNT, measure("members")),
    Metric("orders_per_member", "人均单数", t.HUNDREDTHS, ratio("orders", "members", 100)),
]
TENDER_WORDS = {
    "CASH": "现金",
    "BANK_CARD": "银行卡",
    "WECHAT_PAY": "微信支付",
    "ALIPAY": "支付宝",
    "STORED_VALUE": "储值",
    "POINTS": "积分抵扣",
}


async def sales(services, database: Database, r: Report, names: Mapping[str, str]) -> list[Table]:
    asks = [Ask(GATEWAY, q("sales", r, p)) for p in r.periods]
    asks += [Ask("member", q("visitors", r, p, distinct_keys=True, counted="orders")) for p in r.periods]
    asks += [
        Ask(GATEWAY, q("tenders", r, by_key=True)),
        Ask(GATEWAY, q("sales", r, by_child=True)),
        Ask("member", q("visitors", r, by_child=True, distinct_keys=True, counted="orders")),
        Ask(GATEWAY, trend_query("sales", r)),
    ]
    answers = await fetch(services, database, asks)
    periods = []
    for i in range(3):
        period_sums = sums(answers[i])
        period_sums["members"] = sums(answers[3 + i]).get("distinct_keys", 0)
        periods.append(period_sums)
    summary = t.compared("summary", "经营概况", SALES_METRICS, periods)
    tenders = Table(
        "by_tender",
        "支付方式",
        [("tender", "支付方式"), ("paid_fen", "收款"), ("refunded_fen", "退款"), ("net_fen", "净额")],
    )
    for key, s in sorted(by(answers[6], "key").items(), key=lambda i: -i[1].get("paid_fen", 0)):
        paid, back = s.get("paid_fen", 0), s.get("refunded_fen", 0)
        tenders.add([t.text(TENDER_WORDS.get(key, key)), t.money(paid), t.money(back), t.money(paid - back)])
    members_of = {path: s.get("distinct_keys", 0) for path, s in by(answers[8], "path").items()}
    children = Table(
        "children",
        "下级排名",
        [
            ("rank", "排名"),
            ("name", "名称"),
            ("orders", "订单数"),
            ("net_fen", "销售额"),
            ("refunded_fen", "退货金额"),
            ("net_after_refunds_fen", "净销售额"),
            ("average_ticket_fen", "客单价"),
            ("members", "消费会员数"),
            ("share", "销售占比"),
        ],
    )
    total_net = periods[0].get("net_fen", 0) - periods[0].get("refunded_fen", 0)
    child_sums = [
        (path, {**s, "net_after": s.get("net_fen", 0) - s.get("refunded_fen", 0)})
        for path, s in by(answers[7], "path").items()
    ]
    for rank, path, s in t.ranked(child_sums, "net_after"):
        children.add(
            [
                t.count(rank),
                t.text(child_name(names, path)),
                t.count(s.get("orders", 0)),
                t.money(s.get("net_fen", 0)),
                t.money(s.get("refunded_fen", 0)),
                t.money(s["net_after"]),
                t.per(s.get("net_fen", 0), s.get("orders", 0)),
                t.count(members_of.get(path, 0)),
                t.rate(s["net_after"], total_net),
            ],
            path,
        )
    trend = Table(
        "trend",
        "趋势",
        [
            ("day", "日期"),
            ("orders", "订单数"),
            ("net_fen", "销售额"),
            ("refunded_fen", "退货金额"),
            ("average_ticket_fen", "客单价"),
        ],
    )
    for start_day, s in trend_rows(answers[9], r):
        trend.add(
            [
                t.day(start_day),
                t.count(s.get("orders", 0)),
                t.money(s.get("net_fen", 0)),
                t.money(s.get("refunded_fen", 0)),
                t.per(s.get("net_fen", 0), s.get("orders", 0)),
            ]
        )
    return [summary, tenders, children, trend]


# ---------------------------------------------------------------------- 会员分析


MEMBER_METRICS = [
    Metric("new_members", "新注册会员", t.COUNT, measure("new_members")),
    Metric("active_members", "消费会员", t.COUNT, measure("active_members")),
    Metric("first_time_buyers", "首次消费会员", t.COUNT, measure("first_time_buyers")),
    Metric(
        "returning_rate",
        "回头客占比",
        t.RATE,
        lambda s: t.rate(s.get("active_members", 0) - s.get("first_time_buyers", 0), s.get("active_members", 0)).value,  # type: ignore[return-value]
        compare=False,
    ),
    Metric("spend_fen", "会员消费额", t.MONEY, measure("spend_fen")),
]


async def members(services, database: Database, r: Report, names: Mapping[str, str]) -> list[Table]:
    asks: list[Ask] = []
    for p in r.periods:
        asks += [
            Ask("member", q("registrations", r, p)),
            Ask("member", q("visitors", r, p, distinct_keys=True, counted="orders")),
            Ask("member", q("first_visits", r, p)),
            Ask("member", q("visitors", r, p)),
        ]
    asks += [
        Ask("member", q("registrations", r, by_key=True)),
        Ask("member", as_of("tiers", r.node, r.period.last, by_key=True)),
        Ask("member", q("tier_moves", r, by_key=True)),
        Ask("member", q("registrations", r, by_child=True)),
        Ask("member", q("visitors", r, by_child=True, distinct_keys=True, counted="orders")),
        Ask("member", trend_query("registrations", r)),
    ]
    answers, snapshot, tiers = await asyncio.gather(
        fetch(services, database, asks), _summary_of_members(services, r.node), _tier_names(services)
    )
    periods = []
    for i in range(3):
        a = answers[4 * i : 4 * i + 4]
        periods.append(
            {
                "new_members": sums(a[0]).get("members", 0),
                "active_members": sums(a[1]).get("distinct_keys", 0),
                "first_time_buyers": sums(a[2]).get("members", 0),
                "spend_fen": sums(a[3]).get("spend_fen", 0),
            }
        )
    tables = [t.compared("summary", "会员概况", MEMBER_METRICS, periods)]
    now = Table("now", "当前会员", [("metric", "指标"), ("value", "数值")], note="按今天计算，不随所选期间变化。")
    now.add([t.text("会员总数"), t.count(snapshot.members)])
    now.add([t.text("沉睡会员（90天未消费）"), t.count(snapshot.quiet_members)])
    now.add([t.text("从未消费会员"), t.count(snapshot.never_visited)])
    now.add([t.text("未来30天生日会员"), t.count(snapshot.birthday_members_next_30_days)])
    tables.append(now)
    channels = Table("by_channel", "注册渠道", [("channel", "渠道"), ("members", "新会员")])
    for key, s in sorted(by(answers[12], "key").items()):
        channels.add([t.text(words.chinese(f"REGISTRATION_CHANNEL_{key}", key)), t.count(s.get("members", 0))])
    tables.append(channels)
    distribution = Table(
        "tiers", "期末等级分布", [("tier", "等级"), ("members", "人数"), ("share", "占比")], note="截至期末的会员等级。"
    )
    tier_counts = by(answers[13], "key")
    total = sum(s.get("members", 0) for s in tier_counts.values())
    for key, s in sorted(tier_counts.items(), key=lambda i: tiers.get(i[0], ("", 0))[1]):
        if s.get("members", 0):
            distribution.add(
                [t.text(tiers.get(key, ("无等级", 0))[0]), t.count(s["members"]), t.rate(s["members"], total)]
            )
    tables.append(distribution)
    moves = Table(
        "tier_moves", "等级变动", [("from", "原等级"), ("to", "新等级"), ("direction", "方向"), ("members", "人数")]
    )
    for key, s in sorted(by(answers[14], "key").items()):
        before, _, after = key.partition(">")
        up = tiers.get(after, ("", 0))[1] > tiers.get(before, ("", -1))[1]
        moves.add(
            [
                t.text(tiers.get(before, ("无等级", 0))[0]),
                t.text(tiers.get(after, ("无等级", 0))[0]),
                t.text("升级" if up else "降级"),
                t.count(s.get("members", 0)),
            ]
        )
    tables.append(moves)
    active_of = {path: s.get("distinct_keys", 0) for path, s in by(answers[16], "path").items()}
    children = Table(
        "children", "下级", [("name", "名称"), ("new_members", "新注册会员"), ("active_members", "消费会员")]
    )
    registered = by(answers[15], "path")
    for path in sorted(set(registered) | set(active_of)):
        children.add(
            [
                t.text(child_name(names, path)),
                t.count(registered.get(path, {}).get("members", 0)),
                t.count(active_of.get(path, 0)),
            ],
            path,
        )
    tables.append(children)
    trend = Table("trend", "新会员趋势", [("day", "日期"), ("new_members", "新注册会员")])
    for start_day, s in trend_rows(answers[17], r):
        trend.add([t.day(start_day), t.count(s.get("members", 0))])
    tables.append(trend)
    return tables


async def _summary_of_members(services, node: str) -> member_pb2.SummarizeMembersResponse:
    """The member service's snapshot of the node's members now (quiet, birthdays, RFM)."""
    request = member_pb2.SummarizeMembersRequest(org_path=node, as_of=calendar_day(today()))
    async with relayed("member"):
        return await services.member.SummarizeMembers(request)


async def _tier_names(services) -> dict[str, tuple[str, int]]:
    """tier id -> (name, rank)."""
    from huiyuan.member.v1 import tier_pb2

    async with relayed("member"):
        listed = await services.tiers.ListTiers(tier_pb2.ListTiersRequest())
    return {x.tier_id: (x.name, x.rank) for x in listed.tiers}


# ---------------------------------------------------------------------- 消费行为


async def behaviour(services, database: Database, r: Report, names: Mapping[str, str]) -> list[Table]:
    asks = [
        Ask(GATEWAY, q("hours", r, bucket=DAY, by_key=True)),
        Ask(GATEWAY, q("tier_sales", r, by_key=True)),
        Ask("member", as_of("tiers", r.node, r.period.last, by_key=True)),
        Ask(GATEWAY, q("categories", r, by_key=True)),
    ]
    answers, snapshot, tiers = await asyncio.gather(
        fetch(services, database, asks), _summary_of_members(services, r.node), _tier_names(services)
    )
    heat = [[0] * 7 for _ in range(24)]
    for row in answers[0]:
        assert row.day is not None
        heat[int(row.key or 0)][row.day.weekday()] += row.measures.get("orders", 0)
    hours = Table(
        "hour_weekday",
        "时段 × 星期 订单数",
        [("hour", "时段"), *((f"weekday_{i + 1}", w) for i, w in enumerate(WEEKDAYS))],
    )
    for hour in range(24):
        hours.add([t.text(f"{hour:02d}:00"), *(t.count(n) for n in heat[hour])])
    holders = {k: s.get("members", 0) for k, s in by(answers[2], "key").items()}
    by_tier = Table(
        "by_tier",
        "等级消费",
        [
            ("tier", "等级"),
            ("orders", "订单数"),
            ("net_fen", "销售额"),
            ("average_ticket_fen", "客单价"),
            ("members", "期末会员数"),
            ("orders_per_member", "人均单数"),
        ],
        note="人均单数：期内订单数 ÷ 期末持有该等级的会员数。",
    )
    for key, s in sorted(by(answers[1], "key").items(), key=lambda i: tiers.get(i[0], ("", -1))[1]):
        by_tier.add(
            [
                t.text(tiers.get(key, ("无等级", 0))[0]),
                t.count(s.get("orders", 0)),
                t.money(s.get("net_fen", 0)),
                t.per(s.get("net_fen", 0), s.get("orders", 0)),
                t.count(holders.get(key, 0)),
                t.per(s.get("orders", 0), holders.get(key, 0), t.HUNDREDTHS),
            ]
        )
    categories = Table(
        "categories",
        "热销品类",
        [
            ("rank", "排名"),
            ("category", "品类"),
            ("units", "件数"),
            ("net_fen", "销售额"),
            ("refunded_fen", "退货金额"),
            ("share", "占比"),
        ],
    )
    category_sums = list(by(answers[3], "key").items())
    total = sum(s.get("net_fen", 0) for _, s in category_sums)
    for rank, key, s in t.ranked(category_sums, "net_fen")[:20]:
        categories.add(
            [
                t.count(rank),
                t.text(key or "未分类"),
                t.count(s.get("units", 0)),
                t.money(s.get("net_fen", 0)),
                t.money(s.get("refunded_fen", 0)),
                t.rate(s.get("net_fen", 0), total),
            ]
        )
    rfm = Table(
        "rfm",
        "RFM 分布",
        [("recency", "最近消费(R)"), ("frequency", "消费频次(F)"), ("monetary", "消费金额(M)"), ("members", "人数")],
        note="各维度按本节点会员五等分，5 为最好；按今天计算。",
    )
    for cell in snapshot.rfm_cells:
        rfm.add(
            [
                t.count(cell.recency_score),
                t.count(cell.frequency_score),
                t.count(cell.monetary_score),
                t.count(cell.members),
            ]
        )
    return [hours, by_tier, rfm, categories]


# ---------------------------------------------------------------------- 负债


async def liability(services, database: Database, r: Report, names: Mapping[str, str]) -> list[Table]:
    opening, closing = r.period.first - timedelta(days=1), r.period.last
    now = today()
    asks = [
        Ask("wallet", as_of("stored_value", r.node, opening)),
        Ask("wallet", as_of("stored_value", r.node, closing)),
        Ask("wallet", q("stored_value", r, by_key=True)),
        Ask("wallet", as_of("stored_value", r.node, closing, by_child=True)),
        Ask("points", as_of("points", r.node, opening)),
        Ask("points", as_of("points", r.node, closing)),
        Ask("points", q("points", r, by_key=True)),
        Ask("points", RollupQuery("points_expiring", r.node, now, now + timedelta(days=89), bucket=DAY)),
        Ask("wallet", as_of("count_cards", r.node, opening)),
        Ask("wallet", as_of("count_cards", r.node, closing)),
        Ask("wallet", q("count_cards", r)),
        Ask("campaign", RollupQuery("coupons_outstanding", r.node, now, NEVER_EXPIRES)),
        Ask("campaign", RollupQuery("coupons_outstanding", r.node, now, now + timedelta(days=29))),
        Ask("wallet", as_of("stored_value_by_home", r.node, closing)),
        Ask("wallet", as_of("stored_value_by_home", r.node, closing, by_child=True)),
    ]
    a, policy, unearned_opening, unearned_closing = await asyncio.gather(
        fetch(services, database, asks),
        _offset_policy(services, r.node),
        _unearned(services, r.node, opening),
        _unearned(services, r.node, closing),
    )
    tables = []
    stored = Table(
        "stored_value",
        "储值负债",
        [("item", "项目"), ("principal_fen", "本金"), ("bonus_fen", "赠送"), ("total_fen", "合计")],
        note="期初 + 本期变动 = 期末，按装载门店归属；截至期初前一日和期末日日终。",
    )

    def money_row(label: str, s: Mapping[str, int]) -> None:
        p, b = s.get("principal_fen", 0), s.get("bonus_fen", 0)
        stored.add([t.text(label), t.money(p), t.money(b), t.money(p + b)])

    money_row("期初余额", sums(a[0]))
    moved = {"principal_fen": 0, "bonus_fen": 0}
    for key, s in sorted(by(a[2], "key").items()):
        money_row(MOVEMENT_WORDS.get(key, key), s)
        for m in moved:
            moved[m] += s.get(m, 0)
    money_row("期末余额", sums(a[1]))
    # read in one snapshot (RollupService), opening + movements = closing; a difference
    # would be a bug, shown and logged rather than hidden
    off = {m: sums(a[1]).get(m, 0) - sums(a[0]).get(m, 0) - moved[m] for m in moved}
    if any(off.values()):
        log.error("stored value does not reconcile at %s %s..%s: %s", r.node, r.period.first, r.period.last, off)
        money_row("核对差额", off)
    tables.append(stored)
    by_store = Table(
        "stored_value_by_child",
        "储值余额（按装载门店/区域）",
        [("name", "名称"), ("principal_fen", "本金"), ("bonus_fen", "赠送"), ("total_fen", "合计")],
    )
    for path, s in sorted(by(a[3], "path").items()):
        p, b = s.get("principal_fen", 0), s.get("bonus_fen", 0)
        by_store.add([t.text(child_name(names, path)), t.money(p), t.money(b), t.money(p + b)], path)
    tables.append(by_store)
    tables.append(_stored_value_by_home(r.node, names, sums(a[13]), by(a[14], "path")))
    per_yuan = policy.points_per_yuan or 100
    points = Table(
        "points",
        "积分负债",
        [("item", "项目"), ("points", "积分"), ("value_fen", "折合金额")],
        note=f"折合金额按抵扣比例 {per_yuan} 积分 = 1 元；即将过期：按今天起计，假设期间不再使用。",
    )

    def points_row(label: str, n: int) -> None:
        points.add([t.text(label), t.points(n), t.money(n * 100 // per_yuan)])

    points_row("期初积分", sums(a[4]).get("points", 0))
    for key, kind_sums in sorted(by(a[6], "key").items()):
        points_row(MOVEMENT_WORDS.get(key, key), kind_sums.get("points", 0))
    points_row("期末积分", sums(a[5]).get("points", 0))
    points_row("其中待生效", sums(a[5]).get("pending_points", 0))
    for days in (30, 60, 90):
        last = now + timedelta(days=days - 1)
        points_row(f"{days}天内过期", sum(row.measures.get("points", 0) for row in a[7] if row.day and row.day <= last))
    tables.append(points)
    cards = Table("count_cards", "计次卡", [("item", "项目"), ("amount_fen", "金额")])
    cards.add([t.text("期初未消耗"), t.money(sums(a[8]).get("unearned_fen", 0))])
    period_cards = sums(a[10])
    cards.add([t.text("售出"), t.money(period_cards.get("sold_fen", 0))])
    cards.add([t.text("核销确认"), t.money(period_cards.get("used_fen", 0))])
    cards.add([t.text("退卡"), t.money(period_cards.get("refunded_fen", 0))])
    cards.add([t.text("期末未消耗"), t.money(sums(a[9]).get("unearned_fen", 0))])
    tables.append(cards)
    paid = Table(  # 付费会员 (issue 40): a term's price is earned day by day over the term
        "paid_membership",
        "付费会员未摊销收入",
        [("item", "项目"), ("amount_fen", "金额")],
        note="按会员期逐日摊销（按日舍去到分）；截至期初前一日和期末日日终，退款按退款日计。",
    )
    paid.add([t.text("期初未摊销"), t.money(unearned_opening.unearned_fen)])
    paid.add([t.text("期末未摊销"), t.money(unearned_closing.unearned_fen)])
    tables.append(paid)
    coupons = Table(
        "coupons",
        "优惠券",
        [("item", "项目"), ("coupons", "张数"), ("face_fen", "面值")],
        note="按今天计算；非固定面额券面值计 0。",
    )
    outstanding, soon = sums(a[11]), sums(a[12])
    coupons.add([t.text("未使用"), t.count(outstanding.get("coupons", 0)), t.money(outstanding.get("face_fen", 0))])
    coupons.add([t.text("30天内过期"), t.count(soon.get("coupons", 0)), t.money(soon.get("face_fen", 0))])
    tables.append(coupons)
    return tables


def _stored_value_by_home(
    node: str, names: Mapping[str, str], total: Mapping[str, int], children: Mapping[str, Mapping[str, int]]
) -> Table:
    """The node's members' stored value at the period's end by their home (its children
    where they are homed), as the wallet knows the homes: a home changed a few seconds
    ago may not be applied yet. What is homed at the node itself and at none of its
    children is a row of its own: at the chain, members with no home store or whose
    home the wallet has not learnt yet (归属待定); under a region, members homed at the
    region rather than at one of its stores (本级直属)."""
    table = Table(
        "stored_value_by_home",
        "储值余额（按会员归属门店/区域）",
        [("name", "名称"), ("principal_fen", "本金"), ("bonus_fen", "赠送"), ("total_fen", "合计")],
        note="期末日日终；按会员归属门店计，会员更换归属门店时余额随之转移。",
    )

    def row(label: str, s: Mapping[str, int], path: str = "") -> None:
        p, b = s.get("principal_fen", 0), s.get("bonus_fen", 0)
        table.add([t.text(label), t.money(p), t.money(b), t.money(p + b)], path)

    for path, s in sorted(children.items()):
        row(child_name(names, path), s, path)
    unplaced = {
        m: total.get(m, 0) - sum(s.get(m, 0) for s in children.values()) for m in ("principal_fen", "bonus_fen")
    }
    if any(unplaced.values()) and children:  # a store's are all its own: no such row
        row("归属待定" if "/" not in node else "本级直属", unplaced)
    row("合计", total)
    return table


async def _unearned(services, node: str, day) -> membership_pb2.GetUnearnedRevenueResponse:
    """What of the paid membership terms sold under node is not yet earned at day's end."""
    async with relayed("member"):
        return await services.memberships.GetUnearnedRevenue(
            membership_pb2.GetUnearnedRevenueRequest(as_of_date=calendar_day(day), org_path=node)
        )


async def _offset_policy(services, node: str) -> points_pb2.OffsetPolicy:
    async with relayed("points"):
        return (await services.points.GetOffsetPolicy(points_pb2.GetOffsetPolicyRequest(org_path=node))).policy


# ---------------------------------------------------------------------- 营销效果


async def campaigns(services, database: Database, r: Report, names: Mapping[str, str]) -> list[Table]:
    a = await fetch(
        services,
        database,
        [Ask("campaign", q("campaigns", r, by_key=True)), Ask("campaign", q("coupons", r, by_key=True))],
    )
    by_campaign, by_template = by(a[0], "key"), by(a[1], "key")
    found = await asyncio.gather(
        *(_campaign(services, key) for key in by_campaign), *(_template(services, key) for key in by_template)
    )
    campaigns_found = dict(zip(by_campaign, found[: len(by_campaign)]))
    templates_found = dict(zip(by_template, found[len(by_campaign) :]))
    table = Table(
        "campaigns",
        "活动效果",
        [
            ("campaign", "活动"),
            ("orders", "订单数"),
            ("members", "参与会员"),
            ("discount_fen", "优惠金额"),
            ("budget_fen", "预算"),
            ("budget_used", "预算使用率"),
            ("sales_fen", "带动销售额"),
            ("returned_fen", "退回优惠"),
        ],
        note="预算使用率按活动全部期间的优惠计；其余按所选期间。",
    )
    for key, s in sorted(by_campaign.items(), key=lambda i: -i[1].get("discount_fen", 0)):
        c = campaigns_found[key]
        budget = c.budget_fen if c is not None else 0
        table.add(
            [
                t.text(c.name if c is not None else key),
                t.count(s.get("orders", 0)),
                t.count(s.get("members", 0)),
                t.money(s.get("discount_fen", 0)),
                t.money(budget),
                t.rate(s.get("discount_fen", 0), budget),
                t.money(s.get("sales_fen", 0)),
                t.money(s.get("returned_fen", 0)),
            ]
        )
    coupons = Table(
        "coupon_templates",
        "优惠券效果",
        [
            ("template", "券模板"),
            ("issued", "发放"),
            ("redeemed", "核销"),
            ("redemption_rate", "核销率"),
            ("discount_fen", "优惠金额"),
        ],
    )
    for key, s in sorted(by_template.items()):
        tpl = templates_found[key]
        coupons.add(
            [
                t.text(tpl.name if tpl is not None else key),
                t.count(s.get("issued", 0)),
                t.count(s.get("redeemed", 0)),
                t.rate(s.get("redeemed", 0), s.get("issued", 0)),
                t.money(s.get("discount_fen", 0)),
            ]
        )
    return [table, coupons]


async def _campaign(services, campaign_id: str):
    try:
        async with relayed("campaign"):
            return (
                await services.campaign.GetCampaign(campaign_pb2.GetCampaignRequest(campaign_id=campaign_id))
            ).campaign
    except NotFound:
        return None


async def _template(services, template_id: str):
    try:
        async with relayed("campaign"):
            found = await services.campaign.GetCouponTemplate(
                campaign_pb2.GetCouponTemplateRequest(template_id=template_id)
            )
        return found.template
    except NotFound:
        return None


# ---------------------------------------------------------------------- 绩效


async def staff(services, database: Database, r: Report, names: Mapping[str, str]) -> list[Table]:
    a = await fetch(
        services,
        database,
        [
            Ask(GATEWAY, q("sales", r, by_child=True)),
            Ask(GATEWAY, q("cashiers", r, by_key=True)),
            Ask("wallet", q("top_ups", r, by_key=True)),
            Ask("member", q("registrars", r, by_key=True)),
            Ask("wallet", q("top_ups", r, by_child=True)),
            Ask("member", q("registrations", r, by_child=True)),
        ],
    )
    columns = [
        ("rank", "排名"),
        ("name", "名称"),
        ("orders", "订单数"),
        ("net_fen", "销售额"),
        ("refunds", "退货单数"),
        ("refunded_fen", "退货金额"),
        ("top_ups", "充值笔数"),
        ("top_up_fen", "充值金额"),
        ("members", "注册会员"),
    ]

    def table(name: str, title: str, sales_rows, top_ups, registered, label) -> Table:
        out = Table(name, title, columns)
        keys = set(sales_rows) | set(top_ups) | set(registered)
        merged = [(k, {**sales_rows.get(k, {}), "net_after": sales_rows.get(k, {}).get("net_fen", 0)}) for k in keys]
        for rank, k, s in t.ranked(merged, "net_after"):
            up, reg = top_ups.get(k, {}), registered.get(k, {})
            out.add(
                [
                    t.count(rank),
                    t.text(label(k)),
                    t.count(s.get("orders", 0)),
                    t.money(s.get("net_fen", 0)),
                    t.count(s.get("refunds", 0)),
                    t.money(s.get("refunded_fen", 0)),
                    t.count(up.get("top_ups", 0)),
                    t.money(up.get("principal_fen", 0)),
                    t.count(reg.get("members", 0)),
                ],
                k if "/" in k else "",
            )
        return out

    return [
        table(
            "children",
            "门店/收银台",
            by(a[0], "path"),
            by(a[4], "path"),
            by(a[5], "path"),
            lambda k: child_name(names, k),
        ),
        table(
            "cashiers", "收银员", by(a[1], "key"), by(a[2], "key"), by(a[3], "key"), lambda k: k or "（未登记收银员）"
        ),
    ]


BUILDERS = {
    "SALES": sales,
    "MEMBERS": members,
    "BEHAVIOUR": behaviour,
    "LIABILITY": liability,
    "CAMPAIGNS": campaigns,
    "STAFF": staff,
}
TITLES = {
    "SALES": "经营概况",
    "MEMBERS": "会员分析",
    "BEHAVIOUR": "消费行为",
    "LIABILITY": "负债",
    "CAMPAIGNS": "营销效果",
    "STAFF": "绩效",
}


async def run(services, database: Database, caller: Caller, kind: str, node: str, period: Period, trend: str):
    """(the report, its node's name, its tables)."""
    report, names = await start(services, caller, node, period, trend)
    tables = await BUILDERS[kind](services, database, report, names)
    return report, names.get(report.node, report.node), tables


async def export(
    services, database: Database, caller: Caller, kind: str, node: str, period: Period, trend: str, xlsx: bool
):
    """The report as a file's chunks: a sheet per table (XLSX) or the tables one after
    another under their titles (CSV)."""
    report, name, tables = await run(services, database, caller, kind, node, period, trend)
    file_name = files.export_name(
        TITLES[kind], name, f"{report.period.first:%Y%m%d}-{report.period.last:%Y%m%d}", xlsx=xlsx
    )
    return files.write_tables(file_name, [_sheet(x) for x in tables], xlsx)


KINDS = {
    t.MONEY: files.MONEY,
    t.COUNT: files.COUNT,
    t.POINTS: files.COUNT,
    t.DAY: files.DAY,
    t.RATE: files.RATE,
    t.HUNDREDTHS: files.HUNDREDTHS,
    t.TEXT: files.TEXT,
}


def _sheet(table: Table) -> files.Sheet:
    return files.Sheet(
        table.title,
        [title for _, title in table.columns],
        [[(KINDS[c.kind], c.value) for c in cells] for cells, _ in table.rows],
        table.note,
    )
