"""Automatic tags and saved segments (issue 40, item 5) on PostgreSQL.

Seeds the member schema with 1,000,000 members (100,000 with --quick) in 1,000 stores
of 10 regions, with a year of visits (0 to 12 a member, about 6 on average) and their
per-store statistics, bulk-loaded by SQL; then, through the member service's use cases
in this process (the SQL the RPCs run, without the network):
- the tag job over HQ's six rules (高频 visits, 低频 visits, 沉睡 no visit, 高价值 spend
  rank, an RFM cell, the birthday month): its first run (every tag set from nothing),
  the same day again (nothing to do), and the next day's run (recomputed, few
  changes), each in members per second (members x rules / seconds);
- counting saved segments over the whole chain: a region's members of one tier who carry
  an automatic tag (the materialised route: target <= 1 s), and the members with 2 or
  more visits in the last 30 days (evaluated from the visits); p50 of five counts each.
Prints the figures and ends with one JSON line.

usage: python bench/segments.py [--quick] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ADMIN_URL, fresh_database, vacuum
from huiyuan.database import Database, engines, migrate
from huiyuan.runtime.clock import utcnow
from services.member.app import SPEC
from services.member.domain.members import MemberQuery
from services.member.domain.segments import Criteria, RuleKind, Window, criteria_to_dict
from services.member.use_cases import segments

REGIONS, STORES_PER_REGION = 10, 100
TARGET_COUNT_S = 1.0

RULES = [  # tag, kind, params
    ("高频", RuleKind.VISITS, {"window_days": 30, "min_visits": 2, "max_visits": 0}),
    ("低频", RuleKind.VISITS, {"window_days": 90, "min_visits": 1, "max_visits": 1}),
    ("沉睡", RuleKind.DORMANT, {"days": 90}),
    ("高价值", RuleKind.SPEND_RANK, {"window_days": 365, "top_percent": 10}),
    ("重要价值", RuleKind.RFM, {"rfm": [[4, 5], [4, 5], [4, 5]]}),
    ("本月生日", RuleKind.BIRTHDAY_MONTH, {"month": 0}),
]


def seed(url: str, members: int) -> float:
    """The chain, its members and a year of their visits: how long it took."""
    started = time.perf_counter()
    migrate.upgrade(SPEC.migrations_dir, url, "member")
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SET search_path TO member")
        db.execute(
            "INSERT INTO org_nodes (path, code, name, kind, time_zone, parent_path, create_time) "
            "VALUES ('hq', 'hq', '总部', 'HQ', 'Asia/Shanghai', NULL, now())"
        )
        db.execute(
            "INSERT INTO org_nodes SELECT 'hq/r' || lpad(r::text, 2, '0'), 'r' || lpad(r::text, 2, '0'), "
            "'区域' || r, 'REGION', 'Asia/Shanghai', 'hq', now() FROM generate_series(0, %s) r",
            (REGIONS - 1,),
        )
        db.execute(
            "INSERT INTO org_nodes SELECT 'hq/r' || lpad((s / %s)::text, 2, '0') || '/s' || lpad(s::text, 4, '0'), "
            "'s' || lpad(s::text, 4, '0'), '门店' || s, 'STORE', 'Asia/Shanghai', "
            "'hq/r' || lpad((s / %s)::text, 2, '0'), now() FROM generate_series(0, %s) s",
            (STORES_PER_REGION, STORES_PER_REGION, REGIONS * STORES_PER_REGION - 1),
        )
        db.execute(
            "INSERT INTO tiers (tier_id, name, rank, price_rate_bp, points_multiplier_bp, benefits) VALUES "
            "('t1', '普通', 1, 10000, 10000, ''), ('t2', '银卡', 2, 9800, 12000, ''), "
            "('t3', '金卡', 3, 9500, 15000, '')"
        )
        stores = REGIONS * STORES_PER_REGION
        db.execute(
            "INSERT INTO members (member_id, name, gender, phone, birthday, anniversary, home_store_path, "
            "marketing_consent, attributes, channel, registered_org_path, tier_id, create_time, update_time, "
            "tags, cashier_id, automatic_tags) "
            "SELECT 'm_' || lpad(i::text, 10, '0'), '会员' || i, 'UNSPECIFIED', '1' || lpad(i::text, 10, '0'), "
            "'19' || (60 + i %% 40) || '-' || lpad((1 + i %% 12)::text, 2, '0') || '-' "
            "|| lpad((1 + i %% 28)::text, 2, '0'), NULL, "
            "'hq/r' || lpad(((i %% %(stores)s) / %(per)s)::text, 2, '0') || '/s' "
            "|| lpad((i %% %(stores)s)::text, 4, '0'), true, '{}', 'STORE', "
            "'hq/r' || lpad(((i %% %(stores)s) / %(per)s)::text, 2, '0') || '/s' "
            "|| lpad((i %% %(stores)s)::text, 4, '0'), 't' || (1 + i %% 3), "
            "now() - interval '400 days', now() - interval '400 days', '[]', '', '[]' "
            "FROM generate_series(1, %(members)s) i",
            {"stores": stores, "per": STORES_PER_REGION, "members": members},
        )
        # a year of visits: member i visits i % 13 times, at times spread over the year
        db.execute(
            "INSERT INTO visits (order_id, member_id, store_path, amount_fen, visit_time) "
            "SELECT 'o_' || i || '_' || k, 'm_' || lpad(i::text, 10, '0'), "
            "'hq/r' || lpad(((i %% %(stores)s) / %(per)s)::text, 2, '0') || '/s' "
            "|| lpad((i %% %(stores)s)::text, 4, '0'), 1000 + (i * 7 + k * 131) %% 30000, "
            "now() - make_interval(secs => ((i::bigint * 7919 + k * 104729) %% (365 * 86400))) "
            "FROM generate_series(1, %(members)s) i, generate_series(1, 12) k WHERE k <= i %% 13",
            {"stores": stores, "per": STORES_PER_REGION, "members": members},
        )
        db.execute(
            "INSERT INTO visit_stats (member_id, store_path, visit_count, total_spend_fen, last_visit_time) "
            "SELECT member_id, store_path, count(*), sum(amount_fen), max(visit_time) FROM visits "
            "GROUP BY member_id, store_path"
        )
    vacuum(url)
    return time.perf_counter() - started


async def measure(url: str, members: int) -> dict:
    engine = engines.make_async_engine(url, "member")
    database = Database(engine, "member", 4)
    await database.open()
    try:
        now = utcnow()
        async with database.transaction() as tx:
            for tag, kind, params in RULES:
                await segments.create_rule(tx, "hq", tag, kind, params, now)
        figures: dict = {}
        for label, moment in (("first", now), ("same_day", now), ("next_day", now + timedelta(days=1))):
            started = time.perf_counter()
            result = await segments.run_rules(database, moment)
            took = time.perf_counter() - started
            figures[label] = {
                "seconds": round(took, 2),
                "member_rules_per_s": round(members * len(RULES) / took) if took else None,
                "added": result.added,
                "removed": result.removed,
                "batches": result.batches,
            }
            print(
                f"tag job, {label:9}: {took:8.2f} s  {members * len(RULES) / took:12,.0f} member-rules/s  "
                f"+{result.added:,} -{result.removed:,} in {result.batches} batches"
            )
            if label == "first":  # as autovacuum does after a million rows written, before the plans rely on them
                with psycopg.connect(url, autocommit=True) as db:
                    db.execute("ANALYZE member.member_auto_tags")
                    db.execute("ANALYZE member.members")
        counts = {}
        for name, criteria in (
            (
                "region_tier_tag",
                Criteria(query=MemberQuery(org_path="hq/r03", tier_id="t3"), automatic_tags=["高价值"]),
            ),
            ("chain_visits_30d", Criteria(query=MemberQuery(org_path="hq"), visits=Window(30, 2, 0))),
        ):
            async with database.transaction() as tx:
                segment = await segments.create_segment(tx, "hq", name, criteria_to_dict(criteria), "", now)
            times, found = [], 0
            for _ in range(5):
                started = time.perf_counter()
                async with database.reading() as tx:
                    found = await segments.count_segment(tx, segment.segment_id, now)
                times.append(time.perf_counter() - started)
            p50 = statistics.median(times)
            counts[name] = {"members": found, "p50_s": round(p50, 3), "max_s": round(max(times), 3)}
            print(f"count {name:17}: {found:>9,} members  p50 {p50 * 1000:8.1f} ms  max {max(times) * 1000:8.1f} ms")
        return {"job": figures, "counts": counts}
    finally:
        await database.close()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 members instead of 1,000,000")
    parser.add_argument("--pg", default=ADMIN_URL)
    args = parser.parse_args()
    members = 100_000 if args.quick else 1_000_000
    url = fresh_database(args.pg, "huiyuan_bench_segments")
    took = seed(url, members)
    print(f"seeded {members:,} members with a year of visits in {took:.1f} s")
    figures = asyncio.run(measure(url, members))
    worst_count = figures["counts"]["region_tier_tag"]["p50_s"]
    print(
        json.dumps(
            {
                "bench": "segments",
                "members": members,
                "rules": len(RULES),
                "seed_s": round(took, 1),
                **figures,
                "count_target_s": TARGET_COUNT_S,
                "count_within_target": worst_count <= TARGET_COUNT_S,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
