"""One run at a time for each saga: a lease on the saga's row (an order, a refund).

The same saga may be started twice at once: a terminal retries while its first call is
still working, or the recovery loop finds an order whose run is slow. A run takes the
row's lease before it calls any service (a new row is written with it) and keeps it
while it works, renewed every third of LEASE_S; another run of the same saga waits for
that run's answer, or takes the lease over once it lapsed (its process died or stalled).
A run that ends without finishing the saga (a service did not answer) gives the lease
up, so the terminal's retry goes on at once; finishing the row clears it.

The lease keeps runs from overlapping, but it cannot make overlapping runs safe: a run
that stalled past its lease may wake up while another holds it. What makes them safe
is that every decision is the saga's log's, first writer wins (use_cases/checkout.py),
and every service call is idempotent by an id derived from the saga.
"""

import asyncio
import itertools
import logging
import os
import time
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta

from gateway.domain.orders import PENDING
from gateway.storage import leases
from huiyuan.database import Database
from huiyuan.runtime.clock import utcnow

# How long a run may go without renewing its lease before another may take over.
LEASE_S = float(os.environ.get("HUIYUAN_SAGA_LEASE_S", "10"))
POLL_S = (0.01, 0.02, 0.05, 0.1, 0.2)  # a waiting run reads the row again after each, then every 0.2 s

log = logging.getLogger("huiyuan.gateway.leases")


def new_run_id() -> str:
    return uuid.uuid4().hex


def lease_until(now):
    return now + timedelta(seconds=LEASE_S)


class Lease:
    """The lease of one saga's row (of: "order" or "refund"), held by one run (run_id)."""

    def __init__(self, database: Database, of: str, key: str, run_id: str | None = None):
        self.database = database
        self.of = of
        self.key = key
        self.run_id = run_id or new_run_id()
        self.held = run_id is not None  # a run given its id wrote the row with the lease

    async def take(self) -> bool:
        """Take the lease of a PENDING row unless another run holds it. The row's
        update_time says when a run last took it on: the recovery loop takes the rows
        left longest first, and comes back to one no sooner than its delay."""
        now = utcnow()
        async with self.database.transaction() as tx:
            self.held = await leases.take(tx, self.of, self.key, self.run_id, now, lease_until(now))
        return self.held

    async def take_or_wait(self, row, wait_s: float):
        """For a second run of a saga (the terminal's retry): None once this run holds the
        lease of the PENDING row; else the row as the run that held the lease finished
        it. TimeoutError if that run is still working after wait_s."""
        deadline = time.monotonic() + wait_s
        while row.state == PENDING and not await self.take():
            row = await self.wait(deadline - time.monotonic()) or row
        return None if row.state == PENDING else row

    async def wait(self, wait_s: float):
        """Wait (up to wait_s) while another run holds the lease: the row once that run
        finished it, None once its lease lapsed (take it over), or TimeoutError."""
        deadline = time.monotonic() + wait_s
        for pause in itertools.chain(POLL_S, itertools.repeat(POLL_S[-1])):
            async with self.database.reading() as tx:
                row = await leases.row(tx, self.of, self.key)
            if row.state != PENDING:
                return row
            if row.lease_until is None or row.lease_until < utcnow():
                return None
            if time.monotonic() + pause > deadline:
                raise TimeoutError
            await asyncio.sleep(pause)

    @asynccontextmanager
    async def kept(self):
        """While the run works the lease is renewed; if it ends without finishing the row
        (an exception), the lease is given up. A finish clears it in its own update."""
        assert self.held, "a run works only under its saga's lease"
        loop = asyncio.get_running_loop()
        every = max(LEASE_S / 3, 0.1)
        renewing: set[asyncio.Task] = set()

        def renew():
            task = loop.create_task(self._renew())
            renewing.add(task)
            task.add_done_callback(renewing.discard)
            timer[0] = loop.call_later(every, renew)

        timer = [loop.call_later(every, renew)]
        try:
            yield self
        except BaseException:
            timer[0].cancel()
            await self._give_up()
            raise
        finally:
            timer[0].cancel()
            for task in renewing:
                task.cancel()

    async def _renew(self) -> None:
        try:
            async with self.database.transaction() as tx:
                await leases.renew(tx, self.of, self.key, self.run_id, lease_until(utcnow()))
        except Exception:  # noqa: BLE001 - the next renewal tries again; a lapse only lets another run in
            log.warning("saga lease not renewed", extra={"key": self.key})

    async def _give_up(self) -> None:
        try:
            async with self.database.transaction() as tx:
                await leases.give_up(tx, self.of, self.key, self.run_id)
        except Exception:  # noqa: BLE001 - it lapses by itself
            log.warning("saga lease not given up", extra={"key": self.key})
