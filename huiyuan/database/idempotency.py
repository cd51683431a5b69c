"""Idempotent mutations (AIP-155), as docs/architecture.md says of every service.

A mutating call runs in one transaction: run the effect, store the response under the
request_id, commit.
- success: the response is stored beside the effect, committed together;
- a refusal (DomainError): the whole transaction rolls back, then the refusal is
  stored, so the same request_id stays refused for ever (as TigerBeetle does);
- a replay returns the stored response, or raises the stored refusal, and changes
  nothing; the same request_id with another payload or method is refused with
  FAILED_PRECONDITION REQUEST_ID_REUSED.
The stored outcome is not looked up first: that read cost a round trip on every call
and almost never finds one. A replay runs the effect again, in a transaction that
cannot commit: storing its outcome meets the primary key of the first one, the
whole transaction (effect included) rolls back, and the first outcome is the answer.
A replay whose effect is refused (the hold is already captured, say), or collides
with a row the first call wrote, looks for the stored outcome before it reports
anything. Two concurrent calls with one request_id meet the same way. So money never
moves twice, without a savepoint or a claim row written up front.
Bad input is refused before this runs, so it is never stored. Nor is a secret
(huiyuan/runtime/secrets.py): a request's digest leaves out its secret fields (a PIN)
as it leaves out its request_id, and a response is stored without them (an API key): a
replay answers without the secret, which was shown once.

Calls that arrive together may run as one batch (run_batch, database/batching.py): one
transaction for all, each outcome stored in it, again without looking first. If the
batch cannot commit (a replay in it meets its stored key, say), it rolls back whole and
each call runs alone, as above: a replay costs its neighbours a second go, and is rare.
"""

import hashlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import Message
from google.rpc import status_pb2
from sqlalchemy import Column, LargeBinary, MetaData, String, Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from huiyuan.database.direct import Database, send
from huiyuan.database.engines import UtcDateTime, violated_unique
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import DomainError, FailedPrecondition
from huiyuan.runtime.secrets import clear, plan, without_secrets
from huiyuan.runtime.serving import method_name
from huiyuan.runtime.status import from_status, to_status

if TYPE_CHECKING:  # the package imports this module first
    from huiyuan.database import Transaction

RUN_ALONE = object()  # what run_batch's work answers for an ask that must run in a transaction of its own
TABLE = "idempotency_keys"

R = TypeVar("R", bound=Message)
_REQUEST_ID = "request_id"  # the field of every request of an idempotent mutation (AIP-155)


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


def request_digest(request: Message) -> str:
    """Hash of the request without its request_id and its secrets: what 'the same
    payload' means. (A digest of a six-digit PIN's request is found by trying them all.)"""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField(_REQUEST_ID)
    clear(copy, plan(request.DESCRIPTOR))
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def _request_id_of(request: Message) -> str:
    """The request's request_id: a field of the request's own type, which Message's
    type does not know."""
    request_id: str = getattr(request, _REQUEST_ID)
    return request_id


def stored_form(response: Message) -> bytes:
    """A response as it is kept: without its secrets."""
    return without_secrets(response).SerializeToString()


class Idempotency:
    def __init__(self, direct: Database, table: Table, service: str):
        self.direct = direct
        self.table = table
        self.service = service
        # Built once: both run on every mutating call of the service.
        self._stored = select(table).where(table.c.request_id == bindparam("request_id"))
        self._insert = insert(table)

    async def run(
        self,
        request: Message,
        response_type: type[R],
        work: "Callable[[Transaction], Awaitable[R]]",
        method: str | None = None,
    ) -> R:
        """Run work(tx) once for this request_id; its effect and the stored response
        commit in one transaction. The key records the RPC being served (method, where
        no RPC is)."""
        method = method or method_name()
        digest = request_digest(request)
        request_id = _request_id_of(request)
        try:
            async with self.direct.transaction() as tx:
                response = await work(tx)
                await self._store(tx, request_id, method, digest, response=stored_form(response))
            return response
        except DomainError as refusal:  # the effect rolled back
            return await self._replay_or_remember(method, request_id, digest, response_type, refusal)
        except IntegrityError:  # on our key: a first call committed; on another: perhaps it did
            replayed = await self._replay_stored(method, request_id, digest, response_type)
            if replayed is None:
                raise
            return replayed

    async def run_batch(
        self,
        items: list[tuple[Message, Any]],
        response_type: type[R],
        work: "Callable[[Transaction, list[Any]], Awaitable[list[R | DomainError]]]",
        method: str | None = None,
    ) -> list[R | Exception]:
        """Run work(tx, asks) for the (request, ask) items in one transaction with their
        outcomes; answer each item's outcome in order: its response, or the refusal (its
        own, stored, or REQUEST_ID_REUSED) its caller raises. work answers a response, a
        DomainError or RUN_ALONE per ask, and writes nothing for a refused one. An item
        whose request_id came earlier in the batch runs alone after it, as does one that
        work answers RUN_ALONE (never for an ask alone), and so does every item if the
        batch fails to commit on a key or constraint (a replay's stored key) or work
        refuses the batch whole."""
        method = method or method_name()
        outcomes: dict[int, R | Exception] = {}  # by the item's index
        alone: list[int] = []
        if len(items) > 1:
            try:
                async with self.direct.transaction() as tx:
                    alone = await self._run_together(tx, method, items, work, outcomes)
            except (IntegrityError, DomainError):  # rolled back whole: a twin's key, a collision, a refusal
                alone = list(range(len(items)))
        else:
            alone = [0]
        for i in sorted(alone):
            outcomes[i] = await self._run_alone(method, items[i], response_type, work)
        return [outcomes[i] for i in range(len(items))]

    async def _run_together(
        self,
        tx: "Transaction",
        method: str,
        items: list[tuple[Message, Any]],
        work: "Callable[[Transaction, list[Any]], Awaitable[list[R | DomainError]]]",
        outcomes: dict[int, R | Exception],
    ) -> list[int]:
        """Fill in the outcomes of the batch's items; the indexes left to run alone."""
        together: list[int] = []
        alone: list[int] = []
        seen: set[str] = set()
        for i, (request, _) in enumerate(items):
            request_id = _request_id_of(request)
            (alone if request_id in seen else together).append(i)
            seen.add(request_id)
        results = await work(tx, [items[i][1] for i in together])
        for i, result in zip(together, results, strict=True):
            request = items[i][0]
            if result is RUN_ALONE:
                alone.append(i)
                continue
            outcomes[i] = result
            if isinstance(result, DomainError):
                await self._store(
                    tx,
                    _request_id_of(request),
                    method,
                    request_digest(request),
                    error=to_status(result, self.service).SerializeToString(),
                )
            else:
                await self._store(
                    tx, _request_id_of(request), method, request_digest(request), response=stored_form(result)
                )
        return alone

    async def _run_alone(
        self,
        method: str,
        item: tuple[Message, Any],
        response_type: type[R],
        work: "Callable[[Transaction, list[Any]], Awaitable[list[R | DomainError]]]",
    ) -> R | Exception:
        async def one(tx: "Transaction") -> R:
            (result,) = await work(tx, [item[1]])
            if isinstance(result, DomainError):
                raise result
            return result

        try:
            return await self.run(item[0], response_type, one, method)
        except Exception as error:  # noqa: BLE001 - this item's caller raises it, not its neighbours
            return error

    async def _replay_or_remember(
        self, method: str, request_id: str, digest: str, response_type: type[R], refusal: DomainError
    ) -> R:
        """A refused effect: the stored outcome if this request ran before, else the
        refusal, stored so that this request_id stays refused."""
        replayed = await self._replay_stored(method, request_id, digest, response_type)
        if replayed is not None:
            return replayed
        try:
            async with self.direct.transaction() as tx:
                await self._store(
                    tx, request_id, method, digest, error=to_status(refusal, self.service).SerializeToString()
                )
        except IntegrityError as error:  # a twin stored its outcome meanwhile
            if not violated_unique(error, TABLE, "request_id"):
                raise
            return await self._twins_outcome(method, request_id, digest, response_type)
        raise refusal

    async def _replay_stored(self, method: str, request_id: str, digest: str, response_type: type[R]) -> R | None:
        """The stored outcome (raising a stored refusal), or None if there is none."""
        rows = await self.direct.rows(self._stored, {"request_id": request_id})
        return self._replay(rows[0], method, digest, response_type) if rows else None

    async def stored(self, request: Message, response_type: type[R], method: str | None = None) -> R | None:
        """The stored outcome of this request (raising a stored refusal), or None. For
        long jobs that commit in batches of their own and cannot run inside run()."""
        return await self._replay_stored(
            method or method_name(), _request_id_of(request), request_digest(request), response_type
        )

    async def remember(self, request: Message, response: R, method: str | None = None) -> R:
        """Store a job's outcome under its request_id; if a twin stored one first, that
        one is the answer."""
        method = method or method_name()
        try:
            async with self.direct.transaction() as tx:
                await self._store(
                    tx, _request_id_of(request), method, request_digest(request), response=stored_form(response)
                )
        except IntegrityError as error:
            if violated_unique(error, TABLE, "request_id"):
                return await self._twins_outcome(
                    method, _request_id_of(request), request_digest(request), type(response)
                )
            raise
        return response

    async def _twins_outcome(self, method: str, request_id: str, digest: str, response_type: type[R]) -> R:
        """The outcome a twin stored under this request_id: there is one, as its key
        was met (raising a stored refusal)."""
        replayed = await self._replay_stored(method, request_id, digest, response_type)
        assert replayed is not None, "the key met is stored"
        return replayed

    async def _store(self, tx: "Transaction", request_id: str, method: str, digest: str, **outcome: bytes) -> None:
        # Sent, not awaited: a twin's key fails COMMIT, and run() answers with its outcome.
        await send(
            tx,
            self._insert,
            {
                "request_id": request_id,
                "method": method,
                "request_hash": digest,
                "response": None,
                "error": None,
                "create_time": utcnow(),
                **outcome,
            },
        )

    def _replay(self, stored: Any, method: str, digest: str, response_type: type[R]) -> R:
        """The outcome stored in a row of the table (raising a stored refusal)."""
        if stored.method != method or stored.request_hash != digest:
            raise FailedPrecondition(
                "REQUEST_ID_REUSED",
                "This request_id was already used for a different request.",
                "该请求编号已用于另一个不同的请求。",
                request_id=stored.request_id,
            )
        if stored.error is not None:
            raise from_status(status_pb2.Status.FromString(stored.error))
        return response_type.FromString(stored.response)
