"""Check that the wheel runs the system on its own, as the image does (deploy/Dockerfile).

1. build the wheel from the files deploy/Dockerfile's build stage copies, taken from
   the source tree's own files (tracked, or new and not ignored: the generated gRPC
   code is ignored, so the build must make it);
2. install it into a fresh venv in a folder of its own, from the wheels that build
   made alone, as the image's run stage does;
3. from there, with the source tree out of reach (another working folder, python -I),
   run `huiyuan migrate` on a fresh PostgreSQL database, start every service and the
   gateway as the manifests do (`python -m services.<name>`, `python -m gateway`, each
   with only its own secrets and no HUIYUAN_ENV), wait until each reports SERVING and
   its "liveness" name too; then the web console (`python -m console`), its health, its
   login page and its static files (ECharts among them) served from the wheel; then stop
   them all with SIGTERM and expect each to exit 0.

Usage: python scripts/check_wheel.py   (run by .ci/run; stdlib only)
PostgreSQL: HUIYUAN_TEST_PG, default postgresql://postgres@127.0.0.1:5432/postgres.
Leaves nothing behind but on failure its folder (/tmp/huiyuan-wheel-*), named.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("HUIYUAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# name -> command, as in deploy/k8s/base/services.yaml; the order is the start order
PROCESSES = {
    "member": ["-m", "services.member"],
    "wallet": ["-m", "services.wallet"],
    "points": ["-m", "services.points"],
    "campaign": ["-m", "services.campaign"],
    "gateway": ["-m", "gateway"],
}
SERVING_WITHIN_S = 60
STARTED = time.monotonic()


def say(text: str) -> None:
    print(f"check_wheel [{time.monotonic() - STARTED:5.1f} s] {text}", flush=True)


def run(*command, quiet: bool = False, **kwargs) -> subprocess.CompletedProcess:
    """Run a command; quiet ones (pip) show their output only when they fail."""
    if quiet:
        kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = subprocess.run([str(c) for c in command], **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} exited {done.returncode}\n{done.stdout or ''}")
    return done


def dockerfile_copies() -> list[tuple[str, str]]:
    """(source, destination) of every COPY in deploy/Dockerfile's build stage."""
    copies = []
    for line in (ROOT / "deploy" / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM ") and copies:
            break  # the run stage copies from the build stage only
        if line.startswith("COPY ") and "--from" not in line:
            *sources, destination = line.split()[1:]
            copies += [(source.rstrip("/"), destination) for source in sources]
    return copies


def build_wheel(work: Path) -> Path:
    """Build the wheel as the image's build stage does: from the files its COPY lines
    take, out of the source tree's own files (tracked, or new and not ignored: the
    generated gRPC code is ignored, so the build must make it)."""
    source = work / "source"
    copies = dockerfile_copies()
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in map(os.fsdecode, filter(None, files)):
        if not (ROOT / name).is_file():  # a tracked file deleted in the work tree
            continue
        for origin, destination in copies:
            if name == origin:
                target = destination + Path(name).name if destination.endswith("/") else destination
            elif name.startswith(origin + "/"):
                target = destination.rstrip("/") + "/" + name[len(origin) + 1 :]
            else:
                continue
            (source / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / target)
    assert not (source / "huiyuan" / "member").exists(), "the generated code must not come from the source tree"
    # As the image's build stage: the wheel and wheels of all it depends on
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--disable-pip-version-check",
        "-w",
        work / "wheels",
        source,
        quiet=True,
    )
    (wheel,) = (work / "wheels").glob("huiyuan-*.whl")
    return wheel


def install(work: Path, wheel: Path) -> Path:
    venv = work / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    # as the image's run stage: from those wheels alone
    run(
        python,
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        "--no-index",
        "--find-links",
        wheel.parent,
        wheel,
        quiet=True,
    )
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def secrets(work: Path) -> dict[str, dict[str, str]]:
    """Each process's secrets, made as deploy/README.md says and given as the manifests
    give them: the gateway's identity key to the gateway, its public key to the
    services, the QR secret to member and the gateway."""
    folder = work / "secrets"
    (folder / "caller-keys").mkdir(parents=True)
    key = folder / "gateway.key"
    run("openssl", "genpkey", "-algorithm", "ed25519", "-out", key)
    run("openssl", "pkey", "-in", key, "-pubout", "-out", folder / "caller-keys" / "gateway.pub")
    qr = os.urandom(32).hex()
    callers = {"HUIYUAN_CALLER_KEYS_DIR": str(folder / "caller-keys")}
    return {
        "member": {**callers, "HUIYUAN_QR_SECRET": qr},
        "wallet": callers,
        "points": callers,
        "campaign": callers,
        "gateway": {"HUIYUAN_IDENTITY_KEY_FILE": str(key), "HUIYUAN_QR_SECRET": qr},
    }


def admin_sql(python: Path, sql: str) -> None:
    """One statement on the admin database, through the installed psycopg."""
    code = "import sys, psycopg; psycopg.connect(sys.argv[1], autocommit=True).execute(sys.argv[2])"
    run(python, "-I", "-c", code, ADMIN_URL, sql)


HEALTH = """
import sys, time, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
address, name, within = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + within
with grpc.insecure_channel(address) as channel:
    stub = health_pb2_grpc.HealthStub(channel)
    while True:
        try:
            if stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                sys.exit(0)
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.2)
"""


def serving(python: Path, env: dict, address: str, name: str, within_s: float) -> bool:
    return subprocess.run([python, "-I", "-c", HEALTH, address, name, str(within_s)], env=env).returncode == 0


def console_pages(url: str, process: subprocess.Popen, here: Path) -> None:
    """The console answers its health, its login page and its static files."""
    import urllib.request

    deadline = time.monotonic() + SERVING_WITHIN_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit(
                f"the console did not answer within {SERVING_WITHIN_S} s (exit code {process.poll()}):\n"
                + (here / "console.log").read_text()[-3000:]
            )
        time.sleep(0.2)
    for path, must in (
        ("/login", "会员管理后台".encode()),
        ("/static/console.js", b"data-chart"),
        ("/static/vendor/echarts/echarts.console.min.js", b"echarts"),
    ):
        with urllib.request.urlopen(f"{url}{path}", timeout=5) as answer:
            if answer.status != 200 or must not in answer.read():
                raise SystemExit(f"the console's {path} is not what the wheel should serve")


def rss_mib(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return f"{int(line.split()[1]) // 1024} MiB"
    return "?"


def check(work: Path) -> None:
    say("building the wheel from the files deploy/Dockerfile copies")
    wheel = build_wheel(work)
    say(f"built {wheel.name}; installing it into a fresh venv")
    python = install(work, wheel)
    here = work / "run"  # an empty working folder: nothing of the source tree importable from it
    here.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HUIYUAN_", "PYTHON", "OTEL_"))}
    where = run(
        python,
        "-I",
        "-c",
        "import huiyuan.member.v1, services, gateway; print(huiyuan.member.v1.__file__)",
        cwd=here,
        env=base,
        quiet=True,
    ).stdout.strip()
    assert where.startswith(str(work / "venv")), f"huiyuan imported from {where}, not from the venv"

    database = f"huiyuan_wheel_{uuid.uuid4().hex[:12]}"
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    admin_sql(python, f'CREATE DATABASE "{database}"')
    processes: dict[str, subprocess.Popen] = {}
    try:
        ports = {name: free_port() for name in PROCESSES}
        env = {
            **base,
            "HUIYUAN_DATABASE_URL": url,
            "HUIYUAN_HOST": "127.0.0.1",
            "HUIYUAN_LOG_LEVEL": "WARNING",
            "HUIYUAN_VAR_DIR": str(here / "var"),
        }
        for name, port in ports.items():
            env[f"HUIYUAN_{name.upper()}_PORT"] = str(port)
            env[f"HUIYUAN_{name.upper()}_ADDR"] = f"127.0.0.1:{port}"
        say(f"huiyuan migrate on the fresh database {database}")
        run(work / "venv" / "bin" / "huiyuan", "migrate", cwd=here, env=env)
        own = secrets(work)
        for name, command in PROCESSES.items():
            log = open(here / f"{name}.log", "w")  # noqa: SIM115 - the process writes to it until it ends
            processes[name] = subprocess.Popen(
                [python, "-I", *command], cwd=here, env={**env, **own[name]}, stdout=log, stderr=subprocess.STDOUT
            )
        for name, process in processes.items():
            address = f"127.0.0.1:{ports[name]}"
            for health_name in ("", "liveness"):
                if not serving(python, env, address, health_name, SERVING_WITHIN_S):
                    raise SystemExit(
                        f"{name} did not report {health_name or 'itself'} SERVING within "
                        f"{SERVING_WITHIN_S} s (exit code {process.poll()}):\n"
                        + (here / f"{name}.log").read_text()[-3000:]
                    )
            say(f"{name:<9} SERVING on {address} (resident memory {rss_mib(process.pid)})")
        console_port = free_port()
        log = open(here / "console.log", "w")  # noqa: SIM115 - the process writes to it until it ends
        processes["console"] = subprocess.Popen(
            [python, "-I", "-m", "console"],
            cwd=here,
            env={
                **env,
                "HUIYUAN_CONSOLE_PORT": str(console_port),
                "HUIYUAN_CONSOLE_SECRET": os.urandom(16).hex(),
                "HUIYUAN_CONSOLE_SECURE_COOKIES": "true",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        console_pages(f"http://127.0.0.1:{console_port}", processes["console"], here)
        say(f"console   serving http://127.0.0.1:{console_port}: its login page and static files from the wheel")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = {}
        for name, process in processes.items():
            try:
                codes[name] = process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = "killed after 30 s"
        admin_sql(python, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    stopped_badly = {name: code for name, code in codes.items() if code != 0}
    if stopped_badly:
        raise SystemExit(f"stopped with SIGTERM, these did not exit 0: {stopped_badly}")
    say("every process stopped on SIGTERM with exit code 0")


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="huiyuan-wheel-"))
    try:
        check(work)
    except BaseException:
        print(f"check_wheel: FAILED; its files are left in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work)
    say("the wheel runs the system: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
