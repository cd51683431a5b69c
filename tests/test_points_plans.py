"""A member's live lots are read by that member alone, however many lots the rest of
the chain holds (services/points/storage/lots.py, live_lots_where). PostgreSQL plans from
statistics that lag behind the table; here they are taken before 20,000 lots that never
expire arrive, and each read must still touch a handful of pages."""

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest

from huiyuan.database import engines as db, migrate
from huiyuan.database.direct import Database
from services.points.app import SPEC
from services.points.storage import holds, lots, members
from tests.conftest import drop_pg_database, new_pg_database

MEMBERS = 200
NOW = datetime(2026, 12, 6, tzinfo=UTC)
PAGES = 30  # a member's row, its lots and their index pages, with room to spare


def _copy(connection, table: str, columns: str, rows) -> None:
    with connection.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _lot(lot_id: str, member_id: str, left: int, expire_time: str | None) -> tuple:
    return (
        lot_id,
        member_id,
        "PURCHASE",
        "",
        "",
        "hq",
        1_000,
        left,
        "2026-01-01T00:00:00Z",
        expire_time,
        "2026-01-01T00:00:00Z",
    )


@pytest.fixture(scope="module")
def chain(pg_server):
    """Members m0..m199: a live lot each, 20 past their date, a hold. Then, after
    ANALYZE, 20,000 lots that never expire, of other members."""
    url = new_pg_database(pg_server)
    migrate.upgrade(SPEC.migrations_dir, url, "points")
    lot_columns = (
        "lot_id,member_id,source,rule_id,order_id,store_path,granted_points,points_left,"
        "available_time,expire_time,create_time"
    )
    with psycopg.connect(url, autocommit=True, options="-c search_path=points") as connection:
        connection.execute("ALTER TABLE lots SET (autovacuum_enabled = false)")  # the statistics stay behind
        _copy(
            connection,
            "member_points",
            "member_id,held_points,debt_points,update_time",
            ((f"m{i}", 0, 0, "2026-01-01T00:00:00Z") for i in range(MEMBERS)),
        )
        _copy(
            connection,
            "lots",
            lot_columns,
            (_lot(f"live{i}", f"m{i}", 500, "2030-01-01T00:00:00Z") for i in range(MEMBERS)),
        )
        _copy(
            connection,
            "lots",
            lot_columns,
            (_lot(f"old{i}", f"m{i % MEMBERS}", 10, "2025-01-01T00:00:00Z") for i in range(20 * MEMBERS)),
        )
        _copy(
            connection,
            "holds",
            "hold_id,member_id,points,captured_points,state,order_id,store_path,expire_time,create_time",
            (
                (f"h{i}", f"m{i}", 10, 0, "HELD", f"o{i}", "hq", "2030-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
                for i in range(MEMBERS)
            ),
        )
        connection.execute("VACUUM ANALYZE")
        _copy(connection, "lots", lot_columns, (_lot(f"never{i}", f"other{i % 1000}", 10, None) for i in range(20_000)))
    yield url
    drop_pg_database(pg_server, url)


def _pages_read(url: str, statement, params: dict) -> int:
    """The shared pages one run of the statement touched (EXPLAIN ANALYZE, BUFFERS), as
    the service sends it: compiled by Database."""

    async def compiled():
        engine = db.make_async_engine(url, "points")
        try:
            direct = Database(engine, "points", 1)
            prepared = direct.prepare(statement, tuple(sorted(params)))
            return prepared.sql, direct.parameters(prepared, statement, params)
        finally:
            await engine.dispose()

    sql, values = asyncio.run(compiled())
    with psycopg.connect(url, autocommit=True, options="-c search_path=points") as connection:
        ((plan,),) = connection.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, values).fetchone()
    top = plan["Plan"]
    return top["Shared Hit Blocks"] + top["Shared Read Blocks"]


def test_a_batch_reads_its_members_live_lots_alone(chain):
    assert _pages_read(chain, lots.LIVE_LOTS, {"member_ids": ["m7", "m8"], "now": NOW}) < PAGES


def test_a_capture_reads_its_holds_members_live_lots_alone(chain):
    assert _pages_read(chain, holds.LIVE_LOTS_OF_HOLDS, {"hold_ids": ["h7", "h8"], "now": NOW}) < PAGES


def test_a_balance_reads_its_members_live_lots_alone(chain):
    assert _pages_read(chain, members.BALANCE, {"member_id": "m7", "now": NOW}) < PAGES


def test_the_reads_find_the_live_lots_and_only_those(chain):
    """Both arms are read: a member's lot that never expires counts, one past its date
    does not."""
    with psycopg.connect(chain, autocommit=True, options="-c search_path=points") as connection:
        connection.execute(
            "INSERT INTO lots SELECT 'never-m7', 'm7', source, rule_id, order_id, store_path, "
            "granted_points, points_left, available_time, NULL, create_time FROM lots WHERE lot_id = 'live7'"
        )
    try:

        async def read():
            engine = db.make_async_engine(chain, "points")
            try:
                async with engine.connect() as connection:
                    live = (await connection.execute(lots.LIVE_LOTS, {"member_ids": ["m7"], "now": NOW})).all()
                    held = (await connection.execute(holds.LIVE_LOTS_OF_HOLDS, {"hold_ids": ["h7"], "now": NOW})).all()
                    balance = (await connection.execute(members.BALANCE, {"member_id": "m7", "now": NOW})).all()
                return live, held, balance
            finally:
                await engine.dispose()

        live, held, balance = asyncio.run(read())
        for rows in (live, held, balance):
            assert sorted(r.lot_id for r in rows) == ["live7", "never-m7"]
    finally:
        with psycopg.connect(chain, autocommit=True, options="-c search_path=points") as connection:
            connection.execute("DELETE FROM lots WHERE lot_id = 'never-m7'")
