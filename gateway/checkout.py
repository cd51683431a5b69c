"""The checkout saga, as docs/checkout.md describes it.

    look the card up (a lost or frozen card is refused before anything is reserved)
    -> quote -> reserve in parallel (coupons and budgets, points, stored value)
    -> pivot: the wallet captures -> settle in parallel (points capture, coupon
       redemption, points accrual, the member's visit) -> receipt.

One run decides an order. The order row (with the terminal's request) is committed
before any service is called, with the lease of the run that wrote it
(gateway/leases.py): a second run of the same order - the terminal's retry during the
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
settles it (gateway/settlement.py); the saga then finishes without that step.
"""

import asyncio
import functools
import logging
from dataclasses import dataclass

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from sqlalchemy import bindparam, insert, select, update

from huiyuan.campaign.v1 import campaign_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.gateway.v1 import saga_log_pb2
from huiyuan.common.v1 import credential_pb2
from huiyuan.member.v1 import member_pb2, payment_pin_pb2
from huiyuan.points.v1 import points_pb2
from huiyuan.database.engines import dialect_name
from huiyuan.runtime.clock import utcnow
from huiyuan.database.direct import BUILT_ONCE, send
from huiyuan.runtime.errors import DomainError, FailedPrecondition, Internal, Unavailable, invalid
from huiyuan.runtime.faults import crash_point
from huiyuan.runtime.money import split_proportionally, yuan
from huiyuan.runtime.status import NO_ANSWER, from_status, to_status
from huiyuan.database.upsert import insert_for
from huiyuan.wallet.v1 import wallet_pb2
from gateway.leases import PENDING, Lease
from gateway.relay import relayed
from gateway.storage import orders, saga_log

HOLD_TTL = Duration(seconds=600)
PAID, REFUSED, NEEDS_ATTENTION = "PAID", "REFUSED", "NEEDS_ATTENTION"  # an order's states, with PENDING
RETRY_DELAYS_S = (0.1, 0.3, 1.0, 3.0)
DECISION = "decision"  # the log step of what the order's first run decided
# Only a PENDING order is finished: of two runs of one saga, the first to finish answers.
_FINISH_ORDER = update(orders).where(orders.c.order_id == bindparam("key"), orders.c.state == PENDING).values(
    state=bindparam("new_state"), response=bindparam("answer"), refusal=bindparam("refusal"),
    update_time=bindparam("now"), lease_until=None)

log = logging.getLogger("huiyuan.gateway.saga")

# A coupon the quote could not use, said to the cashier (the campaign service's reasons).
COUPON_REFUSALS = {
    "COUPON_NOT_FOUND": ("there is no such coupon", "没有这张优惠券"),
    "COUPON_NOT_OWNED": ("the coupon belongs to another member", "这张优惠券属于其他会员"),
    "COUPON_ALREADY_USED": ("the coupon was used already", "这张优惠券已经用过"),
    "COUPON_RESERVED": ("the coupon is held by another order being paid", "这张优惠券正被另一笔结账占用"),
    "COUPON_EXPIRED": ("the coupon has expired", "这张优惠券已过期"),
    "COUPON_NOT_YET_VALID": ("the coupon is not valid yet", "这张优惠券尚未生效"),
    "COUPON_NOT_VALID_AT_STORE": ("the coupon is not valid at this store", "这张优惠券不能在本店使用"),
    "COUPON_NO_ELIGIBLE_LINES": ("nothing on the order is covered by the coupon", "本单没有适用这张优惠券的商品"),
    "COUPON_THRESHOLD_NOT_MET": ("the order does not reach the coupon's threshold", "本单未达到这张优惠券的使用门槛"),
    "TOO_MANY_DISCOUNTS": ("the order takes no more discounts", "本单可叠加的优惠已达上限"),
}


class Refused(Exception):
    """The order is refused, nothing reserved is kept: status is the refusal as the
    terminal hears it, in the domain of the service whose rule refused."""

    def __init__(self, status: status_pb2.Status):
        super().__init__(status.message)
        self.status = status

    @property
    def reason(self) -> str:
        return reason_of(self.status)

    @property
    def amount_due_fen(self) -> int:
        return int(_error_info(self.status).metadata.get("amount_due_fen", 0))


def _error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    for detail in status.details:
        if detail.Unpack(info):
            break
    return info


def reason_of(status: status_pb2.Status) -> str:
    return _error_info(status).reason


def refused_by(service: str, error: DomainError, order_id: str) -> Refused:
    """A service's refusal of the order, in its code, reason and domain; of an order
    (not a price check), said as the checkout's: with the order, and that nothing was
    charged."""
    if order_id:
        error.metadata["order_id"] = order_id
        error.en = f"The checkout was refused and nothing was charged: {error.en}"
        error.zh = f"结账未成功，本单未扣任何款项：{error.zh}"
    return Refused(to_status(error, service))


def _refused_here(error: DomainError, order_id: str) -> Refused:
    """The gateway's own refusal of a request that does not stand against its quote."""
    if order_id:
        error.metadata["order_id"] = order_id
    return Refused(to_status(error, "gateway"))


def tenders_do_not_add_up(due_fen: int, order_id: str) -> Refused:
    error = invalid("tenders", "TENDERS_DO_NOT_ADD_UP", f"the tenders must add up to {yuan(due_fen)}, what the "
                                                        "order is due after discounts and points")
    error.zh = f"各支付方式合计须为 {yuan(due_fen)}（本单扣除优惠和积分抵扣后应付的金额）。"
    error.metadata["amount_due_fen"] = str(due_fen)
    return _refused_here(error, order_id)


def points_refused(asked: int, offset: points_pb2.QuoteOffsetResponse, order_id: str) -> Refused:
    """More points than the member has (INSUFFICIENT_POINTS), or than the order lets
    points pay (POINTS_OVER_CAP)."""
    if asked > offset.available_points:
        error = FailedPrecondition("INSUFFICIENT_POINTS", f"The member has {offset.available_points} points; "
                                   f"{asked} were asked for.", f"会员只有 {offset.available_points} 积分，"
                                   f"不足本次使用的 {asked} 积分。", available_points=offset.available_points)
    else:
        error = invalid("points_to_use", "POINTS_OVER_CAP", f"at most {offset.max_points} points may pay this order")
        error.zh = f"本单最多可用 {offset.max_points} 积分抵扣。"
    error.metadata["max_points"] = str(offset.max_points)
    return _refused_here(error, order_id)


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
    (database/direct.py: BUILT_ONCE)."""
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
    """A service's answer "no", as opposed to no answer (UNAVAILABLE) or a failure of
    its own (INTERNAL: a bug there, nothing says what it did). A saga stops at either of
    those unfinished, for the next run; it never reads them as a refusal."""
    return isinstance(outcome, DomainError) and not isinstance(outcome, (Unavailable, Internal))


def not_finished(order_id: str, cause: str) -> Unavailable:
    """What the terminal hears while money may have moved and the order is not done:
    never a refusal, so the cashier does not take another payment."""
    return Unavailable("ORDER_NOT_FINISHED", f"Order {order_id} is not finished yet ({cause}): do not take another "
                       "payment; retry with the same request_id.",
                       f"订单 {order_id} 尚未完成：请勿重复收款，请稍后用同一请求重试。", order_id=order_id, cause=cause)


@dataclass(frozen=True)
class Finished:
    """A finished order's answer: its response, and its refusal where it was refused."""
    response: pb.CheckoutResponse
    refusal: status_pb2.Status | None = None

    @classmethod
    def of_row(cls, row) -> "Finished":
        return cls(pb.CheckoutResponse.FromString(row.response),
                   status_pb2.Status.FromString(row.refusal) if row.refusal is not None else None)

    def answer(self) -> pb.CheckoutResponse:
        """The receipt, or the refusal raised, as the terminal hears either."""
        if self.refusal is not None:
            raise from_status(self.refusal)
        return self.response


async def _ask(service: str, call, order_id: str):
    """A call that decides the order: a service's refusal refuses it; no answer is for
    whoever runs the saga next (the terminal's retry or the recovery loop)."""
    try:
        async with relayed(service):
            return await call
    except DomainError as error:
        if not is_refusal(error):
            raise
        raise refused_by(service, error, order_id) from error


def offset_fen_of(points: int, offset: points_pb2.QuoteOffsetResponse) -> int:
    """What this many points pay, in fen (rounded down)."""
    return points * 100 // offset.points_per_yuan if points else 0


def spends(request: pb.CheckoutRequest) -> bool:
    """Does the checkout spend the member's balances (stored value or points)?"""
    return request.points_to_use > 0 or any(t.kind == pb.TENDER_KIND_STORED_VALUE for t in request.tenders)


async def decide(services, request, store_path: str, order_id: str = "",
                 tenders: list | None = None) -> saga_log_pb2.CheckoutDecision:
    """What a checkout decides before it reserves anything: the member (by the card or
    QR code presented, else by id), the order priced for them at this store and time,
    what their points may pay, and whether the request stands against those - what the
    member presented to spend their balances, its coupons, its points and, given them,
    its tenders. Reads only, but for a PIN's try: PriceOrder answers from it too
    (request: a CheckoutRequest or a PriceOrderRequest, which spends nothing)."""
    try:
        qr_token = getattr(request, "qr_token", "")
        key = ({"card_number": request.card_number} if request.card_number else
               {"qr_token": qr_token} if qr_token else {"member_id": request.member_id})
        found = await _ask("member", services.member.LookupMember(member_pb2.LookupMemberRequest(
            purpose=member_pb2.LOOKUP_PURPOSE_PAYMENT, **key)), order_id)
        if found.member.member_id != request.member_id:
            what, what_zh = ("card", "卡") if request.card_number else ("QR code", "二维码")
            raise _refused_here(FailedPrecondition("CARD_NOT_OF_MEMBER", f"The {what} presented is another member's.",
                                                   f"出示的{what_zh}不是该会员的。"), order_id)
        if tenders is not None and spends(request) and not (request.card_number or qr_token):
            # Neither card nor QR code: the PIN (none: the member service refuses
            # PAYMENT_CREDENTIAL_REQUIRED), tried once for this order however often it runs.
            await _ask("member", services.pins.VerifyPaymentCredential(payment_pin_pb2.VerifyPaymentCredentialRequest(
                request_id=step_id(order_id, "credential"), member_id=request.member_id,
                credential=credential_pb2.PaymentCredential(**(
                    {"pin": request.payment_pin} if request.payment_pin else {})))), order_id)
        quote = await _ask("campaign", services.campaign.Quote(_quote_request(found, request, store_path)), order_id)
        if quote.rejected_coupons:
            rejected = quote.rejected_coupons[0]
            en, zh = COUPON_REFUSALS.get(rejected.reason, ("the coupon cannot be used on this order",
                                                           "这张优惠券不能用于本单"))
            raise refused_by("campaign", FailedPrecondition(
                rejected.reason, f"coupon {rejected.coupon_code}: {en}.", f"优惠券 {rejected.coupon_code}：{zh}。",
                coupon_code=rejected.coupon_code), order_id)
        offset = await _ask("points", services.points.QuoteOffset(points_pb2.QuoteOffsetRequest(
            member_id=request.member_id, store_path=store_path, payable_fen=quote.payable_fen)), order_id)
        if request.points_to_use > offset.max_points:
            raise points_refused(request.points_to_use, offset, order_id)
        due = quote.payable_fen - offset_fen_of(request.points_to_use, offset)
        if tenders is not None and sum(t.amount_fen for t in tenders) != due:
            raise tenders_do_not_add_up(due, order_id)
    except Refused as refused:
        return saga_log_pb2.CheckoutDecision(refusal=refused.status)
    except Internal as failure:  # a bug in a service, before anything is reserved: the order ends with it
        return saga_log_pb2.CheckoutDecision(refusal=to_status(failure, "gateway"))
    return saga_log_pb2.CheckoutDecision(lookup=found, quote=quote, offset=offset)


def _quote_request(found, request, store_path: str) -> campaign_pb2.QuoteRequest:
    m = found.member
    context = campaign_pb2.MemberContext(
        member_id=m.member_id, tier_id=found.tier.tier_id, tier_price_rate_bp=found.tier.price_rate_bp or 10_000,
        tags=m.tags, register_time=m.create_time, birthday=m.birthday if m.HasField("birthday") else None)
    return campaign_pb2.QuoteRequest(
        member=context, store_path=store_path, coupon_codes=list(request.coupon_codes),
        lines=[campaign_pb2.OrderLine(line_id=x.line_id, sku=x.sku, category=x.category, quantity=x.quantity,
                                      unit_price_fen=x.unit_price_fen) for x in request.lines])


def discount_lines(quote: campaign_pb2.QuoteResponse, points_used: int, offset_fen: int) -> list[str]:
    """What a receipt prints of the discounts and the points offset."""
    lines = [f"{a.explanation}  {yuan(-a.amount_fen)}" for a in quote.adjustments]
    if points_used:
        lines.append(f"积分抵扣 {points_used} 分  {yuan(-offset_fen)}")
    return lines


def priced_items(request, quote: campaign_pb2.QuoteResponse) -> list[pb.ReceiptItem]:
    """The order's lines, each with its share of the discounts."""
    sold = {x.line_id: x for x in request.lines}
    return [pb.ReceiptItem(line_id=x.line_id, sku=sold[x.line_id].sku, quantity=sold[x.line_id].quantity,
                           unit_price_fen=sold[x.line_id].unit_price_fen, discount_fen=x.discount_fen,
                           payable_fen=x.payable_fen) for x in quote.lines]


async def price(services, request: pb.PriceOrderRequest, store_path: str) -> pb.PriceOrderResponse:
    """What a checkout of this order would charge now, or the refusal it would get."""
    decision = await decide(services, request, store_path)
    if decision.HasField("refusal"):
        raise from_status(decision.refusal)
    quote, offset = decision.quote, decision.offset
    offset_fen = offset_fen_of(request.points_to_use, offset)
    return pb.PriceOrderResponse(
        list_total_fen=quote.list_total_fen, discount_total_fen=quote.discount_total_fen,
        items=priced_items(request, quote), lines=discount_lines(quote, request.points_to_use, offset_fen),
        points_offset_fen=offset_fen, max_points=offset.max_points, amount_due_fen=quote.payable_fen - offset_fen)


class Saga:
    """One order's saga, run by whoever holds the order's lease (gateway/leases.py): a
    run ends it PAID or REFUSED, or NEEDS_ATTENTION when a service refused a step after
    the pivot, or leaves it PENDING for the next run (a service did not answer)."""

    def __init__(self, services, direct, order_id: str, request: pb.CheckoutRequest, store_path: str, actor,
                 run_id: str | None = None):
        self.s = services
        self.database = direct  # the gateway's database: the order and its saga log
        self.order_id = order_id
        self.request = request
        self.store_path = store_path
        self.actor = actor
        # run_id: the run that wrote the order row, with its lease; nothing is logged yet.
        # Without it, the lease is to be taken (gateway/orders.py) and the log read.
        self.lease = Lease(direct, orders, order_id, run_id)
        self.fresh = run_id is not None

    # ------------------------------------------------------------ the log

    async def _read_log(self) -> dict[str, bytes]:
        async with self.database.reading() as db:
            return dict((await db.execute(select(saga_log.c.step, saga_log.c.payload).where(
                saga_log.c.order_id == self.order_id))).all())

    async def _log(self, answers: dict[str, object]) -> dict[str, bytes]:
        """Log these steps' answers in one transaction, unless a concurrent run (the
        terminal's retry, the recovery loop) logged them first: then its answers stand."""
        now = utcnow()
        async with self.database.transaction() as db:
            written = await db.execute(*log_insert(db, self.order_id, answers, now))
            if len(written.all()) == len(answers):
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
        async with self.database.transaction() as db:  # only under its lease: else an operator may have settled it since
            await db.execute(update(orders).where(orders.c.order_id == self.order_id, orders.c.state == PENDING,
                                                  orders.c.run_id == self.lease.run_id)
                             .values(state=NEEDS_ATTENTION, update_time=utcnow()))

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
        lines = discount_lines(quote, self.request.points_to_use, offset_fen)
        lines.append(f"本单积分 +{earned.points}")
        if tier_reached:
            lines.append(f"恭喜升级为 {tier_reached}")
        return pb.Receipt(items=priced_items(self.request, quote),
            order_id=self.order_id, store_path=self.store_path, list_total_fen=quote.list_total_fen,
            discount_total_fen=quote.discount_total_fen, points_used=self.request.points_to_use,
            points_offset_fen=offset_fen, stored_value_paid_fen=stored_value, tenders=self.request.tenders,
            points_earned=earned.points,
            stored_value_left_fen=stored_left, points_left=earned.balance.available_points, lines=lines,
            tier_reached=tier_reached)

    # ------------------------------------------------------------ calls

    async def _call(self, service: str, call):
        """A reservation or the pivot: a service's refusal refuses the order."""
        return await _ask(service, call, self.order_id)

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

    async def _finish(self, state: str, receipt: pb.Receipt | None = None, refusal: Refused | None = None,
                      wallet_hold: wallet_pb2.HoldResponse | None = None) -> Finished:
        response = pb.CheckoutResponse(order_id=self.order_id,
                                       state=pb.ORDER_STATE_PAID if state == PAID else pb.ORDER_STATE_REFUSED)
        if refusal is not None:
            response.refusal_reason, response.amount_due_fen = refusal.reason, refusal.amount_due_fen
        if receipt is not None:
            receipt.paid_time.FromDatetime(utcnow())
            response.receipt.CopyFrom(receipt)
        finished = Finished(response, refusal.status if refusal is not None else None)
        async with self.database.transaction() as db:
            done = await db.execute(_FINISH_ORDER, {
                "key": self.order_id, "new_state": state, "answer": response.SerializeToString(), "now": utcnow(),
                "refusal": finished.refusal.SerializeToString() if finished.refusal is not None else None})
            if done.rowcount == 0:  # another run finished first: its answer stands
                row = (await db.execute(select(orders).where(orders.c.order_id == self.order_id))).one()
                if row.response is None:  # it found a step refused: an operator must look
                    raise not_finished(self.order_id, row.state)
                return Finished.of_row(row)
            if wallet_hold is not None:  # a refund later needs the hold its spend was captured from
                await send(db, insert(saga_log), {"order_id": self.order_id, "step": "wallet-hold",
                                                  "payload": wallet_hold.SerializeToString(), "log_time": utcnow()})
        return finished
