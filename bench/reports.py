"""The back offices' reports on a chain's history, through the gateway, on PostgreSQL.

Seeds a chain of 3,000 stores in 30 regions with two years of history - 5,000,000 orders
in the full run, 200,000 with --quick: each order with its saga decision, a refund of one
line for one order in fifty, the members' visits, and stored value and points moved by
top-ups and spends - bulk-loaded with COPY into each service's schema, then aggregated
by the rebuild (every service's rollups recomputed from those raw records, timed). Then,
with every process running, it measures RunReport one call at a time:
- a region's month of sales (经营概况: the month, the one before, a year earlier, by
  store and by day; the members counted distinct): p50 and p99;
- the chain's year of sales (the same by region and month): p50 and p99;
- the liability report as of now: p50 and p99;
- the same region-month report over a tenth of the history (its last 73 days, as dense),
  loaded and rebuilt in a database of its own and served by services of its own beside
  the whole history's, each call sent to one then to the other (so both sides see the
  machine at the same moments): the ratio of the two p50s shows what the history's
  length costs a report.
Targets on this machine: region month p99 <= 200 ms, chain year p99 <= 1 s, liability
<= 500 ms, ratio <= 1.5.

usage: python bench/reports.py [--quick] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import grpc
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ADMIN_URL, PORT_OFFSET, fresh_database, percentile, pgbench_tps, serving, vacuum
from gateway.domain.callers import Role
from gateway.use_cases import bootstrap
from huiyuan.campaign.v1 import campaign_pb2
from huiyuan.database import migrate
from huiyuan.gateway.v1 import gateway_pb2 as pb, gateway_pb2_grpc, saga_log_pb2
from huiyuan.member.v1 import member_pb2, tier_pb2
from huiyuan.runtime.business_time import CHAIN_ZONE
from huiyuan.runtime.clock import today
from huiyuan.runtime.convert import calendar_day
from huiyuan_cli import launcher
from huiyuan_cli.launcher import SERVICES, spec_of

PORTS = {
    name: port + PORT_OFFSET
    for name, port in {"gateway": 7590, "member": 7591, "wallet": 7592, "points": 7593, "campaign": 7594}.items()
}
TENTH_PORTS = {name: port + 10 for name, port in PORTS.items()}  # the tenth's services, beside
REGIONS, STORES_PER_REGION = 30, 100
DAYS = 730
CATEGORIES = ["生鲜", "饮料", "零食", "日化", "烘焙", "乳品", "冻品", "粮油", "酒水", "家居"]
T0 = "2024-01-01T00:00:00Z"
VARIANTS = 97  # distinct orders (lines, discounts, tenders), each reused; ids and times differ
REFUND_EVERY = 50


def region_of(r: int) -> str:
    return f"hq/r{r:02d}"


def store_of(s: int) -> str:
    return f"{region_of(s // STORES_PER_REGION)}/s{s:04d}"


def member_of(i: int) -> str:
    return f"m_{i:026d}"


def variants(rng: random.Random) -> list[dict]:
    """Orders as the gateway keeps them: the request, the decision, the answer."""
    out = []
    for v in range(VARIANTS):
        lines, items, gross = [], [], 0
        for n in range(1, rng.randint(1, 3) + 1):
            qty, price = rng.randint(1, 4), rng.randint(3_00, 120_00)
            lines.append(
                pb.CheckoutLine(
                    line_id=str(n),
                    sku=f"sku{v}-{n}",
                    category=rng.choice(CATEGORIES),
                    quantity=qty,
                    unit_price_fen=price,
                )
            )
            gross += qty * price
        member_price = gross // 10 if v % 3 == 0 else 0  # a tier's 9折 on a third of the orders
        shares = [line.quantity * line.unit_price_fen * member_price // gross for line in lines]
        shares[0] += member_price - sum(shares)
        for line, share in zip(lines, shares):
            items.append(
                pb.ReceiptItem(
                    line_id=line.line_id,
                    sku=line.sku,
                    quantity=line.quantity,
                    unit_price_fen=line.unit_price_fen,
                    discount_fen=share,
                    payable_fen=line.quantity * line.unit_price_fen - share,
                )
            )
        net = gross - member_price
        kind = [pb.TENDER_KIND_CASH, pb.TENDER_KIND_WECHAT_PAY, pb.TENDER_KIND_ALIPAY, pb.TENDER_KIND_STORED_VALUE][
            v % 4
        ]
        tenders = [pb.Tender(kind=kind, amount_fen=net)]
        request = pb.CheckoutRequest(
            request_id="bench", member_id="m", lines=lines, tenders=tenders, cashier_id=f"c{v % 20:02d}"
        )
        quote = campaign_pb2.QuoteResponse(list_total_fen=gross, discount_total_fen=member_price, payable_fen=net)
        if member_price:
            quote.adjustments.add(
                campaign_id="cp_member_price",
                amount_fen=member_price,
                explanation="会员价",
                kind=campaign_pb2.CAMPAIGN_KIND_TIER_DISCOUNT,
            )
        decision = saga_log_pb2.CheckoutDecision(
            lookup=member_pb2.LookupMemberResponse(tier=tier_pb2.Tier(tier_id=f"t_{v % 3}"))
        )
        decision.quote.CopyFrom(quote)
        receipt = pb.Receipt(
            list_total_fen=gross,
            discount_total_fen=member_price,
            stored_value_paid_fen=net if kind == pb.TENDER_KIND_STORED_VALUE else 0,
            tenders=tenders,
            items=items,
        )
        back = items[0].payable_fen // items[0].quantity
        refund = pb.RefundResponse(
            stored_value_fen=back if kind == pb.TENDER_KIND_STORED_VALUE else 0,
            tenders=[] if kind == pb.TENDER_KIND_STORED_VALUE else [pb.Tender(kind=kind, amount_fen=back)],
            state=pb.ORDER_STATE_PARTLY_REFUNDED,
            spend_returned_fen=back,
        )
        out.append(
            {
                "request": request.SerializeToString(),
                "decision": decision.SerializeToString(),
                "response": pb.CheckoutResponse(state=pb.ORDER_STATE_PAID, receipt=receipt).SerializeToString(),
                "refund": refund.SerializeToString(),
                "net": net,
                "stored_value": receipt.stored_value_paid_fen,
            }
        )
    return out


def seed(url: str, orders: int, days: int, rng: random.Random) -> dict:
    """The chain's history in every schema: how long each part took."""
    took = {}
    for name in SERVICES:
        migrate.upgrade(spec_of(name).migrations_dir, url, name)
    members = max(orders // 10, 1000)
    stores = REGIONS * STORES_PER_REGION
    last = today() - timedelta(days=1)  # history up to yesterday
    first_day = last - timedelta(days=days - 1)
    kinds = variants(rng)
    started = time.perf_counter()
    with psycopg.connect(url) as db:
        db.execute("SET search_path = member")
        with db.cursor().copy(
            "COPY org_nodes (path,code,name,kind,time_zone,parent_path,create_time) FROM STDIN"
        ) as copy:
            copy.write_row(("hq", "hq", "总部", "HQ", "Asia/Shanghai", None, T0))
            for r in range(REGIONS):
                copy.write_row((region_of(r), f"r{r:02d}", f"区域{r:02d}", "REGION", "Asia/Shanghai", "hq", T0))
            for s in range(stores):
                path = store_of(s)
                copy.write_row(
                    (path, f"s{s:04d}", f"门店{s:04d}", "STORE", "Asia/Shanghai", path.rsplit("/", 1)[0], T0)
                )
                copy.write_row((f"{path}/pos-1", "pos-1", "收银台1", "TERMINAL", "Asia/Shanghai", path, T0))
        home = [rng.randrange(stores) for _ in range(members)]
        with db.cursor().copy(
            "COPY members (member_id,name,gender,phone,home_store_path,marketing_consent,attributes,"
            "channel,registered_org_path,create_time,update_time) FROM STDIN"
        ) as copy:
            for i in range(members):
                joined = datetime.combine(first_day - timedelta(days=rng.randrange(365)), datetime.min.time(), UTC)
                copy.write_row(
                    (
                        member_of(i),
                        f"会员{i}",
                        "UNSPECIFIED",
                        f"13{i:09d}",
                        store_of(home[i]),
                        False,
                        "{}",
                        "STORE",
                        store_of(home[i]),
                        joined,
                        joined,
                    )
                )
    took["members_s"] = time.perf_counter() - started
    started = time.perf_counter()
    with psycopg.connect(url) as db, psycopg.connect(url) as member_db:
        db.execute("SET search_path = gateway")
        member_db.execute("SET search_path = member")
        orders_copy = db.cursor().copy(
            "COPY orders (order_id,key_id,request_id,request_hash,request,member_id,org_path,store_path,state,"
            "response,create_time,update_time) FROM STDIN"
        )
        with (
            orders_copy as o_copy,
            member_db.cursor().copy(
                "COPY visits (order_id,member_id,store_path,amount_fen,visit_time) FROM STDIN"
            ) as v_copy,
        ):
            for n in range(orders):
                i = rng.randrange(members)
                s = home[i] if rng.random() < 0.9 else rng.randrange(stores)
                day = first_day + timedelta(days=rng.randrange(days))
                at = datetime.combine(day, datetime.min.time(), CHAIN_ZONE) + timedelta(
                    seconds=rng.randrange(8 * 3600, 22 * 3600)
                )
                v = kinds[n % VARIANTS]
                order_id = f"o_{n:026d}"
                o_copy.write_row(
                    (
                        order_id,
                        "k_bench",
                        order_id,
                        "h",
                        v["request"],
                        member_of(i),
                        f"{store_of(s)}/pos-1",
                        store_of(s),
                        "PAID",
                        v["response"],
                        at,
                        at,
                    )
                )
                v_copy.write_row((order_id, member_of(i), store_of(s), v["net"], at))
        with db.cursor().copy("COPY saga_log (order_id,step,payload,log_time) FROM STDIN") as copy:
            for n in range(orders):
                copy.write_row((f"o_{n:026d}", "decision", kinds[n % VARIANTS]["decision"], T0))
        with db.cursor().copy(
            "COPY refunds (refund_id,order_id,key_id,request_id,request_hash,lines,cashier_id,plan,state,response,"
            "create_time,update_time) FROM STDIN"
        ) as copy:
            for n in range(0, orders, REFUND_EVERY):
                v = kinds[n % VARIANTS]
                at = datetime.combine(first_day + timedelta(days=rng.randrange(days)), datetime.min.time(), UTC)
                copy.write_row(
                    (
                        f"rf_{n:026d}",
                        f"o_{n:026d}",
                        "k_bench",
                        f"rf{n}",
                        "h",
                        '{"1": 1}',
                        "c01",
                        v["refund"],
                        "DONE",
                        v["refund"],
                        at,
                        at,
                    )
                )
        db.commit()
        member_db.commit()
    took["orders_s"] = time.perf_counter() - started
    started = time.perf_counter()
    _seed_ledgers(url, orders, members, home, kinds, first_day, days, rng)
    took["ledgers_s"] = time.perf_counter() - started
    vacuum(url)
    return took


def _seed_ledgers(url, orders, members, home, kinds, first_day, days, rng) -> None:
    """The ledgers' raw records of the same history: a top-up (with its bonus) for one
    order in ten, a stored-value spend for the orders paid with it, and the points each
    order earned (a lot and its movement; a year to expire)."""
    rng = random.Random(rng.random())  # the orders' own draws stay as they were

    def moment(n: int) -> datetime:
        day = first_day + timedelta(days=(n * 7919) % days)
        return datetime.combine(day, datetime.min.time(), CHAIN_ZONE) + timedelta(hours=9 + n % 12)

    # Two COPYs at once need a connection each: psycopg runs one COPY at a time on a
    # connection, and a second one on the same connection waits for the first for ever.
    with psycopg.connect(url) as db, psycopg.connect(url) as db2:
        db.execute("SET search_path = wallet")
        db2.execute("SET search_path = wallet")
        with (
            db.cursor().copy(
                "COPY entries (entry_id,operation_id,member_id,kind,principal_delta_fen,bonus_delta_fen,balance_after_fen,"
                "counter_account,loaded_store_path,store_path,operator_id,policy,memo,post_time,sequence,home_store_path) "
                "FROM STDIN"
            ) as entries,
            db2.cursor().copy(
                "COPY top_ups (top_up_id,member_id,principal_fen,bonus_fen,tender,tender_reference,store_path,packages,"
                "operator_id,create_time,cashier_id,till_path) FROM STDIN"
            ) as top_ups,
        ):
            for n in range(0, orders, 10):
                i, at = n // 10 % members, moment(n)
                store = store_of(home[i])
                top_up_id = f"t_{n:026d}"
                top_ups.write_row(
                    (
                        top_up_id,
                        member_of(i),
                        200_00,
                        20_00,
                        "CASH",
                        "",
                        store,
                        "[]",
                        "k_bench",
                        at,
                        f"c{n % 20:02d}",
                        f"{store}/pos-1",
                    )
                )
                for k, (kind, principal, bonus) in enumerate((("TOP_UP", 200_00, 0), ("TOP_UP_BONUS", 0, 20_00))):
                    entries.write_row(
                        (
                            f"{top_up_id}:{k:04d}",
                            top_up_id,
                            member_of(i),
                            kind,
                            principal,
                            bonus,
                            0,
                            "cash",
                            store,
                            store,
                            "k_bench",
                            "",
                            "",
                            at,
                            n + k,
                            store,  # the member's home, where they load and spend
                        )
                    )
            for n in range(orders):
                v = kinds[n % VARIANTS]
                if v["stored_value"]:
                    i, at = n % members, moment(n)
                    store = store_of(home[i])
                    entries.write_row(
                        (
                            f"o_{n:026d}:sv",
                            f"o_{n:026d}",
                            member_of(i),
                            "CONSUMPTION",
                            -v["stored_value"],
                            0,
                            0,
                            "sales",
                            store,
                            store,
                            "k_bench",
                            "PROPORTIONAL",
                            "",
                            at,
                            n,
                            store,
                        )
                    )
        db.execute("SET search_path = points")
        db2.execute("SET search_path = points")
        with (
            db.cursor().copy(
                "COPY lots (lot_id,member_id,source,rule_id,order_id,store_path,granted_points,points_left,available_time,"
                "expire_time,create_time) FROM STDIN"
            ) as lots,
            db2.cursor().copy(
                "COPY movements (movement_id,member_id,kind,delta_points,order_id,store_path,memo,create_time) FROM STDIN"
            ) as movements,
        ):
            for n in range(orders):
                v, i, at = kinds[n % VARIANTS], n % members, moment(n)
                earned = v["net"] // 100
                store = store_of(home[i])
                lots.write_row(
                    (
                        f"pl_{n:026d}",
                        member_of(i),
                        "ACCRUAL",
                        "",
                        f"o_{n:026d}",
                        store,
                        earned,
                        earned,
                        at,
                        at + timedelta(days=365),
                        at,
                    )
                )
                movements.write_row((f"pm_{n:026d}", member_of(i), "GRANT", earned, f"o_{n:026d}", store, "", at))
        db.commit()
        db2.commit()


def rebuild(url: str) -> dict:
    """Every service's rollups recomputed from its raw records, as `huiyuan rebuild-reports`
    does it (the services side by side): how long each took."""
    return {name: seconds for name, _, seconds in launcher.rebuild_reports(list(SERVICES), url)}


def period(kind: int, day: date) -> pb.ReportPeriod:
    return pb.ReportPeriod(kind=kind, day=calendar_day(day))


async def timed(stub, key: str, requests: list[pb.RunReportRequest]) -> list[float]:
    """Each report's time, one after another (a back office's click, then the next)."""
    metadata = (("authorization", f"Bearer {key}"),)
    times = []
    for request in requests:
        started = time.perf_counter()
        await stub.RunReport(request, metadata=metadata, timeout=30)
        times.append((time.perf_counter() - started) * 1000)
    return times


def stats(times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "p50_ms": round(percentile(ordered, 0.50), 1),
        "p99_ms": round(percentile(ordered, 0.99), 1),
        "calls": len(times),
    }


def region_months(rng: random.Random, rounds: int) -> list[pb.RunReportRequest]:
    last_month = today().replace(day=1) - timedelta(days=1)
    return [
        pb.RunReportRequest(
            report=pb.REPORT_KIND_SALES,
            org_path=region_of(rng.randrange(REGIONS)),
            period=period(pb.PERIOD_KIND_MONTH, last_month),
        )
        for _ in range(rounds)
    ]


async def measure(whole_key: str, tenth_key: str, rng: random.Random, rounds: int) -> dict:
    """The region's month on both histories, a call on one then the same call on the
    other (the machine's speed moves within a minute: both sides see the same moments),
    then the chain's year and the liability on the whole history."""
    whole_channel = grpc.aio.insecure_channel(f"127.0.0.1:{PORTS['gateway']}")
    tenth_channel = grpc.aio.insecure_channel(f"127.0.0.1:{TENTH_PORTS['gateway']}")
    whole = gateway_pb2_grpc.GatewayServiceStub(whole_channel)
    tenth = gateway_pb2_grpc.GatewayServiceStub(tenth_channel)
    asks = region_months(rng, rounds)
    await timed(whole, whole_key, asks[:5])  # the org tree's names read once, connections made
    await timed(tenth, tenth_key, asks[:5])
    on_whole, on_tenth = [], []
    for ask in asks:
        on_whole += await timed(whole, whole_key, [ask])
        on_tenth += await timed(tenth, tenth_key, [ask])
    figures = {"region_month": stats(on_whole), "tenth_region_month": stats(on_tenth)}
    chain_year = [
        pb.RunReportRequest(
            report=pb.REPORT_KIND_SALES,
            org_path="hq",
            period=period(pb.PERIOD_KIND_YEAR, today().replace(month=1, day=1) - timedelta(days=1)),
        )
        for _ in range(max(rounds // 3, 10))
    ]
    figures["chain_year"] = stats(await timed(whole, whole_key, chain_year))
    liability = [
        pb.RunReportRequest(report=pb.REPORT_KIND_LIABILITY, org_path="hq", period=period(pb.PERIOD_KIND_DAY, today()))
        for _ in range(max(rounds // 3, 10))
    ]
    figures["liability"] = stats(await timed(whole, whole_key, liability))
    await whole_channel.close()
    await tenth_channel.close()
    return figures


def prepare(url: str, orders: int, days: int, rng: random.Random) -> dict:
    """The history seeded and rebuilt; its figures."""
    figures: dict = {"orders": orders, "days": days}
    figures["seed_s"] = {k: round(v, 1) for k, v in seed(url, orders, days, rng).items()}
    print(f"seeded {orders:,} orders: {figures['seed_s']}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    figures["rebuild_s"] = {k: round(v, 1) for k, v in rebuild(url).items()}
    figures["rebuild_total_s"] = round(time.perf_counter() - started, 1)
    print(f"rebuilt: {figures['rebuild_s']}", file=sys.stderr, flush=True)
    vacuum(url)
    return figures


def relayed(url: str, timeout_s: float = 3600) -> float:
    """Seconds until the gateway has handed the wallet every member's home the rebuild
    queued (docs/reports.md, stored value by home): the reports are timed after it, as
    an operator would read them after a rebuild, not while the wallet applies them."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as db:
        while (db.execute("SELECT count(*) FROM member.home_changes").fetchone() or [0])[0]:
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError("the members' homes were not relayed in time")
            time.sleep(1)
    return time.perf_counter() - started


def serving_history(url: str, ports: dict[str, int]):
    env = {
        "HUIYUAN_DATABASE_URL": url,
        "HUIYUAN_CALL_TIMEOUT_S": "30",
        **{f"HUIYUAN_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    }
    return serving(list(SERVICES.values()), list(ports.values()), env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pg", default=ADMIN_URL)
    args = parser.parse_args()
    orders = 200_000 if args.quick else 5_000_000
    rounds = 60 if args.quick else 200
    rng = random.Random(38)
    whole_url = fresh_database(args.pg, "huiyuan_bench_reports")
    tenth_url = fresh_database(args.pg, "huiyuan_bench_reports_tenth")
    whole = prepare(whole_url, orders, DAYS, rng)
    tenth = prepare(tenth_url, orders // 10, DAYS // 10, rng)
    keys = [
        bootstrap.issue_key(u, "hq", Role.HQ_ADMIN, "bench", member_database_url=u)[1] for u in (whole_url, tenth_url)
    ]
    with serving_history(whole_url, PORTS), serving_history(tenth_url, TENTH_PORTS):
        whole["homes_relayed_s"] = round(relayed(whole_url), 1)
        tenth["homes_relayed_s"] = round(relayed(tenth_url), 1)
        print(f"homes relayed: {whole['homes_relayed_s']} s, {tenth['homes_relayed_s']} s", file=sys.stderr, flush=True)
        measured = asyncio.run(measure(*keys, rng, rounds))
    tenth["region_month"] = measured.pop("tenth_region_month")
    whole.update(measured)
    ratio = tenth["region_month"]["p50_ms"] and whole["region_month"]["p50_ms"] / tenth["region_month"]["p50_ms"]
    tps = pgbench_tps(args.pg, 10 if args.quick else 20)
    print(
        f"history: {orders:,} orders over {DAYS} days, 3,000 stores in 30 regions; rebuild {whole['rebuild_total_s']} s {whole['rebuild_s']}"
    )
    for name in ("region_month", "chain_year", "liability"):
        f = whole[name]
        print(f"{name:>13}: p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms ({f['calls']} reports)")
    print(
        f"region month on a tenth of the history ({tenth['orders']:,} orders, {tenth['days']} days): "
        f"p50 {tenth['region_month']['p50_ms']} ms; full over tenth: {ratio:.2f}"
    )
    print(f"pgbench (TPC-B), 8 clients: {tps:,.0f} tps")
    print(
        json.dumps(
            {
                "bench": "reports",
                "whole": whole,
                "tenth": tenth,
                "history_ratio": round(ratio, 2),
                "pgbench_tps": round(tps),
            }
        )
    )


if __name__ == "__main__":
    main()
