"""Hold + capture pairs through gRPC on PostgreSQL, against pgbench -N on the same server.

Seeds 10,000 funded members with COPY (the ledger rows a top-up would write) and a
past hold each, released, with its request id (a running chain's holds and keys are
many: on empty tables PostgreSQL's statistics would plan a batch's lookups as scans),
starts the wallet service as its own process, then measures:
- throughput closed-loop, 32 clients, each a hold then a capture, over 10,000 accounts;
  with the CPU each process spent per pair (the wallet, PostgreSQL, this load generator);
- the same on one hot account (every pair queues on one row lock);
- latency of a pair open-loop at half the many-accounts rate (from the scheduled time);
- pgbench -N (TPC-B without the branch/teller hot rows) for the baseline and the ratio.
Targets on this machine: >= 500 pairs/s over many accounts, >= 150 on one hot account,
p99 of a pair <= 50 ms.

usage: python bench/wallet.py [--quick] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
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
from huiyuan.wallet.v1 import (
    wallet_pb2 as pb,
    wallet_pb2_grpc,
)
from services.wallet.app import SPEC

PORT = 7492 + PORT_OFFSET
STORE = "hq/east/sh-001"
ACCOUNTS = 10_000
FUNDS = 10**9  # fen per member: no pair ever runs out


def member_of(i: int) -> str:
    return f"m_{i:026d}"


def seed(url: str) -> None:
    migrate.upgrade(SPEC.migrations_dir, url, "wallet")
    with psycopg.connect(url, options="-c search_path=wallet") as db:
        with db.cursor().copy(
            "COPY member_accounts (member_id,principal_fen,bonus_fen,held_principal_fen,held_bonus_fen,"
            "update_time,last_sequence) FROM STDIN"
        ) as copy:
            for i in range(ACCOUNTS):
                copy.write_row((member_of(i), FUNDS, 0, 0, 0, "2026-01-01T00:00:00Z", 1))
        with db.cursor().copy(
            "COPY lots (lot_id,member_id,loaded_store_path,principal_left_fen,bonus_left_fen) FROM STDIN"
        ) as copy:
            for i in range(ACCOUNTS):
                copy.write_row((f"t_{i:026d}", member_of(i), STORE, FUNDS, 0))
        with db.cursor().copy(
            "COPY entries (entry_id,operation_id,member_id,kind,principal_delta_fen,bonus_delta_fen,"
            "balance_after_fen,counter_account,loaded_store_path,store_path,operator_id,policy,memo,"
            "post_time,sequence) FROM STDIN"
        ) as copy:
            for i in range(ACCOUNTS):
                copy.write_row(
                    (
                        f"t_{i:026d}:0000",
                        f"t_{i:026d}",
                        member_of(i),
                        "TOP_UP",
                        FUNDS,
                        0,
                        FUNDS,
                        f"TENDER:{STORE}",
                        STORE,
                        STORE,
                        "bench",
                        "-",
                        "seed",
                        "2026-01-01T00:00:00Z",
                        1,
                    )
                )
        with db.cursor().copy("COPY holds FROM STDIN") as copy:
            for i in range(ACCOUNTS):
                copy.write_row(
                    (
                        f"h_{i:026d}",
                        member_of(i),
                        100,
                        100,
                        0,
                        0,
                        0,
                        0,
                        "RELEASED",
                        STORE,
                        "seed",
                        "PROPORTIONAL",
                        "2026-01-01T00:10:00Z",
                        "2026-01-01T00:00:00Z",
                    )
                )
        with db.cursor().copy("COPY idempotency_keys FROM STDIN") as copy:
            for i in range(ACCOUNTS):
                copy.write_row((f"seed-{i}", "Hold", "-", b"", None, "2026-01-01T00:00:00Z"))
    vacuum(url)


async def pair(stub, member: str) -> None:
    hold = await stub.Hold(
        pb.HoldRequest(
            request_id=str(uuid.uuid4()),
            member_id=member,
            amount_fen=random.randint(1, 500_00),
            ttl=Duration(seconds=600),
            store_path=STORE,
        ),
        timeout=10,
    )
    await stub.Capture(
        pb.CaptureRequest(request_id=str(uuid.uuid4()), hold_id=hold.hold.hold_id, amount_fen=hold.hold.amount_fen),
        timeout=10,
    )


async def measure(seconds: float, service_pid: int) -> dict:
    channel = service_channel("wallet", PORT)
    stub = wallet_pb2_grpc.WalletServiceStub(channel)
    many = lambda: member_of(random.randrange(ACCOUNTS))  # noqa: E731
    hot = lambda: member_of(0)  # noqa: E731
    await closed_loop(lambda: pair(stub, many()), 32, 2)  # warm-up
    before, started = cpu_usage({"wallet": service_pid}), time.perf_counter()
    rate = await closed_loop(lambda: pair(stub, many()), 32, seconds)
    cpu_ms = cpu_ms_per(before, cpu_usage({"wallet": service_pid}), rate * (time.perf_counter() - started))
    print(f"closed-loop, 32 clients, {ACCOUNTS:,} accounts: {rate:,.0f} hold+capture pairs/s")
    print("  CPU per pair: " + ", ".join(f"{name} {ms} ms" for name, ms in cpu_ms.items()))
    hot_rate = await closed_loop(lambda: pair(stub, hot()), 32, seconds)
    print(f"closed-loop, 32 clients, one hot account: {hot_rate:,.0f} pairs/s")
    latencies = await open_loop(lambda: pair(stub, many()), rate / 2, seconds)
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"open-loop at {rate / 2:,.0f} pairs/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(latencies):,} pairs)")
    await channel.close()
    return {
        "pairs_per_s": round(rate),
        "hot_pairs_per_s": round(hot_rate),
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "cpu_ms": cpu_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pg", default=ADMIN_URL)
    args = parser.parse_args()
    seconds = 5 if args.quick else 20
    url = fresh_database(args.pg, "huiyuan_bench_wallet")
    seed(url)
    with serving(["services.wallet"], [PORT], {"HUIYUAN_DATABASE_URL": url, "HUIYUAN_WALLET_PORT": str(PORT)}) as (
        service,
    ):
        figures = asyncio.run(measure(seconds, service.pid))
    tps = pgbench_tps(args.pg, seconds, "-N")
    print(f"pgbench -N, 8 clients: {tps:,.0f} tps; pairs/s over pgbench tps: {figures['pairs_per_s'] / tps:.3f}")
    print(
        json.dumps(
            {
                "bench": "wallet_hold_capture",
                **figures,
                "pgbench_tps": round(tps),
                "ratio": round(figures["pairs_per_s"] / tps, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
