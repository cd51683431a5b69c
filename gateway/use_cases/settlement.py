"""An operator settles an order that needs attention.

Such an order was paid at the till (the wallet captured: the pivot), but a step after
the payment was refused by its service - a points hold that lapsed while the gateway
was down past its deadline, say - and a refused step id stays refused, so the saga
cannot finish it. Settling records, against each refused step, who decided the order
may finish without it and why; then the saga runs again, skips those steps, does any
other step still owed, and the order ends PAID with its receipt. What a skipped step
would have moved is left to the chain (or to a manual adjustment): nothing is guessed.
If a service is down meanwhile, the order stays PENDING and the recovery loop finishes
it; if another step is refused, it needs attention again, for that step.

A refund whose wallet or points step was refused is settled the same way: the refund
finishes without that step (the money or points it would have moved are for the
operator to hand over by other means, as the reason records), and the order takes the
state its refunds leave it in.
"""

from gateway.domain.callers import Caller
from gateway.domain.orders import NEEDS_ATTENTION, PENDING
from gateway.domain.sagas import settled_step
from gateway.storage import orders, refunds, saga_log
from gateway.use_cases import audit
from gateway.use_cases.checkout import saga_of
from gateway.use_cases.orders import order_in_scope, order_view
from gateway.use_cases.refunds import order_state_after_refunds, resume
from huiyuan.database import Database
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.convert import timestamp
from huiyuan.runtime.errors import FailedPrecondition, Unavailable


async def settle(services, database: Database, caller: Caller, request: pb.SettleOrderRequest) -> pb.Order:
    async with database.transaction() as tx:
        row = await order_in_scope(tx, caller, request.order_id, for_update=True)
        view = await order_view(tx, row)
        unsettled = [step for step in view.refused_steps if not step.settled_by]
        if row.state != NEEDS_ATTENTION or not unsettled:
            if view.refused_steps and not unsettled:  # settled before: a retry gets the order as it is
                return view
            raise FailedPrecondition(
                "ORDER_NEEDS_NO_SETTLEMENT",
                f"The order is {row.state}: no step of it was refused.",
                "该订单没有被拒绝的步骤，无需人工结算。",
                order_id=row.order_id,
            )
        now = utcnow()
        for step in unsettled:  # under the id of the saga it belongs to: the order's, or a refund's
            await saga_log.write(
                tx,
                step.refund_id or row.order_id,
                {
                    settled_step(step.step): pb.RefusedStep(
                        step=step.step,
                        reason=step.reason,
                        settle_reason=request.reason.strip(),
                        settled_by=caller.operator_id,
                        settle_time=timestamp(now),
                        refund_id=step.refund_id,
                    )
                },
                now,
            )
        stuck = await refunds.waiting_for_an_operator(tx, row.order_id)
        # Back to where the saga can finish it (or, if a service is down now, the recovery
        # loop): the checkout PENDING; after a refund, the state its refunds leave.
        state = await order_state_after_refunds(tx, row) if stuck else PENDING
        await orders.set_state(tx, row.order_id, state, now)
        await refunds.resume(tx, [r.refund_id for r in stuck])
        await audit.record_in(tx, caller, "SettleOrder", request, row.order_id, row.store_path)
    try:
        if stuck:
            for refund in stuck:
                await resume(services, database, row, refund)
        else:
            await saga_of(services, database, row).resume()
    except Unavailable:  # a service is down (the recovery loop finishes it), or another step was refused
        pass
    async with database.reading() as tx:
        return await order_view(tx, await order_in_scope(tx, caller, request.order_id))
