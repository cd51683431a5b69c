"""The background loop that lapses holds past their deadline (huiyuan/runtime/holds.py
says what a hold is): the same loop for the wallet's and points' holds and the
campaign's reservations, each service giving it how to find and end its own."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from huiyuan.runtime.clock import utcnow

SWEEP_INTERVAL_S = 1.0

log = logging.getLogger("huiyuan.holds")


def sweeper(
    find_lapsed: Callable[[object, datetime], Awaitable[list[str]]],
    expire_one: Callable[[object, str, datetime], Awaitable[object]],
) -> Callable[[Any], Coroutine[Any, Any, None]]:
    """A background loop (ServiceSpec.background) that lapses holds past their
    deadline, one transaction each, so an abandoned checkout gives back what it held
    within about a second. find_lapsed(tx, now) lists hold ids; expire_one(tx, hold_id,
    now) lapses one (and must do nothing if it is no longer pending)."""

    # ctx: the ServiceContext (huiyuan.runtime.server), which runs this loop once it serves.
    async def loop(ctx: Any) -> None:
        while True:
            try:
                async with ctx.reading() as tx:
                    lapsed_ids = await find_lapsed(tx, utcnow())
                for hold_id in lapsed_ids:
                    async with ctx.database.job_transaction() as tx:
                        await expire_one(tx, hold_id, utcnow())
            except Exception:  # a failed sweep is retried at the next tick (logged, so no BLE001)
                log.exception("sweeping lapsed holds failed")
            await asyncio.sleep(SWEEP_INTERVAL_S)

    return loop
