"""Refunds: the inverse saga, by lines, using the discounts the checkout apportioned.

A returned line gives back its share of what was paid for it - the list price less its
apportioned discounts - unit by unit, each unit to the nearest fen of the units returned
so far (runtime/money.py: share), so returning a line in parts never returns a fen too
many or too few: ¥89.99 for 3 units gives back ¥30.00, then ¥59.99 for the other two.
Of that, the part the points offset paid goes back as points; the money goes back to
the tenders that paid it, each its share of the money the order's refunds have returned
so far (runtime/money.py: cumulative_split): cash comes back as cash, stored value as
stored value, and the last refund takes exactly what each tender has left. Points the refunded money earned are taken back (a
shortfall becomes the member's points debt). The returned units' share of each
campaign's and coupon's discount goes back to the campaign's budget and stats. Coupons
are not given back: a used coupon stays used, as at the till. Of an order an operator
settled without some steps, what those steps never moved is not moved back: no spent
points return if they were never taken, no earned points are taken back if none were
earned, no discount goes back to a campaign that never booked it, no spend comes off a
visit never counted. The returned goods' share of the order's payable amount comes off
the member's spend, which may undo a tier it had reached.

The plan is computed and written under the order's lock before any service is called;
every call's id is derived from the refund, so a retry or a re-run replays it. A refund
a crash left PENDING is run again by the terminal's retry or by the recovery loop. If the
wallet or the points service refuses its step - the books disagree with the plan, which
only a bug or a hand-edited database can make - the refund and its order NEEDS_ATTENTION:
the refusal is logged for an operator, the loop leaves it, the terminal hears UNAVAILABLE
REFUND_NOT_FINISHED, never a refusal, as money may already have gone back, and a manager
settles it (use_cases/settlement.py).
"""

import logging
from contextlib import asynccontextmanager
from types import SimpleNamespace

from gateway.domain.callers import Caller
from gateway.domain.orders import (
    NEEDS_ATTENTION,
    PAID,
    PARTLY_REFUNDED,
    PENDING,
    check_returnable,
    refund_not_finished as not_finished,
    state_after,
    units_returned,
)
from gateway.domain.refunds import Returning, amounts_back
from gateway.domain.sagas import DECISION, REFUND_POINTS, REFUND_WALLET, is_refusal, refused_step, step_id
from gateway.storage import orders, refunds, saga_log
from gateway.use_cases import sales_facts
from gateway.use_cases.leases import LEASE_S, Lease, lease_until, new_run_id
from gateway.use_cases.orders import order_in_scope
from gateway.use_cases.relay import actor_of, derived_id, relayed
from gateway.use_cases.tenders import returned_by_tender, tenders_back
from huiyuan.campaign.v1 import campaign_pb2
from huiyuan.database import Database, Transaction, request_digest
from huiyuan.gateway.v1 import gateway_pb2 as pb, saga_log_pb2
from huiyuan.member.v1 import member_pb2, membership_pb2
from huiyuan.points.v1 import points_pb2
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import DomainError, FailedPrecondition, Internal, Unavailable, invalid
from huiyuan.runtime.faults import crash_point
from huiyuan.runtime.ids import new_id
from huiyuan.wallet.v1 import wallet_pb2

log = logging.getLogger("huiyuan.gateway.refunds")


async def order_state_after_refunds(tx: Transaction, order) -> str:
    bought = {x.line_id: x.quantity for x in pb.CheckoutRequest.FromString(order.request).lines}
    return state_after(bought, *await refunds.lines_of(tx, order.order_id))


async def _log(tx: Transaction, saga_id: str, step: str, message_type):
    payload = await saga_log.payload(tx, saga_id, step)
    return message_type.FromString(payload) if payload is not None else None


def money_of(plan: pb.RefundResponse) -> int:
    """The money a refund's plan gives back: to stored value and to the other tenders."""
    return plan.stored_value_fen + sum(t.amount_fen for t in plan.tenders)


async def _plan(
    tx: Transaction,
    order,
    lines: dict[str, int],
    refunded: dict[str, int],
    returned: dict,
    prorated: dict[str, tuple[int, int]],
):
    """What goes back where for these lines, given the units and the money by tender
    earlier refunds of the order returned, and what the membership terms returned are
    worth of their price: (the RefundResponse, the discounts to give back)."""
    request = pb.CheckoutRequest.FromString(order.request)
    paid = pb.CheckoutResponse.FromString(order.response).receipt
    quote = (await _log(tx, order.order_id, DECISION, saga_log_pb2.CheckoutDecision)).quote
    bought = {line.line_id: line.quantity for line in request.lines}
    returning = Returning(lines, bought, refunded)
    money, points, spend = amounts_back(
        returning,
        [(line.line_id, line.payable_fen) for line in quote.lines],
        paid.points_offset_fen,
        paid.points_used,
        prorated,
    )
    settled = await saga_log.settled_steps(tx, order.order_id)
    if "points-capture" in settled:  # the points were never taken
        points = 0
    if "visit" in settled:  # the visit was never counted
        spend = 0
    stored_back, tenders = tenders_back(list(paid.tenders), returned, money)
    discounts = []
    for a in [] if "redeem" in settled else quote.adjustments:  # else no campaign booked it
        if a.campaign_id or a.coupon_code:  # the tier price is nobody's budget
            fen = sum(returning.carries(x.amount_fen, x.line_id) for x in a.line_shares if x.line_id in lines)
            if fen:
                discounts.append(
                    campaign_pb2.Adjustment(campaign_id=a.campaign_id, coupon_code=a.coupon_code, amount_fen=fen)
                )
    state = state_after(bought, refunded, lines)
    return (
        pb.RefundResponse(
            stored_value_fen=stored_back,
            points_returned=points,
            tenders=tenders,
            spend_returned_fen=spend,
            state=pb.OrderState.Value(f"ORDER_STATE_{state}"),
        ),
        campaign_pb2.ReturnDiscountsRequest(adjustments=discounts),
    )


async def refund(
    services, database: Database, caller: Caller, request: pb.RefundRequest, wait_s: float = LEASE_S
) -> pb.RefundResponse:
    """A refund's plan is written, under the order's lock, before anything moves; its
    request_id names it: a retry while it runs waits for its answer (up to wait_s),
    a retry after it gets the same answer."""
    digest = request_digest(request)
    run_id = new_run_id()
    prorated = await _membership_terms_ended(services, database, caller, request)
    async with database.transaction() as tx:
        order = await order_in_scope(tx, caller, request.order_id, for_update=True)
        row = await refunds.by_request(tx, caller.key_id, request.request_id)
        if row is None:
            if order.state not in (PAID, PARTLY_REFUNDED):
                raise FailedPrecondition(
                    "ORDER_NOT_REFUNDABLE",
                    f"The order is {order.state}.",
                    "该订单当前状态不可退款。",
                    order_id=order.order_id,
                    state=order.state,
                )
            bought = {x.line_id: x.quantity for x in pb.CheckoutRequest.FromString(order.request).lines}
            earlier = await refunds.earlier(tx, order.order_id)
            refunded = units_returned(done_lines for done_lines, _ in earlier)  # before this refund
            returned = returned_by_tender([pb.RefundResponse.FromString(plan) for _, plan in earlier])
            lines = {x.line_id: x.quantity for x in request.lines} or {
                i: q - refunded.get(i, 0) for i, q in bought.items() if q - refunded.get(i, 0) > 0
            }
            check_returnable(lines, bought, refunded)
            if not lines:
                raise invalid("lines", "REFUND_EXCEEDS_ORDER", "everything on this order was returned already")
            plan, discounts = await _plan(tx, order, lines, refunded, returned, prorated)
            now = utcnow()
            fresh = {
                "refund_id": new_id("rf"),
                "order_id": order.order_id,
                "key_id": caller.key_id,
                "request_id": request.request_id,
                "request_hash": digest,
                "lines": lines,
                "cashier_id": request.cashier_id,
                "plan": plan.SerializeToString(),
                "state": PENDING,
                "response": None,
                "create_time": now,
                "update_time": now,
                "discounts": discounts.SerializeToString() if discounts.adjustments else None,
                "run_id": run_id,
                "lease_until": lease_until(now),
            }
            await refunds.add(tx, fresh)
            await orders.set_state(tx, order.order_id, state_after(bought, refunded, lines), now)
    if row is None:  # committed, under this run's lease: now the money moves
        return await run_plan(services, database, order, SimpleNamespace(**fresh), run_id)
    if row.request_hash != digest:
        raise FailedPrecondition(
            "REQUEST_ID_REUSED",
            "This request_id was already used for a different refund.",
            "该请求号已用于另一笔不同的退款。",
            request_id=request.request_id,
        )
    lease = Lease(database, "refund", row.refund_id)
    try:  # another run working on it answers for this one
        finished = await lease.take_or_wait(row, wait_s)
    except TimeoutError:
        raise not_finished(order.order_id, "ANOTHER_RUN_WORKING") from None
    if finished is None:
        return await run_plan(services, database, order, row, lease.run_id)
    if finished.state == NEEDS_ATTENTION:
        raise not_finished(order.order_id, NEEDS_ATTENTION, operator=True)
    return pb.RefundResponse.FromString(finished.response)


async def _membership_terms_ended(services, database: Database, caller: Caller, request: pb.RefundRequest):
    """A returned line that sold a paid membership's term (付费会员) gives back the
    term's unused whole days (the member service's RefundMembership, which ends the
    term tonight): asked before the plan is written, by an id derived from the refund's
    request, so a retry hears the same. Line id -> (what it gives back, the price).
    Nothing is asked of a refund that will be refused, or was planned already."""
    async with database.snapshot() as tx:  # the refunds read at one moment with the request's own
        order = await order_in_scope(tx, caller, request.order_id)
        bought = pb.CheckoutRequest.FromString(order.request).lines
        if not any(x.membership_plan_id for x in bought):  # goods only: the plan below checks it all
            return {}
        if await refunds.by_request(tx, caller.key_id, request.request_id) is not None:
            return {}
        if order.state not in (PAID, PARTLY_REFUNDED):
            return {}
        refunded = units_returned(done_lines for done_lines, _ in await refunds.earlier(tx, order.order_id))
    quantities = {x.line_id: x.quantity for x in bought}
    asked = {x.line_id: x.quantity for x in request.lines} or {
        i: q - refunded.get(i, 0) for i, q in quantities.items() if q - refunded.get(i, 0) > 0
    }
    check_returnable(asked, quantities, refunded)  # refused here, before a term is ended
    terms = [x for x in bought if x.membership_plan_id and x.line_id in asked]
    if not terms:
        return {}
    async with relayed("member"):
        held = await services.memberships.ListMembershipTerms(
            membership_pb2.ListMembershipTermsRequest(member_id=order.member_id, page_size=500)
        )
    prorated = {}
    for line in terms:
        term = next((t for t in held.terms if t.order_id == order.order_id and t.line_id == line.line_id), None)
        if term is None:  # an operator settled the order without the term: the line is goods
            continue
        async with relayed("member"):
            ended = await services.memberships.RefundMembership(
                membership_pb2.RefundMembershipRequest(
                    request_id=derived_id(caller.key_id, request.request_id, f"membership-{line.line_id}"),
                    member_id=order.member_id,
                    term_id=term.term_id,
                    reason=request.reason or "退货",
                    actor=actor_of(caller),
                )
            )
        prorated[line.line_id] = (ended.refunded_fen, term.price_fen)
    return prorated


async def run_plan(services, database: Database, order, row, run_id: str) -> pb.RefundResponse:
    """Move what the plan says, under the refund's lease (held by run_id); each call is
    idempotent by its derived id."""
    async with Lease(database, "refund", row.refund_id, run_id).kept():
        try:
            return await _run_plan(services, database, order, row)
        except StepRefused as refused:
            error = refused.error
            log.error(
                "refund step refused", extra={"refund_id": row.refund_id, "step": refused.step, "reason": error.reason}
            )
            async with database.transaction() as tx:  # logged under the refund's id; the order waits for an operator
                await saga_log.write(
                    tx,
                    row.refund_id,
                    {
                        refused_step(refused.step): pb.RefusedStep(
                            step=refused.step, reason=error.reason, refund_id=row.refund_id
                        )
                    },
                    utcnow(),
                )
                if await refunds.needs_attention(tx, row.refund_id, run_id):  # else it may be settled since
                    await orders.set_state(tx, order.order_id, NEEDS_ATTENTION, utcnow())
            raise not_finished(order.order_id, error.reason, operator=True) from error
        except (Unavailable, Internal) as error:  # no answer, or a service's failure: the next run goes on
            if error.reason == "REFUND_NOT_FINISHED":
                raise
            raise not_finished(order.order_id, error.reason) from error


async def resume(services, database: Database, order, row) -> None:
    """Run a refund left PENDING again, unless another run holds its lease (that run
    finishes it): for the recovery loop and an operator's settling."""
    lease = Lease(database, "refund", row.refund_id)
    if await lease.take():
        await run_plan(services, database, order, row, lease.run_id)


class StepRefused(Exception):
    def __init__(self, step: str, error: DomainError):
        super().__init__(step)
        self.step, self.error = step, error


@asynccontextmanager
async def _step(step: str, service: str):
    """A refund step's call: a service's refusal is StepRefused (no answer stays UNAVAILABLE)."""
    try:
        async with relayed(service):
            yield
    except DomainError as error:
        if not is_refusal(error):
            raise
        raise StepRefused(step, error) from error


async def _run_plan(services, database: Database, order, row) -> pb.RefundResponse:
    plan = pb.RefundResponse.FromString(row.plan)
    member_id = order.member_id
    async with database.reading() as tx:
        settled = await saga_log.settled_steps(tx, row.refund_id)  # an operator let the refund finish without them
        earned = "accrue" not in await saga_log.settled_steps(tx, order.order_id)  # else nothing to take back
        hold = await _log(tx, order.order_id, "wallet-hold", wallet_pb2.HoldResponse) if plan.stored_value_fen else None
    # The money the returned goods were paid with: what their earned points are taken back on.
    money = money_of(plan) if earned else 0
    if REFUND_WALLET in settled:  # the answer says what this refund moved
        plan.stored_value_fen = 0
    if REFUND_POINTS in settled:
        plan.points_returned = money = 0
    if plan.stored_value_fen:
        async with _step(REFUND_WALLET, "wallet"):
            await services.wallet.RefundConsumption(
                wallet_pb2.RefundConsumptionRequest(
                    request_id=step_id(row.refund_id, "wallet"),
                    hold_id=hold.hold.hold_id,
                    amount_fen=plan.stored_value_fen,
                    store_path=order.store_path,
                )
            )
    crash_point("refund-stored-value-returned")
    if money or plan.points_returned:
        async with _step(REFUND_POINTS, "points"):
            reversed_ = await services.points.Reverse(
                points_pb2.ReverseRequest(
                    request_id=step_id(row.refund_id, "points"),
                    member_id=member_id,
                    order_id=order.order_id,
                    refunded_paid_fen=money,
                    returned_points=plan.points_returned,
                )
            )
        plan.points_clawed_back = reversed_.clawed_back_points
    if row.discounts:
        discounts = campaign_pb2.ReturnDiscountsRequest.FromString(row.discounts)
        await _book_back(
            "discounts",
            row.refund_id,
            "campaign",
            lambda: services.campaign.ReturnDiscounts(
                campaign_pb2.ReturnDiscountsRequest(
                    request_id=step_id(row.refund_id, "campaign"),
                    order_id=order.order_id,
                    adjustments=discounts.adjustments,
                )
            ),
        )
    if plan.spend_returned_fen:
        await _book_back(
            "spend",
            row.refund_id,
            "member",
            lambda: services.member.RecordReturn(
                member_pb2.RecordReturnRequest(
                    request_id=step_id(row.refund_id, "visit"),
                    member_id=member_id,
                    order_id=order.order_id,
                    return_id=row.refund_id,
                    amount_fen=plan.spend_returned_fen,
                )
            ),
        )
    async with database.transaction() as tx:  # of two runs, the first to finish answers both
        if not await refunds.finish(tx, row.refund_id, plan.SerializeToString()):
            finished = await refunds.get(tx, row.refund_id)
            if finished.response is None:  # it found a step refused: an operator must look
                raise not_finished(order.order_id, finished.state, operator=True)
            return pb.RefundResponse.FromString(finished.response)
        decision = await _log(tx, order.order_id, DECISION, saga_log_pb2.CheckoutDecision)
        await sales_facts.record_return(
            tx,
            sales_facts.returned(
                order.org_path,
                row.create_time,
                row.cashier_id,
                row.lines,
                pb.CheckoutRequest.FromString(order.request),
                decision,
                pb.CheckoutResponse.FromString(order.response).receipt,
                plan,
            ),
        )
    return plan


async def _book_back(what: str, refund_id: str, service: str, call) -> None:
    """Give back what books rather than money: the discounts to their campaigns' budgets,
    the spend to the member's tier progress. No answer, or a failure of the service's
    own, leaves the refund PENDING, for a retry or the recovery loop; a refusal - books
    that disagree - is logged for the back office and must not hold the customer's
    refund up (a refused id stays refused)."""
    try:
        async with relayed(service):
            await call()
    except (Unavailable, Internal):  # no answer, or a failure that says nothing: the next run tries again
        raise
    except DomainError as error:
        log.error("%s not given back", what, extra={"refund_id": refund_id, "reason": error.reason})


async def unfinished(database: Database, started_before) -> list[tuple]:
    """(order, refund) of refunds a crash or an outage left PENDING, no run taking them
    on since before then nor holding them now: the longest left first."""
    async with database.reading() as tx:
        now = utcnow()
        rows = await refunds.left_pending(tx, started_before, now)
        if not rows:
            return []
        of = await orders.of_ids(tx, {row.order_id for row in rows})
    return [(of[row.order_id], row) for row in rows]
