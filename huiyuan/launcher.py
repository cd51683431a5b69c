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
import signal
import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from huiyuan.runtime import migrate, service_auth
from huiyuan.runtime.config import DEVELOPMENT, Settings, local_keys, service_address

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
        print(f"  migrated {name:<9} {settings.database_url.split('@')[-1]}")


def wait_serving(name: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(service_address(name)) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise SystemExit(f"{name} did not report SERVING within {timeout_s:.0f} s")


def development_env() -> dict[str, str]:
    """The environment of the processes `huiyuan up` starts: development, with the keys
    and the QR secret of var/keys (made the first time)."""
    return {**os.environ, **service_auth.make_local_keys(local_keys()), "HUIYUAN_ENV": DEVELOPMENT}


def up(seed: bool = True) -> int:
    env = development_env()
    print("huiyuan: migrating")
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
            wait_serving(name)
            print(f"  {name:<9} SERVING on {service_address(name)}")
        if seed:
            from huiyuan import demo

            operator = service_auth.Identity.from_file(service_auth.OPERATOR, local_keys().private_key(service_auth.OPERATOR))
            demo.seed(operator, *(service_address(name) for name in ("member", "wallet", "points", "campaign")))
        print(_banner())
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"huiyuan: {name} exited with {child.returncode}; stopping the rest")
                    stopping = True
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nhuiyuan: stopping")
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for name, child in children.items():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
            print(f"  {name:<9} stopped")
    return 0


def _banner() -> str:
    return f"""
huiyuan is up. Gateway: {service_address('gateway')}  (member service: {service_address('member')})
Try, in another shell:
  huiyuan member find --phone 13800000001
  huiyuan member find --card 8000000000000001
  huiyuan member list --org hq/east
  huiyuan wallet statement --phone 13800000005
  huiyuan pos lookup --card 8000000000000001
  huiyuan pos checkout --card 8000000000000001 --line tea-1:tea:2:60 --points 500 --stored-value 89
Ctrl-C stops everything."""
