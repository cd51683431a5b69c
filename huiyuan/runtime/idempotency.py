"""Idempotent mutations (AIP-155), as ARCHITECTURE.md requires of every service.

A mutating call runs inside one transaction that first claims its request_id, then
runs the effect inside a savepoint, then stores the outcome on the claim:
- success: the response is stored beside the effect, committed together;
- a refusal (DomainError): the effect's savepoint is rolled back and the refusal is
  stored, so the same request_id stays refused for ever (as TigerBeetle does);
- a replay returns the stored response, or raises the stored refusal, and changes
  nothing; the same request_id with another payload or method is refused with
  FAILED_PRECONDITION REQUEST_ID_REUSED.
Two concurrent calls with one request_id meet on the claim's primary key: the second
waits for the first to commit and then replays its outcome.
Bad input is refused before this runs, so it is never stored.
"""

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from google.protobuf.message import Message
from google.rpc import status_pb2
from sqlalchemy import Column, LargeBinary, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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


class Idempotency:
    def __init__(self, sessions: async_sessionmaker, table: Table, service: str):
        self.sessions = sessions
        self.table = table
        self.service = service

    async def run(
        self,
        method: str,
        request: Message,
        response_type: type[R],
        work: Callable[[AsyncSession], Awaitable[R]],
    ) -> R:
        digest = request_digest(request)
        try:
            return await self._run_once(method, request.request_id, digest, response_type, work)
        except _TwinCommitted:
            return await self._run_once(method, request.request_id, digest, response_type, work)

    async def _run_once(self, method, request_id, digest, response_type, work):
        table = self.table
        refusal: DomainError | None = None
        try:
            async with self.sessions() as session, session.begin():
                stored = (await session.execute(select(table).where(table.c.request_id == request_id))).one_or_none()
                if stored is not None:
                    return self._replay(stored, method, digest, response_type)
                await session.execute(
                    insert(table).values(
                        request_id=request_id, method=method, request_hash=digest, create_time=utcnow()
                    )
                )
                try:
                    async with session.begin_nested():
                        response = await work(session)
                    outcome = {"response": response.SerializeToString()}
                except DomainError as error:
                    refusal = error
                    outcome = {"error": to_status(error, self.service).SerializeToString()}
                await session.execute(update(table).where(table.c.request_id == request_id).values(**outcome))
        except IntegrityError as error:
            if violated_unique(error, TABLE, "request_id"):
                raise _TwinCommitted from error
            raise
        if refusal is not None:
            raise refusal
        return response

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
