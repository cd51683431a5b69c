"""Member lookups by phone and by card number through gRPC, on PostgreSQL.

Seeds members with COPY (1,000,000 in the full run, 50,000 with --quick), starts the
member service as its own process, then measures:
- throughput closed-loop: 32 clients, each sending its next lookup when the last returns;
- latency open-loop at half that rate: calls on a fixed schedule, latency counted from
  the scheduled time (so queueing shows), p50 and p99;
- importing 100,000 CSV rows (20,000 with --quick) through ImportMembers.
Targets on this machine: >= 1,500 lookups/s, p99 <= 5 ms, 100,000-row import <= 20 s.

usage: python bench/member_lookup.py [--quick] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import asyncio
import csv
import io
import json
import random
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (
    ADMIN_URL,
    closed_loop,
    fresh_database,
    open_loop,
    percentile,
    pgbench_tps,
    service_channel,
    serving,
    vacuum,
)
from huiyuan.common.v1 import actor_pb2, file_pb2
from huiyuan.database import migrate
from huiyuan.member.v1 import member_pb2, member_pb2_grpc
from services.member.app import SPEC

PORT = 7491
STORE = "hq/east/sh-001"


def phone_of(i: int) -> str:
    return f"13{i:09d}"


def card_of(i: int) -> str:
    return f"6{i:015d}"


def seed(url: str, members: int) -> None:
    migrate.upgrade(SPEC.migrations_dir, url, "member")
    started = time.perf_counter()
    with psycopg.connect(url.replace("postgresql://", "postgresql://", 1), options="-c search_path=member") as db:
        db.execute(
            "INSERT INTO org_nodes VALUES ('hq','hq','HQ','HQ','Asia/Shanghai',NULL,now()),"
            "('hq/east','east','East','REGION','Asia/Shanghai','hq',now()),"
            "('hq/east/sh-001','sh-001','SH','STORE','Asia/Shanghai','hq/east',now())"
        )
        db.execute(
            "INSERT INTO card_types VALUES ('ct_bench','bench','hq',"
            '\'["DISCOUNT","POINTS","STORED_VALUE","TIMES"]\',\'INDIVIDUAL\',NULL,0,now())'
        )
        with db.cursor().copy(
            "COPY members (member_id,name,gender,phone,home_store_path,marketing_consent,attributes,"
            "channel,registered_org_path,create_time,update_time) FROM STDIN"
        ) as copy:
            for i in range(members):
                copy.write_row(
                    (
                        f"m_{i:026d}",
                        f"会员{i}",
                        "UNSPECIFIED",
                        phone_of(i),
                        STORE,
                        False,
                        "{}",
                        "BULK_IMPORT",
                        STORE,
                        "2026-01-01T00:00:00Z",
                        "2026-01-01T00:00:00Z",
                    )
                )
        with db.cursor().copy(
            "COPY cards (card_number,member_id,card_type_id,state,issued_org_path,issue_time,"
            "replaces_card_number,replaced_by_card_number) FROM STDIN"
        ) as copy:
            for i in range(members):
                copy.write_row((card_of(i), f"m_{i:026d}", "ct_bench", "ACTIVE", STORE, "2026-01-01T00:00:00Z", "", ""))
    print(f"seeded {members:,} members and cards in {time.perf_counter() - started:.1f} s")
    vacuum(url)


def lookup(stub, members: int):
    """By card or by phone, half each, of a random member."""
    k = random.randrange(members)
    request = (
        member_pb2.LookupMemberRequest(phone=phone_of(k))
        if random.randrange(2)
        else member_pb2.LookupMemberRequest(card_number=card_of(k))
    )
    return stub.LookupMember(request, timeout=5)


async def measure(members: int, seconds: float, import_rows: int) -> dict:
    channel = service_channel("member", PORT, options=[("grpc.max_send_message_length", 64 << 20)])
    stub = member_pb2_grpc.MemberServiceStub(channel)
    await closed_loop(lambda: lookup(stub, members), 32, 2)  # warm-up: connections, caches
    rate = await closed_loop(lambda: lookup(stub, members), 32, seconds)
    print(f"closed-loop, 32 clients: {rate:,.0f} lookups/s")
    latencies = await open_loop(lambda: lookup(stub, members), rate / 2, seconds)
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    print(f"open-loop at {rate / 2:,.0f}/s: p50 {p50:.2f} ms, p99 {p99:.2f} ms ({len(latencies):,} calls)")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "phone", "gender", "birthday"])
    for i in range(import_rows):
        writer.writerow([f"导入{i}", f"19{i:09d}", "女" if i % 2 else "男", "1990-05-17"])
    started = time.perf_counter()
    result = await stub.ImportMembers(
        member_pb2.ImportMembersRequest(
            request_id=f"bench-import-{time.time_ns()}",
            content=out.getvalue().encode(),
            format=file_pb2.FILE_FORMAT_CSV,
            actor=actor_pb2.Actor(operator_id="bench", org_path=STORE),
        ),
        timeout=300,
    )
    import_s = time.perf_counter() - started
    assert result.imported_rows == import_rows, result
    print(f"import of {import_rows:,} CSV rows: {import_s:.1f} s")
    await channel.close()
    return {
        "lookups_per_s": round(rate),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "import_rows": import_rows,
        "import_s": round(import_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pg", default=ADMIN_URL)
    args = parser.parse_args()
    members, seconds, import_rows = (50_000, 5, 20_000) if args.quick else (1_000_000, 20, 100_000)
    url = fresh_database(args.pg, "huiyuan_bench")
    seed(url, members)
    with serving(["services.member"], [PORT], {"HUIYUAN_DATABASE_URL": url, "HUIYUAN_MEMBER_PORT": str(PORT)}):
        figures = asyncio.run(measure(members, seconds, import_rows))
    tps = pgbench_tps(args.pg, seconds, "-N")  # how fast the machine is now: the baseline
    print(f"pgbench -N, 8 clients: {tps:,.0f} tps; lookups/s over pgbench tps: {figures['lookups_per_s'] / tps:.3f}")
    print(json.dumps({"bench": "member_lookup", "members": members, **figures, "pgbench_tps": round(tps)}))


if __name__ == "__main__":
    main()
