"""database/pipeline.py: Database's round trips on libpq's pipeline mode. What
tests/test_direct.py does not already hold it to: placeholders numbered as psycopg
numbers them; no connection goes back to the pool out of step (a round trip cut off,
a failed statement, a connection the server dropped); the prepared statements of a
connection stay bounded; one task at a time on a connection."""

import asyncio

import pytest
from sqlalchemy import Column, Integer, String, Table, bindparam, func, insert, literal, select, update

from huiyuan.database import engines as db, pipeline
from huiyuan.database.direct import Database, send, together
from huiyuan.database.pipeline import numbered

metadata = db.new_metadata()
counters = Table(
    "pipeline_counters",
    metadata,
    Column("name", String(16), primary_key=True),
    Column("value", Integer, nullable=False),
)
ONE = select(counters.c.value).where(counters.c.name == bindparam("name"))


def test_placeholders_are_numbered_once_per_name_and_a_doubled_percent_is_one():
    sql, names = numbered("SELECT %(a)s, %(b)s WHERE x LIKE 'p%%' AND y = %(a)s", "utf-8")
    assert (sql, names) == (b"SELECT $1, $2 WHERE x LIKE 'p%' AND y = $1", ("a", "b"))
    assert numbered("BEGIN", "utf-8") == (b"BEGIN", ())


@pytest.fixture
def pg_direct(database_url):
    """A Database of one connection on PostgreSQL, over pipeline_counters holding a = 0."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the pipeline is PostgreSQL's")
    engine = db.make_async_engine(database_url, "public")
    loop = asyncio.new_event_loop()

    async def open_():
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(insert(counters), [{"name": "a", "value": 0}])
        direct = Database(engine, "public", 1)
        await direct.open()
        return direct

    direct = loop.run_until_complete(open_())
    yield direct, loop

    async def close():
        await direct.close()
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await engine.dispose()

    loop.run_until_complete(close())
    loop.close()


def test_a_round_trip_cut_off_closes_its_connection_and_the_next_call_gets_a_good_one(pg_direct, caplog):
    """A call cancelled while the database is still answering (its deadline passed):
    the answers still on their way would meet the next statement on that connection.
    It is closed instead, nothing of its transaction commits, and the pool serves the
    next call on a new connection."""
    direct, loop = pg_direct

    async def slow_write():
        async with direct.transaction() as tx:
            await send(tx, update(counters).values(value=counters.c.value + 1))
            await tx.execute(select(func.pg_sleep(2)))

    async def test():
        async with direct.reading() as connection:
            first = connection.connection
        task = asyncio.create_task(slow_write())
        await asyncio.sleep(0.5)  # in the round trip
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert first.closed
        async with direct.transaction() as tx:  # the pool's one connection: a new one
            assert tx.connection is not first
            bumped, read = await together(
                tx, (update(counters).values(value=counters.c.value + 10), None), (ONE, {"name": "a"})
            )
            assert (bumped.rowcount, read.scalar()) == (1, 10)
        assert (await direct.rows(ONE, {"name": "a"}))[0].value == 10

    loop.run_until_complete(test())
    said = [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")]
    assert len(said) == 1 and said[0].startswith("discarding closed connection")  # the pool's note of it


def test_a_connection_keeps_at_most_max_prepared_statements(pg_direct, monkeypatch):
    """Past MAX_PREPARED the connection's statements are deallocated and prepared anew:
    every statement still answers, and the server's list stays bounded."""
    direct, loop = pg_direct
    monkeypatch.setattr(pipeline, "MAX_PREPARED", 5)

    async def test():
        async with direct.reading() as connection:
            for n in range(12):  # twelve statements, each its own text
                assert (await connection.execute(select(literal(n).label(f"n{n}")))).scalar() == n
            kept = await (
                await connection.connection.execute("SELECT count(*) FROM pg_prepared_statements", prepare=False)
            ).fetchone()
        assert 1 <= kept[0] <= 5

    loop.run_until_complete(test())


def test_a_failed_statement_rolls_the_transaction_back_and_the_connection_serves_again(pg_direct):
    """The error comes back once every answer is read: the connection is in step, back
    out of its transaction, and the pool gives it to the next call as it was."""
    from sqlalchemy.exc import IntegrityError

    direct, loop = pg_direct

    async def test():
        with pytest.raises(IntegrityError):
            async with direct.transaction() as tx:
                first = tx.connection
                await send(tx, update(counters).values(value=5))
                await tx.execute(insert(counters), {"name": "a", "value": 1})
        assert not first.closed
        async with direct.transaction() as tx:
            assert tx.connection is first
            assert (await tx.execute(ONE, {"name": "a"})).scalar() == 0

    loop.run_until_complete(test())


def test_a_connection_the_server_dropped_fails_its_call_as_unavailable_and_is_replaced(pg_direct):
    """PostgreSQL restarted, or killed the backend: the call on that connection gets
    SQLAlchemy's OperationalError (UNAVAILABLE to the caller, runtime/interceptors.py),
    and the next call gets a new connection."""
    from sqlalchemy.exc import OperationalError

    direct, loop = pg_direct

    async def test():
        async with direct.reading() as connection:
            doomed = connection.connection
            pid = doomed.info.backend_pid
        async with direct.engine.begin() as admin:
            await admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(OperationalError):
            async with direct.transaction() as tx:
                assert tx.connection is doomed
                await tx.execute(update(counters).values(value=counters.c.value + 1))
        assert doomed.closed
        async with direct.transaction() as tx:
            assert tx.connection is not doomed
            await tx.execute(update(counters).values(value=counters.c.value + 1))
        assert (await direct.rows(ONE, {"name": "a"}))[0].value == 1

    loop.run_until_complete(test())


def test_two_tasks_on_one_transaction_are_refused_not_interleaved(pg_direct):
    """A transaction's connection serves one task at a time: a statement sent while
    another task's round trip is under way would have its answers read as that one's."""
    direct, loop = pg_direct

    async def test():
        with pytest.raises(RuntimeError, match="one task at a time"):
            async with direct.transaction() as tx:
                await asyncio.gather(tx.execute(select(func.pg_sleep(0.2))), tx.execute(ONE, {"name": "a"}))
        assert (await direct.rows(ONE, {"name": "a"}))[0].value == 0

    loop.run_until_complete(test())
