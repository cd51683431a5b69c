"""Hot statements run straight on psycopg on PostgreSQL; through SQLAlchemy on SQLite.

Why: on a 2-core machine SQLAlchemy's pool checkout, events and result machinery cost
about 0.6 ms of CPU per statement; the same statement on psycopg's own pool, prepared
on the server, about 0.25 ms (bench/member_lookup.py). That difference is most of a
member lookup, which every checkout makes. Only such hot paths use this; everything
else keeps the unit of work.

The statement is still written once, as a SQLAlchemy Core construct with named
bindparams. On PostgreSQL it is compiled once to psycopg's SQL and its rows come back
as named tuples with the same column names, so one row mapper serves both databases.
Each statement on PostgreSQL gets a client span, as SQLAlchemy's instrumentation
gives the others, so a trace still shows the SQL.
"""

from sqlalchemy.ext.asyncio import AsyncEngine
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from huiyuan.runtime import db

tracer = trace.get_tracer("huiyuan.direct")


class Direct:
    def __init__(self, engine: AsyncEngine, schema: str, size: int):
        self.engine = engine
        self.pool = None
        self._compiled: dict[int, tuple[object, str, str]] = {}
        if engine.dialect.name == "postgresql":
            from psycopg.rows import namedtuple_row
            from psycopg_pool import AsyncConnectionPool

            self.database = engine.url.database or ""
            self.pool = AsyncConnectionPool(
                engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
                min_size=1, max_size=max(2, size // 2), open=False, name=f"direct-{schema}",
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
        sql, verb = self._sql(statement)
        with tracer.start_as_current_span(f"{verb} {self.database}", kind=SpanKind.CLIENT, attributes={
                "db.system": "postgresql", "db.name": self.database, "db.statement": sql}):
            async with self.pool.connection() as connection:
                cursor = await connection.execute(sql, params)
                return await cursor.fetchall()

    def _sql(self, statement) -> tuple[str, str]:
        # Keyed by identity: hot statements are module-level constants, built once
        # (the entry keeps the statement, so its id cannot be reused meanwhile).
        found = self._compiled.get(id(statement))
        if found is None:
            sql = str(statement.compile(dialect=self.engine.dialect))
            found = self._compiled[id(statement)] = (statement, sql, sql.split(None, 1)[0].upper())
        return found[1], found[2]
