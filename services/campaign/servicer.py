"""CampaignService: checks the request, runs the use case, translates.
No rule lives here: pricing.py prices, domain.py checks configuration, campaigns.py
and coupons.py keep the state."""

import time
from datetime import datetime

from huiyuan.campaign.v1 import campaign_pb2 as pb
from huiyuan.campaign.v1 import campaign_pb2_grpc
from huiyuan.runtime import pagination
from huiyuan.database.batching import Batcher
from huiyuan.runtime.convert import calendar_date, enum_name, enum_value, from_timestamp, timestamp
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.holds import check_ttl
from huiyuan.database.idempotency import REQUEST_ID, Idempotency, check_request_id
from huiyuan.runtime.ids import is_id, new_id
from huiyuan.runtime.requests import check_actor, check_in_scope, check_org_path, check_scope, check_store_path
from huiyuan.runtime.server import ServiceContext
from services.campaign import campaigns, coupons, domain, pricing
from services.campaign.domain import Status
from services.campaign.pricing import BP, Kind

MAX_LINES = 500
ACTIVE_SET_TTL_S = 1.0


def _campaign(m: pb.Campaign) -> pricing.Campaign:
    kind = Kind(enum_name(pb.CampaignKind, "CAMPAIGN_KIND", m.kind) or "TIER_DISCOUNT")
    return pricing.Campaign(
        "", m.name.strip(), kind, m.org_path,
        from_timestamp(m.start_time) if m.HasField("start_time") else None,
        from_timestamp(m.end_time) if m.HasField("end_time") else None,
        list(m.tier_ids), list(m.tags), m.new_member_within.ToTimedelta() if m.HasField("new_member_within") else None,
        m.points_multiplier_bp if kind == Kind.POINTS_MULTIPLIER else m.rate_bp, list(m.categories),
        dict(m.sku_prices_fen), [pricing.Step(s.threshold_fen, s.reduction_fen, s.rate_bp) for s in m.steps],
        list(m.weekdays), list(m.month_days), m.exclusive_group, m.on_original_price,
        m.budget_fen, m.per_member_limit, m.per_store_daily_limit, m.coupon_template_id)


def _message(c: pricing.Campaign, status: Status, campaign_id: str = "") -> pb.Campaign:
    message = pb.Campaign(
        campaign_id=campaign_id or c.campaign_id, name=c.name, kind=enum_value(pb.CampaignKind, "CAMPAIGN_KIND", c.kind.value),
        org_path=c.org_path, status=enum_value(pb.CampaignStatus, "CAMPAIGN_STATUS", status.value),
        start_time=timestamp(c.start_time), end_time=timestamp(c.end_time), tier_ids=c.tier_ids, tags=c.tags,
        categories=c.categories, sku_prices_fen=c.sku_prices_fen, weekdays=c.weekdays, month_days=c.month_days,
        steps=[pb.ThresholdStep(threshold_fen=s.threshold_fen, reduction_fen=s.reduction_fen, rate_bp=s.rate_bp) for s in c.steps],
        exclusive_group=c.exclusive_group, on_original_price=c.on_original_price, budget_fen=c.budget_fen,
        per_member_limit=c.per_member_limit, per_store_daily_limit=c.per_store_daily_limit,
        coupon_template_id=c.coupon_template_id)
    if c.kind == Kind.POINTS_MULTIPLIER:
        message.points_multiplier_bp = c.rate_bp
    else:
        message.rate_bp = c.rate_bp
    if c.new_member_within is not None:
        message.new_member_within.FromTimedelta(c.new_member_within)
    return message


def _order(v: Violations, request: pb.QuoteRequest, p: str = ""):
    check_store_path(v, request.store_path, f"{p}store_path")
    v.check(0 < len(request.lines) <= MAX_LINES, f"{p}lines", "LINES_REQUIRED", f"an order has 1 to {MAX_LINES} lines")
    seen = set()
    for i, line in enumerate(request.lines):
        v.check(bool(line.line_id) and line.line_id not in seen, f"{p}lines[{i}].line_id", "LINE_ID_INVALID",
                "every line needs its own line_id")
        seen.add(line.line_id)
        v.check(0 < line.quantity <= 100_000, f"{p}lines[{i}].quantity", "QUANTITY_INVALID", "quantity must be 1 or more")
        v.check(0 <= line.unit_price_fen <= 10**9, f"{p}lines[{i}].unit_price_fen", "PRICE_INVALID",
                "unit_price_fen must be 0 or more")
    m = request.member
    v.check(0 <= m.tier_price_rate_bp <= BP, f"{p}member.tier_price_rate_bp", "RATE_INVALID", "tier_price_rate_bp is 0 to 10000")
    birthday = None
    if m.HasField("birthday"):  # a birthday without a year (0000-MM-DD) still has its day
        birthday = calendar_date(m.birthday) or (calendar_date(type(m.birthday)(year=2000, month=m.birthday.month,
                                                                                 day=m.birthday.day)))
        v.check(birthday is not None, f"{p}member.birthday", "DATE_INVALID", "birthday must be a calendar day")
    member = pricing.Member(m.member_id, m.tier_id, m.tier_price_rate_bp or BP, list(m.tags),
                            from_timestamp(m.register_time) if m.HasField("register_time") else None, birthday)
    lines = [pricing.Line(x.line_id, x.sku, x.category, x.quantity, x.unit_price_fen) for x in request.lines]
    at = from_timestamp(request.at_time) if request.HasField("at_time") else utcnow()
    return member, lines, at


def _quote_message(q: pricing.Quote) -> pb.QuoteResponse:
    # Filled in place with add(): half the CPU of building each message and copying
    # it into its parent, on the path of every quote.
    message = pb.QuoteResponse(list_total_fen=q.list_total_fen, discount_total_fen=q.discount_total_fen,
                               payable_fen=q.payable_fen, points_multiplier_bp=q.points_multiplier_bp)
    if q.points_multiplier:
        message.points_multiplier_campaign_id = q.points_multiplier.campaign_id
        message.points_multiplier_name = q.points_multiplier.name
    add_line = message.lines.add
    for x in q.lines:
        add_line(line_id=x.line_id, list_fen=x.list_fen, discount_fen=x.discount_fen, payable_fen=x.payable_fen)
    for a in q.adjustments:
        add_share = message.adjustments.add(campaign_id=a.campaign_id, coupon_code=a.coupon_code, amount_fen=a.amount_fen,
                                            explanation=a.explanation).line_shares.add
        for line_id, amount in a.line_shares.items():
            add_share(line_id=line_id, amount_fen=amount)
    for code, reason in q.rejected_coupons:
        message.rejected_coupons.add(coupon_code=code, reason=reason)
    return message


class CampaignServicer(campaign_pb2_grpc.CampaignServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency, max_discounts: int = pricing.MAX_DISCOUNTS):
        self.database = ctx.database  # a quote's coupon read: straight on the driver
        self.idempotency = idempotency
        self.max_discounts = max_discounts
        self._active: tuple[float, list[pricing.Campaign]] = (0.0, [])
        # Reservations and redemptions that arrive together run in one transaction (group
        # commit): a campaign's stats row, which every checkout adds to, is added to once.
        self.reservations = Batcher(self._reserve)
        self.redemptions = Batcher(self._redeem)

    async def _active_campaigns(self) -> list[pricing.Campaign]:
        """The active set, read at most once a second: every quote needs it, it changes
        rarely, and a quote is only a price (budgets are taken at reservation, so a
        second-old set can never overspend). A change made here is seen at once."""
        expires, found = self._active
        if time.monotonic() >= expires:
            async with self.database.reading() as db:
                found = await campaigns.active(db)
            self._active = (time.monotonic() + ACTIVE_SET_TTL_S, found)
        return found

    async def _quote(self, request: pb.QuoteRequest, member, lines, at, extra=()) -> pb.QuoteResponse:
        live = await self._active_campaigns()
        presented = await coupons.for_quote(self.database, list(request.coupon_codes), member.member_id, at)
        return _quote_message(pricing.quote(lines, member, request.store_path, at, live + list(extra), presented,
                                            self.max_discounts))

    async def Quote(self, request, context):
        v = Violations()
        member, lines, at = _order(v, request)
        v.raise_if_any()
        return await self._quote(request, member, lines, at)

    async def Simulate(self, request, context):
        v = Violations()
        v.check(bool(request.campaign_id), "campaign_id", "CAMPAIGN_ID_REQUIRED", "campaign_id is required")
        member, lines, at = _order(v, request.order, "order.")
        v.raise_if_any()
        async with self.database.reading() as db:
            campaign, status = await campaigns.get(db, request.campaign_id)
        extra = [] if status == Status.ACTIVE else [campaign]  # an active one is already in the quote
        return pb.SimulateResponse(quote=await self._quote(request.order, member, lines, at, extra))

    async def CreateCampaign(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        m = request.campaign
        v.check(enum_name(pb.CampaignKind, "CAMPAIGN_KIND", m.kind) is not None, "campaign.kind", "KIND_INVALID",
                "kind is required")
        check_scope(v, m.org_path, "campaign.org_path")
        campaign = _campaign(m)
        domain.check_campaign(v, campaign)
        if m.kind in pb.CampaignKind.values() and m.kind:  # campaign_id and status are output only (AIP-203)
            domain.check_kind_fields(v, campaign.kind, {f.name for f, _ in m.ListFields()} - {"campaign_id", "status"})
        _, actor_path = check_actor(v, request, required=False)
        v.raise_if_any()
        check_in_scope(m.org_path, actor_path, "campaign", "活动")

        async def work(db):
            campaign.campaign_id = new_id("c")
            created, status = await campaigns.create(db, campaign, utcnow())
            return pb.CreateCampaignResponse(campaign=_message(created, status))

        return await self.idempotency.run(request, pb.CreateCampaignResponse, work)

    async def GetCampaign(self, request, context):
        async with self.database.reading() as db:
            campaign, status = await campaigns.get(db, request.campaign_id)
        return pb.GetCampaignResponse(campaign=_message(campaign, status))

    async def ListCampaigns(self, request, context):
        v = Violations()
        check_org_path(v, request.org_path, "org_path", required=False)
        status = enum_name(pb.CampaignStatus, "CAMPAIGN_STATUS", request.status)
        v.check(request.status == 0 or status is not None, "status", "STATUS_INVALID", "unknown status")
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.org_path, request.status)
        after = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        async with self.database.reading() as db:
            rows = await campaigns.list_under(db, request.org_path, Status(status) if status else None,
                                              after[0] if after else None, size + 1)
        page, token = pagination.next_page(rows, size, lambda row: [row[0]], fingerprint)
        return pb.ListCampaignsResponse(campaigns=[_message(c, s, cid) for cid, c, s in page], next_page_token=token)

    async def SetCampaignStatus(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.campaign_id), "campaign_id", "CAMPAIGN_ID_REQUIRED", "campaign_id is required")
        wanted = enum_name(pb.CampaignStatus, "CAMPAIGN_STATUS", request.status)
        v.check(wanted is not None, "status", "STATUS_INVALID", "status must be DRAFT, ACTIVE, PAUSED or ENDED")
        check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(db):
            campaign, status = await campaigns.set_status(db, request.campaign_id, Status(wanted), utcnow())
            self._active = (0.0, [])
            return pb.SetCampaignStatusResponse(campaign=_message(campaign, status))

        return await self.idempotency.run(request, pb.SetCampaignStatusResponse, work)

    async def CreateCouponTemplate(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        m = request.template
        kind = enum_name(pb.CouponKind, "COUPON_KIND", m.kind)
        v.check(kind is not None, "template.kind", "KIND_INVALID", "kind must be FIXED or PERCENTAGE")
        check_scope(v, m.org_path, "template.org_path")
        template = coupons.Template(
            "", m.name.strip(), pricing.CouponKind(kind or "FIXED"), m.amount_fen, m.rate_bp, m.cap_fen, m.threshold_fen,
            list(m.categories), m.org_path, from_timestamp(m.valid_from_time) if m.HasField("valid_from_time") else None,
            from_timestamp(m.valid_until_time) if m.HasField("valid_until_time") else None, m.valid_days, m.campaign_id)
        domain.check_template(v, template)
        _, actor_path = check_actor(v, request, required=False)
        v.raise_if_any()
        check_in_scope(m.org_path, actor_path, "template", "模板")

        async def work(db):
            template.template_id = new_id("ct")
            await coupons.create_template(db, template, utcnow())
            created = pb.CouponTemplate()
            created.CopyFrom(m)
            created.template_id = template.template_id
            return pb.CreateCouponTemplateResponse(template=created)

        return await self.idempotency.run(request, pb.CreateCouponTemplateResponse, work)

    async def GetCouponTemplate(self, request, context):
        v = Violations()
        v.check(is_id(request.template_id, "ct"), "template_id", "TEMPLATE_ID_INVALID",
                "template_id must be a template id such as ct_01J...")
        v.raise_if_any()
        async with self.database.reading() as db:
            t = await coupons.template_by_id(db, request.template_id)
        return pb.GetCouponTemplateResponse(template=pb.CouponTemplate(
            template_id=t.template_id, name=t.name, kind=enum_value(pb.CouponKind, "COUPON_KIND", t.kind.value),
            amount_fen=t.amount_fen, rate_bp=t.rate_bp, cap_fen=t.cap_fen, threshold_fen=t.threshold_fen,
            categories=t.categories, org_path=t.org_path, valid_from_time=timestamp(t.valid_from),
            valid_until_time=timestamp(t.valid_until), valid_days=t.valid_days, campaign_id=t.campaign_id))

    async def IssueCoupons(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.template_id), "template_id", "TEMPLATE_ID_REQUIRED", "template_id is required")
        v.check(0 < len(request.member_ids) <= 10_000, "member_ids", "MEMBERS_REQUIRED", "1 to 10000 member_ids")
        v.check(all(is_id(m, "m") for m in request.member_ids), "member_ids", "MEMBER_ID_INVALID",
                "every member_id must be a member id such as m_01J...")
        v.check(not request.batch_id or bool(REQUEST_ID.match(request.batch_id)), "batch_id", "BATCH_ID_INVALID",
                "batch_id is 1 to 64 letters, digits or . _ : -, as a request_id")
        check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(db):
            issued, skipped = await coupons.issue(db, template_id=request.template_id,
                                                  member_ids=list(request.member_ids), now=utcnow(),
                                                  batch_id=request.batch_id)
            return pb.IssueCouponsResponse(coupons=[_coupon(c) for c in issued], already_issued_member_ids=skipped)

        return await self.idempotency.run(request, pb.IssueCouponsResponse, work)

    async def IssueNewMemberGifts(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(is_id(request.member_id, "m"), "member_id", "MEMBER_ID_INVALID", "member_id must be a member id")
        check_org_path(v, request.home_store_path, "home_store_path")
        check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(db):
            given = await campaigns.give_new_member_gifts(db, request.member_id, list(request.tags),
                                                          request.home_store_path, utcnow())
            return pb.IssueNewMemberGiftsResponse(coupons=[_coupon(c) for c in given])

        return await self.idempotency.run(request, pb.IssueNewMemberGiftsResponse, work)

    async def ListMemberCoupons(self, request, context):
        v = Violations()
        v.check(is_id(request.member_id, "m"), "member_id", "MEMBER_ID_INVALID", "member_id must be a member id")
        state = enum_name(pb.CouponState, "COUPON_STATE", request.state)
        v.check(request.state == 0 or state is not None, "state", "STATE_INVALID", "unknown state")
        store = check_store_path(v, request.usable_at_store_path, "usable_at_store_path") if request.usable_at_store_path else ""
        node = check_org_path(v, request.usable_under_org_path, "usable_under_org_path", required=False)
        v.check(not (store and node), "usable_under_org_path", "USABLE_FILTERS_EXCLUSIVE",
                "give usable_at_store_path or usable_under_org_path, not both")
        usable = store or node
        v.check(not usable or state in (None, coupons.AVAILABLE), "state", "STATE_INVALID",
                "with usable_at_store_path or usable_under_org_path, state is unset or AVAILABLE")
        size = pagination.page_size(request.page_size, 50, 500, v)
        # Without a node, the fingerprint of before the field: page tokens in flight stay good.
        fingerprint = pagination.fingerprint(request.member_id, request.state, store, *([node] if node else []))
        before = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        async with self.database.reading() as db:
            rows = await coupons.of_member(db, request.member_id, coupons.AVAILABLE if usable else state,
                                           before[0] if before else None, size + 1, valid_at=utcnow() if usable else None)
        page, token = pagination.next_page(rows, size, lambda row: [row.coupon_id], fingerprint)
        # After the token is taken: a page may hold fewer, never skip one.
        if store:
            page = [row for row in page if coupons.usable_at(row, store)]
        elif node:
            page = [row for row in page if coupons.usable_under(row, node)]
        return pb.ListMemberCouponsResponse(coupons=[_coupon(r._asdict()) for r in page], next_page_token=token)

    async def ReserveCoupons(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(is_id(request.member_id, "m"), "member_id", "MEMBER_ID_INVALID", "member_id must be a member id")
        v.check(len(set(request.coupon_codes)) == len(request.coupon_codes) <= 20, "coupon_codes", "COUPON_CODES_INVALID",
                "at most 20 coupon codes, each once")
        v.check(bool(request.order_id), "order_id", "ORDER_ID_REQUIRED", "order_id is required")
        check_store_path(v, request.store_path, "store_path")
        ttl = check_ttl(v, request.ttl.ToTimedelta())
        _check_adjustments(v, request.adjustments)
        check_actor(v, request, required=False)
        v.raise_if_any()

        return await self.reservations.submit((request, coupons.ReserveAsk(
            new_id("rs"), request.member_id, list(request.coupon_codes), request.order_id, request.store_path, ttl,
            list(request.adjustments))))

    async def _reserve(self, items):
        async def work(db, asks):
            outcomes = await coupons.reserve_many(db, asks, utcnow())
            return [pb.ReserveCouponsResponse(reservation_id=ask.reservation_id, expire_time=timestamp(outcome))
                    if isinstance(outcome, datetime) else outcome for ask, outcome in zip(asks, outcomes)]

        return await self.idempotency.run_batch(items, pb.ReserveCouponsResponse, work)

    async def RedeemCoupons(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.reservation_id), "reservation_id", "RESERVATION_ID_REQUIRED", "reservation_id is required")
        check_actor(v, request, required=False)
        v.raise_if_any()

        return await self.redemptions.submit((request, request.reservation_id))

    async def _redeem(self, items):
        async def work(db, reservation_ids):
            return [pb.RedeemCouponsResponse(coupons=[pb.Coupon(coupon_code=c, state=pb.COUPON_STATE_REDEEMED) for c in codes])
                    if isinstance(codes, list) else codes for codes in await coupons.redeem_many(db, reservation_ids, utcnow())]

        return await self.idempotency.run_batch(items, pb.RedeemCouponsResponse, work)

    async def ReleaseCoupons(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.reservation_id), "reservation_id", "RESERVATION_ID_REQUIRED", "reservation_id is required")
        check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(db):
            codes = await coupons.release(db, request.reservation_id, utcnow())
            return pb.ReleaseCouponsResponse(coupons=[pb.Coupon(coupon_code=c, state=pb.COUPON_STATE_AVAILABLE) for c in codes])

        return await self.idempotency.run(request, pb.ReleaseCouponsResponse, work)

    async def ReturnDiscounts(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.order_id), "order_id", "ORDER_ID_REQUIRED", "order_id is required")
        v.check(bool(request.adjustments), "adjustments", "ADJUSTMENTS_REQUIRED", "name what is given back")
        _check_adjustments(v, request.adjustments)
        check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(db):
            returned = await coupons.return_discounts(db, request.order_id, await coupons.by_campaign(db, request.adjustments))
            return pb.ReturnDiscountsResponse(returns=[pb.CampaignReturn(campaign_id=c, amount_fen=a)
                                                       for c, a in sorted(returned.items())])

        return await self.idempotency.run(request, pb.ReturnDiscountsResponse, work)

    async def GetCampaignStats(self, request, context):
        async with self.database.reading() as db:
            row, budget = await coupons.stats(db, request.campaign_id)
        given = row.discount_fen if row else 0
        reserved = row.reserved_fen if row else 0
        return pb.GetCampaignStatsResponse(
            orders=row.orders if row else 0, discount_fen=given, budget_left_fen=budget - given - reserved if budget else -1,
            coupons_issued=row.coupons_issued if row else 0, coupons_redeemed=row.coupons_redeemed if row else 0)


def _coupon(c) -> pb.Coupon:
    """A coupon; with its template's name and terms where the row carries the template's body."""
    body = c.get("body")
    return pb.Coupon(coupon_code=c["coupon_code"], template_id=c["template_id"], member_id=c["member_id"],
                     state=enum_value(pb.CouponState, "COUPON_STATE", c["state"]),
                     valid_from_time=timestamp(c["valid_from_time"]), valid_until_time=timestamp(c["valid_until_time"]),
                     name=body["name"] if body else "", terms=coupons.terms(body) if body else "")


def _check_adjustments(v: Violations, adjustments) -> None:
    for i, a in enumerate(adjustments):
        v.check(a.amount_fen > 0, f"adjustments[{i}].amount_fen", "AMOUNT_INVALID", "amount_fen must be > 0")
        v.check(not (a.campaign_id and a.coupon_code), f"adjustments[{i}]", "ADJUSTMENT_INVALID",
                "an adjustment is a campaign's or a coupon's, not both (the tier price is neither)")
