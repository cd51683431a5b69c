"""Hold + capture pairs through gRPC on PostgreSQL, against pgbench -N on the same server.

Seeds 10,000 funded members with COPY (the ledger rows a top-up would write), starts
the wallet service as its own process, then measures:
- throughput closed-loop, 32 clients, each a hold then a capture, over 10,000 accounts;
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
import os
import random
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import psycopg
from google.protobuf.duration_pb2 import Duration

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from huiyuan.runtime import migrate  # noqa: E402
from huiyuan.wallet.v1 import wallet_pb2 as pb  # noqa: E402
from huiyuan.wallet.v1 import wallet_pb2_grpc  # noqa: E402
from services.wallet.app import SPEC  # noqa: E402

PORT = 7492
STORE = "hq/east/sh-001"
ACCOUNTS = 10_000
FUNDS = 10**9  # fen per member: no pair ever runs out


def member_of(i: int) -> str:
    return f"m_{i:026d}"


def seed(url: str) -> None:
    migrate.upgrade(SPEC.migrations_dir, url, "wallet")
    with psycopg.connect(url, options="-c search_path=wallet") as db:
        with db.cursor().copy("COPY member_accounts FROM STDIN") as copy:
            for i in range(ACCOUNTS):
                copy.write_row((member_of(i), FUNDS, 0, 0, 0, "2026-01-01T00:00:00Z"))
        with db.cursor().copy("COPY lots (lot_id,member_id,loaded_store_path,principal_left_fen,bonus_left_fen) FROM STDIN") as copy:
            for i in range(ACCOUNTS):
                copy.write_row((f"t_{i:026d}", member_of(i), STORE, FUNDS, 0))
        with db.cursor().copy("COPY entries FROM STDIN") as copy:
            for i in range(ACCOUNTS):
                copy.write_row((f"t_{i:026d}:0", f"t_{i:026d}", member_of(i), "TOP_UP", FUNDS, 0, FUNDS,
                                f"TENDER:{STORE}", STORE, STORE, "bench", "-", "seed", "2026-01-01T00:00:00Z"))
        db.execute("ANALYZE")


async def pair(stub, member: str) -> None:
    hold = await stub.Hold(pb.HoldRequest(
        request_id=str(uuid.uuid4()), member_id=member, amount_fen=random.randint(1, 500_00), ttl=Duration(seconds=600),
        store_path=STORE), timeout=10)
    await stub.Capture(pb.CaptureRequest(request_id=str(uuid.uuid4()), hold_id=hold.hold.hold_id,
                                         amount_fen=hold.hold.amount_fen), timeout=10)


async def closed_loop(stub, pick, clients: int, seconds: float) -> float:
    done = 0
    stop_at = time.perf_counter() + seconds

    async def client():
        nonlocal done
        while time.perf_counter() < stop_at:
            await pair(stub, pick())
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - started)


async def open_loop(stub, pick, rate: float, seconds: float) -> list[float]:
    latencies: list[float] = []
    start = time.perf_counter()

    async def one(scheduled: float):
        await pair(stub, pick())
        latencies.append((time.perf_counter() - scheduled) * 1000)

    tasks = []
    for i in range(int(rate * seconds)):
        scheduled = start + i / rate
        if (delay := scheduled - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    return sorted(latencies)


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))]


async def measure(seconds: float) -> dict:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{PORT}")
    stub = wallet_pb2_grpc.WalletServiceStub(channel)
    many = lambda: member_of(random.randrange(ACCOUNTS))  # noqa: E731
    hot = lambda: member_of(0)  # noqa: E731
    await closed_loop(stub, many, 32, 2)  # warm-up
    rate = await closed_loop(stub, many, 32, seconds)
    print(f"closed-loop, 32 clients, {ACCOUNTS:,} accounts: {rate:,.0f} hold+capture pairs/s")
    hot_rate = await closed_loop(stub, hot, 32, seconds)
    print(f"closed-loop, 32 clients, one hot account: {hot_rate:,.0f} pairs/s")
    latencies = await open_loop(stub, many, rate / 2, seconds)
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"open-loop at {rate / 2:,.0f} pairs/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(latencies):,} pairs)")
    await channel.close()
    return {"pairs_per_s": round(rate), "hot_pairs_per_s": round(hot_rate), "p50_ms": round(p50, 1), "p99_ms": round(p99, 1)}


def pgbench_tps(admin_url: str, seconds: int) -> float:
    """pgbench -N with 8 clients on a scratch database of the same server."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS huiyuan_pgbench WITH (FORCE)")
        admin.execute("CREATE DATABASE huiyuan_pgbench")
    target = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "huiyuan_pgbench"]
    subprocess.run(["pgbench", "-i", "-q", "-s", "10", *target], check=True, capture_output=True)
    out = subprocess.run(["pgbench", "-N", "-c", "8", "-j", "2", "-T", str(seconds), *target],
                         check=True, capture_output=True, text=True).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    seconds = 5 if args.quick else 20
    url = args.pg.rsplit("/", 1)[0] + "/huiyuan_bench_wallet"
    with psycopg.connect(args.pg, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS huiyuan_bench_wallet WITH (FORCE)")
        admin.execute("CREATE DATABASE huiyuan_bench_wallet")
    seed(url)
    env = {**os.environ, "HUIYUAN_DATABASE_URL": url, "HUIYUAN_WALLET_PORT": str(PORT), "HUIYUAN_LOG_LEVEL": "WARNING",
           "HUIYUAN_DB_POOL_SIZE": "16"}
    server = subprocess.Popen([sys.executable, "-m", "services.wallet"], cwd=ROOT, env=env)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{PORT}") as probe:
            grpc.channel_ready_future(probe).result(timeout=30)
        figures = asyncio.run(measure(seconds))
    finally:
        server.terminate()
        server.wait(15)
    tps = pgbench_tps(args.pg, seconds)
    print(f"pgbench -N, 8 clients: {tps:,.0f} tps; pairs/s over pgbench tps: {figures['pairs_per_s'] / tps:.3f}")
    print(json.dumps({"bench": "wallet_hold_capture", **figures, "pgbench_tps": round(tps),
                      "ratio": round(figures["pairs_per_s"] / tps, 3)}))


if __name__ == "__main__":
    main()
