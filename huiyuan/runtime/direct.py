"""Hot statements run straight on psycopg on PostgreSQL; through SQLAlchemy on SQLite.

Why: on a 2-core machine SQLAlchemy's pool checkout, events and result machinery cost
about 0.65 ms of CPU per statement; the same statement on psycopg's own pool, prepared
on the server, about 0.3 ms (bench/member_lookup.py). That difference is most of a
member lookup, which every checkout makes. Only such hot paths use this; everything
else keeps the unit of work.

The statement is still written once, as a SQLAlchemy Core construct with named
bindparams. On PostgreSQL it is compiled once to psycopg's SQL and its rows come back
as named tuples with the same column names, so one row mapper serves both databases.
An expanding IN parameter (`column.in_(bindparam("codes", expanding=True))`) becomes
`column = ANY(%(codes)s)` there: one prepared statement for any number of values,
where SQLAlchemy would render a new statement for each length of the list.
Each statement on PostgreSQL gets the same client span as every other statement
(runtime/tracing.py), so a trace still shows the SQL.
"""

import re

from sqlalchemy.ext.asyncio import AsyncEngine

from huiyuan.runtime import db
from huiyuan.runtime.tracing import start_sql_span

_EXPANDING_IN = re.compile(r"(?<!NOT) IN \(__\[POSTCOMPILE_(\w+)\]\)")


class Direct:
    def __init__(self, engine: AsyncEngine, schema: str, size: int):
        self.engine = engine
        self.pool = None
        self._compiled: dict[int, tuple[object, str]] = {}
        if engine.dialect.name == "postgresql":
            from psycopg.rows import namedtuple_row
            from psycopg_pool import AsyncConnectionPool

            self.database = engine.url.database or ""
            self.pool = AsyncConnectionPool(
                engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
                # min_size=0: a service that runs no hot statement holds no connection for them.
                min_size=0, max_size=max(2, size // 2), open=False, name=f"direct-{schema}",
                # prepare_threshold=0: every statement is prepared on first use, per connection.
                kwargs={"autocommit": True, "options": f"-c search_path={schema}", "prepare_threshold": 0,
                        "row_factory": namedtuple_row},
            )

    async def open(self) -> None:
        if self.pool is not None:
            await self.pool.open()

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def rows(self, statement, params: dict) -> list:
        """The rows of one read statement, in autocommit (its own snapshot)."""
        if self.pool is None:
            async with db.reading(self.engine) as connection:
                return list(await connection.execute(statement, params))
        sql = self._sql(statement)
        span = start_sql_span("postgresql", self.database, sql)
        try:
            async with self.pool.connection() as connection:
                cursor = await connection.execute(sql, params)
                return await cursor.fetchall()
        finally:
            span.end()

    def _sql(self, statement) -> str:
        # Keyed by identity: hot statements are module-level constants, built once
        # (the entry keeps the statement, so its id cannot be reused meanwhile).
        found = self._compiled.get(id(statement))
        if found is None:
            sql = _EXPANDING_IN.sub(r" = ANY(%(\1)s)", str(statement.compile(dialect=self.engine.dialect)))
            if "POSTCOMPILE" in sql:  # NOT IN, or another form the line above does not know
                raise ValueError(f"no direct form for: {sql}")
            found = self._compiled[id(statement)] = (statement, sql)
        return found[1]
