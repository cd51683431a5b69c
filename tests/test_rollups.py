"""huiyuan/database/rollups.py: contributions recorded with their facts, folded once
each into every node above them and every grain, read back by tiles, as of a day, by
child, bucket and key, and counted by distinct key; a rebuild recomputes them; and the
periods' arithmetic (huiyuan/runtime/periods.py)."""

import asyncio
import random
from datetime import date, timedelta

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import Column, Integer, String, Table, select

from huiyuan.database import engines as db, new_metadata
from huiyuan.database.direct import Database
from huiyuan.database.rollups import Query, Rollups, define, define_outbox
from huiyuan.runtime.periods import Kind, Period, Tile, period_of, tiles
from huiyuan.runtime.rollups import Contribution, ancestors

metadata = new_metadata()
SALES = define(metadata, "sales", ["orders", "net_fen"])
BALANCE = define(metadata, "balance", ["amount_fen"], running=True, deepest=3)
VISITORS = define(metadata, "visitors", ["orders"], deepest=3)
OUTBOX = define_outbox(metadata)
ROLLUPS = Rollups(OUTBOX, SALES, BALANCE, VISITORS)
# the "raw records" the rebuild reads: one row per fact
facts = Table(
    "test_facts",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("till", String(140)),
    Column("day", String(10)),
    Column("member", String(10)),
    Column("net_fen", Integer),
)
TILLS = ["hq/east/s1/t1", "hq/east/s1/t2", "hq/east/s2/t1", "hq/west/s3/t1"]


def contributions(till: str, day: date, member: str, net: int) -> list[Contribution]:
    return [
        Contribution("sales", till, day, "", {"orders": 1, "net_fen": net}),
        Contribution("balance", till, day, "", {"amount_fen": net}),
        Contribution("visitors", till, day, member, {"orders": 1}),
    ]


def with_rollups(database_url, test):
    async def run():
        engine = db.make_async_engine(database_url, "public")
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
            await connection.run_sync(metadata.create_all)
        database = Database(engine, "public", 4)
        await database.open()
        try:
            await test(database)
        finally:
            await database.close()
            async with engine.begin() as connection:
                await connection.run_sync(metadata.drop_all)
            await engine.dispose()

    asyncio.run(run())


async def write_fact(database, till, day, member, net):
    async with database.transaction() as tx:
        await tx.execute(facts.insert(), {"till": till, "day": day.isoformat(), "member": member, "net_fen": net})
        await ROLLUPS.record(tx, contributions(till, day, member, net))


async def from_raw(tx):
    batch = []
    for r in await tx.execute(select(facts).order_by(facts.c.seq)):
        batch += contributions(r.till, date.fromisoformat(r.day), r.member, r.net_fen)
    yield batch


async def read(database, **query):
    async with database.reading() as tx:
        return await ROLLUPS.query(tx, Query(**query))


def test_facts_are_folded_once_into_every_node_above_them_and_read_by_tiles(database_url):
    rng = random.Random(7)
    history = [
        (
            rng.choice(TILLS),
            date(2025, 11, 20) + timedelta(days=rng.randrange(500)),
            f"m{rng.randrange(30)}",
            rng.randrange(1, 9999),
        )
        for _ in range(300)
    ]

    async def test(database):
        for fact in history:
            await write_fact(database, *fact)
        while await ROLLUPS.fold(database, limit=37):
            pass
        assert await ROLLUPS.fold(database) == 0  # each outbox row is folded once

        def expected(node, first, last):
            chosen = [f for f in history if f[0].startswith(node) and first <= f[1] <= last]
            return len(chosen), sum(f[3] for f in chosen), len({f[2] for f in chosen})

        async def check():
            for node in ["hq", "hq/east", "hq/east/s1", "hq/east/s1/t2", "hq/west/s3"]:
                for first, last in [
                    (date(2026, 1, 1), date(2026, 12, 31)),
                    (date(2025, 12, 15), date(2027, 2, 3)),
                    (date(2026, 3, 1), date(2026, 3, 31)),
                    (date(2026, 3, 9), date(2026, 3, 9)),
                ]:
                    orders, net, members = expected(node, first, last)
                    rows = await read(database, rollup="sales", node=node, first=first, last=last)
                    assert [(r.measures["orders"], r.measures["net_fen"]) for r in rows] == (
                        [(orders, net)] if orders else []
                    )
                    if node.count("/") < 3 and (last - first).days < 400:
                        rows = await read(
                            database, rollup="visitors", node=node, first=first, last=last, distinct_keys=True
                        )
                        assert sum(r.measures["distinct_keys"] for r in rows) == members
            # by child and by month add up to the node's total
            year = (date(2026, 1, 1), date(2026, 12, 31))
            total = (await read(database, rollup="sales", node="hq", first=year[0], last=year[1]))[0].measures
            children = await read(database, rollup="sales", node="hq", first=year[0], last=year[1], by_child=True)
            assert {r.path for r in children} <= {"hq/east", "hq/west"}
            assert sum(r.measures["net_fen"] for r in children) == total["net_fen"]
            months = await read(database, rollup="sales", node="hq", first=year[0], last=year[1], bucket="M")
            assert [r.day for r in months] == sorted({date(2026, m, 1) for m in range(1, 13)} & {r.day for r in months})
            assert sum(r.measures["orders"] for r in months) == total["orders"]
            # a balance as of a day: everything up to it
            for as_of in [date(2026, 2, 28), date(2026, 12, 31), date(2027, 4, 1)]:
                rows = await read(database, rollup="balance", node="hq/east", first=None, last=as_of)
                want = sum(f[3] for f in history if f[0].startswith("hq/east") and f[1] <= as_of)
                assert rows[0].measures["amount_fen"] == want
            # tills are not kept where the rollup stops at stores
            assert await read(database, rollup="balance", node="hq/east/s1/t1", first=None, last=as_of) == []

        await check()
        # the rebuild from the raw records gives the same counters, and empties the outbox
        await write_fact(database, "hq/east/s1/t1", date(2026, 3, 9), "m1", 5)
        history.append(("hq/east/s1/t1", date(2026, 3, 9), "m1", 5))
        assert await ROLLUPS.rebuild(database, from_raw) == 3 * len(history)
        assert await ROLLUPS.fold(database) == 0
        await check()

    with_rollups(database_url, test)


def test_a_rebuild_leaves_what_commits_meanwhile_to_the_next_fold(pg_server):
    """While a rebuild reads, checkouts go on: a fact committed after its snapshot is
    neither in the rebuild nor lost - it is folded next."""
    from tests.conftest import drop_pg_database, new_pg_database

    url = new_pg_database(pg_server)
    try:

        async def test(database):
            for i in range(50):
                await write_fact(database, TILLS[i % 4], date(2026, 5, 1), f"m{i}", 100)

            async def slow_raw(tx):
                async for batch in from_raw(tx):
                    await write_fact(database, TILLS[0], date(2026, 5, 1), "late", 1)  # commits mid-rebuild
                    yield batch

            assert await ROLLUPS.rebuild(database, slow_raw) == 150
            rows = await read(database, rollup="sales", node="hq", first=date(2026, 5, 1), last=date(2026, 5, 1))
            assert rows[0].measures == {"orders": 50, "net_fen": 5000}
            assert await ROLLUPS.fold(database) == 1
            rows = await read(database, rollup="sales", node="hq", first=date(2026, 5, 1), last=date(2026, 5, 1))
            assert rows[0].measures == {"orders": 51, "net_fen": 5001}

        with_rollups(url, test)
    finally:
        drop_pg_database(pg_server, url)


def test_ancestors_stop_at_the_rollups_deepest_level():
    assert ancestors("hq/east/s1/t1") == ["hq", "hq/east", "hq/east/s1", "hq/east/s1/t1"]
    assert ancestors("hq/east/s1/t1", deepest=3) == ["hq", "hq/east", "hq/east/s1"]
    assert ancestors("hq/east", deepest=3) == ["hq", "hq/east"]


@settings(max_examples=300, deadline=None)
@given(st.dates(date(2020, 1, 1), date(2030, 12, 31)), st.integers(0, 800))
def test_tiles_cover_each_day_of_a_span_once(first, length):
    last = first + timedelta(days=length)
    covered = []
    for t in tiles(first, last):
        day = t.first
        while day <= t.last:
            if t.grain == "Y":
                covered += [day + timedelta(days=i) for i in range((date(day.year + 1, 1, 1) - day).days)]
                day = date(day.year + 1, 1, 1)
            elif t.grain == "M":
                following = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
                covered += [day + timedelta(days=i) for i in range((following - day).days)]
                day = following
            else:
                covered.append(day)
                day += timedelta(days=1)
    assert covered == [first + timedelta(days=i) for i in range(length + 1)]
    assert len(tiles(first, last)) <= 5


@settings(max_examples=100, deadline=None)
@given(st.dates(date(2020, 1, 1), date(2030, 12, 31)), st.sampled_from([date(9998, 12, 31), date(9999, 12, 31)]))
def test_tiles_to_the_end_of_time_take_the_years_at_once(first, last):
    # a balance as of a day reads what came after it up to 9999-12-31, coupons up to
    # 9998-12-31: the years between are one range, found without stepping through them
    # (a step a year was 8,000 steps, most of the liability report's time)
    found = tiles(first, last)
    if first == date(first.year, 1, 1):
        assert found == [Tile("Y", first, date(last.year, 1, 1))]
    else:
        assert found == [
            *tiles(first, date(first.year, 12, 31)),
            Tile("Y", date(first.year + 1, 1, 1), date(last.year, 1, 1)),
        ]


@pytest.mark.parametrize(
    "kind, day, this, before, year_ago",
    [
        (
            Kind.MONTH,
            date(2024, 3, 31),
            ("2024-03-01", "2024-03-31"),
            ("2024-02-01", "2024-02-29"),
            ("2023-03-01", "2023-03-31"),
        ),
        (
            Kind.QUARTER,
            date(2026, 1, 5),
            ("2026-01-01", "2026-03-31"),
            ("2025-10-01", "2025-12-31"),
            ("2025-01-01", "2025-03-31"),
        ),
        (
            Kind.WEEK,
            date(2026, 12, 7),
            ("2026-12-07", "2026-12-13"),
            ("2026-11-30", "2026-12-06"),
            ("2025-12-08", "2025-12-14"),
        ),
        (
            Kind.YEAR,
            date(2024, 2, 29),
            ("2024-01-01", "2024-12-31"),
            ("2023-01-01", "2023-12-31"),
            ("2023-01-01", "2023-12-31"),
        ),
        (
            Kind.DAY,
            date(2024, 2, 29),
            ("2024-02-29", "2024-02-29"),
            ("2024-02-28", "2024-02-28"),
            ("2023-02-28", "2023-02-28"),
        ),
    ],
)
def test_a_period_its_predecessor_and_the_same_a_year_earlier(kind, day, this, before, year_ago):
    def days(p: Period):
        return (p.first.isoformat(), p.last.isoformat())

    p = period_of(kind, day)
    assert (days(p), days(p.previous()), days(p.year_earlier())) == (this, before, year_ago)
