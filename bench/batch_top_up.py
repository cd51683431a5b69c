"""An enterprise batch top-up (企业批量充值) through the gateway, on PostgreSQL.

Seeds 10,000 members (bench/checkout.py's seed), starts every process, and has a store
manager load a company's CSV file whose rows name members by phone, as a company's HR
file does: 10,000 rows (2,000 with --quick). Prints the time of the batch, its rows per
second, and the time of the same batch sent again as a new call (every row
ALREADY_APPLIED, nothing moves). The issue sets no target; this shows how long a back
office waits for a file of this size.

usage: python bench/batch_top_up.py [--quick] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import csv
import io
import json
import sys
import time
import uuid
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.checkout import MEMBERS, PORTS, STORE, seed
from bench.common import ADMIN_URL, fresh_database, pgbench_tps, serving
from gateway.domain.callers import Role
from gateway.use_cases import bootstrap
from huiyuan.common.v1 import file_pb2
from huiyuan.gateway.v1 import (
    gateway_pb2 as pb,
    gateway_pb2_grpc,
)
from huiyuan_cli.launcher import SERVICES


def company_file(rows: int) -> bytes:
    """姓名, 手机, 金额(分): the phones bench/checkout.py's seed gave its members."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "手机", "金额(分)"])
    for i in range(rows):
        writer.writerow([f"员工{i}", f"13{i % MEMBERS:09d}", 500_00])
    return out.getvalue().encode()


def load(stub, key: str, content: bytes, batch_id: str) -> tuple[float, pb.BatchTopUpResponse]:
    started = time.perf_counter()
    answer = stub.BatchTopUp(
        pb.BatchTopUpRequest(
            request_id=str(uuid.uuid4()), batch_id=batch_id, content=content, format=file_pb2.FILE_FORMAT_CSV
        ),
        metadata=(("authorization", f"Bearer {key}"),),
        timeout=600,
    )
    return time.perf_counter() - started, answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pg", default=ADMIN_URL)
    args = parser.parse_args()
    rows = 2_000 if args.quick else 10_000
    url = fresh_database(args.pg, "huiyuan_bench_batch")
    seed(url)
    _, key = bootstrap.issue_key(url, STORE, Role.STORE_MANAGER, "bench", member_database_url=url)
    env = {"HUIYUAN_DATABASE_URL": url, **{f"HUIYUAN_{name.upper()}_PORT": str(port) for name, port in PORTS.items()}}
    content = company_file(rows)
    with serving(list(SERVICES.values()), list(PORTS.values()), env):
        with grpc.insecure_channel(f"127.0.0.1:{PORTS['gateway']}") as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)
            seconds, first = load(stub, key, content, "ACME-2026-11")
            assert (first.applied_rows, first.rejected_rows) == (rows, 0), (first.applied_rows, first.rejected_rows)
            print(f"batch of {rows:,} rows by phone: {seconds:.1f} s, {rows / seconds:,.0f} rows/s")
            again_s, again = load(stub, key, content, "ACME-2026-11")
            assert again.applied_rows == 0 and {r.reject_reason for r in again.rows} == {"ALREADY_APPLIED"}
            print(f"the same batch again, as a new call: {again_s:.1f} s, nothing applied")
    tps = pgbench_tps(args.pg, 5 if args.quick else 20, "-N")  # how fast the machine is now: the baseline
    print(f"pgbench -N, 8 clients: {tps:,.0f} tps")
    print(
        json.dumps(
            {
                "pgbench_tps": round(tps),
                "bench": "batch_top_up",
                "rows": rows,
                "seconds": round(seconds, 1),
                "rows_per_s": round(rows / seconds),
                "rerun_s": round(again_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
