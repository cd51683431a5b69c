"""huiyuan/database/direct.py's Database: on PostgreSQL statements run straight on psycopg,
and must behave as SQLAlchemy's engine does on both databases: a transaction commits
all of its statements or none, a statement built anew per call runs with its own
values, a driver error comes back as SQLAlchemy's, rows answer like a Result."""

import asyncio
import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    String,
    Table,
    bindparam,
    column,
    delete,
    func,
    insert,
    select,
    table,
    update,
)
from sqlalchemy.exc import IntegrityError, NoResultFound

from huiyuan.database import engines as db
from huiyuan.database.direct import Database, send, together
from huiyuan.database.engines import UtcDateTime, violated_unique
from huiyuan.runtime.errors import FailedPrecondition

metadata = db.new_metadata()
codes = Table(
    "direct_codes",
    metadata,
    Column("code", String(8), primary_key=True),
    Column("uses", Integer, nullable=False),
    Column("terms", JSON, nullable=True),
    Column("expire_time", UtcDateTime, nullable=True),
)
notes = Table(
    "direct_notes", metadata, Column("note_id", Integer, primary_key=True), Column("code", String(8), nullable=False)
)
WANTED = select(codes.c.code).where(codes.c.code.in_(bindparam("codes", expanding=True))).order_by(codes.c.code)
UNWANTED = select(codes.c.code).where(codes.c.code.not_in(bindparam("codes", expanding=True)))
ONE = select(codes).where(codes.c.code == bindparam("code"))


def with_direct(database_url, test):
    """Run test(direct) against a fresh direct_codes table holding a, b, c, d."""

    async def run():
        engine = db.make_async_engine(database_url, "public")
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(insert(codes), [{"code": c, "uses": 0} for c in ("a", "b", "c", "d")])
        direct = Database(engine, "public", 4)
        await direct.open()
        try:
            await test(direct)
        finally:
            await direct.close()
            async with engine.begin() as connection:
                await connection.run_sync(metadata.drop_all)
            await engine.dispose()

    asyncio.run(run())


def test_a_read_takes_an_in_list_of_any_length_and_refuses_a_not_in(database_url):
    """An expanding IN becomes = ANY(...) on PostgreSQL: one prepared statement for
    every length."""

    async def test(direct):
        assert [r.code for r in await direct.rows(WANTED, {"codes": ["c", "a", "zz"]})] == ["a", "c"]
        assert [r.code for r in await direct.rows(WANTED, {"codes": ["d"]})] == ["d"]
        assert await direct.rows(WANTED, {"codes": ["zz", "yy", "xx", "ww", "vv"]}) == []
        if direct.pool is not None:  # on SQLite the statement runs through SQLAlchemy as it is
            with pytest.raises(ValueError, match="no direct form"):
                await direct.rows(UNWANTED, {"codes": ["a"]})
            async with direct.reading() as connection:
                await connection.execute(ONE, {"code": "a"})
                await connection.execute(WANTED, {"codes": ["a"]})
                prepared = [
                    row.statement
                    for row in await connection.execute(
                        select(column("statement")).select_from(table("pg_prepared_statements"))
                    )
                ]
            assert any("direct_codes.code = $1" in s for s in prepared)
            assert any("direct_codes.code = ANY($1)" in s for s in prepared)

    with_direct(database_url, test)


async def _plan_for(raw, codes_wanted: list[str]) -> str:
    """The plan the connection's prepared WANTED would run, as EXPLAIN prints it."""
    name = (
        await (
            await raw.execute(
                "SELECT name FROM pg_prepared_statements WHERE statement LIKE '%= ANY($1)%'", prepare=False
            )
        ).fetchone()
    )[0]
    literal = "{" + ",".join(codes_wanted) + "}"  # plain letters: nothing to quote
    plan = await (await raw.execute(f"EXPLAIN EXECUTE {name}('{literal}')", prepare=False)).fetchall()
    return "\n".join(line for (line,) in plan)


def test_a_plan_made_on_a_small_table_is_dropped_after_plans_kept_s(database_url):
    """PostgreSQL keeps a prepared statement's plan for the connection's life. One made
    on a table of four rows reads the table whole; once the table has grown, the plan
    must be made again within plans_kept_s, or every lookup reads every row."""
    if not database_url.startswith("postgresql"):
        pytest.skip("plans are PostgreSQL's")

    async def test(direct):
        direct.plans_kept_s = 3600
        async with direct.engine.begin() as connection:  # no analyze may make the plan again meanwhile
            await connection.exec_driver_sql("ALTER TABLE direct_codes SET (autovacuum_enabled = false)")
        async with direct.reading() as connection:
            raw = connection.connection
            await raw.execute("VACUUM ANALYZE direct_codes", prepare=False)  # as autovacuum does a new table's
            for _ in range(8):  # past the five custom plans PostgreSQL makes before a generic one
                await connection.execute(WANTED, {"codes": ["a", "b"]})
            assert "Seq Scan on direct_codes" in await _plan_for(raw, ["a"])
            await raw.execute(
                "INSERT INTO direct_codes (code, uses) SELECT 'x' || g, 0 FROM generate_series(1, 50000) g",
                prepare=False,
            )
            assert "Seq Scan on direct_codes" in await _plan_for(raw, ["a"])  # still the plan for four rows
        direct.plans_kept_s = 0
        async with direct.reading() as connection:
            assert connection.connection is raw
            assert [r.code for r in await connection.execute(WANTED, {"codes": ["x7", "a"]})] == ["a", "x7"]
            plan = await _plan_for(raw, ["a"])
            assert "pk_direct_codes" in plan and "Seq Scan" not in plan

    with_direct(database_url, test)


def test_a_transaction_commits_all_of_its_statements_or_none(database_url):
    async def test(direct):
        async with direct.transaction() as tx:
            await tx.execute(update(codes).where(codes.c.code == "a").values(uses=codes.c.uses + 1))
            await tx.execute(insert(codes), {"code": "e", "uses": 5})
        with pytest.raises(FailedPrecondition):
            async with direct.transaction() as tx:
                await tx.execute(update(codes).where(codes.c.code == "a").values(uses=codes.c.uses + 1))
                await tx.execute(insert(codes), {"code": "f", "uses": 5})
                raise FailedPrecondition("REFUSED", "refused after writing", "写入后拒绝")
        rows = {r.code: r.uses for r in await direct.rows(select(codes.c.code, codes.c.uses))}
        assert rows == {"a": 1, "b": 0, "c": 0, "d": 0, "e": 5}

    with_direct(database_url, test)


def test_a_statement_built_per_call_runs_with_its_own_values(database_url):
    """The compiled form is cached under SQLAlchemy's cache key, which leaves the
    literal values out: each call must still bind its own."""

    async def test(direct):
        async with direct.transaction() as tx:
            for code, uses in [("a", 1), ("b", 2), ("c", 3)]:
                await tx.execute(update(codes).where(codes.c.code == code).values(uses=uses))
            seen = [
                (await tx.execute(select(codes.c.uses).where(codes.c.code == code))).scalar_one()
                for code in ("c", "a", "b")
            ]
            # The same insert with other columns given is another statement.
            await tx.execute(insert(codes), {"code": "e", "uses": 1})
            await tx.execute(insert(codes), {"code": "f", "uses": 2, "terms": {"min_fen": 100}})
        assert seen == [3, 1, 2]
        assert [
            (r.code, r.terms)
            for r in await direct.rows(select(codes).where(codes.c.code.in_(["e", "f"])).order_by(codes.c.code))
        ] == [("e", None), ("f", {"min_fen": 100})]

    with_direct(database_url, test)


def test_a_unique_violation_is_sqlalchemy_s_integrity_error_and_rolls_the_transaction_back(database_url):
    async def test(direct):
        with pytest.raises(IntegrityError) as raised:
            async with direct.transaction() as tx:
                await tx.execute(update(codes).where(codes.c.code == "b").values(uses=9))
                await tx.execute(insert(codes), {"code": "a", "uses": 1})
        assert violated_unique(raised.value, "direct_codes", "code")
        assert (await direct.rows(ONE, {"code": "b"}))[0].uses == 0

    with_direct(database_url, test)


def test_a_sent_write_lands_in_order_and_its_failure_fails_the_whole_transaction(database_url, caplog):
    """send(): on PostgreSQL the write goes out with the next statement that waits, or
    with COMMIT; its error surfaces there, and nothing of the transaction commits."""

    async def test(direct):
        async with direct.transaction() as tx:
            await send(tx, update(codes).where(codes.c.code == "a").values(uses=codes.c.uses + 1))
            await send(tx, insert(codes), [{"code": "e", "uses": 1}, {"code": "f", "uses": 2}])
            await send(tx, insert(codes), [])  # nothing to write
            assert (await tx.execute(ONE, {"code": "a"})).one().uses == 1  # a read sees what was sent before it
            await send(tx, update(codes).where(codes.c.code == "b").values(uses=7))  # goes out with COMMIT
        with pytest.raises(IntegrityError) as at_commit:
            async with direct.transaction() as tx:
                await send(tx, update(codes).where(codes.c.code == "c").values(uses=9))
                await send(tx, insert(codes), {"code": "a", "uses": 1})
        assert violated_unique(at_commit.value, "direct_codes", "code")
        with pytest.raises(IntegrityError):
            async with direct.transaction() as tx:
                await send(tx, update(codes).where(codes.c.code == "d").values(uses=9))
                await send(tx, insert(codes), {"code": "a", "uses": 1})
                await tx.execute(ONE, {"code": "d"})  # on PostgreSQL the error surfaces here
                pytest.fail("a read after a failed write went on")
        rows = {r.code: r.uses for r in await direct.rows(select(codes.c.code, codes.c.uses))}
        assert rows == {"a": 1, "b": 7, "c": 0, "d": 0, "e": 1, "f": 2}

    with_direct(database_url, test)
    # Every connection went back to the pool out of its transaction: else the pool warns
    # ("rolling back returned connection") and rolls it back itself.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []


def test_statements_run_together_answer_in_order_and_one_failing_fails_the_transaction(database_url, caplog):
    """together(): on PostgreSQL one round trip; each statement sees those before
    it, a failing one raises SQLAlchemy's error, and nothing of the transaction commits."""

    async def test(direct):
        async with direct.transaction() as tx:
            bumped, read, wanted = await together(
                tx,
                (update(codes).where(codes.c.code == "a").values(uses=codes.c.uses + 1), None),
                (ONE, {"code": "a"}),
                (WANTED, {"codes": ["b", "a"]}),
            )
            assert (bumped.rowcount, read.one().uses, [r.code for r in wanted]) == (1, 1, ["a", "b"])
        with pytest.raises(IntegrityError) as failed:
            async with direct.transaction() as tx:
                await together(
                    tx,
                    (update(codes).where(codes.c.code == "b").values(uses=9), None),
                    (insert(codes), {"code": "a", "uses": 1}),
                    (ONE, {"code": "b"}),
                )
                pytest.fail("the statements after a failed one went on")
        assert violated_unique(failed.value, "direct_codes", "code")
        rows = {r.code: r.uses for r in await direct.rows(select(codes.c.code, codes.c.uses))}
        assert rows == {"a": 1, "b": 0, "c": 0, "d": 0}

    with_direct(database_url, test)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []


def test_rows_answer_as_sqlalchemy_s_result_does(database_url):
    expire = datetime(2026, 11, 23, 15, 30, tzinfo=timezone(timedelta(hours=8)))

    async def test(direct):
        async with direct.transaction() as tx:
            many = await tx.execute(update(codes).where(codes.c.code.in_(["a", "b", "zz"])).values(uses=2))
            assert many.rowcount == 2
            await tx.execute(
                update(codes).where(codes.c.code == bindparam("key")).values(expire_time=bindparam("at")),
                [{"key": "c", "at": expire}, {"key": "d", "at": expire}],
            )  # executemany
            await tx.execute(insert(codes), [{"code": "e", "uses": 7, "terms": ["tea"]}])  # a list of one
            row = (await tx.execute(ONE, {"code": "e"})).one()
            assert (row.code, row.uses, row.terms) == ("e", 7, ["tea"]) and row._asdict()["uses"] == 7
            assert (await tx.execute(ONE, {"code": "zz"})).one_or_none() is None
            with pytest.raises(NoResultFound):
                (await tx.execute(ONE, {"code": "zz"})).one()
            assert (await tx.execute(ONE, {"code": "zz"})).scalar() is None
            assert (await tx.execute(WANTED, {"codes": ["b", "a"]})).scalars().all() == ["a", "b"]
            assert (await tx.execute(WANTED, {"codes": ["b", "a"]})).first().code == "a"
        at = (await direct.rows(select(codes.c.expire_time).where(codes.c.code == "d")))[0].expire_time
        assert at == expire and at.utcoffset() == timedelta(0)  # the same instant, told in UTC

    with_direct(database_url, test)


def test_an_insert_on_conflict_binds_its_own_values_whether_built_once_or_per_call(database_url):
    """Database keeps the compiled form of a statement used again (at once if marked
    BUILT_ONCE), and compiles one built per call for that call, keeping none."""
    from huiyuan.database.direct import BUILT_ONCE
    from huiyuan.database.upsert import insert_for

    async def test(direct):
        built_once = (
            insert_for(direct.dialect.name)(codes)
            .on_conflict_do_nothing(index_elements=["code"])
            .returning(codes.c.code)
            .execution_options(**{BUILT_ONCE: True})
        )
        async with direct.transaction() as tx:
            written = [(await tx.execute(built_once, {"code": c, "uses": 1})).scalars().all() for c in ("a", "e", "f")]
            for n in range(50):
                await tx.execute(
                    insert_for(tx)(codes).values(code=f"n{n}", uses=n).on_conflict_do_nothing(index_elements=["code"])
                )
        assert written == [[], ["e"], ["f"]]
        uses = {r.code: r.uses for r in await direct.rows(select(codes.c.code, codes.c.uses))}
        assert uses["a"] == 0 and uses["e"] == 1 and all(uses[f"n{n}"] == n for n in range(50))
        if direct.pool is not None:
            assert [kept for kept, _ in direct._prepared.values()] == [built_once]

    with_direct(database_url, test)


def test_a_call_that_waits_too_long_for_a_connection_gets_sqlalchemy_s_timeout(database_url):
    """Which the services answer with UNAVAILABLE (runtime/interceptors.py)."""
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    async def run():
        engine = db.make_async_engine(database_url, "public")
        direct = Database(engine, "public", 2, wait_s=0.2)
        await direct.open()
        try:
            if direct.pool is None:
                return  # SQLite: SQLAlchemy's own pool and writer turns
            async with direct.transaction(), direct.transaction():  # the pool's two connections, taken
                with pytest.raises(PoolTimeoutError):
                    await direct.rows(select(1))
            assert (await direct.rows(select(1)))[0][0] == 1  # given back: served again
        finally:
            await direct.close()
            await engine.dispose()

    asyncio.run(run())


# Writes of several kinds: on one table, on another, one reading another table.
BUMP = update(codes).where(codes.c.code == bindparam("key")).values(uses=codes.c.uses + bindparam("by"))
SET = update(codes).where(codes.c.code == bindparam("key")).values(uses=bindparam("to"))
DROP = delete(codes).where(codes.c.code == bindparam("key"))
COUNT_NOTES = (
    update(codes)
    .where(codes.c.code == bindparam("key"))
    .values(  # reads direct_notes
        uses=select(func.count()).where(notes.c.code == codes.c.code).scalar_subquery()
    )
)


def test_writes_sent_between_reads_land_as_one_write_after_another(database_url):
    """Sent writes, then a read: the rows as one write after another leaves them."""

    async def test(direct):
        async with direct.transaction() as tx:
            await send(tx, BUMP, {"key": "a", "by": 1})
            await send(tx, insert(notes), {"note_id": 1, "code": "b"})  # another table
            await send(tx, insert(notes), {"note_id": 2, "code": "b"})
            await send(tx, BUMP, {"key": "a", "by": 1})  # reads what the first changed
            await send(tx, COUNT_NOTES, {"key": "b"})  # reads the notes inserted: after them
            await send(tx, DROP, {"key": "c"})
            await send(tx, insert(codes), {"code": "c", "uses": 5})  # into a table changed: after it
            rows = {r.code: r.uses for r in await tx.execute(select(codes.c.code, codes.c.uses))}
        assert rows == {"a": 2, "b": 2, "c": 5, "d": 0}

    with_direct(database_url, test)


def test_sent_writes_leave_what_executed_ones_leave(database_url):
    """300 random sequences of writes and reads on two tables, sent (answered with the
    next statement that waits) and executed one by one: the same rows, the same reads,
    the same failures (a key inserted twice)."""
    pick = random.Random(20261203)

    def sequence():
        steps = []
        for _ in range(pick.randint(1, 9)):
            code = pick.choice("abcxy")
            steps.append(
                pick.choice(
                    [
                        ("write", BUMP, {"key": code, "by": pick.randint(1, 3)}),
                        ("write", SET, {"key": code, "to": pick.randint(0, 9)}),
                        ("write", insert(codes), {"code": code, "uses": pick.randint(0, 9)}),
                        ("write", DROP, {"key": code}),
                        ("write", insert(notes), {"note_id": pick.randint(1, 6), "code": code}),
                        ("write", COUNT_NOTES, {"key": code}),
                        ("read", ONE, {"code": code}),
                    ]
                )
            )
        return steps

    async def outcome(direct, steps, sending: bool):
        async with direct.transaction() as tx:
            await tx.execute(delete(notes))
            await tx.execute(delete(codes))
            await tx.execute(insert(codes), [{"code": c, "uses": 0} for c in "abcd"])
        seen = []
        try:
            async with direct.transaction() as tx:
                for kind, statement, params in steps:
                    if kind == "read":
                        seen.append((await tx.execute(statement, params)).all())
                    elif sending:
                        await send(tx, statement, params)
                    else:
                        await tx.execute(statement, params)
        except IntegrityError:
            seen.append("failed")
        rows = {r.code: r.uses for r in await direct.rows(select(codes.c.code, codes.c.uses))}
        return seen, rows, sorted((r.note_id, r.code) for r in await direct.rows(select(notes)))

    async def test(direct):
        for _ in range(300):
            steps = sequence()
            sent, alone = await outcome(direct, steps, True), await outcome(direct, steps, False)
            assert sent == alone, [(str(s).split()[0], p) for _, s, p in steps]

    with_direct(database_url, test)
