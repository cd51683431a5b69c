"""Calls that arrive together are run together: group commit, as TigerBeetle batches
transfers.

Why: a service is bound by its CPU, and most of a hold's or a capture's (or a coupon
reservation's) CPU is the transaction's, not the rule's: BEGIN, COMMIT and a statement cost about the same
whether they carry one member's rows or thirty. While one batch is in the database,
the calls that arrive wait, and go as the next batch: one transaction, a statement a
kind of write (README, "Where the time goes"). Alone, a call waits for no one: it is a
batch of one, run at once. So a quiet service answers as fast as before and a busy
one does less work per call.

A busy service also lets a batch gather before it goes, as PostgreSQL's commit_delay
waits only while commit_siblings other transactions are open. gRPC hands the service
its calls one per method per turn of the event loop, so a batch that went at once
took the one or two calls that had got through (1.6 on average in bench/points.py,
400 cycles/s). While other calls are in flight in this process, a batch first lets
the loop turn, until QUIET_TURNS turns bring it no new call (or GATHER_TURNS have
passed, or it is full): 3 to 4 calls a batch, 650 cycles/s. A turn of an idle loop
costs microseconds; a turn of a busy one is the work of the calls being let in.

The batch function gets the items in the order they came and answers an outcome per
item, in that order: a result, or the exception that item's caller raises. A failure
of the whole batch is raised to every caller in it.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

GATHER_TURNS = 64  # at most this many turns of the event loop before a batch goes
QUIET_TURNS = 16  # a batch goes after this many turns that brought it no new call
_in_flight = 0  # calls submitted to any Batcher of this process and not yet answered


class Batcher(Generic[T, R]):
    """Calls of one RPC that arrive together, run as one batch (run(items)). One Batcher
    per RPC: a batch runs in the context of the call that started it, so what it reads
    from that context (the RPC's name its idempotency keys record) is every item's."""

    def __init__(self, run: Callable[[list[T]], Awaitable[list[R | BaseException]]], max_size: int = 32):
        self._run = run
        self._max_size = max_size
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        # One batch at a time: two at once made smaller batches and fewer calls a second
        # (the wallet bench's closed loop over many accounts, one run each: 531 -> 287 pairs/s).
        self._drain: asyncio.Task[None] | None = None  # kept: the loop holds only a weak reference

    async def submit(self, item: T) -> R:
        """The item's outcome, once the batch it went in has run."""
        global _in_flight
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._drain is None:
            # The drain runs as its own task, started in this call's context (its trace):
            # a caller cancelled meanwhile leaves the batch to finish for the others.
            self._drain = asyncio.get_running_loop().create_task(self._run_batches())
        _in_flight += 1
        try:
            return await future
        finally:
            _in_flight -= 1

    async def _gather(self) -> None:
        """Let the calls on their way join the next batch (module docstring): turn the
        event loop while calls are in flight elsewhere in this process."""
        quiet = 0
        for _ in range(GATHER_TURNS):
            waiting = len(self._waiting)
            if waiting >= self._max_size or _in_flight <= waiting or quiet >= QUIET_TURNS:
                return
            await asyncio.sleep(0)
            quiet = quiet + 1 if len(self._waiting) == waiting else 0

    async def _run_batches(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._waiting:
                await self._gather()
                batch, self._waiting = self._waiting[: self._max_size], self._waiting[self._max_size :]
                try:
                    outcomes = await self._run([item for item, _ in batch])
                    assert len(outcomes) == len(batch), "a batch answers every item"
                except Exception as failure:  # noqa: BLE001 - every caller of the batch raises it
                    outcomes = [failure] * len(batch)
                for (_, future), outcome in zip(batch, outcomes):
                    if future.done():  # its caller went away (cancelled)
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        except asyncio.CancelledError:  # the service is stopping: no one will run what waits
            for _, future in batch + self._waiting:
                future.cancel()
            self._waiting = []
            raise
        finally:
            self._drain = None  # at once, with the queue empty: the next call starts a drain
