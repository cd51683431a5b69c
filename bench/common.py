"""What every benchmark does the same way: a fresh database, the services as their own
processes, closed- and open-loop load, percentiles and the pgbench baseline."""

import asyncio
import atexit
import contextlib
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from huiyuan.runtime.clients import service_token
from huiyuan.runtime.config import KeyFolder
from huiyuan.runtime.service_auth import GATEWAY, Identity, make_local_keys

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Benches of several trees may run at once on one machine and one PostgreSQL: a run
# given HUIYUAN_BENCH_TAG names its databases with it, and one given
# HUIYUAN_BENCH_PORT_OFFSET moves its services' ports by it.
BENCH_TAG = os.environ.get("HUIYUAN_BENCH_TAG", "")
PORT_OFFSET = int(os.environ.get("HUIYUAN_BENCH_PORT_OFFSET", "0"))
# The services run as in production, with keys made for this run; the bench calls them as
# the gateway does.
KEYS = KeyFolder(Path(tempfile.mkdtemp(prefix="huiyuan-bench-keys-")))
atexit.register(shutil.rmtree, KEYS.root, True)
KEYS_ENV = make_local_keys(KEYS)
AS_GATEWAY = Identity.from_file(GATEWAY, KEYS.private_key(GATEWAY))


def service_channel(service: str, port: int, options=()) -> grpc.aio.Channel:
    """An aio channel to a service that serving() started, its calls signed as the gateway's."""
    return grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=options, interceptors=service_token(AS_GATEWAY, service)
    )


def fresh_database(admin_url: str, name: str, template: str = "") -> str:
    """Drop and create database `name` (with BENCH_TAG) on the admin URL's server, a copy
    of the database at URL template if given (nobody may be connected to it); its URL."""
    name = f"{name}_{BENCH_TAG}" if BENCH_TAG else name
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        copy = f" TEMPLATE {template.rsplit('/', 1)[1]}" if template else ""
        admin.execute(f"CREATE DATABASE {name}{copy}")
    return admin_url.rsplit("/", 1)[0] + "/" + name


def vacuum(url: str) -> None:
    """After a bulk load: VACUUM (ANALYZE), as the tables of a running chain would have
    been. Without it autovacuum wakes on the fresh million rows in the middle of the
    measurement, and every first read of a page writes its hint bits. Then a CHECKPOINT:
    else the pages the load dirtied are written out by one in the middle of the
    measurement, and the commits queued behind its I/O showed as the p99 (points, full
    run: p99 181 ms without it, 28 ms with it)."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("VACUUM (ANALYZE)")
        db.execute("CHECKPOINT")


@contextlib.contextmanager
def serving(modules: list[str], ports: list[int], env: dict[str, str]):
    """Runs `python -m <module>` for each module, as the services run in production
    (log level WARNING, a pool for 32 clients, the keys of KEYS), until every port answers; stops them
    gracefully at the end. Yields the processes, in the order of modules."""
    env = {**os.environ, "HUIYUAN_LOG_LEVEL": "WARNING", "HUIYUAN_DB_POOL_SIZE": "16", **KEYS_ENV, **env}
    processes = [subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env) for module in modules]
    try:
        for port in ports:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as probe:
                grpc.channel_ready_future(probe).result(timeout=60)
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(20)


def _quiet_collector() -> None:
    """Keep this load generator's own garbage collection out of the figures.

    A full collection walks every object the bench has made (modules, seeds, stubs)
    and paused it for 50-70 ms: in the open loop every call due meanwhile was sent late
    and counted as the service's latency. The services freeze their start-up objects
    the same way (huiyuan/runtime/server.py).
    """
    gc.collect()
    gc.freeze()


async def closed_loop(call: Callable[[], Awaitable[object]], clients: int, seconds: float) -> float:
    """Calls per second with `clients` callers, each calling again as soon as answered."""
    _quiet_collector()
    done = 0
    stop_at = time.perf_counter() + seconds

    async def client():
        nonlocal done
        while time.perf_counter() < stop_at:
            await call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - started)


async def open_loop(call: Callable[[], Awaitable[object]], rate: float, seconds: float) -> list[float]:
    """Latencies in ms, sorted, of calls started at a fixed rate, each measured from the
    time it was due (so a stall counts against every call it delays)."""
    _quiet_collector()
    latencies: list[float] = []
    start = time.perf_counter()

    async def one(scheduled: float):
        await call()
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
    """The p-th percentile (0..1) of sorted values."""
    return values[min(len(values) - 1, int(len(values) * p))]


def pgbench_tps(admin_url: str, seconds: int, *options: str) -> float:
    """pgbench with 8 clients on a scratch database of the same server (option -N: TPC-B
    without the branch and teller rows every transaction updates)."""
    database = fresh_database(admin_url, "huiyuan_pgbench").rsplit("/", 1)[1]
    target = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", database]
    subprocess.run(["pgbench", "-i", "-q", "-s", "10", *target], check=True, capture_output=True)
    out = subprocess.run(
        ["pgbench", *options, "-c", "8", "-j", "2", "-T", str(seconds), *target],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) a process has used, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_usage(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process, of PostgreSQL and of this load generator:
    taken before and after a closed loop, what each spent per call (cpu_ms_per). The
    load generator's share, which does the same work in every run, also says how fast
    the machine was meanwhile: it varies by half within an hour here."""
    return {
        **{name: cpu_seconds(pid) for name, pid in pids.items()},
        "postgresql": postgres_cpu_seconds(),
        "client": time.process_time(),
    }


def cpu_ms_per(before: dict[str, float], after: dict[str, float], calls: float) -> dict[str, float]:
    return {name: round((after[name] - before[name]) / calls * 1000, 2) for name in before}


def postgres_cpu_seconds() -> float:
    """The CPU time every PostgreSQL process on this machine has used (its server and
    backends, as /proc names them)."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() in ("postgres", "postmaster"):
                    total += cpu_seconds(int(pid))
        except OSError:  # gone meanwhile
            pass
    return total


def in_turns(
    bench: str, sides: list[tuple[str, Path, dict[str, str]]], options: list[str], rounds: int
) -> list[tuple[str, dict]]:
    """Runs bench/<bench>.py once per side in turns, `rounds` times: each side is (label,
    the tree to run it from, the environment added to this one). Interleaved so that
    the machine's speed, which varies by half within an hour here, falls on every side
    alike. Returns (label, the bench's JSON figures) for every run, in the order run."""
    import json

    runs = []
    for round_ in range(rounds):
        for label, root, env in sides:
            print(f"--- {label} (round {round_ + 1} of {rounds})", flush=True)
            out = subprocess.run(
                [sys.executable, f"bench/{bench}.py", *options],
                cwd=root,
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, **env},
            ).stdout
            print("\n".join("  " + line for line in out.splitlines()[:-1]), flush=True)
            runs.append((label, json.loads(out.splitlines()[-1])))
    return runs


@contextlib.contextmanager
def tree_of(rev: str):
    """A git worktree of commit rev, its gRPC code generated there; removed at the end."""
    tree = Path(tempfile.mkdtemp(prefix="huiyuan-bench-")) / "before"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), rev], cwd=ROOT, check=True)
    try:
        subprocess.run([sys.executable, "scripts/gen_protos.py"], cwd=tree, check=True, capture_output=True)
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
        shutil.rmtree(tree.parent, ignore_errors=True)


def side_by_side(bench: str, rev: str, options: list[str], rounds: int) -> list[tuple[str, dict]]:
    """Runs bench/<bench>.py of commit `rev` and of this tree in turns, `rounds` times
    each, on this machine now: the figures of a change and of the code before it, as
    alike as one machine's speed allows. Each side runs its own bench, seed and
    services (tree_of), so what the two measure is each version's own code. Returns
    (label, the bench's JSON figures) for every run, in the order run."""
    with tree_of(rev) as before:
        return in_turns(bench, [(f"before ({rev})", before, {}), ("after (this tree)", ROOT, {})], options, rounds)


def cpu_per_call(figures: dict) -> dict[str, float]:
    """A run's CPU milliseconds per call (pair, cycle, checkout): the services' (every
    process the bench names but PostgreSQL and the load generator), PostgreSQL's (every
    postgres process of the machine: other work on the same server counts in it), the
    two together, and the services' over the load generator's (which does the same
    work per call on every side: the ratio takes out how fast the machine was). CPU,
    not throughput: on a shared machine a call's CPU depends far less on what else runs
    than its rate does."""
    cpu = figures["cpu_ms"]
    services = sum(ms for name, ms in cpu.items() if name not in ("postgresql", "client"))
    return {
        "services": services,
        "postgresql": cpu["postgresql"],
        "total": services + cpu["postgresql"],
        "services/client": services / cpu["client"],
    }


def spread_table(runs: list[tuple[str, dict]]) -> str:
    """Per side: the median of each CPU figure per call and its spread (lowest-highest
    of the side's runs), the median rate of calls, and pgbench's rate on the same
    server after each run (how fast the machine was)."""
    import statistics

    sides: dict[str, list[dict]] = {}
    for label, figures in runs:
        sides.setdefault(label, []).append(figures)
    parts = ("services", "postgresql", "total", "services/client")
    lines = [
        "| side | runs | services CPU ms/call | PostgreSQL CPU ms/call | total CPU ms/call "
        "| services/client CPU | calls/s | pgbench tps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, all_figures in sides.items():
        cpu = [cpu_per_call(f) for f in all_figures]
        cells = []
        for part in parts:
            values = [c[part] for c in cpu]
            cells.append(f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})")
        rates = [next(v for k, v in f.items() if k.endswith("_per_s")) for f in all_figures]
        pgbench = [f["pgbench_tps"] for f in all_figures]
        lines.append(
            f"| {label} | {len(all_figures)} | " + " | ".join(cells) + f" | {statistics.median(rates):,.0f} "
            f"| {statistics.median(pgbench):,.0f} ({min(pgbench):,}-{max(pgbench):,}) |"
        )
    return "\n".join(lines)
