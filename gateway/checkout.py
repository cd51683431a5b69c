"""The checkout saga, as ARCHITECTURE.md describes it.

    look the card up (a lost or frozen card is refused before anything is reserved)
    -> quote -> reserve in parallel (coupons and budgets, points, stored value)
    -> pivot: the wallet captures -> settle in parallel (points capture, coupon
       redemption, points accrual, the member's visit) -> receipt.

Durability: the order row (with the terminal's request) is committed before any
service is called, and the answers a re-run must not recompute (the member, the quote,
the offset) are logged beside it, together, before anything is reserved. Every call a
step makes carries a request id derived from the order id and the step, and every
service is idempotent, so running the saga again - after a retry, or by the recovery
loop after a crash - replays each step's first outcome: a refusal before the pivot is
refused again and compensated again (the releases are idempotent too), a pivot that
happened stays happened and the saga moves forward; the settle steps run in parallel.
Holds live ten minutes: longer than a saga and its recovery.

A settle step a service refuses (a points hold that lapsed while the gateway was down
longer than that, say) stays refused: its id is sticky. Retrying cannot finish such an
order, so it is logged as refused and the order NEEDS_ATTENTION until an operator
settles it (gateway/settlement.py); the saga then finishes without that step.
"""

import asyncio
import functools
import logging
from dataclasses import dataclass

import grpc
from google.protobuf.duration_pb2 import Duration
from sqlalchemy import bindparam, insert, select, update

from huiyuan.campaign.v1 import campaign_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2
from huiyuan.points.v1 import points_pb2
from huiyuan.runtime.db import dialect_name, utcnow
from huiyuan.runtime.direct import BUILT_ONCE, send
from huiyuan.runtime.errors import DomainError, Unavailable
from huiyuan.runtime.faults import crash_point
from huiyuan.runtime.money import split_proportionally, yuan
from huiyuan.runtime.status import NO_ANSWER
from huiyuan.runtime.upsert import insert_for
from huiyuan.wallet.v1 import wallet_pb2
from gateway.relay import relayed
from gateway.storage import orders, saga_log

HOLD_TTL = Duration(seconds=600)
PENDING, PAID, REFUSED, NEEDS_ATTENTION = "PENDING", "PAID", "REFUSED", "NEEDS_ATTENTION"
RETRY_DELAYS_S = (0.1, 0.3, 1.0, 3.0)
# Only a PENDING order is finished: of two runs of one saga, the first to finish answers.
_FINISH_ORDER = update(orders).where(orders.c.order_id == bindparam("key"), orders.c.state == PENDING).values(
    state=bindparam("new_state"), response=bindparam("answer"), update_time=bindparam("now"))

log = logging.getLogger("huiyuan.gateway.saga")


@dataclass
class Refused(Exception):
    reason: str
    amount_due_fen: int = 0


def step_id(order_id: str, step: str) -> str:
    """The id a saga step's call carries: the same on every run of the saga."""
    return f"{order_id}:{step}"[:64]


def log_insert(db, saga_id: str, entries: dict[str, object], now) -> tuple[object, dict]:
    """The insert of a saga's log entries (step: message) under the saga's id - an
    order's, or a refund's - and its parameters; an entry logged before stays as it
    was. It returns the steps it wrote."""
    params = {"order_id": saga_id, "now": now}
    for n, (step, message) in enumerate(entries.items()):
        params[f"step_{n}"], params[f"payload_{n}"] = step, message.SerializeToString()
    return _log_insert(dialect_name(db), len(entries)), params


@functools.cache
def _log_insert(dialect: str, entries: int):
    """Built once per backend and number of entries, and compiled once
    (runtime/direct.py: BUILT_ONCE)."""
    return insert_for(dialect)(saga_log).values([
        {"order_id": bindparam("order_id"), "step": bindparam(f"step_{n}"), "payload": bindparam(f"payload_{n}"),
         "log_time": bindparam("now", type_=saga_log.c.log_time.type)} for n in range(entries)
    ]).on_conflict_do_nothing(index_elements=["order_id", "step"]).returning(saga_log.c.step).execution_options(
        **{BUILT_ONCE: True})


# Saga log steps of a settle step that a service refused, and of an operator's settling.
def refused_step(step: str) -> str:
    return f"refused:{step}"


def settled_step(step: str) -> str:
    return f"settled:{step}"


async def settled_steps(db, order_id: str) -> set[str]:
    """The steps an operator let the order finish without (gateway/settlement.py)."""
    logged = await db.execute(select(saga_log.c.step).where(saga_log.c.order_id == order_id,
                                                            saga_log.c.step.startswith(settled_step(""))))
    return {step.removeprefix(settled_step("")) for step in logged.scalars()}


def is_refusal(outcome) -> bool:
    """A service's answer "no", as opposed to no answer (UNAVAILABLE)."""
    return isinstance(outcome, DomainError) and not isinstance(outcome, Unavailable)


def not_finished(order_id: str, reason: str) -> Unavailable:
    """What the terminal hears while money may have moved and the order is not done:
    never a refusal, so the cashier does not take another payment."""
    return Unavailable("ORDER_NOT_FINISHED", f"Order {order_id} is not finished yet ({reason}); "
                       "do not take another payment: retry with the same request_id.",
                       f"订单 {order_id} 尚未完成（{reason}）；请勿重复收款，请用同一 request_id 重试。",
                       order_id=order_id)


class Saga:
    """One order's saga. run() is safe to call again at any time; it ends PAID or REFUSED, or
    NEEDS_ATTENTION when a service refused a step after the pivot."""

    def __init__(self, services, direct, order_id: str, request: pb.CheckoutRequest, store_path: str, actor,
                 fresh: bool = False):
        self.s = services
        self.direct = direct  # the gateway's database: the order and its saga log
        self.order_id = order_id
        self.request = request
        self.store_path = store_path
        self.actor = actor
        self.fresh = fresh  # the order row was just written: nothing is logged yet

    # ------------------------------------------------------------ the log

    async def _logged(self) -> dict[str, bytes]:
        """What earlier runs of this saga logged, by step."""
        return {} if self.fresh else await self._read_log()

    async def _read_log(self) -> dict[str, bytes]:
        async with self.direct.reading() as db:
            return dict((await db.execute(select(saga_log.c.step, saga_log.c.payload).where(
                saga_log.c.order_id == self.order_id))).all())

    async def _log(self, answers: dict[str, object]) -> dict[str, bytes]:
        """Log these steps' answers in one transaction, unless a concurrent run (the
        terminal's retry, the recovery loop) logged them first: then its answers stand."""
        now = utcnow()
        async with self.direct.begin() as db:
            written = await db.execute(*log_insert(db, self.order_id, answers, now))
            if len(written.all()) == len(answers):
                return {step: message.SerializeToString() for step, message in answers.items()}
        return await self._read_log()

    # ------------------------------------------------------------ steps

    async def run(self) -> pb.CheckoutResponse:
        try:
            receipt, wallet_hold = await self._run()
        except Refused as refusal:
            return await self._finish(REFUSED, refusal_reason=refusal.reason, amount_due_fen=refusal.amount_due_fen)
        return await self._finish(PAID, receipt=receipt, wallet_hold=wallet_hold)

    async def _prepare(self):
        """The member, the quote and the offset: computed once, logged before anything is
        reserved (a crash before that has nothing to undo, so a re-run may recompute)."""
        logged = await self._logged()
        if not {"lookup", "quote", "offset"} <= logged.keys():
            found = await self._lookup()
            quote = await self._quote(found)
            if quote.rejected_coupons:
                raise Refused(quote.rejected_coupons[0].reason)
            offset = await self._offset(quote)
            logged = await self._log({"lookup": found, "quote": quote, "offset": offset})
        return (logged, member_pb2.LookupMemberResponse.FromString(logged["lookup"]),
                campaign_pb2.QuoteResponse.FromString(logged["quote"]),
                points_pb2.QuoteOffsetResponse.FromString(logged["offset"]))

    async def _run(self) -> tuple[pb.Receipt, wallet_pb2.HoldResponse | None]:
        r = self.request
        logged, found, quote, offset = await self._prepare()
        offset_fen = r.points_to_use * 100 // offset.points_per_yuan if r.points_to_use else 0
        if r.points_to_use > offset.max_points:
            raise Refused("POINTS_OVER_CAP")
        to_pay = quote.payable_fen - offset_fen
        if sum(t.amount_fen for t in r.tenders) != to_pay:
            raise Refused("TENDERS_DO_NOT_ADD_UP", amount_due_fen=to_pay)
        stored_value = sum(t.amount_fen for t in r.tenders if t.kind == pb.TENDER_KIND_STORED_VALUE)
        holds = await self._reserve(quote, stored_value)
        crash_point("checkout-reserved")
        wallet_capture = None
        if stored_value:
            try:
                wallet_capture = await self._call("wallet", self.s.wallet.Capture(wallet_pb2.CaptureRequest(
                    request_id=step_id(self.order_id, "wallet-capture"), hold_id=holds["wallet"].hold.hold_id,
                    amount_fen=stored_value, actor=self.actor)))
            except Refused:
                await self._compensate(holds)
                raise
        crash_point("checkout-captured")
        # After the pivot: forward only, each step retried until it is done. The steps
        # are independent of each other, so they run together.
        settle = {
            "redeem": ("campaign", lambda: self.s.campaign.RedeemCoupons(campaign_pb2.RedeemCouponsRequest(
                request_id=step_id(self.order_id, "redeem"), reservation_id=holds["campaign"].reservation_id,
                actor=self.actor))),
            "accrue": ("points", lambda: self.s.points.Accrue(self._accrual(found, quote, offset_fen))),
            "visit": ("member", lambda: self.s.member.RecordVisit(member_pb2.RecordVisitRequest(
                request_id=step_id(self.order_id, "visit"), member_id=r.member_id, store_path=self.store_path,
                order_id=self.order_id, amount_fen=to_pay + offset_fen, actor=self.actor))),
        }
        if "points" in holds:
            settle["points-capture"] = ("points", lambda: self.s.points.Capture(points_pb2.CaptureRequest(
                request_id=step_id(self.order_id, "points-capture"), hold_id=holds["points"].hold.hold_id,
                points=r.points_to_use, actor=self.actor)))
        for step in [step for step in settle if settled_step(step) in logged]:  # an operator settled without it
            del settle[step]
        if "accrue" not in settle:  # the receipt still shows the points left
            settle["points-balance"] = ("points", lambda: self.s.points.GetBalance(points_pb2.GetBalanceRequest(
                member_id=r.member_id)))
        if wallet_capture is None:  # no stored value spent: the receipt still shows what is left
            settle["balance"] = ("wallet", lambda: self.s.wallet.GetBalance(wallet_pb2.GetBalanceRequest(
                member_id=r.member_id)))
        done = await self._settle(settle)
        earned = done.get("accrue") or points_pb2.AccrueResponse(balance=done["points-balance"].balance)
        stored_left = (done["balance"] if wallet_capture is None else wallet_capture).balance.available_fen
        visit = done.get("visit")  # none if an operator settled the order without it
        tier_reached = visit.tier_reached.name if visit is not None and visit.HasField("tier_reached") else ""
        receipt = self._receipt(quote, offset_fen, stored_value, stored_left, earned, tier_reached)
        return receipt, holds.get("wallet")

    async def _settle(self, settle: dict) -> dict:
        """Every settle step, together; each retried until its service answers. Steps a
        service refused are logged and the order NEEDS_ATTENTION: retrying cannot help."""
        results = dict(zip(settle, await asyncio.gather(
            *(self._forward(service, call) for service, call in settle.values()), return_exceptions=True)))
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
        await self._log({refused_step(step): pb.RefusedStep(step=step, reason=error.reason)
                         for step, error in refused.items()})
        async with self.direct.begin() as db:
            await db.execute(update(orders).where(orders.c.order_id == self.order_id, orders.c.state == PENDING)
                             .values(state=NEEDS_ATTENTION, update_time=utcnow()))

    async def _lookup(self):
        r = self.request
        key = {"card_number": r.card_number} if r.card_number else {"member_id": r.member_id}
        found = await self._call("member", self.s.member.LookupMember(member_pb2.LookupMemberRequest(
            purpose=member_pb2.LOOKUP_PURPOSE_PAYMENT, **key)))
        if found.member.member_id != r.member_id:
            raise Refused("CARD_NOT_OF_MEMBER")
        return found

    async def _quote(self, found):
        m = found.member
        context = campaign_pb2.MemberContext(
            member_id=m.member_id, tier_id=found.tier.tier_id, tier_price_rate_bp=found.tier.price_rate_bp or 10_000,
            tags=m.tags, register_time=m.create_time, birthday=m.birthday if m.HasField("birthday") else None)
        return await self._call("campaign", self.s.campaign.Quote(campaign_pb2.QuoteRequest(
            member=context, store_path=self.store_path, coupon_codes=list(self.request.coupon_codes),
            lines=[campaign_pb2.OrderLine(line_id=x.line_id, sku=x.sku, category=x.category, quantity=x.quantity,
                                          unit_price_fen=x.unit_price_fen) for x in self.request.lines])))

    async def _offset(self, quote):
        return await self._call("points", self.s.points.QuoteOffset(points_pb2.QuoteOffsetRequest(
            member_id=self.request.member_id, store_path=self.store_path, payable_fen=quote.payable_fen)))

    async def _reserve(self, quote, stored_value: int) -> dict:
        """Coupons and budgets, points and stored value, in parallel. If any is refused,
        every one that was made is released and the order is refused."""
        r = self.request
        calls = {"campaign": self.s.campaign.ReserveCoupons(campaign_pb2.ReserveCouponsRequest(
            request_id=step_id(self.order_id, "reserve-coupons"), member_id=r.member_id,
            coupon_codes=list(r.coupon_codes), order_id=self.order_id, store_path=self.store_path, ttl=HOLD_TTL,
            adjustments=quote.adjustments, actor=self.actor))}
        if r.points_to_use:
            calls["points"] = self.s.points.Hold(points_pb2.HoldRequest(
                request_id=step_id(self.order_id, "points-hold"), member_id=r.member_id, points=r.points_to_use,
                ttl=HOLD_TTL, order_id=self.order_id, store_path=self.store_path, actor=self.actor))
        if stored_value:
            calls["wallet"] = self.s.wallet.Hold(wallet_pb2.HoldRequest(
                request_id=step_id(self.order_id, "wallet-hold"), member_id=r.member_id, amount_fen=stored_value,
                ttl=HOLD_TTL, store_path=self.store_path, order_id=self.order_id, actor=self.actor))
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
            steps.append(("campaign", lambda: self.s.campaign.ReleaseCoupons(campaign_pb2.ReleaseCouponsRequest(
                request_id=step_id(self.order_id, "release-coupons"), reservation_id=made["campaign"].reservation_id))))
        if "points" in made:
            steps.append(("points", lambda: self.s.points.Release(points_pb2.ReleaseRequest(
                request_id=step_id(self.order_id, "points-release"), hold_id=made["points"].hold.hold_id))))
        if "wallet" in made:
            steps.append(("wallet", lambda: self.s.wallet.Release(wallet_pb2.ReleaseRequest(
                request_id=step_id(self.order_id, "wallet-release"), hold_id=made["wallet"].hold.hold_id))))
        for outcome in await asyncio.gather(*(self._forward(service, step) for service, step in steps),
                                            return_exceptions=True):
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
            request_id=step_id(self.order_id, "accrue"), member_id=self.request.member_id, order_id=self.order_id,
            store_path=self.store_path, tier_id=found.tier.tier_id, actor=self.actor,
            tier_multiplier_bp=found.tier.points_multiplier_bp, campaign_multiplier_bp=quote.points_multiplier_bp,
            campaign_multiplier_name=quote.points_multiplier_name, terminal_path=self.actor.org_path,
            lines=[points_pb2.OrderLine(line_id=line.line_id, category=categories.get(line.line_id, ""),
                                        paid_fen=line.payable_fen - share)
                   for line, share in zip(quote.lines, offset_shares)])

    def _receipt(self, quote, offset_fen, stored_value, stored_left, earned, tier_reached: str) -> pb.Receipt:
        lines = [f"{a.explanation}  {yuan(-a.amount_fen)}" for a in quote.adjustments]
        if self.request.points_to_use:
            lines.append(f"积分抵扣 {self.request.points_to_use} 分  {yuan(-offset_fen)}")
        lines.append(f"本单积分 +{earned.points}")
        if tier_reached:
            lines.append(f"恭喜升级为 {tier_reached}")
        sold = {x.line_id: x for x in self.request.lines}
        items = [pb.ReceiptItem(line_id=x.line_id, sku=sold[x.line_id].sku, quantity=sold[x.line_id].quantity,
                                unit_price_fen=sold[x.line_id].unit_price_fen, discount_fen=x.discount_fen,
                                payable_fen=x.payable_fen) for x in quote.lines]
        return pb.Receipt(items=items,
            order_id=self.order_id, store_path=self.store_path, list_total_fen=quote.list_total_fen,
            discount_total_fen=quote.discount_total_fen, points_used=self.request.points_to_use,
            points_offset_fen=offset_fen, stored_value_paid_fen=stored_value, tenders=self.request.tenders,
            points_earned=earned.points,
            stored_value_left_fen=stored_left, points_left=earned.balance.available_points, lines=lines,
            tier_reached=tier_reached)

    # ------------------------------------------------------------ calls

    async def _call(self, service: str, call):
        """A step's call: a service's refusal refuses the order; no answer is retried
        by whoever runs the saga next (the terminal's retry or the recovery loop)."""
        try:
            async with relayed(service):
                return await call
        except Unavailable:
            raise
        except DomainError as error:
            raise Refused(error.reason) from error

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

    async def _finish(self, state: str, receipt: pb.Receipt | None = None, refusal_reason: str = "",
                      amount_due_fen: int = 0, wallet_hold: wallet_pb2.HoldResponse | None = None) -> pb.CheckoutResponse:
        response = pb.CheckoutResponse(order_id=self.order_id, refusal_reason=refusal_reason, amount_due_fen=amount_due_fen,
                                       state=pb.ORDER_STATE_PAID if state == PAID else pb.ORDER_STATE_REFUSED)
        if receipt is not None:
            receipt.paid_time.FromDatetime(utcnow())
            response.receipt.CopyFrom(receipt)
        async with self.direct.begin() as db:
            done = await db.execute(_FINISH_ORDER, {"key": self.order_id, "new_state": state,
                                                    "answer": response.SerializeToString(), "now": utcnow()})
            if done.rowcount == 0:  # another run finished first: its answer stands
                stored = (await db.execute(select(orders.c.response).where(orders.c.order_id == self.order_id))).scalar()
                return pb.CheckoutResponse.FromString(stored)
            if wallet_hold is not None:  # a refund later needs the hold its spend was captured from
                await send(db, insert(saga_log), {"order_id": self.order_id, "step": "wallet-hold",
                                                  "payload": wallet_hold.SerializeToString(), "log_time": utcnow()})
        return response

