"""Rollups: the reports' pre-aggregated counters, kept by every service over its own
facts (docs/reports.md; why: docs/decisions/0005-reports-from-rollups.md).

A rollup is a table of additive counters keyed by (org node, grain, day, key): a row
per node at every level above where a fact happened (the chain, its region, its store,
its till), per business day, month and year (huiyuan/runtime/periods.py), per key (a
tender, a cashier, a member...). A report reads the few rows that tile its period, at
the node it asks about or that node's children: its cost depends on the nodes, never on
the history.

The facts reach the counters in two steps, so that the path that writes a fact (a
checkout) gains one insert and no contended row:

1. `record(tx, contributions)`: in the fact's own transaction, one row into the
   service's outbox (its contributions as JSON). Inserts do not queue on each other.
2. `fold()`: a background loop (huiyuan/runtime/rollup_service.py) takes the outbox's
   oldest rows - deleting them, in the transaction that adds them to the counters, so
   each is folded exactly once whatever crashes - and adds them up. One fold runs at a
   time per service (an advisory lock; a second replica's fold skips its turn).

`rebuild()` recomputes every counter from the raw records, in one repeatable-read
transaction that also empties the outbox of what that snapshot holds: what commits
meanwhile stays in the outbox for the next fold, and nothing is counted twice. It sums
each fact at its own node and day only, loads those sums into temporary tables (COPY
on PostgreSQL), and lets the database add them up to every node above and every grain
in one INSERT ... SELECT ... GROUP BY per rollup: the nodes and grains come from two
small tables that ancestors() and grain_days() fill, the functions the fold uses.
"""

import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import sqlite

from huiyuan.database.direct import Database, send
from huiyuan.database.engines import dialect_name
from huiyuan.runtime.periods import DAY, MONTH, RUNNING, RUNNING_DAY, Tile, grain_days, month_tiles, tiles
from huiyuan.runtime.rollups import Contribution, ancestors, parent_of

FOLD_BATCH = 2000  # outbox rows per fold transaction
REBUILD_FLUSH = 200_000  # counters summed in memory before the rebuild writes them
LAST_DAY = date(9999, 12, 31)
Key = tuple[str, str, date, str]  # (path, grain, day, key)
LeafKey = tuple[str, date, str]  # (path, day, key): where the fact happened


@dataclass(frozen=True)
class Rollup:
    """A rollup's definition and table (define() makes both)."""

    name: str
    measures: tuple[str, ...]
    table: Table
    running: bool  # keeps a running total: sums "as of a day" (balances)
    deepest: int  # the deepest level it keeps: 4 with tills, 3 stores, 2 regions


def define(metadata: MetaData, name: str, measures: Iterable[str], running: bool = False, deepest: int = 4) -> Rollup:
    """A rollup named name, with a BigInteger counter per measure, in table rollup_<name>."""
    measures = tuple(measures)
    table = Table(
        f"rollup_{name}",
        metadata,
        Column("path", String(140), nullable=False),
        Column("parent_path", String(140), nullable=False),  # a node's children are read by it
        Column("grain", String(1), nullable=False),  # D, M, Y, or A: the running total
        Column("day", Date, nullable=False),  # the day, its month's first or its year's first
        Column("key", String(64), nullable=False),
        *(Column(m, BigInteger, nullable=False, server_default="0") for m in measures),
        PrimaryKeyConstraint("path", "grain", "day", "key"),
        Index(f"ix_rollup_{name}_parent_path_grain_day", "parent_path", "grain", "day"),
    )
    return Rollup(name, measures, table, running, deepest)


def define_outbox(metadata: MetaData) -> Table:
    """The service's outbox of contributions not folded yet: one row per fact."""
    return Table(
        "rollup_outbox",
        metadata,
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("contributions", JSON, nullable=False),  # [Contribution.as_json(), ...]
    )


@dataclass(frozen=True)
class Query:
    """A rollup's sums for a node over days first..last (first None: from the start, as
    of last: running rollups only), grouped by child, bucket (DAY or MONTH) and key."""

    rollup: str
    node: str
    first: date | None
    last: date
    by_child: bool = False
    bucket: str = ""  # "", DAY or MONTH
    by_key: bool = False
    keys: tuple[str, ...] = ()
    distinct_keys: bool = False
    counted: str = ""  # with distinct_keys: only keys whose rows have this measure above 0


@dataclass(frozen=True)
class Row:
    path: str
    day: date | None  # its bucket's first day
    key: str
    measures: dict[str, int]


DISTINCT = "distinct_keys"


class UnknownRollup(LookupError):
    pass


class Rollups:
    """A service's rollups and their outbox: record, fold, rebuild, query."""

    def __init__(self, outbox: Table, *rollups: Rollup):
        self.outbox = outbox
        self.by_name = {r.name: r for r in rollups}
        self._record = insert(outbox)

    @property
    def lock_key(self) -> int:
        """The advisory lock folds and rebuilds take turns on: one per schema."""
        return zlib.crc32(f"rollups:{self.outbox.schema or ''}:{sorted(self.by_name)}".encode())

    async def record(self, tx: Any, contributions: list[Contribution]) -> None:
        """Write a fact's contributions with it (in its transaction): one insert, sent
        without waiting for its answer."""
        if contributions:
            await send(tx, self._record, {"contributions": [c.as_json() for c in contributions]})

    # ---------------------------------------------------------------- fold

    async def fold(self, database: Database, limit: int = FOLD_BATCH) -> int:
        """Fold up to limit of the outbox's oldest rows into the counters; how many."""
        async with database.job_transaction() as tx:
            if dialect_name(tx) == "postgresql":
                taken = (await tx.execute(select(func.pg_try_advisory_xact_lock(self.lock_key)))).scalar()
                if not taken:
                    return 0  # another replica folds now
            oldest = select(self.outbox.c.seq).order_by(self.outbox.c.seq).limit(limit)
            taken_rows = (
                await tx.execute(
                    delete(self.outbox)
                    .where(self.outbox.c.seq.in_(oldest.scalar_subquery()))
                    .returning(self.outbox.c.contributions)
                )
            ).all()
            sums: dict[str, dict[Key, list[int]]] = defaultdict(dict)
            for (contributions,) in taken_rows:
                self._add_up(sums, (Contribution.of_json(c) for c in contributions))
            await self._write(tx, sums)
            return len(taken_rows)

    def _add_up(self, sums: dict[str, dict[Key, list[int]]], contributions: Iterable[Contribution]) -> None:
        """Each contribution at its node and every node above it, at every grain."""
        for c in contributions:
            rollup = self.by_name[c.rollup]
            values = [c.measures.get(m, 0) for m in rollup.measures]
            assert set(c.measures) <= set(rollup.measures), (c.rollup, c.measures)
            grains = grain_days(c.day) + ([(RUNNING, RUNNING_DAY)] if rollup.running else [])
            counters = sums[c.rollup]
            for path in ancestors(c.path, rollup.deepest):
                for grain, day in grains:
                    key = (path, grain, day, c.key)
                    kept = counters.get(key)
                    if kept is None:
                        counters[key] = list(values)
                    else:
                        for i, v in enumerate(values):
                            kept[i] += v

    async def _write(self, tx: Any, sums: dict[str, dict[Key, list[int]]]) -> None:
        """Add the sums to the counters (a row made where there is none), in key order."""
        for name, counters in sums.items():
            if counters:
                await _add_to(tx, self.by_name[name], sorted(counters.items()))

    # ---------------------------------------------------------------- rebuild

    async def rebuild(self, database: Database, facts: Callable[[Any], AsyncIterator[list[Contribution]]]) -> int:
        """Recompute every counter from the raw records: facts(tx) yields, batch by
        batch, the contributions of every fact there is, read on tx. Returns how many
        contributions were counted."""
        postgres = database.engine.dialect.name == "postgresql"
        async with database.engine.connect() as guard:
            if postgres:  # the folds wait (skip their turns) until the rebuild is in
                await guard.execute(select(func.pg_advisory_lock(self.lock_key)))
            try:
                options = {"isolation_level": "REPEATABLE READ"} if postgres else {}
                async with database.engine.connect() as connection:
                    await connection.execution_options(**options)
                    async with connection.begin():
                        return await self._rebuild_in(connection, facts)
            finally:
                if postgres:
                    await guard.execute(select(func.pg_advisory_unlock(self.lock_key)))
                    await guard.commit()

    async def _rebuild_in(self, tx: Any, facts: Callable[[Any], AsyncIterator[list[Contribution]]]) -> int:
        # the snapshot's outbox rows are facts the raw records hold: counted from those
        await tx.execute(delete(self.outbox))
        for rollup in self.by_name.values():
            await tx.execute(delete(rollup.table))
        staging = _Staging(self.by_name.values())
        await staging.create(tx)
        counted, pending = 0, 0
        sums: dict[str, dict[LeafKey, list[int]]] = defaultdict(dict)
        async for batch in facts(tx):
            _add_up_at_leaf(self.by_name, sums, batch)
            counted += len(batch)
            pending += len(batch)
            if pending >= REBUILD_FLUSH:
                await staging.load(tx, sums)
                sums, pending = defaultdict(dict), 0
        await staging.load(tx, sums)
        await staging.add_up_into(tx, self.by_name.values())
        await staging.drop(tx)
        return counted

    # ---------------------------------------------------------------- query

    def rollup(self, name: str) -> Rollup:
        try:
            return self.by_name[name]
        except KeyError:
            raise UnknownRollup(name) from None

    async def query(self, tx: Any, q: Query) -> list[Row]:
        """The query's rows, ordered by node, day and key."""
        rollup = self.rollup(q.rollup)
        if q.distinct_keys and q.bucket == MONTH:
            rows = []
            for month, month_pieces in month_tiles(q.first or q.last, q.last):
                rows += [
                    Row(r.path, month, r.key, r.measures)
                    for r in await self._select(tx, rollup, replace(q, bucket=""), month_pieces, +1)
                ]
            return sorted(rows, key=lambda r: (r.path, r.day or RUNNING_DAY, r.key))
        if q.first is None:  # as of q.last: the running total less what came after
            assert rollup.running, q.rollup
            total = await self._select(tx, rollup, q, [Tile(RUNNING, RUNNING_DAY, RUNNING_DAY)], +1)
            after = await self._select(tx, rollup, q, tiles(q.last + timedelta(days=1), LAST_DAY), -1)
            return _summed(total + after, lambda r: (r.path, None, r.key))
        if q.bucket == DAY:
            pieces = [Tile(DAY, q.first, q.last)]
        elif q.bucket == MONTH:
            pieces = [t for _, month_pieces in month_tiles(q.first, q.last) for t in month_pieces]
        else:
            pieces = tiles(q.first, q.last)
        rows = await self._select(tx, rollup, q, pieces, +1)
        if q.bucket == MONTH:
            return _summed(rows, lambda r: (r.path, r.day.replace(day=1) if r.day else None, r.key))
        return rows if q.bucket == DAY or q.distinct_keys else _summed(rows, lambda r: (r.path, None, r.key))

    async def _select(self, tx: Any, rollup: Rollup, q: Query, pieces: list[Tile], sign: int) -> list[Row]:
        """Rows of the pieces, grouped by node (by_child), grain/day (bucket) and key;
        sign -1 negates the sums (what came after an as-of day)."""
        t = rollup.table
        node = t.c.parent_path == q.node if q.by_child else t.c.path == q.node
        spans = or_(*(and_(t.c.grain == p.grain, t.c.day.between(p.first, p.last)) for p in pieces))
        where = [node, spans] + ([t.c.key.in_(q.keys)] if q.keys else [])
        if q.distinct_keys and q.counted:
            where.append(t.c[q.counted] > 0)
        group = [t.c.path]
        if q.bucket:
            group.append(t.c.day)
        if q.by_key and not q.distinct_keys:
            group.append(t.c.key)
        if q.distinct_keys:
            # a node's row of one grain and day has each key once: a count, not a distinct count
            one_row_each = len(pieces) == 1 and pieces[0].first == pieces[0].last and not q.bucket
            counted = func.count() if one_row_each else func.count(t.c.key.distinct())
            statement = select(*group, counted.label(DISTINCT)).where(*where).group_by(*group)
            names: tuple[str, ...] = (DISTINCT,)
            sign = 1
        else:
            statement = select(*group, *(func.sum(t.c[m]).label(m) for m in rollup.measures)).where(*where)
            statement = statement.group_by(*group)
            names = rollup.measures
        out = []
        for r in await tx.execute(statement.order_by(*group)):
            out.append(
                Row(
                    r.path,
                    r.day if q.bucket else None,
                    r.key if q.by_key and not q.distinct_keys else "",
                    {n: sign * int(getattr(r, n) or 0) for n in names},
                )
            )
        return out


def _summed(rows: list[Row], key_of: Callable[[Row], tuple[str, date | None, str]]) -> list[Row]:
    out: dict[tuple[str, date | None, str], dict[str, int]] = {}
    for r in rows:
        k = key_of(r)
        into = out.setdefault(k, dict.fromkeys(r.measures, 0))
        for m, v in r.measures.items():
            into[m] = into.get(m, 0) + v
    return [
        Row(p, d, k, m)
        for (p, d, k), m in sorted(out.items(), key=lambda i: (i[0][0], i[0][1] or RUNNING_DAY, i[0][2]))
    ]


async def _add_to(tx: Any, rollup: Rollup, counters: list[tuple[Key, list[int]]]) -> None:
    """counters added to the rollup's rows: INSERT ... ON CONFLICT DO UPDATE SET m = m +
    excluded.m. On PostgreSQL in chunks of one statement each, the rows as arrays
    through unnest() (as huiyuan/database/upsert.py's insert_new)."""
    t = rollup.table
    if dialect_name(tx) != "postgresql":
        new = sqlite.insert(t)
        upsert = new.on_conflict_do_update(
            index_elements=["path", "grain", "day", "key"],
            set_={m: t.c[m] + new.excluded[m] for m in rollup.measures},
        )
        params = [
            {"path": p, "parent_path": parent_of(p), "grain": g, "day": d, "key": k, **dict(zip(rollup.measures, vs))}
            for (p, g, d, k), vs in counters
        ]
        await tx.execute(upsert, params)
        return
    names = ["path", "parent_path", "grain", "day", "key", *rollup.measures]
    types = ["VARCHAR", "VARCHAR", "VARCHAR", "DATE", "VARCHAR", *(["BIGINT"] * len(rollup.measures))]
    unnest = ", ".join(f"CAST(:{n} AS {ty}[])" for n, ty in zip(names, types))
    quoted = ", ".join(f'"{n}"' for n in names)
    adds = ", ".join(f'"{m}" = "{t.name}"."{m}" + excluded."{m}"' for m in rollup.measures)
    statement = text(
        f'INSERT INTO "{t.name}" ({quoted}) SELECT * FROM unnest({unnest}) '
        f'ON CONFLICT ("path", "grain", "day", "key") DO UPDATE SET {adds}'
    )
    for start in range(0, len(counters), 20_000):
        chunk = counters[start : start + 20_000]
        arrays: dict[str, list[Any]] = {
            "path": [k[0] for k, _ in chunk],
            "parent_path": [parent_of(k[0]) for k, _ in chunk],
            "grain": [k[1] for k, _ in chunk],
            "day": [k[2] for k, _ in chunk],
            "key": [k[3] for k, _ in chunk],
        }
        for i, m in enumerate(rollup.measures):
            arrays[m] = [vs[i] for _, vs in chunk]
        await tx.execute(statement, arrays)


def _add_up_at_leaf(
    by_name: dict[str, Rollup], sums: dict[str, dict[LeafKey, list[int]]], contributions: Iterable[Contribution]
) -> None:
    """Each contribution at its own node and day (the rebuild adds them up the tree)."""
    for c in contributions:
        rollup = by_name[c.rollup]
        assert set(c.measures) <= set(rollup.measures), (c.rollup, c.measures)
        counters = sums[c.rollup]
        key = (c.path, c.day, c.key)
        kept = counters.get(key)
        if kept is None:
            counters[key] = [c.measures.get(m, 0) for m in rollup.measures]
        else:
            for i, m in enumerate(rollup.measures):
                kept[i] += c.measures.get(m, 0)


class _Staging:
    """The rebuild's temporary tables: a rollup's sums at the nodes and days where its
    facts happened, and the two small tables that spread a node to itself and every node
    above it (with its depth) and a day to its day, month, year and running total."""

    def __init__(self, rollups: Iterable[Rollup]):
        self.metadata = MetaData()
        self.sums = {
            r.name: Table(
                f"rebuild_{r.name}",
                self.metadata,
                Column("path", String(140), nullable=False),
                Column("day", Date, nullable=False),
                Column("key", String(64), nullable=False),
                *(Column(m, BigInteger, nullable=False) for m in r.measures),
                prefixes=["TEMPORARY"],
            )
            for r in rollups
        }
        self.nodes = Table(
            "rebuild_nodes",
            self.metadata,
            Column("path", String(140), nullable=False),  # where a fact happened
            Column("node", String(140), nullable=False),  # it, or a node above it
            Column("parent", String(140), nullable=False),
            Column("depth", Integer, nullable=False),
            prefixes=["TEMPORARY"],
        )
        self.grains = Table(
            "rebuild_grains",
            self.metadata,
            Column("day", Date, nullable=False),  # a fact's day
            Column("grain", String(1), nullable=False),
            Column("grain_day", Date, nullable=False),  # the row it adds to at that grain
            prefixes=["TEMPORARY"],
        )
        self.paths: set[str] = set()
        self.days: set[date] = set()

    async def create(self, tx: Any) -> None:
        await tx.run_sync(self.metadata.drop_all, checkfirst=True)  # a crashed rebuild's, on SQLite
        await tx.run_sync(self.metadata.create_all)

    async def drop(self, tx: Any) -> None:
        await tx.run_sync(self.metadata.drop_all)

    async def load(self, tx: Any, sums: dict[str, dict[LeafKey, list[int]]]) -> None:
        for name, counters in sums.items():
            await _load(tx, self.sums[name], [(*k, *vs) for k, vs in counters.items()])
            self.paths.update(p for p, _, _ in counters)
            self.days.update(d for _, d, _ in counters)

    async def add_up_into(self, tx: Any, rollups: Iterable[Rollup]) -> None:
        """Every rollup's rows from its sums: each sum at its node and every node above it
        to the rollup's depth, on its day, month and year (and the running total where
        the rollup keeps one), added up by the database."""
        nodes = [
            (path, node, parent_of(node), depth)
            for path in sorted(self.paths)
            for depth, node in enumerate(ancestors(path), start=1)
        ]
        grains = [(day, g, d) for day in sorted(self.days) for g, d in [*grain_days(day), (RUNNING, RUNNING_DAY)]]
        await _load(tx, self.nodes, nodes)
        await _load(tx, self.grains, grains)
        if dialect_name(tx) == "postgresql":
            await tx.execute(text("SET LOCAL work_mem = '512MB'"))  # the GROUP BY in memory
            await tx.execute(text("SET LOCAL jit = off"))  # compiling took most of a second a rollup
            await tx.execute(text(f"ANALYZE {', '.join(t.name for t in self.metadata.sorted_tables)}"))
        n, g = self.nodes, self.grains
        for rollup in rollups:
            s = self.sums[rollup.name]
            spread = (
                select(
                    n.c.node,
                    n.c.parent,
                    g.c.grain,
                    g.c.grain_day,
                    s.c.key,
                    *(func.sum(s.c[m]) for m in rollup.measures),
                )
                .select_from(s.join(n, n.c.path == s.c.path).join(g, g.c.day == s.c.day))
                .where(n.c.depth <= rollup.deepest, *([] if rollup.running else [g.c.grain != RUNNING]))
                .group_by(n.c.node, n.c.parent, g.c.grain, g.c.grain_day, s.c.key)
            )
            columns = ["path", "parent_path", "grain", "day", "key", *rollup.measures]
            await tx.execute(insert(rollup.table).from_select(columns, spread))


async def _load(tx: Any, table: Table, rows: list[tuple[Any, ...]]) -> None:
    """rows into a temporary table: COPY on PostgreSQL, an executemany elsewhere."""
    if not rows:
        return
    names = [c.name for c in table.columns]
    if dialect_name(tx) != "postgresql":
        await tx.execute(insert(table), [dict(zip(names, r)) for r in rows])
        return
    raw = (await tx.get_raw_connection()).driver_connection
    async with raw.cursor() as cursor:
        quoted = ", ".join(f'"{n}"' for n in names)
        async with cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
            for row in rows:
                await copy.write_row(row)
