"""What a deployment relies on: migrations that several pods may start at once."""

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
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", (name,)).fetchone()[0]


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
        runs = [subprocess.Popen([HUIYUAN, "migrate", "member"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        deadline = time.monotonic() + 60
        while _waiting_on_locks(url) < 2:
            assert time.monotonic() < deadline, "the two migrations never both reached the database"
            assert all(run.poll() is None for run in runs), [run.communicate()[0] for run in runs]
            time.sleep(0.1)
        gate.rollback()
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sum("another migration of member is running" in output for output in outputs) == 1, outputs

    from huiyuan.runtime import migrate
    from services.member.app import SPEC

    with psycopg.connect(url) as connection:
        versions = connection.execute("SELECT version_num FROM member.alembic_version").fetchall()
    assert versions == [(migrate.head_revision(SPEC.migrations_dir),)]
