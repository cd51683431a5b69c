"""GatewayService: who is calling, may they, then the services' calls.

Credentials, LookupMember (member, stored value, points, coupons and count cards in one
answer),
RegisterMember, TopUp (use_cases/top_ups.py), Checkout (the saga, use_cases/checkout.py),
GetOrder and ListOrders (use_cases/orders.py), SettleOrder (use_cases/settlement.py),
Refund (use_cases/refunds.py), the store's daily summary (use_cases/reports.py), coupons
for a segment (use_cases/segments.py), enterprise batch top-ups (use_cases/batches.py),
the audit trail (use_cases/audit.py) and keys (use_cases/api_keys.py)."""

import asyncio
import logging
from datetime import timedelta

from gateway.domain.callers import BACK_OFFICE_ROLES, STORE_ROLES, Role, binding_refusal, denied
from gateway.domain.limits import TokenBuckets
from gateway.servicers import checks
from gateway.servicers.auth import Authenticator
from gateway.use_cases import (api_keys, audit, batches, checkout, decisions, orders, refunds, reports, segments,
                               settlement, top_ups)
from gateway.use_cases.leases import LEASE_S
from gateway.use_cases.relay import LONG_CALL_S, Services, actor_of, derived_id, passed_on_deadline, relayed
from huiyuan.campaign.v1 import campaign_pb2
from huiyuan.database import Idempotency
from huiyuan.database.idempotency import check_request_id
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.gateway.v1 import gateway_pb2_grpc
from huiyuan.member.v1 import card_pb2, member_pb2, org_pb2
from huiyuan.points.v1 import points_pb2
from huiyuan.runtime.clock import day_start, utcnow
from huiyuan.runtime.convert import calendar_date, enum_name, timestamp
from huiyuan.runtime.errors import DomainError, Internal, Unavailable, Violations
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.requests import check_org_path
from huiyuan.runtime.server import ServiceContext
from huiyuan.wallet.v1 import count_card_pb2, wallet_pb2

log = logging.getLogger("huiyuan.gateway")


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency, services: Services, lookups: TokenBuckets):
        self.lookups = lookups  # member lookups and PIN tries, per key (gateway/domain/limits.py)
        self.engine = ctx.engine
        self.database = ctx.database  # orders, their saga logs and their reads (exports stream through engine)
        self.idempotency = idempotency
        self.auth = Authenticator(ctx.database)
        self.services = services
        self.member, self.cards, self.wallet = services.member, services.cards, services.wallet
        self.points, self.campaign = services.points, services.campaign

    async def Checkout(self, request, context):
        caller = await self.auth.caller(context, STORE_ROLES)
        v = Violations()
        checks.checkout(v, request)
        v.raise_if_any()
        if request.payment_pin:  # six digits are tried as phone numbers are (gateway/domain/limits.py)
            self.lookups.take(caller.key_id)
        # A retry while another run works on the order waits for its answer, within its own deadline.
        return await checkout.checkout(self.services, self.database, caller, request,
                                     max(0.0, passed_on_deadline(context, LEASE_S) - 0.2))

    async def PriceOrder(self, request, context):
        caller = await self.auth.caller(context, STORE_ROLES)
        v = Violations()
        checks.order(v, request)
        v.raise_if_any()
        return await decisions.price(self.services, request, caller.store_path)

    async def Refund(self, request, context):
        caller = await self.auth.caller(context, STORE_ROLES)
        v = Violations()
        checks.refund(v, request)
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
            raise denied()
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
        v = Violations()
        node, start, end, state, xlsx = checks.export(v, request)
        v.raise_if_any()
        async for chunk in reports.export_orders(self.engine, self.services.org, caller, node, start, end, state, xlsx):
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
        v = Violations()
        node, state, size, before, fingerprint = checks.order_list(v, request, caller)
        v.raise_if_any()
        return await orders.list_orders(self.database, caller, node, state, size, before, fingerprint)

    async def SettleOrder(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES)
        v = Violations()
        checks.settlement(v, request)
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
                channel=member_pb2.REGISTRATION_CHANNEL_STORE, actor=actor_of(caller)))
            card = None
            if request.card_type_id:
                card = (await self.cards.IssueCard(card_pb2.IssueCardRequest(
                    request_id=derived_id(caller.key_id, request.request_id, "card"),
                    member_id=registered.member.member_id, card_type_id=request.card_type_id,
                    card_number=request.card_number, actor=actor_of(caller)))).card
        member = registered.member
        try:
            async with relayed("campaign"):  # after the registration: a retry registers nobody twice, then gives
                gifts = (await self.campaign.IssueNewMemberGifts(campaign_pb2.IssueNewMemberGiftsRequest(
                    request_id=derived_id(caller.key_id, request.request_id, "gifts"), member_id=member.member_id,
                    home_store_path=member.home_store_path, tags=member.tags, actor=actor_of(caller)))).coupons
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
        checks.top_up(v, request)
        v.raise_if_any()
        return await top_ups.top_up(self.services, caller, request)

    async def BatchTopUp(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES)
        v = Violations()
        store, xlsx = checks.batch_top_up(v, request, caller)
        v.raise_if_any()
        answer = await batches.top_up(self.services, self.idempotency, caller, request, store, xlsx,
                                      passed_on_deadline(context, LONG_CALL_S))
        await audit.record(self.database, caller, "BatchTopUp", request, request.batch_id, store)
        return answer

    async def IssueSegmentCoupons(self, request, context):
        caller = await self.auth.caller(context, segments.ISSUE.roles)
        v = Violations()
        checks.segment_coupons(v, request)
        v.raise_if_any()
        answer = await segments.issue(self.services, self.idempotency, caller, request)
        if not request.validate_only:
            await audit.record(self.database, caller, "IssueSegmentCoupons", request, request.template_id,
                               request.segment.org_path or caller.org_path)
        return answer

    async def ListAuditEntries(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES)
        v = Violations()
        node, start, end, size, before, fingerprint = checks.audit_list(v, request, caller)
        v.raise_if_any()
        return await audit.list_entries(self.database, caller, request, node, start, end, size, before, fingerprint)

    async def IssueApiKey(self, request, context):
        caller = await self.auth.caller(context, {Role.HQ_ADMIN})
        v = Violations()
        check_request_id(v, request.request_id)
        check_org_path(v, request.org_path, "org_path")
        role = enum_name(pb.Role, "ROLE", request.role)
        v.check(role is not None, "role", "ROLE_INVALID", "role is required")
        v.check(len(request.label) <= 64, "label", "TOO_LONG", "label is at most 64 characters")
        v.raise_if_any()
        refusal = binding_refusal(request.org_path, Role(role), await self._node_kind(request.org_path))
        if refusal is not None:
            raise refusal

        async def work(tx):
            key_id = new_id("k")
            key = await api_keys.issue(tx, key_id=key_id, org_path=request.org_path, role=Role(role),
                                       label=request.label.strip(), now=utcnow())
            await audit.record_in(tx, caller, "IssueApiKey", request, key_id, request.org_path)
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

        async def work(tx):
            revoked, org_path = await api_keys.revoke(tx, request.key_id, utcnow())
            await audit.record_in(tx, caller, "RevokeApiKey", request, request.key_id, org_path)
            return pb.RevokeApiKeyResponse(revoke_time=timestamp(revoked))

        return await self.idempotency.run(request, pb.RevokeApiKeyResponse, work)
