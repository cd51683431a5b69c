"""INSERT ... ON CONFLICT for the backend in use (PostgreSQL and SQLite share the API),
a bulk insert of new rows for imports, and a row locked or made on first use.
"""

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Executable, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from huiyuan.database.direct import BUILT_ONCE, Params
from huiyuan.database.engines import dialect_name

if TYPE_CHECKING:  # the package imports this module first
    from huiyuan.database import Transaction


def insert_for(
    tx: "Transaction | AsyncSession | Session | str",
) -> Callable[[Table], postgresql.Insert | sqlite.Insert]:
    """The dialect's insert(), which has on_conflict_do_nothing/do_update; tx is a
    connection or session, or the dialect's name."""
    name = tx if isinstance(tx, str) else dialect_name(tx)
    return postgresql.insert if name == "postgresql" else sqlite.insert


async def insert_new(
    tx: "Transaction", table: Table, rows: list[Params], conflict: str | tuple[str, ...] | None = None
) -> list[Any]:
    """Insert many rows; with `conflict` (a unique column, or the columns of a unique
    index), only those whose value there is not taken yet (a row that conflicts is
    skipped, not updated). Returns the primary keys of the rows inserted.

    On PostgreSQL the batch travels as one array per column through unnest(): a short
    statement however many rows, where a VALUES list of 1,000 rows spent half an import
    in the driver splitting a megabyte of SQL text.
    """
    if not rows:
        return []
    key = table.primary_key.columns.values()[0].name
    conflict = (conflict,) if isinstance(conflict, str) else conflict
    if dialect_name(tx) != "postgresql":
        statement = sqlite.insert(table)
        if conflict:
            statement = statement.on_conflict_do_nothing(index_elements=list(conflict))
        return list((await tx.execute(statement.returning(table.c[key]), rows)).scalars())
    columns = [c for c in table.columns if c.name in rows[0]]
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect classes are untyped
    arrays: dict[str, list[Any]] = {}
    selected: list[str] = []
    for c in columns:
        values = [row[c.name] for row in rows]
        if isinstance(c.type, JSON):  # arrays of json do not adapt; send text, cast back
            arrays[c.name] = [json.dumps(v, ensure_ascii=False) for v in values]
            selected.append(f'CAST(t."{c.name}" AS JSON)')
        else:
            arrays[c.name] = values
            selected.append(f't."{c.name}"')
    sql_types = {c.name: "TEXT" if isinstance(c.type, JSON) else c.type.compile(dialect=dialect) for c in columns}
    names = ", ".join(f'"{c.name}"' for c in columns)
    unnest = ", ".join(f"CAST(:{c.name} AS {sql_types[c.name]}[])" for c in columns)
    skip = " ON CONFLICT (" + ", ".join(f'"{c}"' for c in conflict) + ") DO NOTHING" if conflict else ""
    bulk = text(
        f'INSERT INTO "{table.name}" ({names}) SELECT {", ".join(selected)} FROM unnest({unnest}) AS t({names})'
        + skip
        + f' RETURNING "{key}"'
    )
    return list((await tx.execute(bulk, arrays)).scalars())


async def lock_or_make(tx: "Transaction", lock: Executable, params: Params, table: Table, new_row: Params) -> Any:
    """The row that `lock` (a SELECT ... FOR UPDATE) finds, made from new_row first if
    there is none yet; locked until the transaction ends either way.

    Why not a plain INSERT when the row is missing: two transactions that both find no
    row (a new member's first two top-ups at once) would both insert it, and the second
    would fail on the key: INTERNAL, though nothing was wrong. Here the second waits for
    the first to commit, inserts nothing, and locks the row the first made."""
    row = (await tx.execute(lock, params)).one_or_none()
    if row is not None:
        return row
    row = (await tx.execute(_make_if_missing(table, dialect_name(tx)), new_row)).one_or_none()
    return row if row is not None else (await tx.execute(lock, params)).one()


@functools.cache
def _make_if_missing(table: Table, dialect: str) -> Executable:
    """INSERT ... ON CONFLICT (primary key) DO NOTHING RETURNING the row, built once per
    table and backend and compiled once (database/direct.py: BUILT_ONCE)."""
    key = [c.name for c in table.primary_key.columns]
    return (
        insert_for(dialect)(table)
        .on_conflict_do_nothing(index_elements=key)
        .returning(*table.c)
        .execution_options(**{BUILT_ONCE: True})
    )
