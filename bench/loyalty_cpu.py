"""The nightly loyalty jobs' CPU on the quick seed, in this process: what a change to
them costs, measured where the machine's load moves it least (docs/decisions/
nightly-loyalty-jobs.md). The CPU is this process's and its PostgreSQL backends' (from
/proc: the backends of the run's database only, not the other databases' of a shared
machine).

    python bench/loyalty_cpu.py seed
        bench/loyalty.py's seed (100,000 members) and the night before's tags, vacuumed:
        a template database kept for the runs;
    python bench/loyalty_cpu.py run [--tree DIR] [--label L] tiers,scores,tags|together
        a copy of the template, the jobs one after another (each its wall time and CPU)
        or the three at once (the time until all are done, and what the backends
        waited on, sampled every 100 ms); --tree: another checkout's code (a commit's
        worktree: the code before a change, in turns with this one).

The template database is huiyuan_loyalty_cpu (with HUIYUAN_BENCH_TAG, as the benches').
"""

import argparse
import asyncio
import collections
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backends(db: str) -> dict[int, float]:
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        pids = [r[0] for r in admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (db,))]
    out = {}
    for pid in pids:
        try:
            out[pid] = _cpu_of(pid)
        except OSError:  # gone meanwhile
            pass
    return out


async def _seed() -> None:
    from bench import loyalty as bench
    from bench.common import fresh_database, vacuum
    from huiyuan.runtime.clock import today

    url = fresh_database(ADMIN, "huiyuan_loyalty_cpu")
    bench.seed(url, 100_000, today() - timedelta(days=1))
    await bench.prepare(url)
    vacuum(url)


async def _run(template: str, jobs: str, label: str) -> None:
    from huiyuan.database import Database, engines
    from huiyuan.runtime.clock import today, utcnow
    from services.member.use_cases import loyalty, segments

    db = f"{template}_run"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {db} TEMPLATE {template}")
    url = ADMIN.rsplit("/", 1)[0] + "/" + db
    engine = engines.make_async_engine(url, "member")
    database = Database(engine, "member", 4)
    await database.open()
    now, evaluated = utcnow(), today() - timedelta(days=1)

    def job(name: str):
        if name == "tiers":
            return loyalty.run_reevaluation(database, evaluated, now)
        if name == "scores":
            return loyalty.run_value_scores(database, loyalty.month_of(today()), now)
        return segments.run_rules(database, now)

    try:
        if jobs == "together":
            waits: collections.Counter = collections.Counter()
            done: dict[str, float] = {}
            sampling = True

            async def sample() -> None:
                async with await psycopg.AsyncConnection.connect(ADMIN, autocommit=True) as admin:
                    while sampling:
                        rows = await admin.execute(
                            "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity "
                            "WHERE datname = %s AND state <> 'idle'",
                            (db,),
                        )
                        waits.update(r[0] for r in await rows.fetchall())
                        await asyncio.sleep(0.1)

            async def timed(name: str) -> None:
                await job(name)
                done[name] = round(time.perf_counter() - started, 1)

            before, cpu, started = _backends(db), time.process_time(), time.perf_counter()
            sampler = asyncio.create_task(sample())
            await asyncio.gather(*(timed(name) for name in ("tiers", "scores", "tags")))
            wall = time.perf_counter() - started
            sampling = False
            await sampler
            py, pg = time.process_time() - cpu, sum(v - before.get(k, 0.0) for k, v in _backends(db).items())
            print(
                f"{label:8} together wall {wall:6.2f} s  CPU python {py:5.2f} + postgresql {pg:5.2f} = {py + pg:5.2f} s"
                f"  done at {done}  backends seen {waits.most_common(5)}"
            )
            return
        for name in jobs.split(","):
            before, cpu, started = _backends(db), time.process_time(), time.perf_counter()
            await job(name)
            wall = time.perf_counter() - started
            py, pg = time.process_time() - cpu, sum(v - before.get(k, 0.0) for k, v in _backends(db).items())
            print(
                f"{label:8} {name:7} wall {wall:6.2f} s  CPU python {py:5.2f} + postgresql {pg:5.2f} = {py + pg:5.2f} s"
            )
    finally:
        await database.close()
        await engine.dispose()
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["seed", "run"])
    parser.add_argument("jobs", nargs="?", default="tiers,scores,tags")
    parser.add_argument("--tree", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    sys.path.insert(0, args.tree)  # that checkout's code, this one's by default
    from bench.common import BENCH_TAG

    template = f"huiyuan_loyalty_cpu_{BENCH_TAG}" if BENCH_TAG else "huiyuan_loyalty_cpu"
    if args.what == "seed":
        asyncio.run(_seed())
    else:
        asyncio.run(_run(template, args.jobs, args.label or Path(args.tree).name))


if __name__ == "__main__":
    main()
