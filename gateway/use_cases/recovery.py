"""The recovery loop: every checkout and refund saga a crash or an outage left PENDING is
run again until it ends (ServiceSpec.background, app.py)."""

import asyncio
import logging
import os
from datetime import timedelta

from gateway.storage import orders
from gateway.use_cases import refunds
from gateway.use_cases.checkout import saga_of
from huiyuan.runtime.clock import utcnow

# A saga untouched this long is taken over by the recovery loop (HUIYUAN_SAGA_RECOVER_AFTER_S).
RECOVER_AFTER = timedelta(seconds=float(os.environ.get("HUIYUAN_SAGA_RECOVER_AFTER_S", "15")))
RECOVERY_INTERVAL_S = min(5.0, RECOVER_AFTER.total_seconds())

log = logging.getLogger("huiyuan.gateway.recovery")


async def _attempt(order_id: str, saga) -> None:
    try:
        await saga
    except Exception:  # noqa: BLE001 - a service is still down: the next round tries again
        log.warning("saga not finished yet", extra={"order_id": order_id})


def recovery(services_of):
    """A background loop (ServiceSpec.background): every saga left PENDING for a while
    - its gateway crashed, or a service was down - is run again until it ends; so is
    every refund."""

    async def loop(ctx) -> None:
        services = services_of(ctx)
        while True:
            try:
                now = utcnow()
                async with ctx.database.reading() as tx:  # left this long, no run holds them: the longest left first
                    stuck = await orders.left_pending(tx, now - RECOVER_AFTER, now)
                for row in stuck:
                    await _attempt(row.order_id, saga_of(services, ctx.database, row).resume())
                for order, row in await refunds.unfinished(ctx.database, now - RECOVER_AFTER):
                    await _attempt(order.order_id, refunds.resume(services, ctx.database, order, row))
            except Exception:
                log.exception("recovery round failed")
            await asyncio.sleep(RECOVERY_INTERVAL_S)

    return loop
