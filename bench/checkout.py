"""Checkouts through the gateway, every process on this machine, on PostgreSQL.

Seeds 10,000 members with a card, stored value and points (COPY into each service's schema),
an active 满100减20 and a coupon per member, starts member, wallet, points, campaign and
the gateway as their own processes, then measures checkouts that use a discount, a
coupon, points and stored value:
- closed-loop with 32 terminals: checkouts/s;
- open-loop at half that rate: p50 and p99;
- during the closed loop, where the CPU goes: each process's CPU per checkout, and the
  commits per checkout (pg_stat_database; the services' health checks and sweepers
  add a few);
- pgbench (TPC-B) on the same server for the baseline and the ratio.
Targets on this machine: >= 150 checkouts/s; p99 <= 100 ms at half load.

With --against REV it runs this bench of commit REV and of this tree in turns
(--rounds times each) and prints both, with the CPU a checkout costs on each side: a
change's cost, measured beside the code before it in one run of the machine.

usage: python bench/checkout.py [--quick] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
                                [--against REV [--rounds N]]
"""

import argparse
import asyncio
import itertools
import json
import sys
import time
import uuid
from pathlib import Path

import grpc
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (
    ADMIN_URL,
    PORT_OFFSET,
    closed_loop,
    cpu_ms_per,
    cpu_usage,
    fresh_database,
    open_loop,
    percentile,
    pgbench_tps,
    service_channel,
    serving,
    side_by_side,
    vacuum,
)
from gateway.domain.callers import Role
from gateway.use_cases import bootstrap
from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.database import migrate
from huiyuan.gateway.v1 import (
    gateway_pb2 as pb,
    gateway_pb2_grpc,
)
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan_cli.launcher import SERVICES, spec_of

PORTS = {
    name: port + PORT_OFFSET
    for name, port in {"gateway": 7480, "member": 7481, "wallet": 7482, "points": 7483, "campaign": 7484}.items()
}
STORE = "hq/east/sh-001"
MEMBERS = 10_000
T0 = "2026-01-01T00:00:00Z"


def member_of(i: int) -> str:
    return f"m_{i:026d}"


def card_of(member_id: str) -> str:
    """The card a member shows at the till: spending needs one (or a QR code, or a PIN)."""
    return f"6{int(member_id[2:]):015d}"


def seed(url: str) -> None:
    for name in SERVICES:
        migrate.upgrade(spec_of(name).migrations_dir, url, name)
    with psycopg.connect(url) as db:
        db.execute("SET search_path = member")
        db.execute(
            f"INSERT INTO org_nodes VALUES ('hq','hq','HQ','HQ','Asia/Shanghai',NULL,'{T0}'),"
            f"('hq/east','east','East','REGION','Asia/Shanghai','hq','{T0}'),"
            f"('hq/east/sh-001','sh-001','SH','STORE','Asia/Shanghai','hq/east','{T0}'),"
            f"('hq/east/sh-001/pos-1','pos-1','POS','TERMINAL','Asia/Shanghai','hq/east/sh-001','{T0}')"
        )
        with db.cursor().copy(
            "COPY members (member_id,name,gender,phone,home_store_path,marketing_consent,attributes,"
            "channel,registered_org_path,create_time,update_time) FROM STDIN"
        ) as copy:
            for i in range(MEMBERS):
                copy.write_row(
                    (member_of(i), f"会员{i}", "UNSPECIFIED", f"13{i:09d}", STORE, False, "{}", "STORE", STORE, T0, T0)
                )
        db.execute(
            f"INSERT INTO card_types VALUES ('ct_bench','bench','hq',"
            f'\'["DISCOUNT","POINTS","STORED_VALUE","TIMES"]\',\'INDIVIDUAL\',NULL,0,\'{T0}\')'
        )
        with db.cursor().copy(
            "COPY cards (card_number,member_id,card_type_id,state,issued_org_path,issue_time,"
            "replaces_card_number,replaced_by_card_number) FROM STDIN"
        ) as copy:
            for i in range(MEMBERS):
                copy.write_row((card_of(member_of(i)), member_of(i), "ct_bench", "ACTIVE", STORE, T0, "", ""))
        db.execute("SET search_path = wallet")
        with db.cursor().copy("COPY member_accounts FROM STDIN") as copy:
            for i in range(MEMBERS):
                # last_sequence: the one entry below; homed at STORE (change 1 of the member service)
                copy.write_row((member_of(i), 10**9, 0, 0, 0, T0, 1, STORE, 1))
        with db.cursor().copy(
            "COPY lots (lot_id,member_id,loaded_store_path,principal_left_fen,bonus_left_fen) FROM STDIN"
        ) as copy:
            for i in range(MEMBERS):
                copy.write_row((f"t_{i:026d}", member_of(i), STORE, 10**9, 0))
        with db.cursor().copy("COPY entries FROM STDIN") as copy:
            for i in range(MEMBERS):
                copy.write_row(
                    (
                        f"t_{i:026d}:0000",
                        f"t_{i:026d}",
                        member_of(i),
                        "TOP_UP",
                        10**9,
                        0,
                        10**9,
                        f"TENDER:{STORE}",
                        STORE,
                        STORE,
                        "bench",
                        "-",
                        "seed",
                        T0,
                        1,
                        STORE,
                    )
                )
        db.execute("SET search_path = points")
        with db.cursor().copy("COPY member_points FROM STDIN") as copy:
            for i in range(MEMBERS):
                copy.write_row((member_of(i), 0, 0, T0))
        with db.cursor().copy(
            "COPY lots (lot_id,member_id,source,rule_id,order_id,store_path,granted_points,points_left,"
            "available_time,expire_time,create_time) FROM STDIN"
        ) as copy:
            for i in range(MEMBERS):
                copy.write_row(
                    (
                        f"pl_{i:026d}",
                        member_of(i),
                        "SIGN_UP",
                        "",
                        "",
                        STORE,
                        10**6,
                        10**6,
                        T0,
                        "2030-01-01T00:00:00Z",
                        T0,
                    )
                )
    vacuum(url)


async def configure(channels) -> dict[str, str]:
    """The rule, the campaign and a coupon per member, through the services' own calls."""
    points = points_pb2_grpc.PointsServiceStub(channels["points"])
    await points.CreateRule(
        points_pb2.CreateRuleRequest(
            request_id="bench-rule",
            rule=points_pb2.Rule(name="1元1分", org_path="hq", priority=1, points_per_yuan_bp=10_000),
        )
    )
    campaign = campaign_pb2_grpc.CampaignServiceStub(channels["campaign"])
    offer = (
        await campaign.CreateCampaign(
            campaign_pb2.CreateCampaignRequest(
                request_id="bench-offer",
                campaign=campaign_pb2.Campaign(
                    name="满100减20",
                    kind=campaign_pb2.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
                    org_path="hq",
                    steps=[campaign_pb2.ThresholdStep(threshold_fen=100_00, reduction_fen=20_00)],
                ),
            )
        )
    ).campaign
    await campaign.SetCampaignStatus(
        campaign_pb2.SetCampaignStatusRequest(
            request_id="bench-offer-on", campaign_id=offer.campaign_id, status=campaign_pb2.CAMPAIGN_STATUS_ACTIVE
        )
    )
    template = (
        await campaign.CreateCouponTemplate(
            campaign_pb2.CreateCouponTemplateRequest(
                request_id="bench-coupon",
                template=campaign_pb2.CouponTemplate(
                    name="5元券", kind=campaign_pb2.COUPON_KIND_FIXED, amount_fen=5_00, valid_days=30, org_path="hq"
                ),
            )
        )
    ).template
    codes = {}
    for start in range(0, MEMBERS, 5_000):
        issued = await campaign.IssueCoupons(
            campaign_pb2.IssueCouponsRequest(
                request_id=f"bench-issue-{start}",
                template_id=template.template_id,
                member_ids=[member_of(i) for i in range(start, min(start + 5_000, MEMBERS))],
            ),
            timeout=120,
        )
        codes.update({c.member_id: c.coupon_code for c in issued.coupons})
    return codes


async def checkout(stub, key: str, member_id: str, code: str) -> None:
    # 2 x 60.00 = 120.00; 满100减20 -> 100.00; coupon 5.00 -> 95.00; 500 points (5.00) -> 90.00 stored value
    done = await stub.Checkout(
        pb.CheckoutRequest(
            request_id=str(uuid.uuid4()),
            member_id=member_id,
            card_number=card_of(member_id),
            coupon_codes=[code],
            points_to_use=500,
            lines=[pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=2, unit_price_fen=60_00)],
            tenders=[pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=90_00)],
        ),
        metadata=(("authorization", f"Bearer {key}"),),
        timeout=30,
    )
    assert done.state == pb.ORDER_STATE_PAID, done


def commits(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as db:
        return db.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


def usage(url: str, pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds of each process, of PostgreSQL and of this load generator; commits."""
    return {**cpu_usage(pids), "commits": commits(url)}


async def measure(seconds: float, key: str, url: str, pids: dict[str, int]) -> dict:
    channels = {
        name: service_channel(name, port) if name != "gateway" else grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        for name, port in PORTS.items()
    }
    codes = await configure(channels)
    stub = gateway_pb2_grpc.GatewayServiceStub(channels["gateway"])
    members = itertools.cycle(sorted(codes))  # each member's coupon is used once

    async def one():
        member_id = next(members)
        await checkout(stub, key, member_id, codes[member_id])

    before, started = usage(url, pids), time.perf_counter()
    rate = await closed_loop(one, 32, seconds)
    after, elapsed = usage(url, pids), time.perf_counter() - started
    print(f"closed-loop, 32 terminals: {rate:,.1f} checkouts/s")
    done = rate * elapsed
    cpu_ms = {name: round(ms, 1) for name, ms in cpu_ms_per(before, after, done).items() if name != "commits"}
    print(
        "  CPU per checkout: "
        + ", ".join(f"{name} {ms} ms" for name, ms in cpu_ms.items())
        + f"; {sum(cpu_ms.values()) * rate / 1000:.2f} cores busy;"
        + f" {(after['commits'] - before['commits']) / done:.1f} commits per checkout"
    )
    latencies = await open_loop(one, rate / 2, seconds)
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"open-loop at {rate / 2:,.1f}/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms ({len(latencies)} checkouts)")
    for channel in channels.values():
        await channel.close()
    return {"checkouts_per_s": round(rate, 1), "p50_ms": round(p50), "p99_ms": round(p99), "cpu_ms": cpu_ms}


def compare(args) -> None:
    """This bench of args.against and of this tree, in turns: CPU per checkout of each."""
    options = [*(["--quick"] if args.quick else []), "--pg", args.pg]
    runs = side_by_side("checkout", args.against, options, args.rounds)
    totals = {}
    for label, figures in runs:
        totals.setdefault(label, []).append(sum(ms for name, ms in figures["cpu_ms"].items() if name != "client"))
    print("CPU per checkout (every process and PostgreSQL, not the load generator):")
    for label, values in totals.items():
        print(f"  {label}: " + ", ".join(f"{v:.1f} ms" for v in values) + f"; mean {sum(values) / len(values):.2f} ms")
    before, after = (sum(v) / len(v) for v in totals.values())
    print(f"after / before: {after / before:.3f}")
    print(
        json.dumps(
            {
                "bench": "checkout",
                "against": args.against,
                "cpu_ms_before": round(before, 2),
                "cpu_ms_after": round(after, 2),
                "cpu_ratio": round(after / before, 3),
                "runs": [{"side": label, **figures} for label, figures in runs],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pg", default=ADMIN_URL)
    parser.add_argument("--against", help="a commit to measure beside this tree, in turns")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.against:
        compare(args)
        return
    seconds = 8 if args.quick else 30
    url = fresh_database(args.pg, "huiyuan_bench_checkout")
    seed(url)
    _, key = bootstrap.issue_key(url, f"{STORE}/pos-1", Role.TERMINAL, "bench", member_database_url=url)
    env = {
        "HUIYUAN_DATABASE_URL": url,
        "HUIYUAN_CALL_TIMEOUT_S": "10",
        **{f"HUIYUAN_{name.upper()}_PORT": str(port) for name, port in PORTS.items()},
    }
    with serving(list(SERVICES.values()), list(PORTS.values()), env) as processes:
        figures = asyncio.run(measure(seconds, key, url, {name: p.pid for name, p in zip(SERVICES, processes)}))
    tps = pgbench_tps(args.pg, 10 if args.quick else 20)
    print(
        f"pgbench (TPC-B), 8 clients: {tps:,.0f} tps; checkouts/s over pgbench tps: {figures['checkouts_per_s'] / tps:.4f}"
    )
    print(
        json.dumps(
            {
                "bench": "checkout",
                **figures,
                "pgbench_tps": round(tps),
                "ratio": round(figures["checkouts_per_s"] / tps, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
