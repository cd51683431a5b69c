"""The writes a transaction sends (runtime/direct.send), merged into one statement on
PostgreSQL: `WITH w0 AS (UPDATE ...), w1 AS (INSERT ...) SELECT 1`.

Why: a statement costs a service about 150 µs of CPU in psycopg whatever it does (a
cursor, its query, a wait on the event loop), and the services are bound by their CPU
(README, "Where the time goes"). A wallet capture sent six writes after its reads;
merged, they cost one statement's overhead.

PostgreSQL runs the data-modifying queries of a WITH each exactly once, all on the
snapshot the statement started with, in an order of its own. So a write joins a group
only where it cannot tell that from running after the others:
- it reads no table that a write of the group changed or inserted into (an UPDATE or
  DELETE reads its own table; a subquery reads its tables);
- an INSERT goes into a table that no write of the group updated or deleted (its key
  is checked against that table's rows). Plain INSERTs into one table join each other:
  a key given twice fails either way.
What never joins runs on its own, as before: an INSERT ... ON CONFLICT, a write with
RETURNING, text SQL, an executemany of more rows than a group takes. One write alone
runs as itself. Either way the transaction sees its writes once they are flushed:
before its next read, and before COMMIT (database/direct.py).
"""

import re
from dataclasses import dataclass, field

from sqlalchemy import Delete, Insert, Table, Update
from sqlalchemy.sql.visitors import iterate

MAX_ROWS = 16  # writes in one statement: a capture's few, not a batch's (each shape is prepared)
_PARAMETER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Footprint:
    """What one write touches: its table, whether it only inserts, and what it reads."""

    table: str
    inserts: bool
    reads: frozenset[str]


def footprint_of(statement, compiled) -> Footprint | None:
    """The write's footprint, or None if it must run on its own. `compiled` is its
    compiled form (SQLAlchemy's public SQLCompiler)."""
    if not isinstance(statement, (Insert, Update, Delete)) or compiled.returning:
        return None
    if isinstance(statement, Insert) and (" ON CONFLICT " in compiled.string or statement.select is not None):
        return None  # ON CONFLICT reads its table; INSERT ... SELECT reads what it selects
    if not isinstance(statement.table, Table):
        return None  # a join, an alias: no write of ours
    table = statement.table.name
    tables = frozenset(element.name for element in iterate(statement) if isinstance(element, Table))
    inserts = isinstance(statement, Insert)
    return Footprint(table, inserts, tables - {table} if inserts else tables)


@dataclass
class Group:
    """Writes that may go out as one statement; `members` holds (sql, parameters)."""

    members: list[tuple[str, dict]] = field(default_factory=list)
    inserted: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)

    def admits(self, footprint: Footprint) -> bool:
        if len(self.members) >= MAX_ROWS or footprint.reads & (self.inserted | self.changed):
            return False
        return not (footprint.inserts and footprint.table in self.changed)

    def add(self, footprint: Footprint, sql: str, parameters: dict) -> None:
        (self.inserted if footprint.inserts else self.changed).add(footprint.table)
        self.members.append((sql, parameters))


_merged_sql: dict[tuple[str, ...], str] = {}


def merged(members: list[tuple[str, dict]]) -> tuple[str, dict]:
    """One statement and its parameters for the group's writes, each a WITH query
    whose parameters are renamed w<i>_<name>."""
    sqls = tuple(sql for sql, _ in members)
    sql = _merged_sql.get(sqls)
    if sql is None:
        if len(_merged_sql) >= 1000:  # a bounded cache, as Direct's own
            _merged_sql.clear()
        parts = (f"w{i} AS ({_renamed(s, f'w{i}_')})" for i, s in enumerate(sqls))
        sql = _merged_sql[sqls] = "WITH " + ", ".join(parts) + " SELECT 1"
    return sql, {f"w{i}_{name}": value for i, (_, values) in enumerate(members) for name, value in values.items()}


def _renamed(sql: str, prefix: str) -> str:
    """The SQL with each %(name)s placeholder as %(<prefix><name>)s."""
    return _PARAMETER.sub(lambda match: f"%({prefix}{match.group(1)})s", sql)
