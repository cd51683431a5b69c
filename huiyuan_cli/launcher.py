"""`huiyuan up`: every service as its own process on this machine.

Migrates each service's database, starts member, wallet, points, campaign and the
gateway, waits until each reports SERVING, seeds the demo chain, prints where things
are, and on Ctrl-C (or SIGTERM) stops them all gracefully.

It is local development (HUIYUAN_ENV=development): the keys the processes call each
other with and the QR secret are made once under var/keys (0600) and used whatever the
shell sets; the CLI and the demo sign their calls with the operator's key there.
"""

import importlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from huiyuan.database import migrate
from huiyuan.runtime import service_auth
from huiyuan.runtime.config import DEVELOPMENT, Settings, local_keys, service_address
from huiyuan_cli.cli_text import t

# name -> python module that runs it; the order is the start order
SERVICES = {
    "member": "services.member",
    "wallet": "services.wallet",
    "points": "services.points",
    "campaign": "services.campaign",
    "gateway": "gateway",
}


def spec_of(name: str):
    return importlib.import_module(f"{SERVICES[name]}.app").SPEC


def migrate_all(names=SERVICES) -> None:
    for name in names:
        settings = Settings.from_env(name)
        migrate.upgrade(spec_of(name).migrations_dir, settings.database_url, name)
        print(t("up_migrated", name=f"{name:<9}", database=settings.database_url.split("@")[-1]))


def rebuild_reports(names, database_url: str = "") -> list[tuple[str, int, float]]:
    """Every rollup of each named service recomputed from its raw records (docs/reports.md),
    on its database as the service's settings name it (or database_url, every service's
    schema in it: bench/reports.py); the services may keep running.
    The services rebuild side by side: each one's work is mostly its database's, and
    each has a database of its own. (service, contributions counted, seconds) each."""
    import asyncio

    from huiyuan.database import Database, engines

    def rebuild_of(name: str):
        module = "gateway.use_cases.reports" if name == "gateway" else f"services.{name}.use_cases.reports"
        return importlib.import_module(module).rebuild

    async def run(name: str) -> tuple[str, int, float]:
        url = database_url or Settings.from_env(name).database_url
        migrate.upgrade(spec_of(name).migrations_dir, url, name)
        engine = engines.make_async_engine(url, name)
        database = Database(engine, name, 2)
        await database.open()
        started = time.monotonic()
        try:
            count = await rebuild_of(name)(database)
        finally:
            await database.close()
            await engine.dispose()
        return name, count, time.monotonic() - started

    async def run_all() -> list[tuple[str, int, float]]:
        return list(await asyncio.gather(*(run(name) for name in names)))

    return asyncio.run(run_all())


def check_ports_free() -> None:
    """Every service's port is free before anything starts: a port another run holds
    would answer the health check, and the demo would go into that run, with a terminal
    key its gateway does not know."""
    for name in SERVICES:
        settings = Settings.from_env(name)
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
            try:
                probe.bind((settings.host, settings.port))
            except OSError:
                raise SystemExit(
                    t(
                        "up_port_taken",
                        name=name,
                        address=f"{settings.host}:{settings.port}",
                        variable=f"HUIYUAN_{name.upper()}_PORT",
                    )
                ) from None
    host, _, port = console_address().rpartition(":")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError:
            raise SystemExit(
                t("up_port_taken", name="console", address=console_address(), variable="HUIYUAN_CONSOLE_PORT")
            ) from None


def wait_serving(name: str, timeout_s: float = 30.0, child: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(service_address(name)) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if child is not None and child.poll() is not None:  # its reason is in its log, above
                raise SystemExit(t("up_exited", name=name, code=child.returncode))
            try:
                if (
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise SystemExit(t("up_not_serving", name=name, seconds=f"{timeout_s:.0f}"))


def development_env() -> dict[str, str]:
    """The environment of the processes `huiyuan up` starts: development, with the keys
    and the QR secret of var/keys (made the first time)."""
    return {**os.environ, **service_auth.make_local_keys(local_keys()), "HUIYUAN_ENV": DEVELOPMENT}


def console_address() -> str:
    """Where `huiyuan up` serves the console (HUIYUAN_CONSOLE_PORT, 8080)."""
    host = os.environ.get("HUIYUAN_CONSOLE_HOST", os.environ.get("HUIYUAN_HOST", "127.0.0.1"))
    return f"{host}:{os.environ.get('HUIYUAN_CONSOLE_PORT', '8080')}"


def wait_console(child: subprocess.Popen, timeout_s: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(t("up_exited", name="console", code=child.returncode))
        try:
            with urllib.request.urlopen(f"http://{console_address()}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(t("up_not_serving", name="console", seconds=f"{timeout_s:.0f}"))


def up(seed: bool = True) -> int:
    check_ports_free()
    env = development_env()
    print(t("up_migrating"))
    migrate_all()
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    try:
        for name, module in SERVICES.items():
            children[name] = subprocess.Popen([sys.executable, "-m", module], env=env)
        for name in SERVICES:
            wait_serving(name, child=children[name])
            print(t("up_serving", name=f"{name:<9}", address=service_address(name)))
        # the web console (console/): a client of the gateway, as a browser's server
        children["console"] = subprocess.Popen([sys.executable, "-m", "console"], env=env)
        wait_console(children["console"])
        print(t("up_serving", name=f"{'console':<9}", address=f"http://{console_address()}"))
        if seed:
            from huiyuan_cli import demo

            operator = service_auth.Identity.from_file(
                service_auth.OPERATOR, local_keys().private_key(service_auth.OPERATOR)
            )
            demo.seed(operator, *(service_address(name) for name in ("member", "wallet", "points", "campaign")))
        print(_banner(seeded=seed))
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(t("up_exited", name=name, code=child.returncode))
                    stopping = True
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print(t("up_stopping"))
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for name, child in children.items():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
            print(t("up_stopped", name=f"{name:<9}"))
    return 0


# What `huiyuan up` suggests trying: each works as printed, again and again, on the demo
# (the checkout pays cash: 张伟 is a gold member, 2 x ¥60 at 95% less 满100减20 is ¥94).
TRY = [
    "member find --phone 13800000001",
    "member list --org hq/east",
    "wallet statement --phone 13800000005",
    "pos lookup --card 8000000000000001",
    "pos checkout --card 8000000000000001 --line tea-1:tea:2:60 --cash 94",
    "pos gifts",
    "pos count-card-plans",
]
# The settings another shell needs to reach this run (never a secret or a database's URL).
SHARED_SETTINGS = ("HUIYUAN_HOST", "HUIYUAN_VAR_DIR", "HUIYUAN_LANG")


def _banner(seeded: bool) -> str:
    """Where things are, and what to try: commands that need the demo only when it was seeded."""
    huiyuan = command_name()
    shared = [
        f"{name}={_shared_value(name, value)}"
        for name, value in sorted(os.environ.items())
        if name in SHARED_SETTINGS or (name.startswith("HUIYUAN_") and name.endswith(("_PORT", "_ADDR")))
    ]
    commands = ([f"  {t('up_same_settings')}", f"  export {' '.join(shared)}"] if shared else []) + [
        f"  {huiyuan} {command}" for command in (TRY if seeded else ["-h"])
    ]
    return t(
        "up_banner",
        gateway=service_address("gateway"),
        member=service_address("member"),
        commands="\n".join(commands),
        huiyuan=huiyuan,
    ) + _console_banner(seeded)


def _console_banner(seeded: bool) -> str:
    """The console's address and, with the demo, a login per role."""
    from huiyuan_cli import demo
    from huiyuan_cli.cli_text import t as text

    lines = ["", text("up_console", address=f"http://{console_address()}")]
    if seeded:
        lines.append(text("up_console_logins", password=demo.DEMO_PASSWORD))
        lines += [f"  {login:<14} {name}" for login, name, _, _ in demo.DEMO_PEOPLE]
    return "\n".join(lines)


def _shared_value(name: str, value: str) -> str:
    """A folder as an absolute path, so the other shell finds it wherever it stands."""
    return shlex.quote(str(Path(value).resolve()) if name == "HUIYUAN_VAR_DIR" else value)


def command_name() -> str:
    """How another shell runs this `huiyuan`: its name if the PATH finds this one, else
    its path (.venv/bin/huiyuan from the source tree)."""
    script = (
        Path(sys.argv[0])
        if sys.argv and Path(sys.argv[0]).name == "huiyuan"
        else Path(sys.executable).parent / "huiyuan"
    )
    found = shutil.which("huiyuan")
    if found and Path(found).resolve() == script.resolve():
        return "huiyuan"
    try:
        relative = script.absolute().relative_to(Path.cwd())
    except ValueError:
        return shlex.quote(str(script.absolute()))
    return shlex.quote(str(relative))
