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
settles it (gateway/settlement.py).
"""

import logging
from contextlib import asynccontextmanager
from types import SimpleNamespace

from sqlalchemy import insert, or_, select, update

from huiyuan.campaign.v1 import campaign_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.gateway.v1 import saga_log_pb2
from huiyuan.member.v1 import member_pb2
from huiyuan.points.v1 import points_pb2
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import DomainError, FailedPrecondition, Internal, Unavailable, Violations, invalid
from huiyuan.runtime.faults import crash_point
from huiyuan.database.idempotency import check_request_id, request_digest
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.money import cumulative_split, share, split_proportionally
from huiyuan.wallet.v1 import wallet_pb2
from gateway.auth import Caller
from gateway.checkout import DECISION, NEEDS_ATTENTION, is_refusal, log_insert, refused_step, settled_steps, step_id
from gateway.leases import LEASE_S, PENDING, Lease, lease_until, new_run_id
from gateway.orders import order_in_scope, units_returned
from gateway.relay import relayed
from gateway.storage import orders, refunds, saga_log

PAID, PARTLY_REFUNDED, REFUNDED = "PAID", "PARTLY_REFUNDED", "REFUNDED"
DONE = "DONE"  # a refund's own states: PENDING, DONE, NEEDS_ATTENTION
# The steps of a refund an operator may settle (gateway/settlement.py), as its saga log names them.
REFUND_WALLET, REFUND_POINTS = "refund-wallet", "refund-points"

log = logging.getLogger("huiyuan.gateway.refunds")


def check(v: Violations, request: pb.RefundRequest) -> None:
    check_request_id(v, request.request_id)
    v.check(bool(request.order_id), "order_id", "ORDER_ID_REQUIRED", "order_id is required")
    seen = set()
    for i, line in enumerate(request.lines):
        v.check(line.line_id not in seen, f"lines[{i}].line_id", "LINE_ID_INVALID", "each line once")
        seen.add(line.line_id)
        v.check(line.quantity > 0, f"lines[{i}].quantity", "QUANTITY_INVALID", "quantity must be 1 or more")
    v.check(len(request.reason) <= 200, "reason", "TOO_LONG", "reason is at most 200 characters")


def _check_returnable(lines: dict[str, int], bought: dict[str, int], refunded: dict[str, int]) -> None:
    """Every returned line is on the order, with that many units not yet returned."""
    v = Violations()
    for i, (line_id, quantity) in enumerate(lines.items()):
        if v.check(line_id in bought, f"lines[{i}].line_id", "LINE_NOT_IN_ORDER",
                   f"the order has no line {line_id}; its lines are {', '.join(bought)}"):
            left = bought[line_id] - refunded.get(line_id, 0)
            v.check(quantity <= left, f"lines[{i}].quantity", "REFUND_EXCEEDS_ORDER",
                    f"line {line_id} has {left} left to return")
    v.raise_if_any()


def state_after(bought: dict[str, int], *refunds_lines: dict[str, int]) -> str:
    """REFUNDED once every unit bought came back, else PARTLY_REFUNDED."""
    returned = units_returned(refunds_lines)
    return REFUNDED if all(returned.get(i, 0) >= q for i, q in bought.items()) else PARTLY_REFUNDED


async def order_state_after_refunds(db, order) -> str:
    bought = {x.line_id: x.quantity for x in pb.CheckoutRequest.FromString(order.request).lines}
    return state_after(bought, *(await db.execute(select(refunds.c.lines).where(
        refunds.c.order_id == order.order_id))).scalars())


async def _log(db, order_id: str, step: str, message_type):
    payload = (await db.execute(select(saga_log.c.payload).where(
        saga_log.c.order_id == order_id, saga_log.c.step == step))).scalar()
    return message_type.FromString(payload) if payload is not None else None


def money_of(plan: pb.RefundResponse) -> int:
    """The money a refund's plan gives back: to stored value and to the other tenders."""
    return plan.stored_value_fen + sum(t.amount_fen for t in plan.tenders)


def _tender_key(tender: pb.Tender) -> tuple[int, str]:
    return tender.kind, tender.reference if tender.kind != pb.TENDER_KIND_STORED_VALUE else ""


def returned_by_tender(plans: list[pb.RefundResponse]) -> dict[tuple[int, str], int]:
    """What earlier refunds of an order gave back, by tender (kind and reference)."""
    returned: dict[tuple[int, str], int] = {}
    for plan in plans:
        for key, fen in [((pb.TENDER_KIND_STORED_VALUE, ""), plan.stored_value_fen),
                         *((_tender_key(t), t.amount_fen) for t in plan.tenders)]:
            returned[key] = returned.get(key, 0) + fen
    return returned


def tenders_back(paid: list[pb.Tender], returned: dict[tuple[int, str], int], money: int) -> tuple[int, list[pb.Tender]]:
    """(stored value, the other tenders) that give back money after earlier refunds
    returned what `returned` says: each tender the share of all the money returned so
    far that it paid, less what it gave back already, so cash comes back as cash, and
    the last refund takes exactly what each tender has left. (Refunds made before this
    rule gave stored value back first: a tender that gave back more than its share then
    gives nothing now, and the others make up the money in proportion.)"""
    keys: list[tuple[int, str]] = []
    weights: dict[tuple[int, str], int] = {}
    for tender in paid:  # tenders of one kind and reference are one to the customer
        key = _tender_key(tender)
        keys += [] if key in weights else [key]
        weights[key] = weights.get(key, 0) + tender.amount_fen
    before = [returned.get(key, 0) for key in keys]
    share_now = cumulative_split(sum(before) + money, [weights[key] for key in keys])
    back = [max(0, now - earlier) for now, earlier in zip(share_now, before)]
    for i, fen in enumerate(split_proportionally(sum(back) - money, back)):  # only after the earlier rule
        back[i] -= fen
    stored = sum(fen for key, fen in zip(keys, back) if key[0] == pb.TENDER_KIND_STORED_VALUE)
    return stored, [pb.Tender(kind=kind, amount_fen=fen, reference=reference)
                    for (kind, reference), fen in zip(keys, back) if kind != pb.TENDER_KIND_STORED_VALUE and fen]


async def _plan(db, order, lines: dict[str, int], refunded: dict[str, int], returned: dict):
    """What goes back where for these lines, given the units and the money by tender
    earlier refunds of the order returned: (the RefundResponse, the discounts to give
    back)."""
    request = pb.CheckoutRequest.FromString(order.request)
    paid = pb.CheckoutResponse.FromString(order.response).receipt
    quote = (await _log(db, order.order_id, DECISION, saga_log_pb2.CheckoutDecision)).quote
    payable = {line.line_id: line.payable_fen for line in quote.lines}
    bought = {line.line_id: line.quantity for line in request.lines}
    ids = [line.line_id for line in quote.lines]
    offset_fen = split_proportionally(min(paid.points_offset_fen, sum(payable.values())), [payable[i] for i in ids])
    offset_points = split_proportionally(paid.points_used, offset_fen)

    def units(amount: int, line_id: str) -> int:  # what this refund's units of the line carry of amount
        before = refunded.get(line_id, 0)
        return share(amount, before + lines[line_id], bought[line_id]) - share(amount, before, bought[line_id])

    money = points = spend = 0
    for i, fen_share, points_share in zip(ids, offset_fen, offset_points):
        if i in lines:
            money += units(payable[i] - fen_share, i)
            points += units(points_share, i)
            spend += units(payable[i], i)  # as the visit counted it: points too
    settled = await settled_steps(db, order.order_id)
    if "points-capture" in settled:  # the points were never taken
        points = 0
    if "visit" in settled:  # the visit was never counted
        spend = 0
    stored_back, tenders = tenders_back(list(paid.tenders), returned, money)
    discounts = []
    for a in [] if "redeem" in settled else quote.adjustments:  # else no campaign booked it
        if a.campaign_id or a.coupon_code:  # the tier price is nobody's budget
            fen = sum(units(x.amount_fen, x.line_id) for x in a.line_shares if x.line_id in lines)
            if fen:
                discounts.append(campaign_pb2.Adjustment(campaign_id=a.campaign_id, coupon_code=a.coupon_code, amount_fen=fen))
    state = state_after(bought, refunded, lines)
    return (pb.RefundResponse(stored_value_fen=stored_back, points_returned=points, tenders=tenders,
                              spend_returned_fen=spend, state=pb.OrderState.Value(f"ORDER_STATE_{state}")),
            campaign_pb2.ReturnDiscountsRequest(adjustments=discounts))


async def refund(services, direct, caller: Caller, request: pb.RefundRequest, wait_s: float = LEASE_S) -> pb.RefundResponse:
    """A refund's plan is written, under the order's lock, before anything moves; its
    request_id names it: a retry while it runs waits for its answer (up to wait_s),
    a retry after it gets the same answer."""
    digest = request_digest(request)
    run_id = new_run_id()
    async with direct.transaction() as db:
        order = await order_in_scope(db, caller, request.order_id, for_update=True)
        row = (await db.execute(select(refunds).where(refunds.c.key_id == caller.key_id,
                                                      refunds.c.request_id == request.request_id))).one_or_none()
        if row is None:
            if order.state not in (PAID, PARTLY_REFUNDED):
                raise FailedPrecondition("ORDER_NOT_REFUNDABLE", f"The order is {order.state}.",
                                         "该订单当前状态不可退款。", order_id=order.order_id, state=order.state)
            bought = {x.line_id: x.quantity for x in pb.CheckoutRequest.FromString(order.request).lines}
            earlier = (await db.execute(select(refunds.c.lines, refunds.c.plan)
                                        .where(refunds.c.order_id == order.order_id))).all()
            refunded = units_returned(done_lines for done_lines, _ in earlier)  # before this refund
            returned = returned_by_tender([pb.RefundResponse.FromString(plan) for _, plan in earlier])
            lines = {x.line_id: x.quantity for x in request.lines} or {
                i: q - refunded.get(i, 0) for i, q in bought.items() if q - refunded.get(i, 0) > 0}
            _check_returnable(lines, bought, refunded)
            if not lines:
                raise invalid("lines", "REFUND_EXCEEDS_ORDER", "everything on this order was returned already")
            plan, discounts = await _plan(db, order, lines, refunded, returned)
            now = utcnow()
            fresh = {"refund_id": new_id("rf"), "order_id": order.order_id, "key_id": caller.key_id,
                     "request_id": request.request_id, "request_hash": digest, "lines": lines,
                     "plan": plan.SerializeToString(), "state": PENDING, "response": None, "create_time": now,
                     "update_time": now,
                     "discounts": discounts.SerializeToString() if discounts.adjustments else None,
                     "run_id": run_id, "lease_until": lease_until(now)}
            await db.execute(insert(refunds), fresh)
            await db.execute(update(orders).where(orders.c.order_id == order.order_id).values(
                state=state_after(bought, refunded, lines), update_time=now))
    if row is None:  # committed, under this run's lease: now the money moves
        return await run_plan(services, direct, order, SimpleNamespace(**fresh), run_id)
    if row.request_hash != digest:
        raise FailedPrecondition("REQUEST_ID_REUSED", "This request_id was already used for a different refund.",
                                 "该请求号已用于另一笔不同的退款。", request_id=request.request_id)
    lease = Lease(direct, refunds, row.refund_id)
    try:  # another run working on it answers for this one
        finished = await lease.take_or_wait(row, wait_s)
    except TimeoutError:
        raise not_finished(order.order_id, "ANOTHER_RUN_WORKING") from None
    if finished is None:
        return await run_plan(services, direct, order, row, lease.run_id)
    if finished.state == NEEDS_ATTENTION:
        raise not_finished(order.order_id, NEEDS_ATTENTION, operator=True)
    return pb.RefundResponse.FromString(finished.response)


def not_finished(order_id: str, cause: str, operator: bool = False) -> Unavailable:
    """What the terminal hears while money may have gone back and the refund is not done:
    a service did not answer or failed (retry), or refused a step (an operator settles
    it); never a refusal, so nobody refunds by other means."""
    then = ("An operator has been told.", "已通知运维。") if operator else (
        "Retry with the same request_id.", "请稍后用同一请求重试。")
    return Unavailable("REFUND_NOT_FINISHED", f"The refund of order {order_id} is not finished ({cause}); money may "
                       f"already have gone back: do not refund by other means. {then[0]}",
                       f"订单 {order_id} 的退款尚未完成，款项可能已退回：请勿以其他方式退款，{then[1]}",
                       order_id=order_id, cause=cause)


async def run_plan(services, direct, order, row, run_id: str) -> pb.RefundResponse:
    """Move what the plan says, under the refund's lease (held by run_id); each call is
    idempotent by its derived id."""
    async with Lease(direct, refunds, row.refund_id, run_id).kept():
        try:
            return await _run_plan(services, direct, order, row)
        except StepRefused as refused:
            error = refused.error
            log.error("refund step refused", extra={"refund_id": row.refund_id, "step": refused.step,
                                                    "reason": error.reason})
            async with direct.transaction() as db:  # logged under the refund's id; the order waits for an operator
                await db.execute(*log_insert(db, row.refund_id, {refused_step(refused.step): pb.RefusedStep(
                    step=refused.step, reason=error.reason, refund_id=row.refund_id)}, utcnow()))
                marked = await db.execute(update(refunds).where(  # only under its lease: else it may be settled since
                    refunds.c.refund_id == row.refund_id, refunds.c.state == PENDING, refunds.c.run_id == run_id
                ).values(state=NEEDS_ATTENTION))
                if marked.rowcount:
                    await db.execute(update(orders).where(orders.c.order_id == order.order_id)
                                     .values(state=NEEDS_ATTENTION, update_time=utcnow()))
            raise not_finished(order.order_id, error.reason, operator=True) from error
        except (Unavailable, Internal) as error:  # no answer, or a service's failure: the next run goes on
            if error.reason == "REFUND_NOT_FINISHED":
                raise
            raise not_finished(order.order_id, error.reason) from error


async def resume(services, direct, order, row) -> None:
    """Run a refund left PENDING again, unless another run holds its lease (that run
    finishes it): for the recovery loop and an operator's settling."""
    lease = Lease(direct, refunds, row.refund_id)
    if await lease.take():
        await run_plan(services, direct, order, row, lease.run_id)


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


async def _run_plan(services, direct, order, row) -> pb.RefundResponse:
    plan = pb.RefundResponse.FromString(row.plan)
    member_id = order.member_id
    async with direct.reading() as db:
        settled = await settled_steps(db, row.refund_id)  # an operator let the refund finish without them
        earned = "accrue" not in await settled_steps(db, order.order_id)  # else nothing to take back
        hold = await _log(db, order.order_id, "wallet-hold", wallet_pb2.HoldResponse) if plan.stored_value_fen else None
    # The money the returned goods were paid with: what their earned points are taken back on.
    money = money_of(plan) if earned else 0
    if REFUND_WALLET in settled:  # the answer says what this refund moved
        plan.stored_value_fen = 0
    if REFUND_POINTS in settled:
        plan.points_returned = money = 0
    if plan.stored_value_fen:
        async with _step(REFUND_WALLET, "wallet"):
            await services.wallet.RefundConsumption(wallet_pb2.RefundConsumptionRequest(
                request_id=step_id(row.refund_id, "wallet"), hold_id=hold.hold.hold_id, amount_fen=plan.stored_value_fen,
                store_path=order.store_path))
    crash_point("refund-stored-value-returned")
    if money or plan.points_returned:
        async with _step(REFUND_POINTS, "points"):
            reversed_ = await services.points.Reverse(points_pb2.ReverseRequest(
                request_id=step_id(row.refund_id, "points"), member_id=member_id, order_id=order.order_id,
                refunded_paid_fen=money, returned_points=plan.points_returned))
        plan.points_clawed_back = reversed_.clawed_back_points
    if row.discounts:
        discounts = campaign_pb2.ReturnDiscountsRequest.FromString(row.discounts)
        await _book_back("discounts", row.refund_id, "campaign", lambda: services.campaign.ReturnDiscounts(
            campaign_pb2.ReturnDiscountsRequest(request_id=step_id(row.refund_id, "campaign"), order_id=order.order_id,
                                                adjustments=discounts.adjustments)))
    if plan.spend_returned_fen:
        await _book_back("spend", row.refund_id, "member", lambda: services.member.RecordReturn(
            member_pb2.RecordReturnRequest(request_id=step_id(row.refund_id, "visit"), member_id=member_id,
                                           order_id=order.order_id, return_id=row.refund_id,
                                           amount_fen=plan.spend_returned_fen)))
    async with direct.transaction() as db:  # of two runs, the first to finish answers both
        done = await db.execute(update(refunds).where(refunds.c.refund_id == row.refund_id, refunds.c.state == PENDING)
                                .values(state=DONE, response=plan.SerializeToString(), lease_until=None))
        if done.rowcount == 0:
            finished = (await db.execute(select(refunds).where(refunds.c.refund_id == row.refund_id))).one()
            if finished.response is None:  # it found a step refused: an operator must look
                raise not_finished(order.order_id, finished.state, operator=True)
            return pb.RefundResponse.FromString(finished.response)
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
        log.error(f"{what} not given back", extra={"refund_id": refund_id, "reason": error.reason})


async def unfinished(direct, started_before) -> list[tuple]:
    """(order, refund) of refunds a crash or an outage left PENDING, no run taking them
    on since before then nor holding them now: the longest left first."""
    async with direct.reading() as db:
        now = utcnow()
        rows = (await db.execute(select(refunds).where(
            refunds.c.state == PENDING, refunds.c.update_time <= started_before,
            or_(refunds.c.lease_until.is_(None), refunds.c.lease_until < now)
        ).order_by(refunds.c.update_time).limit(100))).all()
        if not rows:
            return []
        of = {o.order_id: o for o in await db.execute(select(orders).where(
            orders.c.order_id.in_({row.order_id for row in rows})))}
    return [(of[row.order_id], row) for row in rows]
