"""Test fixtures: real services on ephemeral ports over SQLite and PostgreSQL.

PostgreSQL is at 127.0.0.1:5432 (user postgres, trust auth). Where it is not reachable
its tests are skipped, except under CI (CI set), where that is a failure.
"""

import asyncio
import dataclasses
import os
import tempfile
import threading
import uuid
from pathlib import Path

import grpc
import psycopg
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from huiyuan.database import migrate
from huiyuan.runtime import clients, service_auth, tracing
from huiyuan.runtime.config import CALLER_KEYS, KeyFolder, Settings
from huiyuan.runtime.server import App

# Every span the in-process services make, for the tests that check trace trees.
SPANS = InMemorySpanExporter()
tracing.configure("tests", "none", SPANS)

# The tests run as production does: not in development, with keys made for this run
# (the processes test_faults.py starts inherit them). They call the services as the
# gateway does; the operator is trusted too, but may not name an actor.
KEYS = KeyFolder(Path(tempfile.mkdtemp(prefix="huiyuan-test-keys-")))
os.environ.pop("HUIYUAN_ENV", None)
os.environ.update(service_auth.make_local_keys(KEYS))
AS_GATEWAY = service_auth.Identity.from_file(service_auth.GATEWAY, KEYS.private_key(service_auth.GATEWAY))
AS_OPERATOR = service_auth.Identity.from_file(service_auth.OPERATOR, KEYS.private_key(service_auth.OPERATOR))


def as_gateway(service: str, address: str, options=()) -> grpc.Channel:
    """A channel to a service that calls it as the gateway does."""
    return clients.blocking_channel(service, AS_GATEWAY, address, options)


PG_ADMIN = os.environ.get("HUIYUAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_reachable() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return str(error)


@pytest.fixture(scope="session")
def pg_server():
    problem = _pg_reachable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must be reachable under CI: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    return PG_ADMIN


def new_pg_database(admin_url: str) -> str:
    name = f"huiyuan_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_of_its_own(database_url: str, tmp_path, request, service: str) -> str:
    """An empty database for one test (a migration's, from an old revision): a file on
    SQLite, a database on PostgreSQL that is dropped when the test ends."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/{service}.db"
    admin = request.getfixturevalue("pg_server")
    url = new_pg_database(admin)
    request.addfinalizer(lambda: drop_pg_database(admin, url))
    return url


class ServiceThread:
    """A service's App on its own event loop in a background thread."""

    def __init__(self, spec, database_url: str):
        self.spec = spec
        settings = Settings.from_env(spec.name)
        self.settings = dataclasses.replace(settings, port=0, database_url=database_url, shutdown_grace_s=1)
        migrate.upgrade(spec.migrations_dir, database_url, spec.name)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.app = self.run(self._start())
        # The gateway's port takes API keys, not service tokens.
        self.channel = (
            as_gateway(spec.name, self.app.address)
            if CALLER_KEYS in spec.secrets
            else grpc.insecure_channel(self.app.address)
        )

    async def _start(self) -> App:
        return await App(self.spec, self.settings).start()  # grpc.aio binds to the loop it is made on

    def run(self, coroutine, timeout=30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self):
        self.channel.close()
        self.run(self.app.stop(0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def database_url(request):
    if request.param == "sqlite":
        yield f"sqlite:///{tempfile.mkdtemp()}/member.db"
        return
    admin = request.getfixturevalue("pg_server")
    url = new_pg_database(admin)
    yield url
    drop_pg_database(admin, url)


def per_service(database_url: str, service: str) -> str:
    """On SQLite each service has its own file; on PostgreSQL its own schema."""
    if database_url.startswith("sqlite"):
        return database_url.rsplit("/", 1)[0] + f"/{service}.db"
    return database_url


@pytest.fixture(scope="module")
def wallet_service(database_url):
    from services.wallet.app import SPEC

    service = ServiceThread(SPEC, per_service(database_url, "wallet"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def points_service(database_url):
    from services.points.app import SPEC

    service = ServiceThread(SPEC, per_service(database_url, "points"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def campaign_service(database_url):
    from services.campaign.app import SPEC

    service = ServiceThread(SPEC, per_service(database_url, "campaign"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def member_service(database_url):
    from services.member.app import SPEC

    service = ServiceThread(SPEC, database_url)
    yield service
    service.stop()


@pytest.fixture
def spans():
    SPANS.clear()
    return SPANS
