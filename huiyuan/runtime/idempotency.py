"""Idempotent mutations (AIP-155), as ARCHITECTURE.md requires of every service.

A mutating call runs in one transaction: look for a stored outcome, run the effect,
store the response under the request_id, commit.
- success: the response is stored beside the effect, committed together;
- a refusal (DomainError): the whole transaction rolls back, then the refusal is
  stored, so the same request_id stays refused for ever (as TigerBeetle does);
- a replay returns the stored response, or raises the stored refusal, and changes
  nothing; the same request_id with another payload or method is refused with
  FAILED_PRECONDITION REQUEST_ID_REUSED.
Two concurrent calls with one request_id meet on the primary key of the stored
outcome: the later one's whole transaction, effect included, rolls back, and it
replays the outcome of the first. So money never moves twice, without a savepoint
or a claim row written up front (each cost a round trip on every call).
Bad input is refused before this runs, so it is never stored.
"""

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from google.protobuf.message import Message
from google.rpc import status_pb2
from sqlalchemy import Column, LargeBinary, MetaData, String, Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from huiyuan.runtime.db import UtcDateTime, utcnow, violated_unique
from huiyuan.runtime.errors import DomainError, FailedPrecondition, Violations
from huiyuan.runtime.status import from_status, to_status

REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
TABLE = "idempotency_keys"

R = TypeVar("R", bound=Message)


def define_table(metadata: MetaData) -> Table:
    """Each service's metadata gets its own copy of the table (in its own schema)."""
    return Table(
        TABLE,
        metadata,
        Column("request_id", String(64), primary_key=True),
        Column("method", String(128), nullable=False),
        Column("request_hash", String(64), nullable=False),
        Column("response", LargeBinary, nullable=True),
        Column("error", LargeBinary, nullable=True),  # a serialised google.rpc.Status
        Column("create_time", UtcDateTime, nullable=False),
    )


def check_request_id(violations: Violations, request_id: str, field: str = "request_id") -> None:
    violations.check(
        bool(REQUEST_ID.match(request_id)),
        field,
        "REQUEST_ID_INVALID",
        "request_id is required: 1 to 64 letters, digits or . _ : - (a UUID is ideal)",
    )


def request_digest(request: Message) -> str:
    """Hash of the request without its request_id: what 'the same payload' means."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


class _TwinCommitted(Exception):
    """A concurrent call with the same request_id committed first."""


class _Refused(Exception):
    """The effect was refused: leave the transaction so that it rolls back."""


class Idempotency:
    def __init__(self, engine: AsyncEngine, table: Table, service: str):
        self.engine = engine
        self.table = table
        self.service = service
        self._stored = select(table).where(table.c.request_id == bindparam("request_id"))

    async def run(
        self,
        method: str,
        request: Message,
        response_type: type[R],
        work: Callable[[AsyncConnection], Awaitable[R]],
    ) -> R:
        """Run work(connection) once for this request_id; its effect and the stored
        response commit in one transaction."""
        digest = request_digest(request)
        try:
            return await self._run_once(method, request.request_id, digest, response_type, work)
        except _TwinCommitted:
            return await self._run_once(method, request.request_id, digest, response_type, work)

    async def _run_once(self, method, request_id, digest, response_type, work):
        refusal: DomainError | None = None
        try:
            async with self.engine.begin() as db:
                stored = (await db.execute(self._stored, {"request_id": request_id})).one_or_none()
                if stored is not None:
                    return self._replay(stored, method, digest, response_type)
                try:
                    response = await work(db)
                except DomainError as error:
                    refusal = error
                    raise _Refused from error
                await self._store(db, request_id, method, digest, response=response.SerializeToString())
            return response
        except _Refused:
            pass
        except IntegrityError as error:
            self._raise_if_twin(error)
            raise
        # The refused effect rolled back; remember the refusal so this id stays refused.
        try:
            async with self.engine.begin() as db:
                await self._store(db, request_id, method, digest, error=to_status(refusal, self.service).SerializeToString())
        except IntegrityError as error:
            self._raise_if_twin(error)
            raise
        raise refusal

    async def stored(self, method: str, request: Message, response_type: type[R]) -> R | None:
        """The stored outcome of this request (raising a stored refusal), or None. For
        long jobs that commit in batches of their own and cannot run inside run()."""
        async with self.engine.connect() as db:
            row = (await db.execute(self._stored, {"request_id": request.request_id})).one_or_none()
        return None if row is None else self._replay(row, method, request_digest(request), response_type)

    async def remember(self, method: str, request: Message, response: R) -> R:
        """Store a job's outcome under its request_id; if a twin stored one first, that
        one is the answer."""
        try:
            async with self.engine.begin() as db:
                await self._store(db, request.request_id, method, request_digest(request),
                                  response=response.SerializeToString())
        except IntegrityError as error:
            if violated_unique(error, TABLE, "request_id"):
                return await self.stored(method, request, type(response))
            raise
        return response

    async def _store(self, db, request_id, method, digest, **outcome) -> None:
        await db.execute(insert(self.table).values(
            request_id=request_id, method=method, request_hash=digest, create_time=utcnow(), **outcome))

    @staticmethod
    def _raise_if_twin(error: IntegrityError) -> None:
        """A twin call stored its outcome first: ours rolls back, and we replay its."""
        if violated_unique(error, TABLE, "request_id"):
            raise _TwinCommitted from error

    def _replay(self, stored, method: str, digest: str, response_type: type[R]) -> R:
        if stored.method != method or stored.request_hash != digest:
            raise FailedPrecondition(
                "REQUEST_ID_REUSED",
                "This request_id was already used for a different request.",
                "该 request_id 已用于另一个不同的请求。",
                request_id=stored.request_id,
            )
        if stored.error is not None:
            raise from_status(status_pb2.Status.FromString(stored.error))
        return response_type.FromString(stored.response)
