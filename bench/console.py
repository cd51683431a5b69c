"""The web console's pages for a signed-in regional manager, on the reports bench's data.

Seeds the reports bench's chain (bench/reports.py: 3,000 stores in 30 regions, two years
of orders, top-ups and spends bulk-loaded and rebuilt into the rollups) - 10,000 orders
with --quick, 200,000 (the reports bench's quick size) without - starts every process and
the console (python -m console) as in production, creates a regional manager with
`huiyuan person create`'s use case, signs in through the login form and measures, one
page at a time, the time to the full page with its data:
- the dashboard (首页: five reports of the region, asked at once, and its charts' data);
- the region's month report page (报表 经营概况 for last month, with its node picker).
Time to the page: from the request to the last byte of its HTML, which carries every
figure and the charts' data (the scripts and styles are static files a browser caches).
Then, in Chromium when it is installed, the same pages until their charts are drawn.
Target: p95 <= 500 ms.

usage: python bench/console.py [--quick] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import asyncio
import http.cookiejar
import json
import os
import random
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ADMIN_URL, PORT_OFFSET, fresh_database, percentile, serving, vacuum
from bench.reports import DAYS, PORTS, rebuild, region_of, seed
from gateway.domain.people import PersonRole
from gateway.use_cases import bootstrap
from huiyuan.runtime.clock import today
from huiyuan_cli.launcher import SERVICES

CONSOLE_PORT = 8690 + PORT_OFFSET
URL = f"http://127.0.0.1:{CONSOLE_PORT}"
LOGIN, PASSWORD = "bench.manager", "Bench12345"
CHROMIUM = "/usr/bin/chromium"


def start_console(env: dict) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "console"], cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{URL}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("bench: the console did not start")


def signed_in() -> urllib.request.OpenerDirector:
    """A browser's cookie jar, signed in through the login form (its CSRF token too)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.cookie_jar = jar  # type: ignore[attr-defined]
    page = opener.open(f"{URL}/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    form = urllib.parse.urlencode({"csrf_token": token[1], "login": LOGIN, "password": PASSWORD, "next": "/"})
    landed = opener.open(f"{URL}/login", data=form.encode()).read().decode()
    assert "dashboard-title" in landed, "the sign-in did not land on the dashboard"
    return opener


def timed(opener, path: str, rounds: int, must: str) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        with opener.open(f"{URL}{path}") as answer:
            body = answer.read().decode()
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status == 200 and must in body, f"{path}: not the page with its data"
    return times


def in_chromium(paths: list[str], rounds: int) -> dict:
    """Each page in Chromium until its charts are drawn (static files cached), if it is there."""
    if not Path(CHROMIUM).exists():
        return {}
    from playwright.sync_api import sync_playwright

    figures = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{URL}/login")
        page.fill("input[name=login]", LOGIN)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#dashboard-title")
        for name, path in paths:
            page.goto(f"{URL}{path}")  # warm: the static files cached
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                page.goto(f"{URL}{path}")
                page.wait_for_selector("body[data-charts-drawn]")
                times.append((time.perf_counter() - started) * 1000)
            figures[name] = stats(times)
        browser.close()
    return figures


def stats(times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "p50_ms": round(percentile(ordered, 0.50), 1),
        "p95_ms": round(percentile(ordered, 0.95), 1),
        "max_ms": round(ordered[-1], 1),
        "pages": len(times),
    }


def reports_alone(session: str, region: str, rounds: int) -> dict:
    """The dashboard's five reports through the gateway, each alone (where its time goes)."""
    import grpc

    from console.pages.reports import report_request
    from huiyuan.gateway.v1 import gateway_pb2_grpc

    day = today()
    asks = {
        "sales_day": report_request("sales", region, "day", day),
        "sales_month": report_request("sales", region, "month", day),
        "members_month": report_request("members", region, "month", day),
        "liability_month": report_request("liability", region, "month", day),
        "behaviour_month": report_request("behaviour", region, "month", day),
    }
    figures = {}
    with grpc.insecure_channel(f"127.0.0.1:{PORTS['gateway']}") as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        for name, ask in asks.items():
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                stub.RunReport(ask, metadata=(("authorization", f"Bearer {session}"),), timeout=30)
                times.append((time.perf_counter() - started) * 1000)
            figures[name] = stats(times)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pg", default=ADMIN_URL)
    args = parser.parse_args()
    orders = 10_000 if args.quick else 200_000
    rounds = 30 if args.quick else 100
    rng = random.Random(39)
    url = fresh_database(args.pg, "huiyuan_bench_console")
    started = time.perf_counter()
    seed(url, orders, DAYS, rng)
    asyncio.run(rebuild(url))
    vacuum(url)
    seeded_s = time.perf_counter() - started
    region = region_of(3)
    bootstrap.create_person(
        url,
        login=LOGIN,
        name="区域经理",
        phone="",
        org_path=region,
        role=PersonRole.REGIONAL_MANAGER,
        password=PASSWORD,
        member_database_url=url,
    )
    env = {
        "HUIYUAN_DATABASE_URL": url,
        "HUIYUAN_CALL_TIMEOUT_S": "30",
        **{f"HUIYUAN_{name.upper()}_PORT": str(port) for name, port in PORTS.items()},
    }
    last_month = (today().replace(day=1) - timedelta(days=1)).isoformat()
    report = f"/reports?kind=sales&node={urllib.parse.quote(region)}&period=month&day={last_month}"
    with serving(list(SERVICES.values()), list(PORTS.values()), env):
        console_env = {
            **os.environ,
            **env,
            "HUIYUAN_CONSOLE_PORT": str(CONSOLE_PORT),
            "HUIYUAN_GATEWAY_ADDR": f"127.0.0.1:{PORTS['gateway']}",
            "HUIYUAN_CONSOLE_LOG_LEVEL": "warning",
        }
        console = start_console(console_env)
        try:
            opener = signed_in()
            timed(opener, "/", 3, "tile-month-net")  # connections made, names read once
            timed(opener, report, 3, "table-summary")
            figures = {
                "dashboard": stats(timed(opener, "/", rounds, "tile-month-net")),
                "region_month_report": stats(timed(opener, report, rounds, "table-summary")),
            }
            session = next(c.value for c in opener.cookie_jar if c.name == "hy_session")  # type: ignore[attr-defined]
            alone = reports_alone(session, region, max(rounds // 3, 10))
            # as many pages as the HTML: a p95 of 10 pages is their slowest
            browser = in_chromium([("dashboard", "/"), ("region_month_report", report)], rounds)
        finally:
            console.terminate()
            console.wait(10)
    print(
        f"history: {orders:,} orders over {DAYS} days, 3,000 stores in 30 regions (seeded and rebuilt in {seeded_s:.0f} s)"
    )
    print(f"signed in as a regional manager of {region}; time to the page's HTML with all its data:")
    for name, f in figures.items():
        ok = "ok" if f["p95_ms"] <= 500 else "OVER the 500 ms target"
        print(
            f"  {name:>20}: p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms, max {f['max_ms']} ms ({f['pages']} pages) {ok}"
        )
    print("the dashboard's reports through the gateway, each alone:")
    for name, f in alone.items():
        print(f"  {name:>20}: p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms ({f['pages']} calls)")
    if browser:
        print("in Chromium, until the page's charts are drawn (static files cached):")
        for name, f in browser.items():
            ok = "ok" if f["p95_ms"] <= 500 else "OVER the 500 ms target"
            print(f"  {name:>20}: p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms ({f['pages']} pages) {ok}")
    print(
        json.dumps(
            {
                "bench": "console",
                "orders": orders,
                "days": DAYS,
                "html": figures,
                "chromium": browser,
                "target_p95_ms": 500,
            }
        )
    )


if __name__ == "__main__":
    main()
