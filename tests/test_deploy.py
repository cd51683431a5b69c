"""What a deployment relies on (deploy/README.md): migrations that several pods and
regions may start at once, each run as its service's own database role; health that
tells a pod to restart from a pod to leave alone; older pods that go on serving a
database a newer release has migrated."""

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import drop_pg_database, new_pg_database

HUIYUAN = str(Path(sys.executable).parent / "huiyuan")


@pytest.fixture
def fresh_pg_database(pg_server):
    url = new_pg_database(pg_server)
    yield url
    drop_pg_database(pg_server, url)


def _waiting_on_locks(url: str) -> int:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as connection:
        return connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", (name,)
        ).fetchone()[0]


@pytest.mark.postgres
def test_two_pods_migrating_one_database_at_once_both_succeed_and_migrate_it_once(fresh_pg_database):
    """Every pod of a Deployment runs `huiyuan migrate <service>` as it starts, and
    Alembic has no lock of its own. To make both runs reach the database at the same
    moment, this test holds the first thing a migration does (creating the service's
    schema) in a transaction of its own until both wait, then rolls it back: unguarded,
    both then create the schema and the tables at once, and one fails on a duplicate."""
    url = fresh_pg_database
    with psycopg.connect(url) as gate:
        gate.execute("CREATE SCHEMA member")  # uncommitted: a migration's CREATE SCHEMA waits behind it
        env = {**os.environ, "HUIYUAN_DATABASE_URL": url}
        runs = [
            subprocess.Popen(
                [HUIYUAN, "migrate", "member"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            for _ in range(2)
        ]
        deadline = time.monotonic() + 60
        while _waiting_on_locks(url) < 2:
            assert time.monotonic() < deadline, "the two migrations never both reached the database"
            assert all(run.poll() is None for run in runs), [run.communicate()[0] for run in runs]
            time.sleep(0.1)
        gate.rollback()
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sum("another migration of member is running" in output for output in outputs) == 1, outputs

    from huiyuan.database import migrate
    from services.member.app import SPEC

    with psycopg.connect(url) as connection:
        versions = connection.execute("SELECT version_num FROM member.alembic_version").fetchall()
    assert versions == [(migrate.head_revision(SPEC.migrations_dir),)]


def _set_connections(admin_url: str, database_url: str, allowed: bool) -> None:
    """Open or shut the database to new connections; shutting it also ends the open
    ones, as a database server that goes down would."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


@pytest.mark.postgres
def test_liveness_stays_serving_while_the_database_is_down_and_readiness_does_not(pg_server, fresh_pg_database):
    """The manifests' liveness probe asks for the health name "liveness", the readiness
    probe for the service as a whole: a database outage takes the pods out of the
    Service's endpoints, and brings none of them to be restarted."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from huiyuan.runtime.server import LIVENESS
    from services.member.app import SPEC
    from tests.conftest import ServiceThread

    service = ServiceThread(SPEC, fresh_pg_database)
    health = health_pb2_grpc.HealthStub(service.channel)

    def status(name: str) -> int:
        return health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status

    def settle() -> None:  # the first check after a change may still meet a connection of before
        for _ in range(5):
            service.run(service.app.check_health())

    try:
        assert (status(""), status(LIVENESS)) == (health_pb2.HealthCheckResponse.SERVING,) * 2
        _set_connections(pg_server, fresh_pg_database, allowed=False)
        settle()
        assert status("") == health_pb2.HealthCheckResponse.NOT_SERVING
        assert {status(name) for name in SPEC.service_names} == {health_pb2.HealthCheckResponse.NOT_SERVING}
        assert status(LIVENESS) == health_pb2.HealthCheckResponse.SERVING
        _set_connections(pg_server, fresh_pg_database, allowed=True)
        settle()
        assert (status(""), status(LIVENESS)) == (health_pb2.HealthCheckResponse.SERVING,) * 2
    finally:
        _set_connections(pg_server, fresh_pg_database, allowed=True)
        service.stop()


def test_a_database_migrated_by_a_newer_release_is_served_and_an_older_one_is_not(tmp_path):
    """During a rolling update (or while another region runs a newer release on the
    shared database) the first new pod migrates the database past the old pods' head:
    they must stay ready, or every old pod leaves the Service at once."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from sqlalchemy import text

    from huiyuan.database import engines as db, migrate
    from services.member.app import SPEC
    from tests.conftest import ServiceThread

    url = f"sqlite:///{tmp_path}/member.db"
    service = ServiceThread(SPEC, url)
    health = health_pb2_grpc.HealthStub(service.channel)
    engine = db.make_sync_engine(url, "member")

    def at(revision: str) -> int:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
        service.run(service.app.check_health())
        return health.Check(health_pb2.HealthCheckRequest(), timeout=5).status

    try:
        head = migrate.head_revision(SPEC.migrations_dir)
        assert at("9999_of_a_newer_release") == health_pb2.HealthCheckResponse.SERVING
        assert at("0001") == health_pb2.HealthCheckResponse.NOT_SERVING  # not yet migrated to this code's head
        assert at(head) == health_pb2.HealthCheckResponse.SERVING
    finally:
        engine.dispose()
        service.stop()


@pytest.mark.postgres
def test_a_service_s_own_role_migrates_its_schema_and_cannot_read_another_s(pg_server, fresh_pg_database):
    """As deploy/README.md sets PostgreSQL up: one role per service, owning its schema
    (made beforehand) and allowed to create nothing else."""
    import uuid

    from huiyuan.database import migrate
    from services.member.app import SPEC as member
    from services.wallet.app import SPEC as wallet

    name = fresh_pg_database.rsplit("/", 1)[1]
    roles = {service: f"huiyuan_{service}_{uuid.uuid4().hex[:8]}" for service in ("member", "wallet")}
    with psycopg.connect(fresh_pg_database, autocommit=True) as admin:
        admin.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
        admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        for service, role in roles.items():
            admin.execute(f"CREATE ROLE {role} LOGIN")
            admin.execute(f'GRANT CONNECT ON DATABASE "{name}" TO {role}')
            admin.execute(f"CREATE SCHEMA {service} AUTHORIZATION {role}")
    host = fresh_pg_database.split("@", 1)[1]
    try:
        for spec in (member, wallet):
            migrate.upgrade(spec.migrations_dir, f"postgresql://{roles[spec.name]}@{host}", spec.name)
        with psycopg.connect(f"postgresql://{roles['wallet']}@{host}") as wallet_role:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                wallet_role.execute("SELECT count(*) FROM member.members")
    finally:
        drop_pg_database(pg_server, fresh_pg_database)
        with psycopg.connect(pg_server, autocommit=True) as admin:
            for role in roles.values():
                admin.execute(f"DROP ROLE IF EXISTS {role}")
