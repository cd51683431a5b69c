"""GatewayService: who is calling, may they, then the services' calls.

Credentials, LookupMember (member, stored value, points, coupons and count cards in one
answer),
RegisterMember, TopUp (gateway/top_ups.py), Checkout (the saga, gateway/checkout.py), GetOrder and
ListOrders, SettleOrder (gateway/settlement.py), Refund (gateway/refunds.py), the
store's daily summary, coupons for a segment (gateway/segments.py), enterprise
batch top-ups (gateway/batches.py) and the audit trail (gateway/audit.py)."""

import asyncio
import logging
from datetime import timedelta

from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.gateway.v1 import gateway_pb2_grpc
from huiyuan.member.v1 import care_pb2_grpc, payment_pin_pb2_grpc
from huiyuan.member.v1 import card_pb2, card_pb2_grpc, member_pb2, member_pb2_grpc, org_pb2, org_pb2_grpc, tier_pb2_grpc
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.runtime import clients
from huiyuan.runtime.clock import day_start
from huiyuan.runtime.convert import calendar_date, enum_name, timestamp
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import DomainError, Internal, Unavailable, Violations
from huiyuan.database.idempotency import Idempotency, check_request_id
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.requests import check_org_path
from huiyuan.runtime.server import ServiceContext
from huiyuan.wallet.v1 import count_card_pb2, count_card_pb2_grpc, wallet_pb2, wallet_pb2_grpc
from gateway import audit, auth, batches, checkout, orders, refunds, reports, segments, settlement, top_ups
from gateway.auth import BACK_OFFICE_ROLES, STORE_ROLES, Authenticator, Role
from gateway.limits import TokenBuckets
from gateway.leases import LEASE_S
from gateway.relay import LONG_CALL_S, derived_id, passed_on_deadline, relayed
from gateway.storage import api_keys

log = logging.getLogger("huiyuan.gateway")


class Services:
    """Stubs of the services, on channels with the gateway's service token and a
    deadline on every call."""

    def __init__(self, timeout_s: float, identity):
        member_channel = clients.channel("member", timeout_s, identity)
        self.member = member_pb2_grpc.MemberServiceStub(member_channel)
        self.cards = card_pb2_grpc.CardServiceStub(member_channel)
        self.org = org_pb2_grpc.OrgServiceStub(member_channel)
        self.tiers = tier_pb2_grpc.TierServiceStub(member_channel)
        self.care = care_pb2_grpc.CareServiceStub(member_channel)
        self.pins = payment_pin_pb2_grpc.PaymentPinServiceStub(member_channel)
        wallet_channel = clients.channel("wallet", timeout_s, identity)
        self.wallet = wallet_pb2_grpc.WalletServiceStub(wallet_channel)
        self.count_cards = count_card_pb2_grpc.CountCardServiceStub(wallet_channel)
        self.points = points_pb2_grpc.PointsServiceStub(clients.channel("points", timeout_s, identity))
        self.campaign = campaign_pb2_grpc.CampaignServiceStub(clients.channel("campaign", timeout_s, identity))


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency, services: Services, lookups: TokenBuckets):
        self.lookups = lookups  # member lookups and PIN tries, per key (gateway/limits.py)
        self.engine = ctx.engine
        self.database = ctx.database  # orders, their saga logs and their reads (exports stream through engine)
        self.idempotency = idempotency
        self.auth = Authenticator(ctx.database, api_keys)
        self.services = services
        self.member, self.cards, self.wallet = services.member, services.cards, services.wallet
        self.points, self.campaign = services.points, services.campaign

    async def Checkout(self, request, context):
        caller = await self.auth.caller(context, STORE_ROLES)
        v = Violations()
        orders.check(v, request)
        v.raise_if_any()
        if request.payment_pin:  # six digits are tried as phone numbers are (gateway/limits.py)
            self.lookups.take(caller.key_id)
        # A retry while another run works on the order waits for its answer, within its own deadline.
        return await orders.checkout(self.services, self.database, caller, request,
                                     max(0.0, passed_on_deadline(context, LEASE_S) - 0.2))

    async def PriceOrder(self, request, context):
        caller = await self.auth.caller(context, STORE_ROLES)
        v = Violations()
        orders.check_order(v, request)
        v.raise_if_any()
        return await checkout.price(self.services, request, caller.store_path)

    async def Refund(self, request, context):
        caller = await self.auth.caller(context, STORE_ROLES)
        v = Violations()
        refunds.check(v, request)
        v.raise_if_any()
        return await refunds.refund(self.services, self.database, caller, request,
                                    max(0.0, passed_on_deadline(context, LEASE_S) - 0.2))

    async def GetStoreDailySummary(self, request, context):
        """The store's day, fanned out: orders from the gateway's own book, stored value
        and points from their services, new members from the member service."""
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES)
        v = Violations()
        store = caller.store_asked(v, request.store_path, "which store's day")
        day = calendar_date(request.date)
        v.check(day is not None, "date", "DATE_INVALID", "date must be a full calendar date")
        v.raise_if_any()
        if not caller.covers(store):
            raise auth.denied()
        start, end = day_start(day), day_start(day + timedelta(days=1))
        day_request = {"store_path": store, "date": request.date}
        async with relayed("wallet, points or member"):
            stored, points, new_members, paid = await asyncio.gather(
                self.wallet.GetStoreActivity(wallet_pb2.GetStoreActivityRequest(**day_request)),
                self.points.GetStoreActivity(points_pb2.GetStoreActivityRequest(**day_request)),
                self._count_new_members(store, start, end),
                reports.store_day(self.database, store, start, end))
        return pb.GetStoreDailySummaryResponse(
            orders=paid.orders, sales_fen=paid.sales, discount_fen=paid.discount, top_up_fen=stored.top_up_fen,
            stored_value_spent_fen=stored.spent_fen, points_earned=points.earned_points, points_spent=points.spent_points,
            new_members=new_members, top_up_bonus_fen=stored.bonus_fen, store_path=store,
            count_card_sold_fen=stored.count_card_sold_fen, count_card_used_fen=stored.count_card_used_fen,
            **reports.takings(paid, stored.top_up_takings))

    async def ExportOrders(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES)
        async for chunk in reports.export_orders(self.engine, self.services.org, caller, request):
            yield chunk

    async def _count_new_members(self, store_path: str, start, end) -> int:
        return await segments.count_members(self.member, member_pb2.MemberFilter(
            org_path=store_path, registered_after=timestamp(start), registered_before=timestamp(end)))

    async def GetOrder(self, request, context):
        caller = await self.auth.caller(context)
        found = await orders.get_order(self.database, caller, request.order_id)
        return pb.GetOrderResponse(state=found.state, receipt=found.receipt if found.HasField("receipt") else None,
                                   refused_steps=found.refused_steps)

    async def ListOrders(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES)
        return await orders.list_orders(self.database, caller, request)

    async def SettleOrder(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES)
        v = Violations()
        settlement.check(v, request)
        v.raise_if_any()
        return pb.SettleOrderResponse(order=await settlement.settle(self.services, self.database, caller, request))

    async def LookupMember(self, request, context):
        caller = await self.auth.caller(context)
        key = request.WhichOneof("key")
        v = Violations()
        v.check(key is not None, "key", "LOOKUP_KEY_REQUIRED", "give card_number, phone or qr_token")
        v.raise_if_any()
        self.lookups.take(caller.key_id)
        async with relayed("member"):
            found = await self.member.LookupMember(member_pb2.LookupMemberRequest(
                purpose=member_pb2.LOOKUP_PURPOSE_PAYMENT, **{key: getattr(request, key)},
                # a till sees what it needs to serve the member; its manager and the offices, all
                view=member_pb2.MEMBER_VIEW_COUNTER if caller.role == Role.TERMINAL else member_pb2.MEMBER_VIEW_FULL))
        member_id = found.member.member_id
        async with relayed("wallet, points or campaign"):
            stored, points, coupons, count_cards = await asyncio.gather(
                self.wallet.GetBalance(wallet_pb2.GetBalanceRequest(member_id=member_id)),
                self.points.GetBalance(points_pb2.GetBalanceRequest(member_id=member_id)),
                self.campaign.ListMemberCoupons(campaign_pb2.ListMemberCouponsRequest(  # a till's screen: one page
                    member_id=member_id, state=campaign_pb2.COUPON_STATE_AVAILABLE,
                    # at a store, those usable there; above it, those usable somewhere in its scope
                    **({"usable_at_store_path": caller.store_path} if caller.store_path
                       else {"usable_under_org_path": caller.org_path}))),
                self._usable_count_cards(member_id, caller.store_path))
        return pb.LookupMemberResponse(
            member=found.member, card=found.presented_card if found.HasField("presented_card") else None,
            tier=found.tier if found.HasField("tier") else None,
            stored_value_available_fen=stored.balance.available_fen, points_available=points.balance.available_points,
            usable_coupon_codes=[c.coupon_code for c in coupons.coupons], usable_coupons=coupons.coupons,
            usable_count_cards=count_cards)

    async def _usable_count_cards(self, member_id: str, store_path: str) -> list:
        """A member's count cards usable at the store now; above a store, none is (a back
        office reads a member's cards with CountCardService.ListCountCards)."""
        if not store_path:
            return []
        request = count_card_pb2.ListCountCardsRequest(member_id=member_id, usable_at_store_path=store_path,
                                                       page_size=500)  # the most the wallet gives
        found = []
        while True:  # every one, page after page (one page but for a rare member)
            page = await self.services.count_cards.ListCountCards(request)
            found += page.cards
            if not page.next_page_token:
                return found
            request.page_token = page.next_page_token

    async def RegisterMember(self, request, context):
        caller = await self.auth.caller(context, STORE_ROLES)
        v = Violations()
        check_request_id(v, request.request_id)
        v.raise_if_any()
        async with relayed("member"):
            registered = await self.member.RegisterMember(member_pb2.RegisterMemberRequest(
                request_id=derived_id(caller.key_id, request.request_id, "register"), member=request.member,
                channel=member_pb2.REGISTRATION_CHANNEL_STORE, actor=caller.actor))
            card = None
            if request.card_type_id:
                card = (await self.cards.IssueCard(card_pb2.IssueCardRequest(
                    request_id=derived_id(caller.key_id, request.request_id, "card"),
                    member_id=registered.member.member_id, card_type_id=request.card_type_id,
                    card_number=request.card_number, actor=caller.actor))).card
        member = registered.member
        try:
            async with relayed("campaign"):  # after the registration: a retry registers nobody twice, then gives
                gifts = (await self.campaign.IssueNewMemberGifts(campaign_pb2.IssueNewMemberGiftsRequest(
                    request_id=derived_id(caller.key_id, request.request_id, "gifts"), member_id=member.member_id,
                    home_store_path=member.home_store_path, tags=member.tags, actor=caller.actor))).coupons
        except (Unavailable, Internal):  # the same request again gives them
            raise
        except DomainError as refusal:  # a budget spent meanwhile: the member is registered, without that gift
            log.warning("new-member gifts refused", extra={"member_id": member.member_id, "reason": refusal.reason})
            gifts = []
        await audit.record(self.database, caller, "RegisterMember", request, member.member_id, member.home_store_path)
        return pb.RegisterMemberResponse(member=member, card=card, gift_coupons=gifts)

    async def TopUp(self, request, context):
        caller = await self.auth.caller(context, STORE_ROLES)
        v = Violations()
        top_ups.check(v, request)
        v.raise_if_any()
        return await top_ups.top_up(self.services, caller, request)

    async def BatchTopUp(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES)
        v = Violations()
        store, xlsx = batches.check(v, request, caller)
        v.raise_if_any()
        answer = await batches.top_up(self.services, self.idempotency, caller, request, store, xlsx,
                                      passed_on_deadline(context, LONG_CALL_S))
        await audit.record(self.database, caller, "BatchTopUp", request, request.batch_id, store)
        return answer

    async def IssueSegmentCoupons(self, request, context):
        caller = await self.auth.caller(context, segments.ISSUE.roles)
        v = Violations()
        segments.check(v, request)
        v.raise_if_any()
        answer = await segments.issue(self.services, self.idempotency, caller, request)
        if not request.validate_only:
            await audit.record(self.database, caller, "IssueSegmentCoupons", request, request.template_id,
                               request.segment.org_path or caller.org_path)
        return answer

    async def ListAuditEntries(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES)
        return await audit.list_entries(self.database, caller, request)

    async def IssueApiKey(self, request, context):
        caller = await self.auth.caller(context, {Role.HQ_ADMIN})
        v = Violations()
        check_request_id(v, request.request_id)
        check_org_path(v, request.org_path, "org_path")
        role = enum_name(pb.Role, "ROLE", request.role)
        v.check(role is not None, "role", "ROLE_INVALID", "role is required")
        v.check(len(request.label) <= 64, "label", "TOO_LONG", "label is at most 64 characters")
        v.raise_if_any()
        refusal = auth.binding_refusal(request.org_path, Role(role), await self._node_kind(request.org_path))
        if refusal is not None:
            raise refusal

        async def work(db):
            key_id = new_id("k")
            key = await auth.issue(db, api_keys, key_id=key_id, org_path=request.org_path, role=Role(role),
                                   label=request.label.strip(), now=utcnow())
            await audit.record_in(db, caller, "IssueApiKey", request, key_id, request.org_path)
            return pb.IssueApiKeyResponse(key_id=key_id, api_key=key)

        answer = await self.idempotency.run(request, pb.IssueApiKeyResponse, work)
        # kept without the key (huiyuan/runtime/secrets.py): a replay answers without it
        answer.secret_shown_before = not answer.api_key
        return answer

    async def _node_kind(self, path: str) -> str | None:
        """The kind of the org node at path (HQ, REGION, STORE, TERMINAL), None if none is."""
        try:
            async with relayed("member"):
                node = (await self.services.org.GetOrgNode(org_pb2.GetOrgNodeRequest(path=path))).org_node
        except DomainError as error:
            if error.reason == "ORG_NODE_NOT_FOUND":
                return None
            raise
        return enum_name(org_pb2.OrgNodeKind, "ORG_NODE_KIND", node.kind)

    async def RevokeApiKey(self, request, context):
        caller = await self.auth.caller(context, {Role.HQ_ADMIN})
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.key_id), "key_id", "KEY_ID_REQUIRED", "key_id is required")
        v.raise_if_any()

        async def work(db):
            revoked, org_path = await auth.revoke(db, api_keys, request.key_id, utcnow())
            await audit.record_in(db, caller, "RevokeApiKey", request, request.key_id, org_path)
            return pb.RevokeApiKeyResponse(revoke_time=timestamp(revoked))

        return await self.idempotency.run(request, pb.RevokeApiKeyResponse, work)
