"""The checkout saga, as docs/checkout.md describes it.

    look the card up (a lost or frozen card is refused before anything is reserved)
    -> quote -> reserve in parallel (coupons and budgets, points, stored value)
    -> pivot: the wallet captures -> settle in parallel (points capture, coupon
       redemption, points accrual, the member's visit) -> receipt.

One run decides an order. The order row (with the terminal's request) is committed
before any service is called, with the lease of the run that wrote it
(use_cases/leases.py): a second run of the same order - the terminal's retry during the
first, the recovery loop - waits for the first's answer. What the saga decides before
it reserves anything (the member, the quote, the offset, or the refusal of the order
against them) is its decision, logged once: the first run to log it wins, and every
run goes on from the logged decision, never from answers it computed itself, so even
runs that overlap (a run that stalled past its lease) decide alike. Everything after
follows from the decision and from the services' answers, and every call a step makes
carries a request id derived from the order id and the step, and every service is
idempotent, so a run replays each step's first outcome: a refusal before the pivot is
refused again and compensated again (the releases are idempotent too), a pivot that
happened stays happened and the saga moves forward; the settle steps run in parallel.
Of two runs the first to finish the order answers both. Holds live ten minutes:
longer than a saga and its recovery.

A settle step a service refuses (a points hold that lapsed while the gateway was down
longer than that, say) stays refused: its id is sticky. Retrying cannot finish such an
order, so it is logged as refused and the order NEEDS_ATTENTION until an operator
settles it (use_cases/settlement.py); the saga then finishes without that step.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from types import SimpleNamespace

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import status_pb2

from gateway.domain.callers import Caller
from gateway.domain.orders import NEEDS_ATTENTION, PAID, PENDING, REFUSED, not_finished
from gateway.domain.sagas import DECISION, is_refusal, membership_step, refused_step, settled_step, step_id
from gateway.storage import orders, saga_log
from gateway.use_cases import sales_facts
from gateway.use_cases.decisions import Refused, ask, decide, discount_lines, offset_fen_of, priced_items
from gateway.use_cases.leases import LEASE_S, Lease, lease_until, new_run_id
from gateway.use_cases.orders import order_view
from gateway.use_cases.relay import actor, relayed
from huiyuan.campaign.v1 import campaign_pb2
from huiyuan.database import Database, request_digest
from huiyuan.gateway.v1 import gateway_pb2 as pb, saga_log_pb2
from huiyuan.member.v1 import member_pb2, membership_pb2
from huiyuan.points.v1 import points_pb2
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import DomainError, FailedPrecondition, Internal, Unavailable
from huiyuan.runtime.faults import crash_point
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.money import split_proportionally
from huiyuan.runtime.secrets import without_secrets
from huiyuan.runtime.status import NO_ANSWER, from_status
from huiyuan.wallet.v1 import wallet_pb2

HOLD_TTL = Duration(seconds=600)
RETRY_DELAYS_S = (0.1, 0.3, 1.0, 3.0)

log = logging.getLogger("huiyuan.gateway.saga")


@dataclass(frozen=True)
class Finished:
    """A finished order's answer: its response, and its refusal where it was refused."""

    response: pb.CheckoutResponse
    refusal: status_pb2.Status | None = None

    @classmethod
    def of_row(cls, row) -> "Finished":
        return cls(
            pb.CheckoutResponse.FromString(row.response),
            status_pb2.Status.FromString(row.refusal) if row.refusal is not None else None,
        )

    def answer(self) -> pb.CheckoutResponse:
        """The receipt, or the refusal raised, as the terminal hears either."""
        if self.refusal is not None:
            raise from_status(self.refusal)
        return self.response


class Saga:
    """One order's saga, run by whoever holds the order's lease (use_cases/leases.py): a
    run ends it PAID or REFUSED, or NEEDS_ATTENTION when a service refused a step after
    the pivot, or leaves it PENDING for the next run (a service did not answer)."""

    def __init__(
        self,
        services,
        database: Database,
        order_id: str,
        request: pb.CheckoutRequest,
        store_path: str,
        actor,
        run_id: str | None = None,
        create_time=None,
    ):
        self.s = services
        self.database = database  # the gateway's database: the order and its saga log
        self.order_id = order_id
        self.request = request
        self.store_path = store_path
        self.actor = actor
        self.create_time = create_time  # the business day the reports count it on
        self.decision: saga_log_pb2.CheckoutDecision | None = None  # once read or made
        # run_id: the run that wrote the order row, with its lease; nothing is logged yet.
        # Without it, the lease is to be taken (checkout() below) and the log read.
        self.lease = Lease(database, "order", order_id, run_id)
        self.fresh = run_id is not None

    # ------------------------------------------------------------ the log

    async def _read_log(self) -> dict[str, bytes]:
        async with self.database.reading() as tx:
            return await saga_log.read(tx, self.order_id)

    async def _log(self, answers: dict[str, object]) -> dict[str, bytes]:
        """Log these steps' answers in one transaction, unless a concurrent run (the
        terminal's retry, the recovery loop) logged them first: then its answers stand."""
        now = utcnow()
        async with self.database.transaction() as tx:
            if await saga_log.write(tx, self.order_id, answers, now) == len(answers):
                return {step: message.SerializeToString() for step, message in answers.items()}
        return await self._read_log()

    # ------------------------------------------------------------ steps

    async def run(self) -> Finished:
        """Run the saga to its end under the order's lease. Not finished (a service did
        not answer, or refused a step after the payment): UNAVAILABLE ORDER_NOT_FINISHED."""
        async with self.lease.kept():
            try:
                receipt, wallet_hold = await self._run()
            except Refused as refusal:
                return await self._finish(REFUSED, refusal=refusal)
            except (Unavailable, Internal) as error:  # no answer, or a service's failure: the next run goes on
                if error.reason == "ORDER_NOT_FINISHED":
                    raise
                raise not_finished(self.order_id, error.reason) from error
            return await self._finish(PAID, receipt=receipt, wallet_hold=wallet_hold)

    async def resume(self) -> None:
        """Run the saga again unless another run holds its lease (that run finishes it):
        for the recovery loop and an operator's settling."""
        if await self.lease.take():
            await self.run()

    async def _decision(self) -> tuple[dict[str, bytes], saga_log_pb2.CheckoutDecision]:
        """The log, and the order's decision in it: logged by an earlier run, else made
        now and logged - unless a run overlapping this one logged its own first, which
        then stands (a crash before the log has nothing to undo: a re-run decides anew)."""
        logged = {} if self.fresh else await self._read_log()
        if DECISION not in logged:
            decision = await decide(self.s, self.request, self.store_path, self.order_id, list(self.request.tenders))
            logged = await self._log({DECISION: decision})
        return logged, saga_log_pb2.CheckoutDecision.FromString(logged[DECISION])

    async def _run(self) -> tuple[pb.Receipt, wallet_pb2.HoldResponse | None]:
        r = self.request
        logged, decision = await self._decision()
        self.decision = decision
        if decision.HasField("refusal"):
            raise Refused(decision.refusal)
        found, quote = decision.lookup, decision.quote
        offset_fen = offset_fen_of(r.points_to_use, decision.offset)
        to_pay = quote.payable_fen - offset_fen
        stored_value = sum(t.amount_fen for t in r.tenders if t.kind == pb.TENDER_KIND_STORED_VALUE)
        holds = await self._reserve(quote, stored_value)
        crash_point("checkout-reserved")
        wallet_capture = None
        if stored_value:
            try:
                wallet_capture = await self._call(
                    "wallet",
                    self.s.wallet.Capture(
                        wallet_pb2.CaptureRequest(
                            request_id=step_id(self.order_id, "wallet-capture"),
                            hold_id=holds["wallet"].hold.hold_id,
                            amount_fen=stored_value,
                            actor=self.actor,
                        )
                    ),
                )
            except Refused:
                await self._compensate(holds)
                raise
        crash_point("checkout-captured")
        # After the pivot: forward only, each step retried until it is done. The steps
        # are independent of each other, so they run together.
        settle = {
            "redeem": (
                "campaign",
                lambda: self.s.campaign.RedeemCoupons(
                    campaign_pb2.RedeemCouponsRequest(
                        request_id=step_id(self.order_id, "redeem"),
                        reservation_id=holds["campaign"].reservation_id,
                        actor=self.actor,
                    )
                ),
            ),
            "accrue": ("points", lambda: self.s.points.Accrue(self._accrual(found, quote, offset_fen))),
            "visit": (
                "member",
                lambda: self.s.member.RecordVisit(
                    member_pb2.RecordVisitRequest(
                        request_id=step_id(self.order_id, "visit"),
                        member_id=r.member_id,
                        store_path=self.store_path,
                        order_id=self.order_id,
                        amount_fen=to_pay + offset_fen,
                        actor=self.actor,
                    )
                ),
            ),
        }
        if "points" in holds:
            settle["points-capture"] = (
                "points",
                lambda: self.s.points.Capture(
                    points_pb2.CaptureRequest(
                        request_id=step_id(self.order_id, "points-capture"),
                        hold_id=holds["points"].hold.hold_id,
                        points=r.points_to_use,
                        actor=self.actor,
                    )
                ),
            )
        for i, line in enumerate(r.lines):  # a paid membership's term, the member's once paid
            if line.membership_plan_id:
                settle[membership_step(i)] = ("member", self._membership(line, i))
        for step in [step for step in settle if settled_step(step) in logged]:  # an operator settled without it
            del settle[step]
        if "accrue" not in settle:  # the receipt still shows the points left
            settle["points-balance"] = (
                "points",
                lambda: self.s.points.GetBalance(points_pb2.GetBalanceRequest(member_id=r.member_id)),
            )
        if wallet_capture is None:  # no stored value spent: the receipt still shows what is left
            settle["balance"] = (
                "wallet",
                lambda: self.s.wallet.GetBalance(wallet_pb2.GetBalanceRequest(member_id=r.member_id)),
            )
        done = await self._settle(settle)
        earned = done.get("accrue") or points_pb2.AccrueResponse(balance=done["points-balance"].balance)
        stored_left = (done["balance"] if wallet_capture is None else wallet_capture).balance.available_fen
        visit = done.get("visit")  # none if an operator settled the order without it
        tier_reached = visit.tier_reached.name if visit is not None and visit.HasField("tier_reached") else ""
        receipt = self._receipt(quote, offset_fen, stored_value, stored_left, earned, tier_reached)
        for step, answer in done.items():
            if step.startswith("membership-"):
                last_day = date(answer.term.end_date.year, answer.term.end_date.month, answer.term.end_date.day)
                receipt.lines.append(f"付费会员有效期至 {(last_day - timedelta(days=1)).isoformat()}")
        return receipt, holds.get("wallet")

    def _membership(self, line, index: int):
        """The settle step that gives the member the term a line sold: at the plan's
        price (the decision refused any other), idempotent by the order's line."""
        return lambda: self.s.memberships.PurchaseMembership(
            membership_pb2.PurchaseMembershipRequest(
                request_id=step_id(self.order_id, membership_step(index)),
                member_id=self.request.member_id,
                plan_id=line.membership_plan_id,
                order_id=self.order_id,
                line_id=line.line_id,
                paid_fen=line.unit_price_fen,
                store_path=self.store_path,
                actor=self.actor,
            )
        )

    async def _settle(self, settle: dict) -> dict:
        """Every settle step, together; each retried until its service answers. Steps a
        service refused are logged and the order NEEDS_ATTENTION: retrying cannot help."""
        results = dict(
            zip(
                settle,
                await asyncio.gather(
                    *(self._forward(service, call) for service, call in settle.values()), return_exceptions=True
                ),
            )
        )
        refused = {step: error for step, error in results.items() if is_refusal(error)}
        if refused:
            for step, error in refused.items():
                log.error("saga step refused", extra={"order_id": self.order_id, "step": step, "reason": error.reason})
            await self._needs_attention(refused)
            raise not_finished(self.order_id, next(iter(refused.values())).reason)
        for outcome in results.values():
            if isinstance(outcome, BaseException):
                raise outcome
        return results

    async def _needs_attention(self, refused: dict[str, DomainError]) -> None:
        await self._log(
            {refused_step(step): pb.RefusedStep(step=step, reason=error.reason) for step, error in refused.items()}
        )
        async with (
            self.database.transaction() as tx
        ):  # only under its lease: else an operator may have settled it since
            await orders.needs_attention(tx, self.order_id, self.lease.run_id, utcnow())

    async def _reserve(self, quote, stored_value: int) -> dict:
        """Coupons and budgets, points and stored value, in parallel. If any is refused,
        every one that was made is released and the order is refused."""
        r = self.request
        calls = {
            "campaign": self.s.campaign.ReserveCoupons(
                campaign_pb2.ReserveCouponsRequest(
                    request_id=step_id(self.order_id, "reserve-coupons"),
                    member_id=r.member_id,
                    coupon_codes=list(r.coupon_codes),
                    order_id=self.order_id,
                    store_path=self.store_path,
                    ttl=HOLD_TTL,
                    adjustments=quote.adjustments,
                    actor=self.actor,
                    payable_fen=quote.payable_fen,  # the sales of the orders a campaign priced
                )
            )
        }
        if r.points_to_use:
            calls["points"] = self.s.points.Hold(
                points_pb2.HoldRequest(
                    request_id=step_id(self.order_id, "points-hold"),
                    member_id=r.member_id,
                    points=r.points_to_use,
                    ttl=HOLD_TTL,
                    order_id=self.order_id,
                    store_path=self.store_path,
                    actor=self.actor,
                )
            )
        if stored_value:
            calls["wallet"] = self.s.wallet.Hold(
                wallet_pb2.HoldRequest(
                    request_id=step_id(self.order_id, "wallet-hold"),
                    member_id=r.member_id,
                    amount_fen=stored_value,
                    ttl=HOLD_TTL,
                    store_path=self.store_path,
                    order_id=self.order_id,
                    actor=self.actor,
                )
            )
        names = list(calls)
        results = await asyncio.gather(*(self._call(n, c) for n, c in calls.items()), return_exceptions=True)
        made = {n: res for n, res in zip(names, results) if not isinstance(res, BaseException)}
        failures = [res for res in results if isinstance(res, BaseException)]
        refusals = [f for f in failures if isinstance(f, Refused)]
        if refusals:
            await self._compensate(made)
            raise refusals[0]
        if failures:  # a service did not answer: keep what was made, the next run goes on
            raise failures[0]
        return made

    async def _compensate(self, made: dict) -> None:
        """Release what was reserved; each release is idempotent and retried until done."""
        steps = []
        if "campaign" in made:
            steps.append(
                (
                    "campaign",
                    lambda: self.s.campaign.ReleaseCoupons(
                        campaign_pb2.ReleaseCouponsRequest(
                            request_id=step_id(self.order_id, "release-coupons"),
                            reservation_id=made["campaign"].reservation_id,
                        )
                    ),
                )
            )
        if "points" in made:
            steps.append(
                (
                    "points",
                    lambda: self.s.points.Release(
                        points_pb2.ReleaseRequest(
                            request_id=step_id(self.order_id, "points-release"), hold_id=made["points"].hold.hold_id
                        )
                    ),
                )
            )
        if "wallet" in made:
            steps.append(
                (
                    "wallet",
                    lambda: self.s.wallet.Release(
                        wallet_pb2.ReleaseRequest(
                            request_id=step_id(self.order_id, "wallet-release"), hold_id=made["wallet"].hold.hold_id
                        )
                    ),
                )
            )
        for outcome in await asyncio.gather(
            *(self._forward(service, step) for service, step in steps), return_exceptions=True
        ):
            if is_refusal(outcome):  # a release is never refused (it is idempotent): an operator must look
                log.error("saga compensation refused", extra={"order_id": self.order_id, "reason": outcome.reason})
                raise not_finished(self.order_id, outcome.reason) from outcome
            if isinstance(outcome, BaseException):
                raise outcome

    def _accrual(self, found, quote, offset_fen: int) -> points_pb2.AccrueRequest:
        """Points are earned on what money paid: the offset is spread over the lines first."""
        payable = [line.payable_fen for line in quote.lines]
        offset_shares = split_proportionally(min(offset_fen, sum(payable)), payable)
        categories = {x.line_id: x.category for x in self.request.lines}
        return points_pb2.AccrueRequest(
            request_id=step_id(self.order_id, "accrue"),
            member_id=self.request.member_id,
            order_id=self.order_id,
            store_path=self.store_path,
            tier_id=found.tier.tier_id,
            actor=self.actor,
            tier_multiplier_bp=found.tier.points_multiplier_bp,
            campaign_multiplier_bp=quote.points_multiplier_bp,
            campaign_multiplier_name=quote.points_multiplier_name,
            terminal_path=self.actor.org_path,
            lines=[
                points_pb2.OrderLine(
                    line_id=line.line_id, category=categories.get(line.line_id, ""), paid_fen=line.payable_fen - share
                )
                for line, share in zip(quote.lines, offset_shares)
            ],
        )

    def _receipt(self, quote, offset_fen, stored_value, stored_left, earned, tier_reached: str) -> pb.Receipt:
        lines = discount_lines(quote, self.request.points_to_use, offset_fen)
        lines.append(f"本单积分 +{earned.points}")
        if tier_reached:
            lines.append(f"恭喜升级为 {tier_reached}")
        return pb.Receipt(
            items=priced_items(self.request, quote),
            order_id=self.order_id,
            store_path=self.store_path,
            list_total_fen=quote.list_total_fen,
            discount_total_fen=quote.discount_total_fen,
            points_used=self.request.points_to_use,
            points_offset_fen=offset_fen,
            stored_value_paid_fen=stored_value,
            tenders=self.request.tenders,
            points_earned=earned.points,
            stored_value_left_fen=stored_left,
            points_left=earned.balance.available_points,
            lines=lines,
            tier_reached=tier_reached,
        )

    # ------------------------------------------------------------ calls

    async def _call(self, service: str, call):
        """A reservation or the pivot: a service's refusal refuses the order."""
        return await ask(service, call, self.order_id)

    async def _forward(self, service: str, make_call):
        """After the pivot (and for compensation) a step must happen: retry with backoff.
        If the service is still down, the order stays PENDING and the terminal hears
        UNAVAILABLE: its retry, or the recovery loop, takes the saga on from the log. A
        refusal (a DomainError) is for the caller to deal with: it will not change."""
        async with relayed(service):
            for delay in (*RETRY_DELAYS_S, None):
                try:
                    return await make_call()
                except grpc.aio.AioRpcError as error:
                    if error.code() not in NO_ANSWER or delay is None:
                        raise
                    await asyncio.sleep(delay)

    async def _finish(
        self,
        state: str,
        receipt: pb.Receipt | None = None,
        refusal: Refused | None = None,
        wallet_hold: wallet_pb2.HoldResponse | None = None,
    ) -> Finished:
        response = pb.CheckoutResponse(
            order_id=self.order_id, state=pb.ORDER_STATE_PAID if state == PAID else pb.ORDER_STATE_REFUSED
        )
        if refusal is not None:
            response.refusal_reason, response.amount_due_fen = refusal.reason, refusal.amount_due_fen
        if receipt is not None:
            receipt.paid_time.FromDatetime(utcnow())
            response.receipt.CopyFrom(receipt)
        finished = Finished(response, refusal.status if refusal is not None else None)
        async with self.database.transaction() as tx:
            if not await orders.finish(
                tx,
                self.order_id,
                state,
                response.SerializeToString(),
                finished.refusal.SerializeToString() if finished.refusal is not None else None,
                utcnow(),
            ):  # another run finished first: its answer stands
                row = await orders.get(tx, self.order_id)
                if row.response is None:  # it found a step refused: an operator must look
                    raise not_finished(self.order_id, row.state)
                return Finished.of_row(row)
            if wallet_hold is not None:  # a refund later needs the hold its spend was captured from
                await saga_log.send_entry(tx, self.order_id, "wallet-hold", wallet_hold.SerializeToString(), utcnow())
            if receipt is not None:
                assert self.decision is not None
                await sales_facts.record_sale(
                    tx, sales_facts.sale(self.actor.org_path, self.create_time, self.request, self.decision, receipt)
                )
        return finished


def saga_of(
    services, database: Database, row, run_id: str | None = None, request: pb.CheckoutRequest | None = None
) -> Saga:
    """The order's saga; with the terminal's request in hand (its card, QR token or PIN:
    the row keeps no secret), else with the row's."""
    return Saga(
        services,
        database,
        row.order_id,
        request or pb.CheckoutRequest.FromString(row.request),
        row.store_path,
        actor(row.key_id, row.org_path),
        run_id,
        row.create_time,
    )


async def checkout(
    services, database: Database, caller: Caller, request: pb.CheckoutRequest, wait_s: float = LEASE_S
) -> pb.CheckoutResponse:
    """The terminal's request_id (with its credential) names the order: a retry during
    the saga waits for it (up to wait_s) or resumes it, a retry after it gets the same
    answer: the receipt, or the refusal raised."""
    digest = request_digest(request)
    now = utcnow()
    run_id = new_run_id()
    order = {
        "order_id": new_id("o"),
        "key_id": caller.key_id,
        "request_id": request.request_id,
        "request_hash": digest,
        # kept without the QR token and PIN: a recovery run that must decide again
        # without them is refused PAYMENT_CREDENTIAL_REQUIRED, nothing reserved
        "request": without_secrets(request).SerializeToString(),
        "member_id": request.member_id,
        "org_path": caller.org_path,
        "store_path": caller.store_path,
        "state": PENDING,
        "response": None,
        "refusal": None,
        "create_time": now,
        "update_time": now,
        "run_id": run_id,
        "lease_until": lease_until(now),
    }
    async with database.transaction() as tx:
        row = await orders.add(tx, order)
    if row is None:  # a new order, committed before any call, under this run's lease
        return (await saga_of(services, database, SimpleNamespace(**order), run_id, request).run()).answer()
    if row.request_hash != digest:
        raise FailedPrecondition(
            "REQUEST_ID_REUSED",
            "This request_id was already used for a different checkout.",
            "该请求号已用于另一笔不同的结账。",
            request_id=request.request_id,
        )
    saga = saga_of(services, database, row, request=request)
    try:  # another run working on it answers for this one
        finished = await saga.lease.take_or_wait(row, wait_s)
    except TimeoutError:
        raise not_finished(row.order_id, "ANOTHER_RUN_WORKING") from None
    if finished is None:
        return (await saga.run()).answer()
    return await answer_of(database, finished)


async def answer_of(database: Database, row) -> pb.CheckoutResponse:
    """A finished order's answer: the receipt or the refusal raised; while an operator
    must settle it, ORDER_NOT_FINISHED with the refused step's reason."""
    if (
        row.state == NEEDS_ATTENTION and row.response is None
    ):  # only an operator can finish it (use_cases/settlement.py)
        async with database.reading() as tx:
            refused = (await order_view(tx, row)).refused_steps
        raise not_finished(row.order_id, refused[0].reason if refused else NEEDS_ATTENTION)
    return Finished.of_row(row).answer()
