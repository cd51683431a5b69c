"""Statements run straight on psycopg on PostgreSQL; through SQLAlchemy on SQLite.

Why: on this 2-core machine SQLAlchemy's async engine (pool checkout, greenlet hops,
events, execution context, result machinery) cost more CPU than the work it carried.
A three-statement transaction like the wallet's hold took 1.27 ms of CPU through it
and 0.56 ms on psycopg's own pool with prepared statements. Every call of every
service is such work, and the checkout bench is bound by the services' CPU; switching
doubled the points and campaign benches (README, "Where the time goes").

So on PostgreSQL every idempotent mutation runs in `Database.transaction()`
(database/idempotency.py), as does the checkout saga's log, and the services' reads
run in `Database.reading()` or `rows()`. Statements are still SQLAlchemy Core, written
once: SQLAlchemy compiles them to psycopg's SQL (once per statement object: a
module constant is compiled once, a statement built per call at each call), and
builds and processes their parameters from that compiled form, through its public
API only (docs/decisions/0004-no-private-apis.md); they go out on libpq's pipeline
mode, prepared on the server (database/pipeline.py), with psycopg's connections, its
pool, its adaptation of values and its errors. What comes back answers the part of
SQLAlchemy's Result the services use (Rows, below), and a failure comes back as
SQLAlchemy's exception for it (IntegrityError, OperationalError, ...), so the domain
code and its error handling are the same on both databases. On SQLite `transaction()` is `engine.begin()` itself and
`reading()` is engines.reading(): the embedded default keeps SQLAlchemy's writer turns
(database/engines.py). Exports (streamed results) and background jobs keep SQLAlchemy's
engine on both.

Differences from SQLAlchemy, each on purpose:
- an expanding IN (`column.in_(bindparam("codes", expanding=True))`) becomes
  `column = ANY(%(codes)s)`: one statement for any number of values, where SQLAlchemy
  renders a statement per length of the list; NOT IN is refused;
- every statement is prepared, and every connection drops its plans when they are
  older than PLANS_KEPT_S (DISCARD PLANS). PostgreSQL plans a prepared statement for
  the table as it is then, and may keep that plan for the connection's life: one made
  while the holds table was new went on scanning it whole as it grew (bench/wallet.py:
  200 million rows read in a full run, p99 354 ms). Planning each execution instead
  cost more than running it (0.05 ms against 0.015 for a batch's live lots);
- result values are psycopg's own (the session's time zone is UTC, so timestamps come
  back as aware UTC datetimes, as UtcDateTime gives them on SQLite); no result
  processors run, and no column default computed in Python exists in our tables;
- a list of parameter rows runs the statement once per row, in one round trip,
  without RETURNING;
- statements go out in pipeline mode, so that a write whose answer nobody reads can
  be sent without waiting for it: send(), below. A hold and its capture took 17
  round trips to the database, and take 6. The reads of reading() go out the same
  way, each round trip in a transaction of its own (autocommit). Each write is a
  statement of its own (docs/decisions/0002-merged-writes.md); the pipeline is
  libpq's, driven by database/pipeline.py (docs/decisions/0003-pipeline.md).
Every statement gets the same client span as SQLAlchemy's (runtime/tracing.py).
"""

import re
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import psycopg
from opentelemetry.trace import Status, StatusCode
from psycopg import pq
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from huiyuan.database import engines
from huiyuan.database.pipeline import Answer, Pipeline, Prepared
from huiyuan.runtime.tracing import start_sql_span

if TYPE_CHECKING:  # the package imports this module first
    from huiyuan.database import Transaction

Params = dict[str, Any]  # a statement's parameters by name
ManyParams = Params | list[Params] | None  # its parameters, a list of rows of them, or none
Process = Callable[[Any], Any]  # a bind processor: a value as the driver takes it

_EXPANDING_IN = re.compile(r"(?<!NOT) IN \(__\[POSTCOMPILE_(\w+)\]\)")
_CACHE_SIZE = 1000  # compiled statements kept; past it the cache starts again

# A statement's compiled form is kept from its second use on (Database.prepare). One built
# once, as a module constant or by a functools.cache builder, may say so with
# `.execution_options(**{BUILT_ONCE: True})`: it is kept from its first use. Never on a
# statement built per call: each would be kept until the cache starts again.
BUILT_ONCE = "huiyuan_built_once"
POOL_WAIT_S = 10  # as SQLAlchemy's pool waits (database/engines.py)
# How long a connection keeps its statements' plans: at most this long can a plan made
# on a small table go on reading the table whole as it grows. Planning again costs a
# few milliseconds a connection, at most once per period.
PLANS_KEPT_S = 5.0


_SNAPSHOT = text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


@dataclass(frozen=True)
class _Prepared:
    sql: str
    compiled: SQLCompiler  # SQLAlchemy's: builds the parameters
    processors: dict[str, Process]
    returning: bool


@dataclass
class _Kept:
    """What a pooled connection keeps between its uses."""

    plans_since: float  # monotonic time its plans date from
    prepared: Prepared = field(default_factory=dict)  # its prepared statements (database/pipeline.py)


class Database:
    def __init__(self, engine: AsyncEngine, schema: str, size: int, wait_s: float = POOL_WAIT_S):
        self.engine = engine
        self.dialect = engine.dialect
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        # (id(statement), keys) -> (statement, _Prepared): statements used more than once
        self._prepared: dict[tuple[int, tuple[str, ...]], tuple[Executable, _Prepared]] = {}
        self._seen: weakref.WeakValueDictionary[int, Executable] = weakref.WeakValueDictionary()  # used once so far
        self.plans_kept_s = PLANS_KEPT_S
        self._kept: weakref.WeakKeyDictionary[object, _Kept] = weakref.WeakKeyDictionary()  # connection -> _Kept
        if engine.dialect.name == "postgresql":
            self.database = engine.url.database or ""
            self.pool = AsyncConnectionPool(
                engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
                # min_size=0: a service holds only the connections its load asked for.
                min_size=0,
                max_size=size,
                open=False,
                name=f"direct-{schema}",
                timeout=wait_s,  # past it a call is UNAVAILABLE (runtime/interceptors.py), not queued for ever
                # autocommit: a read is one round trip; a transaction says BEGIN itself.
                # prepare_threshold=None: psycopg prepares nothing; database/pipeline.py does.
                kwargs={
                    "autocommit": True,
                    "options": f"-c search_path={schema} -c TimeZone=UTC",
                    "application_name": f"huiyuan-{schema}-direct",
                    "prepare_threshold": None,
                },
            )

    async def open(self) -> None:
        if self.pool is not None:
            await self.pool.open()

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def rows(self, statement: Executable, params: Params | None = None) -> list[Any]:
        """The rows of one read statement, in autocommit (its own snapshot)."""
        async with self.reading() as connection:
            rows: list[Any] = (await connection.execute(statement, params)).all()
            return rows

    @asynccontextmanager
    async def reading(self) -> "AsyncIterator[Transaction]":
        """A connection for reads that need no transaction, as engines.reading() gives: on
        PostgreSQL each statement runs in autocommit, its own snapshot."""
        if self.pool is None:
            async with engines.reading(self.engine) as connection:
                yield connection
            return
        async with self._session(transaction=False) as connection:
            yield connection

    @asynccontextmanager
    async def transaction(self) -> "AsyncIterator[Transaction]":
        """One transaction: committed if the block ends normally, rolled back if it
        raises. Yields what answers execute(statement, params) like a SQLAlchemy
        connection; on SQLite it is one."""
        if self.pool is None:
            async with self.engine.begin() as connection:
                yield connection
            return
        # BEGIN goes out with the first statement that waits, and every write sent with
        # send() with the next statement that waits, or with COMMIT.
        async with self._session(transaction=True) as transaction:
            yield transaction

    @asynccontextmanager
    async def snapshot(self) -> "AsyncIterator[Transaction]":
        """Reads that see the database at one moment, for figures that must add up across
        several statements (a balance as of two days and the movements between them, while
        the rollups' fold commits): on PostgreSQL a read-only repeatable-read transaction;
        on SQLite a connection's reads as reading() gives them."""
        if self.pool is None:
            async with self.reading() as connection:
                yield connection
            return
        async with self._session(transaction=True) as tx:
            await tx.execute(_SNAPSHOT)
            yield tx

    @asynccontextmanager
    async def job_transaction(self) -> "AsyncIterator[Transaction]":
        """One transaction of background work (a sweeper's lapse, a batch of an expiry
        job) on SQLAlchemy's engine: the direct pool stays for the calls, which a job's
        long run of transactions would otherwise queue behind."""
        async with self.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def streaming(self) -> "AsyncIterator[AsyncConnection]":
        """A connection whose reads can be streamed (`connection.stream()`), for exports
        of any length: SQLAlchemy's, on both databases."""
        async with self.engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def _session(self, transaction: bool) -> "AsyncIterator[Connection]":
        """A Connection on a pooled connection; in a transaction, committed at the end of
        the block. If the block raises, the transaction is rolled back (or the
        connection closed, if a round trip was cut off) before the pool takes it back."""
        async with self._pooled() as connection:
            tx = Connection(self, connection, self._kept_by(connection).prepared, transaction)
            try:
                if transaction:
                    tx.pipeline.queue_command(b"BEGIN")
                yield tx
                if transaction:
                    tx.pipeline.queue_command(b"COMMIT")
                    await tx.sync()
            except BaseException:
                await tx.abandon()
                raise

    @asynccontextmanager
    async def _pooled(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection of the pool; a failure to get one, or at BEGIN or COMMIT, leaves
        as SQLAlchemy's exception (a statement's own is translated where it ran)."""
        assert self.pool is not None, "on PostgreSQL only"
        try:
            async with self.pool.connection() as connection:
                await self._drop_old_plans(connection)
                yield connection
        except PoolTimeout as error:  # a psycopg.Error too: first
            raise exc.TimeoutError(str(error)) from error
        except psycopg.Error as error:
            raise _translated(error, None, None) from error

    async def _drop_old_plans(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """DISCARD PLANS once the connection's plans are older than plans_kept_s. The
        statements stay prepared; each is planned again at its next execution, for
        the tables as they are then."""
        kept, now = self._kept_by(connection), time.monotonic()
        if now - kept.plans_since >= self.plans_kept_s:
            await connection.execute(b"DISCARD PLANS", prepare=False)
            kept.plans_since = now

    def _kept_by(self, connection: psycopg.AsyncConnection[Any]) -> _Kept:
        """What the connection keeps between its uses, begun at its first use."""
        kept = self._kept.get(connection)
        if kept is None:
            kept = self._kept[connection] = _Kept(time.monotonic())
        return kept

    def prepare(self, statement: Executable, keys: tuple[str, ...]) -> _Prepared:
        """The statement compiled for psycopg, for these parameter keys.

        Compiled once per statement object: one built once (a module constant, a
        functools.cache builder) is compiled at its second use, or at its first if it
        says BUILT_ONCE, and kept with it; one built per call is compiled for that call.
        Only SQLAlchemy's public API: `statement.compile()`, the compiled form's
        `string`, `binds`, `construct_params()` and each type's `bind_processor()`."""
        key = (id(statement), keys)
        found = self._prepared.get(key)
        if found is not None and found[0] is statement:
            return found[1]
        prepared = self._compile(statement, keys)
        if self._seen.get(id(statement)) is statement or statement.get_execution_options().get(BUILT_ONCE):
            if len(self._prepared) >= _CACHE_SIZE:
                self._prepared.clear()
            # kept with its statement, so that no other statement can take its id meanwhile
            self._prepared[key] = (statement, prepared)
        else:
            self._seen[id(statement)] = statement  # gone with the statement, if it was built per call
        return prepared

    def _compile(self, statement: Executable, keys: tuple[str, ...]) -> _Prepared:
        # SQLAlchemy's types say less than its statements are: Executable "marks a
        # ClauseElement as supporting execution" (its docstring), and compile() answers
        # Compiled, which for a statement (not DDL) is the dialect's SQLCompiler.
        clause = cast(ClauseElement, statement)
        compiled = cast(SQLCompiler, clause.compile(dialect=self.dialect, column_keys=list(keys)))
        sql = _EXPANDING_IN.sub(r" = ANY(%(\1)s)", compiled.string)
        if "POSTCOMPILE" in sql or compiled.escaped_bind_names:  # NOT IN, or another form this does not know
            raise ValueError(f"no direct form for: {sql}")
        processors: dict[str, Process] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(self.dialect).bind_processor(self.dialect)
            if process is not None:
                processors[name] = _each(process) if bind.expanding else process
        return _Prepared(sql, compiled, processors, bool(compiled.returning))

    def parameters(self, prepared: _Prepared, statement: Executable, params: Params | None) -> MutableMapping[str, Any]:
        """The driver's parameters: SQLAlchemy's values for the compiled binds (the
        statement's own, and those given), through each type's bind processor. The
        statement is the one prepared: its compiled form holds its values."""
        values = prepared.compiled.construct_params(params, escape_names=False)
        for name, process in prepared.processors.items():
            if name in values:
                values[name] = process(values[name])
        return values


def _each(process: Process) -> Process:
    """A bind processor for a list of values (an expanding IN), from one for a value."""
    return lambda values: None if values is None else [process(value) for value in values]


def _translated(error: psycopg.Error, sql: str | None, params: ManyParams) -> exc.StatementError:
    """SQLAlchemy's exception for a driver error, as its engine would raise it."""
    return exc.DBAPIError.instance(sql, params, error, psycopg.Error)


class Connection:
    """A psycopg connection (in a transaction, or in autocommit for reading()), seen as
    SQLAlchemy's connection. Statements queue in its pipeline until one waits."""

    def __init__(
        self, direct: Database, connection: psycopg.AsyncConnection[Any], prepared: Prepared, transaction: bool
    ):
        self.direct = direct
        self.dialect = direct.dialect  # for engines.dialect_name()
        self.connection = connection  # psycopg's
        self.pipeline = Pipeline(connection, prepared)
        self.transaction = transaction

    async def execute(self, statement: Executable, params: ManyParams = None) -> "Rows":
        """Run the statement and wait for its answer (and for every write sent before)."""
        if params == []:
            return Rows([], 0)
        with self._queued(statement, params) as answers:
            await self.sync()
        return _rows(answers)

    async def execute_together(self, statements: list[tuple[Executable, ManyParams]]) -> list["Rows"]:
        """Run (statement, params) pairs and wait once for all their answers."""
        queued = []
        for statement, params in statements:
            with self._queued(statement, params) as answers:
                queued.append(answers)
        await self.sync()
        return [_rows(answers) for answers in queued]

    async def send(self, statement: Executable, params: ManyParams = None) -> None:
        """Send a write without waiting for its answer (see send(), below): in a
        transaction it goes out with the next statement that waits, or with COMMIT."""
        if not self.transaction:
            await self.execute(statement, params)
            return
        with self._queued(statement, params):
            pass

    async def sync(self) -> None:
        """One round trip: what is queued goes out, and every answer comes back. A
        failure leaves as SQLAlchemy's exception for it."""
        try:
            await self.pipeline.sync()
        except psycopg.Error as error:
            raise _translated(error, self.pipeline.failed_sql, None) from error

    async def abandon(self) -> None:
        """After a failure: what is queued answered and the transaction rolled back, so
        the pool takes the connection back as it gave it; else (a round trip cut off,
        the connection lost) the connection is closed, and the pool drops it."""
        connection = self.connection
        try:
            if not self.pipeline.cut_off:
                try:
                    await self.pipeline.sync()
                except psycopg.Error:
                    pass  # the error being raised, or one that follows from it
                if connection.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                    self.pipeline.queue_command(b"ROLLBACK")
                    await self.pipeline.sync()
        except psycopg.Error:
            pass
        finally:
            if self.pipeline.cut_off or connection.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                await connection.close()

    @contextmanager
    def _queued(
        self, statement: Executable, params: ManyParams, prepared: _Prepared | None = None
    ) -> Iterator[list[Answer]]:
        """Queue the statement, once per row of params (a list), in its span; yields the
        answers to come."""
        rows = params if isinstance(params, list) else [params]
        # prepared: send() has it already, for the same keys (those of the first row)
        prepared = prepared or self.direct.prepare(statement, tuple(sorted(rows[0] or ())))
        if len(rows) > 1 and prepared.returning:
            raise ValueError(f"a list of rows with RETURNING has no direct form: {prepared.sql}")
        with _statement_span(self.direct, prepared.sql, params):
            yield [self.pipeline.queue(prepared.sql, self.direct.parameters(prepared, statement, row)) for row in rows]


def _rows(answers: list[Answer]) -> "Rows":
    """A statement's Rows: its rows, or for a list of parameter rows the rows written."""
    if len(answers) == 1:
        return Rows(answers[0].rows(), answers[0].rowcount)
    return Rows([], sum(answer.rowcount for answer in answers))


async def together(tx: "Transaction", *statements: tuple[Executable, ManyParams]) -> list[Any]:
    """Run (statement, params) pairs in order, and their answers: in Database.transaction() on
    PostgreSQL all are sent at once and answered in one round trip, where one
    execute() after another waits for each. For statements that need no answer from
    the one before (reads of one reservation under the lock the first one takes, say).
    If one fails, the transaction fails with its error, as execute() would raise it.
    Elsewhere, and on SQLite, one tx.execute() after another."""
    if isinstance(tx, Connection):
        return await tx.execute_together(list(statements))
    return [await tx.execute(statement, params) for statement, params in statements]


async def send(tx: "Transaction", statement: Executable, params: ManyParams = None) -> None:
    """Run a write whose result nobody reads and whose failure fails the transaction.

    In Database.transaction() on PostgreSQL it is sent without waiting for the answer: it goes
    out with the next statement that waits, or with COMMIT, in one round trip, and if
    it fails, that statement or COMMIT raises its error (the transaction rolls back,
    as it would have). So never send() a write whose error you catch (a unique
    violation that means "already exists", say) or whose rowcount you need: execute()
    it. Elsewhere, and on SQLite, it is tx.execute(). Its span ends when it is sent.
    A list of no rows writes nothing."""
    if params == []:
        return
    if isinstance(tx, Connection):
        await tx.send(statement, params)
    else:
        await tx.execute(statement, params)


@contextmanager
def _statement_span(direct: Database, sql: str, params: ManyParams) -> Iterator[None]:
    """The statement's client span; a driver error leaves as SQLAlchemy's."""
    span = start_sql_span("postgresql", direct.database, sql)
    try:
        yield
    except psycopg.Error as error:
        if span.is_recording():
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        raise _translated(error, sql, params) from error
    except exc.DBAPIError as error:  # the round trip's, translated there
        if span.is_recording():
            span.set_status(Status(StatusCode.ERROR, type(error.orig).__name__))
        raise
    finally:
        span.end()


class Rows:
    """The rows a statement gave back, with the parts of SQLAlchemy's Result the
    services call: iteration, all, first, one, one_or_none, scalar, scalar_one,
    scalars, rowcount."""

    def __init__(self, rows: list[Any], rowcount: int):
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return list(self._rows)

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise exc.MultipleResultsFound("Multiple rows were found when one or none was required")
        return self.first()

    def one(self) -> Any:
        if not self._rows:
            raise exc.NoResultFound("No row was found when one was required")
        return self.one_or_none()

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> "Rows":
        return Rows([r[0] for r in self._rows], self.rowcount)
