"""Statements queued on one psycopg connection and answered together at sync(), on
libpq's pipeline mode itself.

Why not psycopg's cursors, as direct.py used them until 2026-12-06: in pipeline mode every
cursor.execute() took a turn of the event loop of its own to send (a reader and a
writer added and removed, an Event), and built a cursor, an adapters map and a query
converter. A transaction of five statements cost 0.38 ms of CPU through them and 0.18
here (README, Benchmarks, "Statements go out on libpq's pipeline mode itself"); the
services are bound by their CPU, and a call alone runs such a transaction for itself.
psycopg still does the parts that are its job: the connection and its pool,
parameters dumped and values loaded by its Transformer (as its cursors do, in C), its
exception for each error of the server.

The protocol is libpq's: each statement queued answers one result, and the sync
answers PIPELINE_SYNC. After an error the statements up to the sync are skipped
(PIPELINE_ABORTED); sync() raises the error once every answer is read, so the
connection is ready for the next round trip. The connection is in pipeline mode only
while statements are queued: between round trips psycopg's own methods work on it (the
pool's rollback, a test's EXPLAIN).

Every statement is prepared on its connection on first use, under a name used once
(so a name can never meet a statement the server did or did not keep), for the types
its parameters were dumped with, as psycopg keys its own prepared statements.
"""

import asyncio
import functools
import itertools
import re
from collections import deque, namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from psycopg import AsyncConnection, abc, errors, pq
from psycopg.adapt import PyFormat, Transformer

_PLACEHOLDER = re.compile(r"%\(([^)]+)\)s|%%")
_names = itertools.count()  # of prepared statements: unique in the process
MAX_PREPARED = 1000  # per connection; past it they are all deallocated, and prepared again as they come

_FATAL = pq.ExecStatus.FATAL_ERROR
_SKIPPED = pq.ExecStatus.PIPELINE_ABORTED
_SYNCED = pq.ExecStatus.PIPELINE_SYNC
_READ, _WRITE = 1, 2

# A connection's prepared statements: (SQL, its parameters' types) -> the statement's name
PreparedKey = tuple[bytes, tuple[int, ...] | None]
Prepared = dict[PreparedKey, bytes]


@functools.lru_cache(4096)
def numbered(sql: str, encoding: str) -> tuple[bytes, tuple[str, ...]]:
    """The SQL with psycopg's %(name)s placeholders as the server's $1, $2, ... (a name
    used twice is one parameter; %% is %), and the names in that order."""
    names: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "%"
        return f"${names.setdefault(match.group(1), len(names) + 1)}"

    return _PLACEHOLDER.sub(number, sql).encode(encoding), tuple(names)


class Answer:
    """What one queued statement answered, once its round trip is done."""

    __slots__ = ("_result", "_transformer", "encoding")

    def __init__(self, transformer: abc.Transformer, encoding: str):
        self._transformer = transformer
        self._result: pq.abc.PGresult | None = None
        self.encoding = encoding

    def rows(self) -> list[Any]:
        """Its rows as psycopg's namedtuple_row makes them; none for a write."""
        result = self._result
        if result is None or result.status != pq.ExecStatus.TUPLES_OK:
            return []
        make = _row_type(tuple((result.fname(i) or b"").decode(self.encoding) for i in range(result.nfields)))._make
        self._transformer.set_pgresult(result)
        return self._transformer.load_rows(0, result.ntuples, make)

    @property
    def rowcount(self) -> int:
        count = None if self._result is None else self._result.command_tuples
        return -1 if count is None else count


@functools.lru_cache(512)
def _row_type(names: tuple[str, ...]) -> Any:
    """Rows as psycopg's namedtuple_row makes them: a field per column, by its name
    (one that is no Python name is renamed _<position>)."""
    return namedtuple("Row", names, rename=True)


class _Prepare:
    """A statement's PREPARE, queued before its first execution: kept if it succeeds."""

    __slots__ = ("key", "name")

    def __init__(self, key: PreparedKey, name: bytes):
        self.key, self.name = key, name


class Pipeline:
    """One connection's round trips. `prepared` is the connection's own statements by
    (SQL, parameter types), kept by the caller for the connection's life."""

    def __init__(self, connection: AsyncConnection[Any], prepared: Prepared):
        self.connection = connection
        self._pgconn = connection.pgconn
        self._prepared = prepared
        self.encoding = connection.info.encoding
        self._queued: deque[tuple[Answer | _Prepare | None, bytes]] = (
            deque()
        )  # (entry, SQL) per result to come: Answer, _Prepare or None
        self.failed_sql: str | None = None  # the statement whose error sync() raised
        self.cut_off = False  # a round trip was cut off (cancelled, the connection lost): out of step for good
        self._in_round_trip = False  # psycopg's connection lock is not taken: one task at a time is asserted

    def queue(self, sql: str, params: Mapping[str, Any] | None) -> Answer:
        """Queue a statement (SQL with %(name)s placeholders) to run at the next sync."""
        text, names = numbered(sql, self.encoding)
        transformer: abc.Transformer = Transformer(self.connection)
        values: Sequence[abc.Buffer | None] = []
        types: tuple[int, ...] | None = ()
        formats = None
        if names:
            given = params or {}
            values = transformer.dump_sequence([given[n] for n in names], [PyFormat.AUTO] * len(names))
            types, formats = transformer.types, transformer.formats
        key = (text, types)
        name = self._prepared.get(key)
        if name is None:
            if len(self._prepared) >= MAX_PREPARED:
                self.queue_command(b"DEALLOCATE ALL")
                self._prepared.clear()
            name = b"_hy_%d" % next(_names)
            self._send(self._pgconn.send_prepare, name, text, param_types=types)
            self._queued.append((_Prepare(key, name), text))
        self._send(self._pgconn.send_query_prepared, name, values, param_formats=formats)
        answer = Answer(transformer, self.encoding)
        self._queued.append((answer, text))
        return answer

    def queue_command(self, command: bytes) -> None:
        """Queue a statement of no parameters and no rows: BEGIN, COMMIT, ROLLBACK."""
        self._send(self._pgconn.send_query_params, command, None)
        self._queued.append((None, command))

    async def sync(self) -> None:
        """Send what is queued and read every answer; then raise the first error, if
        any, as psycopg's exception (its statement's SQL in failed_sql)."""
        if not self._queued:
            return
        self._one_at_a_time()
        pgconn = self._pgconn
        failure = None
        self._in_round_trip = True
        try:
            pgconn.pipeline_sync()
            while pgconn.flush():  # the socket is full: wait until the server took some
                if await self._ready(_READ | _WRITE) & _READ:
                    pgconn.consume_input()
            while self._queued:
                entry, sql = self._queued[0]
                result = await self._next_result()
                if result is None or await self._next_result() is not None:
                    raise errors.InternalError("a pipeline statement answered no result, or more than one")
                self._queued.popleft()
                if result.status == _FATAL:
                    if failure is None:
                        failure = errors.error_from_result(result, encoding=self.encoding)
                        self.failed_sql = sql.decode(self.encoding, "replace")
                elif result.status == _SKIPPED:
                    continue
                elif isinstance(entry, Answer):
                    entry._result = result
                elif isinstance(entry, _Prepare):
                    self._prepared[entry.key] = entry.name
            synced = await self._next_result()
            if synced is None or synced.status != _SYNCED:
                raise errors.InternalError("the pipeline's sync was not answered")
            pgconn.exit_pipeline_mode()
        except BaseException:
            self.cut_off = True
            raise
        finally:
            self._in_round_trip = False
        if failure is not None:
            raise failure

    def _one_at_a_time(self) -> None:
        if self._in_round_trip:  # its answers would be read as this one's
            raise RuntimeError("a statement on a connection whose round trip is under way: one task at a time")

    def _send(self, send: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Queue on libpq (in pipeline mode from the first statement on)."""
        self._one_at_a_time()
        try:
            if not self._queued:
                self._pgconn.enter_pipeline_mode()
            send(*args, **kwargs)
        except BaseException:
            self.cut_off = True
            raise

    async def _next_result(self) -> pq.abc.PGresult | None:
        pgconn = self._pgconn
        while pgconn.is_busy():
            await self._ready(_READ)
            pgconn.consume_input()
        return pgconn.get_result()

    async def _ready(self, wanted: int) -> int:
        """Wait until the socket is readable or writable (as wanted); which it is."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[int] = loop.create_future()
        fd = self._pgconn.socket

        def wake(state: int) -> None:
            if not ready.done():
                ready.set_result(state)

        if wanted & _READ:
            loop.add_reader(fd, wake, _READ)
        if wanted & _WRITE:
            loop.add_writer(fd, wake, _WRITE)
        try:
            return await ready
        finally:
            if wanted & _READ:
                loop.remove_reader(fd)
            if wanted & _WRITE:
                loop.remove_writer(fd)
