"""CampaignService: checks the request's shape, runs one use case, translates. No rule
lives here: domain/ prices and checks configuration, use_cases/ keep the state."""

from datetime import datetime

from huiyuan.campaign.v1 import campaign_pb2 as pb, campaign_pb2_grpc
from huiyuan.database import Batcher, Idempotency
from huiyuan.runtime import pagination
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.convert import enum_name, from_timestamp, timestamp
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.holds import check_ttl
from huiyuan.runtime.ids import is_id, new_id
from huiyuan.runtime.requests import (
    REQUEST_ID,
    check_actor,
    check_in_scope,
    check_member_id,
    check_org_path,
    check_request_id,
    check_scope,
    check_store_path,
)
from huiyuan.runtime.server import ServiceContext
from services.campaign.domain import campaigns as rules
from services.campaign.domain.campaigns import Status
from services.campaign.domain.coupons import AVAILABLE, check_template
from services.campaign.domain.pricing import MAX_DISCOUNTS
from services.campaign.domain.reservations import ReserveAsk
from services.campaign.servicers import messages
from services.campaign.use_cases import (
    campaigns,
    issuing,
    member_coupons,
    new_member_gifts,
    quotes,
    redemptions,
    reservations,
    returns,
    stats,
    templates,
)


class CampaignServicer(campaign_pb2_grpc.CampaignServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency, max_discounts: int = MAX_DISCOUNTS):
        self.database = ctx.database
        self.idempotency = idempotency
        self.quotes = quotes.Quotes(self.database, max_discounts)
        # Reservations and redemptions that arrive together run in one transaction (group
        # commit): a campaign's stats row, which every checkout adds to, is added to once.
        self.reservations = Batcher(self._reserve)
        self.redemptions = Batcher(self._redeem)

    async def Quote(self, request, context):
        v = Violations()
        member, lines, at = messages.order(v, request)
        v.raise_if_any()
        return messages.quote_message(
            await self.quotes.quote(lines, member, request.store_path, at, list(request.coupon_codes))
        )

    async def Simulate(self, request, context):
        v = Violations()
        v.check(bool(request.campaign_id), "campaign_id", "CAMPAIGN_ID_REQUIRED", "campaign_id is required")
        member, lines, at = messages.order(v, request.order, "order.")
        v.raise_if_any()
        quoted = await self.quotes.simulate(
            request.campaign_id, lines, member, request.order.store_path, at, list(request.order.coupon_codes)
        )
        return pb.SimulateResponse(quote=messages.quote_message(quoted))

    async def CreateCampaign(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        m = request.campaign
        v.check(
            enum_name(pb.CampaignKind, "CAMPAIGN_KIND", m.kind) is not None,
            "campaign.kind",
            "KIND_INVALID",
            "kind is required",
        )
        check_scope(v, m.org_path, "campaign.org_path")
        campaign = messages.campaign(m)
        rules.check_campaign(v, campaign)
        if m.kind in pb.CampaignKind.values() and m.kind:  # campaign_id and status are output only (AIP-203)
            rules.check_kind_fields(v, campaign.kind, {f.name for f, _ in m.ListFields()} - {"campaign_id", "status"})
        _, actor_path = check_actor(v, request, required=False)
        v.raise_if_any()
        check_in_scope(m.org_path, actor_path, "campaign", "活动")

        async def work(tx):
            campaign.campaign_id = new_id("c")
            created, status = await campaigns.create(tx, campaign, utcnow())
            return pb.CreateCampaignResponse(campaign=messages.campaign_message(created, status))

        return await self.idempotency.run(request, pb.CreateCampaignResponse, work)

    async def GetCampaign(self, request, context):
        campaign, status = await campaigns.get(self.database, request.campaign_id)
        return pb.GetCampaignResponse(campaign=messages.campaign_message(campaign, status))

    async def ListCampaigns(self, request, context):
        v = Violations()
        check_org_path(v, request.org_path, "org_path", required=False)
        status = enum_name(pb.CampaignStatus, "CAMPAIGN_STATUS", request.status)
        v.check(request.status == 0 or status is not None, "status", "STATUS_INVALID", "unknown status")
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.org_path, request.status)
        after = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        rows = await campaigns.list_under(
            self.database, request.org_path, Status(status) if status else None, after[0] if after else None, size + 1
        )
        page, token = pagination.next_page(rows, size, lambda row: [row[0]], fingerprint)
        return pb.ListCampaignsResponse(
            campaigns=[messages.campaign_message(c, s, cid) for cid, c, s in page], next_page_token=token
        )

    async def SetCampaignStatus(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.campaign_id), "campaign_id", "CAMPAIGN_ID_REQUIRED", "campaign_id is required")
        wanted = enum_name(pb.CampaignStatus, "CAMPAIGN_STATUS", request.status)
        v.check(wanted is not None, "status", "STATUS_INVALID", "status must be DRAFT, ACTIVE, PAUSED or ENDED")
        check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(tx):
            campaign, status = await campaigns.set_status(
                tx, request.campaign_id, Status(wanted), utcnow(), self.quotes.active
            )
            return pb.SetCampaignStatusResponse(campaign=messages.campaign_message(campaign, status))

        return await self.idempotency.run(request, pb.SetCampaignStatusResponse, work)

    async def RescheduleCampaign(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.campaign_id), "campaign_id", "CAMPAIGN_ID_REQUIRED", "campaign_id is required")
        start = from_timestamp(request.start_time) if request.HasField("start_time") else None
        end = from_timestamp(request.end_time) if request.HasField("end_time") else None
        if start and end:
            v.check(start < end, "end_time", "SCHEDULE_REVERSED", "end_time must be after start_time")
        check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(tx):
            campaign, status = await campaigns.reschedule(
                tx, request.campaign_id, start, end, utcnow(), self.quotes.active
            )
            return pb.RescheduleCampaignResponse(campaign=messages.campaign_message(campaign, status))

        return await self.idempotency.run(request, pb.RescheduleCampaignResponse, work)

    async def CreateCouponTemplate(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        m = request.template
        kind = enum_name(pb.CouponKind, "COUPON_KIND", m.kind)
        v.check(kind is not None, "template.kind", "KIND_INVALID", "kind must be FIXED or PERCENTAGE")
        check_scope(v, m.org_path, "template.org_path")
        template = messages.template(m, kind)
        check_template(v, template)
        _, actor_path = check_actor(v, request, required=False)
        v.raise_if_any()
        check_in_scope(m.org_path, actor_path, "template", "模板")

        async def work(tx):
            template.template_id = new_id("ct")
            await templates.create(tx, template, utcnow())
            created = pb.CouponTemplate()
            created.CopyFrom(m)
            created.template_id = template.template_id
            return pb.CreateCouponTemplateResponse(template=created)

        return await self.idempotency.run(request, pb.CreateCouponTemplateResponse, work)

    async def GetCouponTemplate(self, request, context):
        v = Violations()
        v.check(
            is_id(request.template_id, "ct"),
            "template_id",
            "TEMPLATE_ID_INVALID",
            "template_id must be a template id such as ct_01J...",
        )
        v.raise_if_any()
        template = await templates.get(self.database, request.template_id)
        return pb.GetCouponTemplateResponse(template=messages.template_message(template))

    async def ListCouponTemplates(self, request, context):
        v = Violations()
        check_org_path(v, request.org_path, "org_path", required=False)
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.org_path)
        after = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        rows = await templates.list_under(self.database, request.org_path, after[0] if after else None, size + 1)
        page, token = pagination.next_page(rows, size, lambda t: [t.template_id], fingerprint)
        return pb.ListCouponTemplatesResponse(
            templates=[messages.template_message(t) for t in page], next_page_token=token
        )

    async def IssueCoupons(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.template_id), "template_id", "TEMPLATE_ID_REQUIRED", "template_id is required")
        v.check(0 < len(request.member_ids) <= 10_000, "member_ids", "MEMBERS_REQUIRED", "1 to 10000 member_ids")
        v.check(
            all(is_id(m, "m") for m in request.member_ids),
            "member_ids",
            "MEMBER_ID_INVALID",
            "every member_id must be a member id such as m_01J...",
        )
        v.check(
            not request.batch_id or bool(REQUEST_ID.match(request.batch_id)),
            "batch_id",
            "BATCH_ID_INVALID",
            "batch_id is 1 to 64 letters, digits or . _ : -, as a request_id",
        )
        _, actor_path = check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(tx):
            issued, skipped = await issuing.issue(
                tx,
                template_id=request.template_id,
                member_ids=list(request.member_ids),
                now=utcnow(),
                batch_id=request.batch_id,
                issue_path=actor_path or "",
            )
            return pb.IssueCouponsResponse(
                coupons=[messages.coupon_message(c) for c in issued], already_issued_member_ids=skipped
            )

        return await self.idempotency.run(request, pb.IssueCouponsResponse, work)

    async def IssueNewMemberGifts(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_member_id(v, request.member_id)
        check_org_path(v, request.home_store_path, "home_store_path")
        check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(tx):
            given = await new_member_gifts.give(
                tx, request.member_id, list(request.tags), request.home_store_path, utcnow()
            )
            return pb.IssueNewMemberGiftsResponse(coupons=[messages.coupon_message(c) for c in given])

        return await self.idempotency.run(request, pb.IssueNewMemberGiftsResponse, work)

    async def ListMemberCoupons(self, request, context):
        v = Violations()
        check_member_id(v, request.member_id)
        state = enum_name(pb.CouponState, "COUPON_STATE", request.state)
        v.check(request.state == 0 or state is not None, "state", "STATE_INVALID", "unknown state")
        store = (
            check_store_path(v, request.usable_at_store_path, "usable_at_store_path")
            if request.usable_at_store_path
            else ""
        )
        node = check_org_path(v, request.usable_under_org_path, "usable_under_org_path", required=False)
        v.check(
            not (store and node),
            "usable_under_org_path",
            "USABLE_FILTERS_EXCLUSIVE",
            "give usable_at_store_path or usable_under_org_path, not both",
        )
        usable = bool(store or node)
        v.check(
            not usable or state in (None, AVAILABLE),
            "state",
            "STATE_INVALID",
            "with usable_at_store_path or usable_under_org_path, state is unset or AVAILABLE",
        )
        size = pagination.page_size(request.page_size, 50, 500, v)
        # Without a node, the fingerprint of before the field: page tokens in flight stay good.
        fingerprint = pagination.fingerprint(request.member_id, request.state, store, *([node] if node else []))
        before = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        rows = await member_coupons.listed(
            self.database, request.member_id, state, usable, before[0] if before else None, size + 1, utcnow()
        )
        page, token = pagination.next_page(rows, size, lambda c: [c.coupon_id], fingerprint)
        page = member_coupons.usable(page, store, node)  # after the token is taken (see there)
        return pb.ListMemberCouponsResponse(coupons=[messages.coupon_message(c) for c in page], next_page_token=token)

    async def ReserveCoupons(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_member_id(v, request.member_id)
        v.check(
            len(set(request.coupon_codes)) == len(request.coupon_codes) <= 20,
            "coupon_codes",
            "COUPON_CODES_INVALID",
            "at most 20 coupon codes, each once",
        )
        v.check(bool(request.order_id), "order_id", "ORDER_ID_REQUIRED", "order_id is required")
        check_store_path(v, request.store_path, "store_path")
        ttl = check_ttl(v, request.ttl.ToTimedelta())
        messages.check_adjustments(v, request.adjustments)
        v.check(request.payable_fen >= 0, "payable_fen", "PAYABLE_INVALID", "payable_fen is not negative")
        check_actor(v, request, required=False)
        v.raise_if_any()

        return await self.reservations.submit(
            (
                request,
                ReserveAsk(
                    new_id("rs"),
                    request.member_id,
                    list(request.coupon_codes),
                    request.order_id,
                    request.store_path,
                    ttl,
                    list(request.adjustments),
                    request.payable_fen,
                ),
            )
        )

    async def _reserve(self, items):
        async def work(tx, asks):
            outcomes = await reservations.reserve_many(tx, asks, utcnow())
            return [
                pb.ReserveCouponsResponse(reservation_id=ask.reservation_id, expire_time=timestamp(outcome))
                if isinstance(outcome, datetime)
                else outcome
                for ask, outcome in zip(asks, outcomes)
            ]

        return await self.idempotency.run_batch(items, pb.ReserveCouponsResponse, work)

    async def RedeemCoupons(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.reservation_id), "reservation_id", "RESERVATION_ID_REQUIRED", "reservation_id is required")
        check_actor(v, request, required=False)
        v.raise_if_any()

        return await self.redemptions.submit((request, request.reservation_id))

    async def _redeem(self, items):
        async def work(tx, reservation_ids):
            return [
                pb.RedeemCouponsResponse(
                    coupons=[pb.Coupon(coupon_code=c, state=pb.COUPON_STATE_REDEEMED) for c in codes]
                )
                if isinstance(codes, list)
                else codes
                for codes in await redemptions.redeem_many(tx, reservation_ids, utcnow())
            ]

        return await self.idempotency.run_batch(items, pb.RedeemCouponsResponse, work)

    async def ReleaseCoupons(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.reservation_id), "reservation_id", "RESERVATION_ID_REQUIRED", "reservation_id is required")
        check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(tx):
            codes = await reservations.release(tx, request.reservation_id, utcnow())
            return pb.ReleaseCouponsResponse(
                coupons=[pb.Coupon(coupon_code=c, state=pb.COUPON_STATE_AVAILABLE) for c in codes]
            )

        return await self.idempotency.run(request, pb.ReleaseCouponsResponse, work)

    async def ReturnDiscounts(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.order_id), "order_id", "ORDER_ID_REQUIRED", "order_id is required")
        v.check(bool(request.adjustments), "adjustments", "ADJUSTMENTS_REQUIRED", "name what is given back")
        messages.check_adjustments(v, request.adjustments)
        check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(tx):
            returned = await returns.give_back(tx, request.order_id, list(request.adjustments), utcnow())
            return pb.ReturnDiscountsResponse(
                returns=[pb.CampaignReturn(campaign_id=c, amount_fen=a) for c, a in sorted(returned.items())]
            )

        return await self.idempotency.run(request, pb.ReturnDiscountsResponse, work)

    async def GetCampaignStats(self, request, context):
        s = await stats.of_campaign(self.database, request.campaign_id)
        return pb.GetCampaignStatsResponse(
            orders=s.orders,
            discount_fen=s.discount_fen,
            budget_left_fen=s.budget_left_fen,
            coupons_issued=s.coupons_issued,
            coupons_redeemed=s.coupons_redeemed,
        )
