"""What a checkout decides before it reserves anything, and a price check answers from:
the member (by the card or QR code presented, else by id), the order priced for them at
this store and time, what their points may pay, and whether the request stands against
those. Logged once by the checkout saga (use_cases/checkout.py): every run goes on from
the logged decision."""

from google.rpc import error_details_pb2, status_pb2

from gateway.domain.sagas import is_refusal, step_id
from gateway.use_cases.relay import relayed
from huiyuan.campaign.v1 import campaign_pb2
from huiyuan.common.v1 import credential_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb, saga_log_pb2
from huiyuan.member.v1 import member_pb2, membership_pb2, payment_pin_pb2
from huiyuan.points.v1 import points_pb2
from huiyuan.runtime.errors import DomainError, FailedPrecondition, Internal, invalid
from huiyuan.runtime.money import yuan
from huiyuan.runtime.status import from_status, to_status

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
    error = invalid(
        "tenders",
        "TENDERS_DO_NOT_ADD_UP",
        f"the tenders must add up to {yuan(due_fen)}, what the order is due after discounts and points",
    )
    error.zh = f"各支付方式合计须为 {yuan(due_fen)}（本单扣除优惠和积分抵扣后应付的金额）。"
    error.metadata["amount_due_fen"] = str(due_fen)
    return _refused_here(error, order_id)


def points_refused(asked: int, offset: points_pb2.QuoteOffsetResponse, order_id: str) -> Refused:
    """More points than the member has (INSUFFICIENT_POINTS), or than the order lets
    points pay (POINTS_OVER_CAP)."""
    if asked > offset.available_points:
        error = FailedPrecondition(
            "INSUFFICIENT_POINTS",
            f"The member has {offset.available_points} points; {asked} were asked for.",
            f"会员只有 {offset.available_points} 积分，不足本次使用的 {asked} 积分。",
            available_points=offset.available_points,
        )
    else:
        error = invalid("points_to_use", "POINTS_OVER_CAP", f"at most {offset.max_points} points may pay this order")
        error.zh = f"本单最多可用 {offset.max_points} 积分抵扣。"
    error.metadata["max_points"] = str(offset.max_points)
    return _refused_here(error, order_id)


async def ask(service: str, call, order_id: str):
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


async def decide(
    services, request, store_path: str, order_id: str = "", tenders: list | None = None
) -> saga_log_pb2.CheckoutDecision:
    """What a checkout decides before it reserves anything: the member (by the card or
    QR code presented, else by id), the order priced for them at this store and time,
    what their points may pay, and whether the request stands against those - what the
    member presented to spend their balances, its coupons, its points and, given them,
    its tenders. Reads only, but for a PIN's try: PriceOrder answers from it too
    (request: a CheckoutRequest or a PriceOrderRequest, which spends nothing)."""
    try:
        qr_token = getattr(request, "qr_token", "")
        key = (
            {"card_number": request.card_number}
            if request.card_number
            else {"qr_token": qr_token}
            if qr_token
            else {"member_id": request.member_id}
        )
        found = await ask(
            "member",
            services.member.LookupMember(
                member_pb2.LookupMemberRequest(purpose=member_pb2.LOOKUP_PURPOSE_PAYMENT, **key)
            ),
            order_id,
        )
        if found.member.member_id != request.member_id:
            what, what_zh = ("card", "卡") if request.card_number else ("QR code", "二维码")
            raise _refused_here(
                FailedPrecondition(
                    "CARD_NOT_OF_MEMBER", f"The {what} presented is another member's.", f"出示的{what_zh}不是该会员的。"
                ),
                order_id,
            )
        if tenders is not None and spends(request) and not (request.card_number or qr_token):
            # Neither card nor QR code: the PIN (none: the member service refuses
            # PAYMENT_CREDENTIAL_REQUIRED), tried once for this order however often it runs.
            await ask(
                "member",
                services.pins.VerifyPaymentCredential(
                    payment_pin_pb2.VerifyPaymentCredentialRequest(
                        request_id=step_id(order_id, "credential"),
                        member_id=request.member_id,
                        credential=credential_pb2.PaymentCredential(
                            **({"pin": request.payment_pin} if request.payment_pin else {})
                        ),
                    )
                ),
                order_id,
            )
        plans = await plan_prices(services, request, order_id)
        goods = [x for x in request.lines if not x.membership_plan_id]
        if goods:
            quote = await ask(
                "campaign", services.campaign.Quote(_quote_request(found, request, store_path, goods)), order_id
            )
        else:  # only membership terms: nothing for the campaigns to price
            quote = campaign_pb2.QuoteResponse(
                points_multiplier_bp=10_000,
                rejected_coupons=[
                    campaign_pb2.RejectedCoupon(coupon_code=code, reason="COUPON_NO_ELIGIBLE_LINES")
                    for code in request.coupon_codes
                ],
            )
        with_plans(quote, plans)
        if quote.rejected_coupons:
            rejected = quote.rejected_coupons[0]
            en, zh = COUPON_REFUSALS.get(
                rejected.reason, ("the coupon cannot be used on this order", "这张优惠券不能用于本单")
            )
            raise refused_by(
                "campaign",
                FailedPrecondition(
                    rejected.reason,
                    f"coupon {rejected.coupon_code}: {en}.",
                    f"优惠券 {rejected.coupon_code}：{zh}。",
                    coupon_code=rejected.coupon_code,
                ),
                order_id,
            )
        offset = await ask(
            "points",
            services.points.QuoteOffset(
                points_pb2.QuoteOffsetRequest(
                    member_id=request.member_id, store_path=store_path, payable_fen=quote.payable_fen
                )
            ),
            order_id,
        )
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


async def plan_prices(services, request, order_id: str) -> dict[str, int]:
    """The price of each line that sells a paid membership's term, by line id: the
    plan's (a line priced otherwise refuses the order, saying the price)."""
    prices = {}
    for i, line in enumerate(request.lines):
        if not line.membership_plan_id:
            continue
        plan = (
            await ask(
                "member",
                services.memberships.GetPlan(membership_pb2.GetPlanRequest(plan_id=line.membership_plan_id)),
                order_id,
            )
        ).plan
        if line.unit_price_fen != plan.price_fen:
            error = invalid(
                f"lines[{i}].unit_price_fen",
                "PLAN_PRICE_MISMATCH",
                f"the plan {plan.name} costs {yuan(plan.price_fen)}",
            )
            error.zh = f"付费会员方案「{plan.name}」的价格为 {yuan(plan.price_fen)}。"
            error.metadata["price_fen"] = str(plan.price_fen)
            raise _refused_here(error, order_id)
        prices[line.line_id] = plan.price_fen
    return prices


def with_plans(quote: campaign_pb2.QuoteResponse, prices: dict[str, int]) -> None:
    """The quote of the goods, with the membership lines at their plans' prices: no
    campaign or coupon discounts a paid membership."""
    for line_id, fen in prices.items():
        quote.lines.append(campaign_pb2.PricedLine(line_id=line_id, list_fen=fen, discount_fen=0, payable_fen=fen))
        quote.list_total_fen += fen
        quote.payable_fen += fen


def _quote_request(found, request, store_path: str, lines) -> campaign_pb2.QuoteRequest:
    m = found.member
    context = campaign_pb2.MemberContext(
        member_id=m.member_id,
        tier_id=found.tier.tier_id,
        tier_price_rate_bp=found.tier.price_rate_bp or 10_000,
        tags=list(dict.fromkeys([*m.tags, *m.automatic_tags])),  # set by hand or automatically: campaigns target both
        register_time=m.create_time,
        birthday=m.birthday if m.HasField("birthday") else None,
    )
    return campaign_pb2.QuoteRequest(
        member=context,
        store_path=store_path,
        coupon_codes=list(request.coupon_codes),
        lines=[
            campaign_pb2.OrderLine(
                line_id=x.line_id, sku=x.sku, category=x.category, quantity=x.quantity, unit_price_fen=x.unit_price_fen
            )
            for x in lines
        ],
    )


def discount_lines(quote: campaign_pb2.QuoteResponse, points_used: int, offset_fen: int) -> list[str]:
    """What a receipt prints of the discounts and the points offset."""
    lines = [f"{a.explanation}  {yuan(-a.amount_fen)}" for a in quote.adjustments]
    if points_used:
        lines.append(f"积分抵扣 {points_used} 分  {yuan(-offset_fen)}")
    return lines


def priced_items(request, quote: campaign_pb2.QuoteResponse) -> list[pb.ReceiptItem]:
    """The order's lines, each with its share of the discounts."""
    sold = {x.line_id: x for x in request.lines}
    return [
        pb.ReceiptItem(
            line_id=x.line_id,
            sku=sold[x.line_id].sku,
            quantity=sold[x.line_id].quantity,
            unit_price_fen=sold[x.line_id].unit_price_fen,
            discount_fen=x.discount_fen,
            payable_fen=x.payable_fen,
        )
        for x in quote.lines
    ]


async def price(services, request: pb.PriceOrderRequest, store_path: str) -> pb.PriceOrderResponse:
    """What a checkout of this order would charge now, or the refusal it would get."""
    decision = await decide(services, request, store_path)
    if decision.HasField("refusal"):
        raise from_status(decision.refusal)
    quote, offset = decision.quote, decision.offset
    offset_fen = offset_fen_of(request.points_to_use, offset)
    return pb.PriceOrderResponse(
        list_total_fen=quote.list_total_fen,
        discount_total_fen=quote.discount_total_fen,
        items=priced_items(request, quote),
        lines=discount_lines(quote, request.points_to_use, offset_fen),
        points_offset_fen=offset_fen,
        max_points=offset.max_points,
        amount_due_fen=quote.payable_fen - offset_fen,
    )
