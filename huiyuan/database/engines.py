"""Storage plumbing: engines for SQLite (the embedded default) and PostgreSQL.

On PostgreSQL every service keeps its tables in a schema named after it (member,
wallet, ...), so one database can hold them all while no service reads another's
tables. On SQLite each service has its own file under var/.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, DateTime, MetaData, TypeDecorator, create_engine, event, or_, text
from sqlalchemy.engine import URL, AdaptedConnection, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import IntegrityError, TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

if TYPE_CHECKING:  # the package imports this module first
    from huiyuan.database import Transaction

# Named constraints so migrations and error mapping agree on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING)


def is_postgres(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def _driver_url(url: str, asynchronous: bool) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite" if asynchronous else "sqlite")
    raise SystemExit(f"unsupported database URL {parsed.render_as_string(hide_password=True)}")


def _sqlite_setup(engine_for_events: Engine, writers_take_turns: bool = False) -> None:
    # Writers queue on SQLite's lock (BEGIN IMMEDIATE, busy timeout) instead of failing
    # when a read transaction later tries to write; WAL lets readers go on meanwhile.
    @event.listens_for(engine_for_events, "connect")
    def _connect(dbapi_connection: Any, _record: object) -> None:  # the driver's own (sqlite3's) connection
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    # SQLite's busy handler is no queue: in a burst of writers one can lose the race for
    # the lock again and again until its busy timeout runs out ("database is locked").
    # A service's own writers therefore take turns on an asyncio lock, first come first
    # served; the busy timeout is left for other processes (migrations, bulk tools).
    turn = asyncio.Lock()

    @event.listens_for(engine_for_events, "begin")
    def _begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        if writers_take_turns and not read_only:
            # Writers take turns on the asyncio engine only, whose pool holds SQLAlchemy's
            # adapter of the driver's connection: its type says only "a DBAPI connection".
            adapted = cast(AdaptedConnection, connection.connection.dbapi_connection)
            try:
                # SQLAlchemy's public way to await from a sync event of an asyncio engine
                adapted.run_async(lambda _: take_turn(turn, WRITER_TURN_WAIT_S))
            except TimeoutError:
                raise PoolTimeoutError(f"waited {WRITER_TURN_WAIT_S} s for SQLite's write lock") from None
            connection.info[_HAS_TURN] = True
        try:
            connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
        except BaseException:
            _end_turn(connection.info)
            raise

    def _end_turn(info: dict[Any, Any]) -> None:
        if info.pop(_HAS_TURN, False):
            turn.release()

    if writers_take_turns:
        event.listen(engine_for_events, "commit", lambda connection: _end_turn(connection.info))
        event.listen(engine_for_events, "rollback", lambda connection: _end_turn(connection.info))
        # A connection that goes back to the pool never keeps the turn, however it ended.
        event.listen(engine_for_events.pool, "checkin", lambda _dbapi, record: _end_turn(record.info))


async def take_turn(lock: asyncio.Lock, wait_s: float) -> None:
    """Acquire lock within wait_s (TimeoutError past it). Not asyncio.wait_for: on
    Python 3.11 a task cancelled just as the lock was granted to it went on running,
    its cancellation lost; a service's cancelled sweeper then swept on for ever and the
    service never finished stopping."""
    async with asyncio.timeout(wait_s):
        await lock.acquire()


def _connect_args(url: URL, schema: str) -> dict[str, str]:
    if url.get_backend_name() == "postgresql":  # named, so pg_stat_activity tells whose connections they are
        return {"options": f"-c search_path={schema}", "application_name": f"huiyuan-{schema}"}
    return {}


def make_async_engine(url: str, schema: str, pool_size: int = 10) -> AsyncEngine:
    driver_url = _driver_url(url, asynchronous=True)
    if driver_url.get_backend_name() == "sqlite":
        _ensure_sqlite_dir(driver_url)
        engine = create_async_engine(driver_url)
        _sqlite_setup(engine.sync_engine, writers_take_turns=True)
        return engine
    return create_async_engine(
        driver_url,
        connect_args=_connect_args(driver_url, schema),
        # A fixed pool: an overflow connection is opened and closed per burst, and each
        # open forks a PostgreSQL backend, which under load cost more CPU than the
        # statements it ran (bench/checkout.py). A call waits for a pooled one instead.
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=10,
    )


def make_sync_engine(url: str, schema: str) -> Engine:
    """For migrations and bulk tools."""
    driver_url = _driver_url(url, asynchronous=False)
    if driver_url.get_backend_name() == "sqlite":
        _ensure_sqlite_dir(driver_url)
        engine = create_engine(driver_url)
        _sqlite_setup(engine)
        return engine
    return create_engine(driver_url, connect_args=_connect_args(driver_url, schema))


def _ensure_sqlite_dir(url: URL) -> None:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


READ_ONLY = "huiyuan_read_only"
SQLITE_BUSY_TIMEOUT_MS = 10_000
_HAS_TURN = "huiyuan_has_writer_turn"
WRITER_TURN_WAIT_S = 60  # past this, a writer gives up (only a stuck transaction takes so long)


def dialect_name(tx: "Transaction | AsyncSession | Session") -> str:
    """The dialect's name, "postgresql" or "sqlite", for a connection or a session."""
    if isinstance(tx, (AsyncSession, Session)):
        assert tx.bind is not None, "a session bound to an engine or a connection"
        return tx.bind.dialect.name
    return tx.dialect.name


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for a read that needs no unit of work (lookups, lists).

    On PostgreSQL it runs in autocommit: no BEGIN/ROLLBACK round trips, which were a
    third of a lookup's cost; each statement then sees its own snapshot, so a read
    must not depend on two statements agreeing. On SQLite a deferred BEGIN, so readers
    never take the write lock.
    """
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execution_options(isolation_level="AUTOCOMMIT")
        else:
            await connection.execution_options(**{READ_ONLY: True})
        yield connection


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def ensure_schema(url: str, schema: str) -> None:
    """Create the service's schema on PostgreSQL where it does not exist yet (a no-op on
    SQLite). Not CREATE SCHEMA IF NOT EXISTS: that needs the right to create schemas
    even when the schema is there, and in production each service's role owns its
    schema, made beforehand, and may create no other (deploy/README.md)."""
    if not is_postgres(url):
        return
    engine = create_engine(_driver_url(url, asynchronous=False))
    with engine.begin() as connection:
        if connection.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).first() is None:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()


_TAKE_TURN = text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))")


async def take_turn_on(tx: "Transaction", name: str) -> None:
    """Transactions that name the same thing run one after another from here: on
    PostgreSQL a transaction-scoped advisory lock on the name's hash (another name of
    the same hash only waits too); SQLite's writers take turns already (BEGIN IMMEDIATE).
    For work that reads what it has done before and then does the rest, such as a
    batch run twice at once: the second reads after the first has committed."""
    if dialect_name(tx) == "postgresql":
        await tx.execute(_TAKE_TURN, {"name": name})


def violated_unique(error: IntegrityError, table: str, *columns: str) -> bool:
    """Did this IntegrityError come from the unique constraint on table(columns)?"""
    constraint = NAMING["uq"] % {"table_name": table, "column_0_N_name": "_".join(columns)}
    diag = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
    if diag is not None:  # PostgreSQL names the constraint
        return diag in (constraint, f"pk_{table}")
    message = str(error.orig)  # SQLite: "UNIQUE constraint failed: table.col, table.col2"
    wanted = ", ".join(f"{table}.{c}" for c in columns)
    return f"UNIQUE constraint failed: {wanted}" in message


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware, on every backend
    (SQLite would otherwise hand back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: huiyuan stores UTC, pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def under(column: ColumnElement[str], node: str) -> ColumnElement[bool]:
    """SQL: the org path in column is node or lies under it (requests.is_under, in the
    database)."""
    return or_(column == node, column.startswith(node + "/", autoescape=True))
