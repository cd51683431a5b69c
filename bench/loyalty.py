"""The nightly loyalty jobs on PostgreSQL (issue 40; docs/loyalty.md): the re-evaluation
of tiers, the monthly value score recompute and the automatic tags, and counting a
saved segment.

Seeds with COPY (1,000,000 members in the full run, 100,000 with --quick) a year of
visits (0 to 16 a member, ¥20 to ¥800 each, some returned) with their per-store
statistics, tiers held by half of them (银卡, 金卡, 铂金卡) and a tier programme (spend
over the last 365 days) whose terms ALL end on the day evaluated: the worst night, as a
calendar-year programme's 31 December is, when every tier holder is due at once. Then:
- HQ's six tag rules (bench/segments.py's) run for the night before (not timed: every
  tag set from nothing), and tonight's run timed, in this process (the SQL RunTagRules
  runs); a saved segment (金卡 with the tag 高价值) counted five times (p50, max);
- the member service started as its own process, and through its RPCs:
  RunTierReevaluation of yesterday (business time): every tier holder renewed or moved;
  RunValueScoreRecompute of this month: every member scored over the 12 months before
  the 1st; a second run of each (a new request id): the work is done, nothing is done
  again.
Prints each job's seconds and members per second, and the nightly total (tiers + scores
+ automatic tags; target: 120 s for 1,000,000 members; counting a segment: 1 s). With
--together, then the three at once on a copy of the same seed (made after the night
before's tags), as the service runs them (its tag loop, its nightly loop's tiers and
scores side by side): the time until all three are done, and the CPU of the service,
this process and the database's backends meanwhile. Figures: bench/README.md.

usage: python bench/loyalty.py [--quick] [--together] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (
    ADMIN_URL,
    PORT_OFFSET,
    cpu_seconds,
    fresh_database,
    pgbench_tps,
    service_channel,
    serving,
    vacuum,
)
from bench.segments import RULES as TAG_RULES
from huiyuan.database import Database, engines, migrate
from huiyuan.member.v1 import loyalty_pb2 as pb, loyalty_pb2_grpc
from huiyuan.runtime.business_time import day_start
from huiyuan.runtime.clock import today, utcnow
from huiyuan.runtime.convert import calendar_day
from services.member.app import SPEC
from services.member.domain.members import MemberQuery
from services.member.domain.segments import Criteria, criteria_to_dict
from services.member.use_cases import segments

PORT = 7495 + PORT_OFFSET
STORE = "hq/east/sh-001"
TIERS = [("t_silver", "银卡", 2, 100_000, 80_000), ("t_gold", "金卡", 3, 500_000, 300_000)]
TIERS += [("t_platinum", "铂金卡", 4, 1_000_000, 800_000)]
TARGET_S, TARGET_COUNT_S = 120.0, 1.0


def member_id(i: int) -> str:
    return f"m_{i:026d}"


def seed(url: str, members: int, evaluated: date) -> dict:
    """Members, a year of visits before `evaluated`, tiers with terms ending on it, and
    the programme. What was seeded, counted."""
    migrate.upgrade(SPEC.migrations_dir, url, "member")
    started = time.perf_counter()
    rng = random.Random(40)
    end = day_start(evaluated + timedelta(days=1)).astimezone(UTC)
    counts = {"visits": 0, "returns": 0, "tier_holders": 0}
    with psycopg.connect(url, options="-c search_path=member") as db:
        db.execute(
            "INSERT INTO org_nodes VALUES ('hq','hq','HQ','HQ','Asia/Shanghai',NULL,now()),"
            "('hq/east','east','East','REGION','Asia/Shanghai','hq',now()),"
            "('hq/east/sh-001','sh-001','SH','STORE','Asia/Shanghai','hq/east',now())"
        )
        for tier_id, name, rank, upgrade, _ in TIERS:
            db.execute(
                "INSERT INTO tiers (tier_id, name, rank, price_rate_bp, points_multiplier_bp, benefits,"
                " upgrade_spend_fen, upgrade_top_up_fen) VALUES (%s, %s, %s, 10000, 10000, '', %s, 0)",
                (tier_id, name, rank, upgrade),
            )
        rules = [{"tier_id": t, "upgrade": up, "keep": keep} for t, _, _, up, keep in TIERS]
        db.execute(
            "INSERT INTO tier_programme_versions VALUES ('tierprog_bench', %s, 'spend', 'rolling_days', 365, 12, 0,"
            " 'to_qualified', 30, %s, 'bench', now())",
            (evaluated - timedelta(days=400), json.dumps(rules)),
        )
        tier_of = {}
        with db.cursor().copy(
            "COPY members (member_id,name,gender,phone,birthday,home_store_path,marketing_consent,attributes,"
            "channel,registered_org_path,tier_id,create_time,update_time) FROM STDIN"
        ) as copy:
            for i in range(members):
                roll = rng.random()
                tier = "t_platinum" if roll < 0.05 else "t_gold" if roll < 0.2 else "t_silver" if roll < 0.5 else None
                if tier:
                    tier_of[i] = tier
                registered = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(2400))
                copy.write_row(
                    (
                        member_id(i),
                        f"会员{i}",
                        rng.choice(["FEMALE", "MALE", "UNSPECIFIED"]),
                        f"13{i:09d}",
                        "1990-05-17" if i % 3 == 0 else None,
                        STORE,
                        i % 2 == 0,
                        "{}",
                        "BULK_IMPORT",
                        STORE,
                        tier,
                        registered,
                        registered,
                    )
                )
        counts["tier_holders"] = len(tier_of)
        with db.cursor().copy("COPY member_tier_terms (member_id,tier_id,term_end,floor_tier_id) FROM STDIN") as copy:
            for i, tier in tier_of.items():
                copy.write_row((member_id(i), tier, evaluated, ""))
        returned = []
        with db.cursor().copy("COPY visits (order_id,member_id,store_path,amount_fen,visit_time) FROM STDIN") as copy:
            for i in range(members):
                for v in range(rng.randrange(17)):
                    order = f"o_{i}_{v}"
                    amount = rng.randrange(2_000, 80_000)
                    copy.write_row(
                        (order, member_id(i), STORE, amount, end - timedelta(seconds=rng.randrange(364 * 86400)))
                    )
                    counts["visits"] += 1
                    if rng.random() < 0.02:
                        returned.append((f"r_{i}_{v}", order, amount // 2, end - timedelta(hours=1), member_id(i)))
        with db.cursor().copy(
            "COPY visit_returns (return_id,order_id,amount_fen,return_time,member_id) FROM STDIN"
        ) as copy:
            for row in returned:
                copy.write_row(row)
        counts["returns"] = len(returned)
        db.execute(  # what RecordVisit keeps per member and store (the dormant and RFM rules read it)
            "INSERT INTO visit_stats (member_id, store_path, visit_count, total_spend_fen, last_visit_time) "
            "SELECT member_id, store_path, count(*), sum(amount_fen), max(visit_time) FROM visits "
            "GROUP BY member_id, store_path"
        )
    print(
        f"seeded {members:,} members ({counts['tier_holders']:,} on a tier, every term ending {evaluated}), "
        f"{counts['visits']:,} visits and {counts['returns']:,} returns in {time.perf_counter() - started:.1f} s"
    )
    vacuum(url)
    return counts


async def night_before(database: Database, url: str) -> None:
    """HQ's six tag rules (bench/segments.py's) run for yesterday (the night before, not
    timed: every tag set from nothing)."""
    now = utcnow()
    async with database.transaction() as tx:
        for tag, kind, params in TAG_RULES:
            await segments.create_rule(tx, "hq", tag, kind, params, now)
    started = time.perf_counter()
    before = await segments.run_rules(database, now - timedelta(days=1))
    print(
        f"automatic tags, the night before (not timed in the total): {time.perf_counter() - started:.1f} s, "
        f"+{before.added:,}"
    )
    with psycopg.connect(url, autocommit=True) as db:  # as autovacuum does after the rows written
        db.execute("VACUUM (ANALYZE) member.member_auto_tags")
        # the night before rewrote most members' automatic_tags: autovacuum would clear
        # those dead rows (more than its 20%) before the next night; without it the full
        # run's jobs read 1.1 million dead rows of members
        db.execute("VACUUM (ANALYZE) member.members")


async def prepare(url: str) -> None:
    engine = engines.make_async_engine(url, "member")
    database = Database(engine, "member", 4)
    await database.open()
    try:
        await night_before(database, url)
    finally:
        await database.close()
        await engine.dispose()


async def automatic_tags(url: str, members: int) -> dict:
    """After the night before's tags (prepare), tonight's run timed, in this process (the
    SQL RunTagRules runs, without the network; the service's own loop, started after,
    finds tonight's runs done); then a saved segment counted five times."""
    engine = engines.make_async_engine(url, "member")
    database = Database(engine, "member", 4)
    await database.open()
    try:
        now = utcnow()
        started = time.perf_counter()
        tonight = await segments.run_rules(database, now)
        tags_s = time.perf_counter() - started
        print(
            f"automatic tags, {len(TAG_RULES)} rules: {tags_s:.1f} s, {members / tags_s:,.0f} members/s "
            f"(+{tonight.added:,} -{tonight.removed:,})"
        )
        criteria = Criteria(query=MemberQuery(org_path="hq", tier_id="t_gold"), automatic_tags=["高价值"])
        async with database.transaction() as tx:
            segment = await segments.create_segment(tx, "hq", "金卡高价值", criteria_to_dict(criteria), "", now)
        times, found = [], 0
        for _ in range(5):
            started = time.perf_counter()
            async with database.reading() as tx:
                found = await segments.count_segment(tx, segment.segment_id, now)
            times.append(time.perf_counter() - started)
        p50 = statistics.median(times)
        print(
            f"counting a saved segment (金卡, tag 高价值): {found:,} members, p50 {p50 * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"
        )
        return {
            "tags_s": round(tags_s, 2),
            "tags_members_per_s": round(members / tags_s),
            "tags_added": tonight.added,
            "tags_removed": tonight.removed,
            "segment_count": found,
            "segment_count_p50_s": round(p50, 3),
            "segment_count_max_s": round(max(times), 3),
        }
    finally:
        await database.close()
        await engine.dispose()


async def measure(members: int, evaluated: date) -> dict:
    channel = service_channel("member", PORT)
    tiers = loyalty_pb2_grpc.TierProgrammeServiceStub(channel)
    scores = loyalty_pb2_grpc.ValueScoreServiceStub(channel)
    started = time.perf_counter()
    run = await tiers.RunTierReevaluation(
        pb.RunTierReevaluationRequest(
            request_id=f"bench-tiers-{time.time_ns()}", business_date=calendar_day(evaluated)
        ),
        timeout=1800,
    )
    tiers_s = time.perf_counter() - started
    print(
        f"tier re-evaluation of {evaluated}: {tiers_s:.1f} s, {members / tiers_s:,.0f} members/s "
        f"({run.evaluated:,} due: {run.renewed:,} renewed, {run.downgraded:,} moved down, {run.upgraded:,} up; "
        f"{run.evaluated / tiers_s:,.0f} due members/s)"
    )
    started = time.perf_counter()
    scored = await scores.RunValueScoreRecompute(
        pb.RunValueScoreRecomputeRequest(request_id=f"bench-scores-{time.time_ns()}"), timeout=1800
    )
    scores_s = time.perf_counter() - started
    print(
        f"value scores of {scored.month.year}-{scored.month.month:02d}: {scores_s:.1f} s, {scored.scored / scores_s:,.0f} members/s"
    )
    started = time.perf_counter()
    again = await tiers.RunTierReevaluation(
        pb.RunTierReevaluationRequest(
            request_id=f"bench-again-{time.time_ns()}", business_date=calendar_day(evaluated)
        ),
        timeout=600,
    )
    rescored = await scores.RunValueScoreRecompute(
        pb.RunValueScoreRecomputeRequest(request_id=f"bench-rescore-{time.time_ns()}"), timeout=600
    )
    again_s = time.perf_counter() - started
    assert (again.evaluated, rescored.scored) == (run.evaluated, scored.scored), (again, rescored)
    print(f"second runs of both (done already): {again_s * 1000:.0f} ms")
    await channel.close()
    return {
        "tiers_s": round(tiers_s, 2),
        "tiers_members_per_s": round(members / tiers_s),
        "tiers_due": run.evaluated,
        "tiers_renewed": run.renewed,
        "tiers_moved_down": run.downgraded,
        "scores_s": round(scores_s, 2),
        "scores_members_per_s": round(scored.scored / scores_s),
        "scored": scored.scored,
        "second_runs_ms": round(again_s * 1000),
    }


def _backends_cpu(url: str) -> float:
    """The CPU seconds of the PostgreSQL backends connected to the bench's database (not
    the other databases' of the machine)."""
    with psycopg.connect(url, autocommit=True) as db:
        pids = [r[0] for r in db.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:  # gone meanwhile
            pass
    return total


async def side_by_side(url: str, members: int, evaluated: date, service_pid: int) -> dict:
    """The three jobs started at once, as the service runs them (its tag loop, and its
    nightly loop's tiers and scores side by side): tonight's tags in this process (the
    service's own tag loop, started at its start, shares the runs' batches with it: a
    batch is done once), tiers and scores through the RPCs. Timed until the last is
    done; the CPU of the service, this process and the database's backends meanwhile."""
    engine = engines.make_async_engine(url, "member")
    database = Database(engine, "member", 4)
    await database.open()
    try:
        cpu_before = cpu_seconds(service_pid) + time.process_time() + _backends_cpu(url)
        started = time.perf_counter()
        done: dict[str, float] = {}

        async def timed(name: str, job) -> None:
            await job
            done[name] = time.perf_counter() - started

        channel = service_channel("member", PORT)
        tiers = loyalty_pb2_grpc.TierProgrammeServiceStub(channel)
        scores = loyalty_pb2_grpc.ValueScoreServiceStub(channel)
        day = calendar_day(evaluated)
        await asyncio.gather(
            timed("tags", segments.run_rules(database, utcnow())),
            timed(
                "tiers",
                tiers.RunTierReevaluation(
                    pb.RunTierReevaluationRequest(request_id=f"bench-t-{time.time_ns()}", business_date=day),
                    timeout=1800,
                ),
            ),
            timed(
                "scores",
                scores.RunValueScoreRecompute(
                    pb.RunValueScoreRecomputeRequest(request_id=f"bench-s-{time.time_ns()}"), timeout=1800
                ),
            ),
        )
        await channel.close()
        wall = time.perf_counter() - started
        cpu = cpu_seconds(service_pid) + time.process_time() + _backends_cpu(url) - cpu_before
    finally:
        await database.close()
        await engine.dispose()
    print(
        f"side by side: all three done in {wall:.1f} s, {members / wall:,.0f} members/s (tags done at "
        f"{done['tags']:.1f} s, tiers at {done['tiers']:.1f} s, scores at {done['scores']:.1f} s); CPU of the service, this "
        f"process and the database's backends {cpu:.1f} s"
    )
    return {"together_s": round(wall, 2), "together_cpu_s": round(cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pg", default=ADMIN_URL)
    parser.add_argument(
        "--together",
        action="store_true",
        help="also the three jobs at once on a second copy of the seed, as the service runs them",
    )
    args = parser.parse_args()
    members = 100_000 if args.quick else 1_000_000
    evaluated = today() - timedelta(days=1)
    url = fresh_database(args.pg, "huiyuan_bench_loyalty")
    counts = seed(url, members, evaluated)
    asyncio.run(prepare(url))
    copy_url = None
    if args.together:  # the same seed and night before, for the jobs at once
        copy_url = fresh_database(args.pg, "huiyuan_bench_loyalty_together", template=url)
    tags = asyncio.run(automatic_tags(url, members))
    with serving(["services.member"], [PORT], {"HUIYUAN_DATABASE_URL": url, "HUIYUAN_MEMBER_PORT": str(PORT)}):
        figures = asyncio.run(measure(members, evaluated))
    if copy_url is not None:
        env = {"HUIYUAN_DATABASE_URL": copy_url, "HUIYUAN_MEMBER_PORT": str(PORT)}
        with serving(["services.member"], [PORT], env) as (service,):
            figures |= asyncio.run(side_by_side(copy_url, members, evaluated, service.pid))
    tps = pgbench_tps(args.pg, 5 if args.quick else 20, "-N")  # how fast the machine is now: the baseline
    print(f"pgbench -N, 8 clients: {tps:,.0f} tps")
    total = figures["tiers_s"] + figures["scores_s"] + tags["tags_s"]
    print(
        f"nightly: tiers + scores + automatic tags {total:.1f} s, {members / total:,.0f} members/s "
        f"(target for 1,000,000 members: {TARGET_S:.0f} s; counting a segment: {TARGET_COUNT_S:.0f} s)"
    )
    print(
        json.dumps(
            {
                "bench": "loyalty",
                "members": members,
                **counts,
                **figures,
                **tags,
                "nightly_total_s": round(total, 2),
                "nightly_members_per_s": round(members / total),
                "pgbench_tps": round(tps),
            }
        )
    )


if __name__ == "__main__":
    main()
