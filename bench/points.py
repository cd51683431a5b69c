"""Points through gRPC on PostgreSQL: accrue + offset cycles, and the expiry job.

Seeds 10,000 members with points and a past checkout each (COPY), starts the points
service as its own process:
- throughput closed-loop, 32 clients, each cycle an Accrue of a paid order then a Hold
  and a Capture of an offset (what a checkout does to points);
- latency of a cycle open-loop at half that rate (from the scheduled time), or at the
  rate --rate gives (to compare two versions of the code at one rate), and the CPU a
  cycle costs there (more than in the closed loop: its batches are smaller);
- RunExpiry over 1,000,000 lots past their date (100,000 with --quick).
Targets on this machine: >= 500 cycles/s, p99 <= 50 ms, expiry of 1,000,000 lots <= 60 s.

usage: python bench/points.py [--quick] [--rate CYCLES_PER_S] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from pathlib import Path

import psycopg
from google.protobuf.duration_pb2 import Duration

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
    vacuum,
)
from huiyuan.database import migrate
from huiyuan.points.v1 import (
    points_pb2 as pb,
    points_pb2_grpc,
)
from services.points.app import SPEC

PORT = 7493 + PORT_OFFSET
STORE = "hq/east/sh-001"
MEMBERS = 10_000


def member_of(i: int) -> str:
    return f"m_{i:026d}"


def seed(url: str, expired_lots: int) -> None:
    migrate.upgrade(SPEC.migrations_dir, url, "points")
    columns = "lot_id,member_id,source,rule_id,order_id,store_path,granted_points,points_left,available_time,expire_time,create_time"
    with psycopg.connect(url, options="-c search_path=points") as db:
        with db.cursor().copy("COPY member_points FROM STDIN") as copy:
            for i in range(MEMBERS):
                copy.write_row((member_of(i), 0, 0, "2026-01-01T00:00:00Z"))
        with db.cursor().copy(f"COPY lots ({columns}) FROM STDIN") as copy:
            for i in range(MEMBERS):  # plenty to spend, expiring in 2030 (100 spent on a past order, below)
                copy.write_row(
                    (
                        f"pl_live{i:021d}",
                        member_of(i),
                        "CAMPAIGN",
                        "",
                        "",
                        STORE,
                        10**9,
                        10**9 - 100,
                        "2026-01-01T00:00:00Z",
                        "2030-01-01T00:00:00Z",
                        "2026-01-01T00:00:00Z",
                    )
                )
            for i in range(expired_lots):  # past their date: the expiry job's work
                copy.write_row(
                    (
                        f"pl_old{i:022d}",
                        member_of(i % MEMBERS),
                        "PURCHASE",
                        "",
                        "",
                        STORE,
                        10,
                        10,
                        "2024-01-01T00:00:00Z",
                        "2025-01-01T00:00:00Z",
                        "2024-01-01T00:00:00Z",
                    )
                )
        past_checkouts(db)
    vacuum(url)


def past_checkouts(db) -> None:
    """A past order per member: what it earned, the offset it spent and their request
    ids, as a running chain's tables hold. So the statistics PostgreSQL plans with are
    not those of empty tables: with none, a statement prepared early went on scanning
    the holds table whole as it grew (pg_stat_user_tables: seq_scan)."""

    def rows(table: str, make):
        with db.cursor().copy(f"COPY {table} FROM STDIN") as copy:
            for i in range(MEMBERS):
                copy.write_row(make(i, member_of(i), f"seed-{i}"))

    day = "2026-01-01T00:00:00Z"
    rows("order_accruals", lambda i, m, order: (order, "1", m, "", 0, 100, "2026-01-01"))
    rows("holds", lambda i, m, order: (f"ph_seed{i:021d}", m, 100, 100, "CAPTURED", order, STORE, day, day))
    rows("hold_draws", lambda i, m, order: (f"ph_seed{i:021d}", f"pl_live{i:021d}", 100))
    rows("movements", lambda i, m, order: (f"mv_seed{i:021d}", m, "SPEND", -100, order, STORE, "seed", day))
    rows("idempotency_keys", lambda i, m, order: (order, "Capture", "-", b"", None, day))


async def cycle(stub, member: str) -> None:
    order_id = str(uuid.uuid4())
    await stub.Accrue(
        pb.AccrueRequest(
            request_id=str(uuid.uuid4()),
            member_id=member,
            order_id=order_id,
            store_path=STORE,
            lines=[pb.OrderLine(line_id="1", category="food", paid_fen=random.randint(100, 50_000))],
        ),
        timeout=10,
    )
    hold = await stub.Hold(
        pb.HoldRequest(
            request_id=str(uuid.uuid4()),
            member_id=member,
            points=random.randint(1, 500),
            ttl=Duration(seconds=600),
            store_path=STORE,
            order_id=order_id,
        ),
        timeout=10,
    )
    await stub.Capture(
        pb.CaptureRequest(request_id=str(uuid.uuid4()), hold_id=hold.hold.hold_id, points=hold.hold.points), timeout=10
    )


def random_cycle(stub):
    return cycle(stub, member_of(random.randrange(MEMBERS)))


async def measure(seconds: float, expired_lots: int, service_pid: int, open_rate: float | None) -> dict:
    channel = service_channel("points", PORT)
    stub = points_pb2_grpc.PointsServiceStub(channel)
    await stub.CreateRule(
        pb.CreateRuleRequest(
            request_id="bench-rule",
            rule=pb.Rule(name="消费1元积1分", org_path="hq", priority=1, points_per_yuan_bp=10_000),
        ),
        timeout=10,
    )
    await closed_loop(lambda: random_cycle(stub), 32, 2)  # warm-up
    before, started = cpu_usage({"points": service_pid}), time.perf_counter()
    rate = await closed_loop(lambda: random_cycle(stub), 32, seconds)
    cpu_ms = cpu_ms_per(before, cpu_usage({"points": service_pid}), rate * (time.perf_counter() - started))
    print(f"closed-loop, 32 clients: {rate:,.0f} accrue + offset cycles/s")
    print("  CPU per cycle: " + ", ".join(f"{name} {ms} ms" for name, ms in cpu_ms.items()))
    open_rate = open_rate or rate / 2
    before = cpu_usage({"points": service_pid})
    latencies = await open_loop(lambda: random_cycle(stub), open_rate, seconds)
    open_cpu_ms = cpu_ms_per(before, cpu_usage({"points": service_pid}), len(latencies))
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"open-loop at {open_rate:,.0f} cycles/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(latencies):,} cycles)")
    # A cycle costs more here than in the closed loop, whose batches are larger: how busy
    # the points process is at this rate is what the p99 depends on (README, Benchmarks).
    print(
        "  CPU per cycle: "
        + ", ".join(f"{name} {ms} ms" for name, ms in open_cpu_ms.items())
        + f"; the points process {open_cpu_ms['points'] * open_rate / 1000:.2f} of a core busy"
    )
    started = time.perf_counter()
    expired = await stub.RunExpiry(pb.RunExpiryRequest(request_id=str(uuid.uuid4())), timeout=600)
    expiry_s = time.perf_counter() - started
    assert expired.expired_lots == expired_lots, expired
    print(f"expiry of {expired_lots:,} lots: {expiry_s:.1f} s")
    await channel.close()
    return {
        "cycles_per_s": round(rate),
        "open_rate": round(open_rate),
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "expired_lots": expired_lots,
        "expiry_s": round(expiry_s, 1),
        "cpu_ms": cpu_ms,
        "open_cpu_ms": open_cpu_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rate", type=float, help="cycles/s of the open loop (default: half the closed loop's)")
    parser.add_argument("--pg", default=ADMIN_URL)
    args = parser.parse_args()
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be a number of cycles a second above 0")
    seconds, expired_lots = (5, 100_000) if args.quick else (20, 1_000_000)
    url = fresh_database(args.pg, "huiyuan_bench_points")
    started = time.perf_counter()
    seed(url, expired_lots)
    print(
        f"seeded {MEMBERS:,} members and {expired_lots:,} lots past their date in {time.perf_counter() - started:.1f} s"
    )
    with serving(["services.points"], [PORT], {"HUIYUAN_DATABASE_URL": url, "HUIYUAN_POINTS_PORT": str(PORT)}) as (
        service,
    ):
        figures = asyncio.run(measure(seconds, expired_lots, service.pid, args.rate))
    figures["pgbench_tps"] = round(pgbench_tps(args.pg, seconds, "-N"))
    print(f"pgbench -N, 8 clients: {figures['pgbench_tps']:,} tps (how fast this machine is today)")
    print(json.dumps({"bench": "points", **figures}))


if __name__ == "__main__":
    main()
