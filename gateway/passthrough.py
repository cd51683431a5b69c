"""The services' configuration calls, passed through the gateway within the caller's scope.

A back-office client calls a service's own method - for example
/huiyuan.campaign.v1.CampaignService/CreateCampaign - on the gateway's address, with its
credential, using that service's generated stub. The gateway checks the role and the
scope, stamps the actor with the credential, derives the request_id from the credential
(two keys' ids never meet), and forwards the request otherwise unchanged. The answer,
or the service's refusal with its code and reason, comes back as the service gave it;
where another service must learn of it first (a refunded top-up no longer counts toward
the tiers), the route says so (Route.then). Only the methods in ROUTES pass; any other
is UNIMPLEMENTED here.

Scope, by the kind of call:
- WRITE: the node the request acts on lies under the caller's node;
- READ: the object lies on the caller's line, under its node or above it (an HQ
  campaign applies in every region, so a regional manager may read it);
- LIST: the filter node lies under the caller's node; left empty, it is the caller's;
- SERVE: a member's card, at any till of the chain. A member belongs to the chain,
  not a store: the card reported lost or replaced at any store is theirs to ask for;
- AT_STORE: done at a store (a gift handed over, a count card sold or punched): the
  store lies under the caller's node, left empty it is the caller's own, and what the
  request names by id is on the caller's line (an HQ gift is offered in every store);
- OWN_NODE: done at the caller's own node, which the gateway stamps as the actor (a
  file of members imported there); the request names no other node.
An object named by id is fetched first for its node; off the caller's line it is
NOT_FOUND as a missing one is, so scope never tells what exists elsewhere. A member
is read from the offices over their home store or over the node that registered them,
as ListMembers' org filter selects them; changed only from over their home store. A
card is read where its member is (ById.via).
A server-streaming method (an export) passes through chunk by chunk. A call that
changes something (its request has a request_id) is recorded in the audit trail once
its service answered OK (gateway/audit.py): the key, the request as its caller sent it
(without secrets) and the node it acted on, as the scope check found it.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import cache

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass

from huiyuan.member.v1 import member_pb2, payment_pin_pb2
from huiyuan.database import Database
from huiyuan.runtime.errors import DomainError, NotFound
from huiyuan.runtime.requests import on_line
from gateway import audit, auth, top_ups
from gateway.auth import BACK_OFFICE_ROLES as BACK_OFFICE
from gateway.auth import STORE_ROLES, Authenticator, Caller, Role
from gateway.limits import TokenBuckets
from gateway.relay import LONG_CALL_S, derived_id, passed_on_deadline, relayed

WRITE, READ, LIST, SERVE, AT_STORE, OWN_NODE = "WRITE", "READ", "LIST", "SERVE", "AT_STORE", "OWN_NODE"
EVERY_ROLE = frozenset(Role)
CONFIGURERS = frozenset({Role.HQ_ADMIN, Role.REGIONAL_MANAGER})
HQ_ONLY = frozenset({Role.HQ_ADMIN})
CHAIN = "hq"  # the node of what belongs to the whole chain (tiers)


@dataclass(frozen=True)
class ById:
    """How to find the node of an object a request names by id."""

    stub: str  # the attribute of gateway.servicer.Services holding the Get method
    method: str  # the Get method's full name, taking id_field
    id_field: str
    path: str  # the node in the Get response ("" there: the whole chain's)
    not_found: str  # the service's reason for a missing one
    in_request: str = ""  # where the request names it (dotted), when not at id_field
    # A second node in the Get response: the offices over it may read it too; where the
    # first is empty, the object is this node's (a member imported by a region, no home
    # store yet, is that region's to read and to give one).
    read_from: str = ""
    # An object with no node of its own: (the field in the Get response naming its
    # owner, how to find the owner's node). A card is its member's.
    via: "tuple[str, ById] | None" = None


@dataclass(frozen=True)
class Route:
    service: str  # the attribute of gateway.servicer.Services holding the stub
    kind: str
    roles: frozenset
    path: str = ""  # the request field (dotted) holding the node; "" = the whole chain; with by_id, a node it sets
    by_id: ById | None = None
    # What another service must learn of the answer: then(services, caller, request,
    # answer), awaited before the answer goes back, so that a failure there leaves the
    # caller to retry the same request (a replay, then this again).
    then: "Callable[..., Awaitable[None]] | None" = None
    # The request field naming a member it serves, who must exist; at any store, as a
    # member belongs to the chain (a count card sold to them). Missing: MEMBER_NOT_FOUND.
    member: str = ""
    # The request field listing members it gives something to (coupons): each must exist
    # and be the caller's, registered or homed under its node, as ListMembers' org filter
    # selects them. One that is not: MEMBER_NOT_FOUND, as for one missing.
    members: str = ""
    # A call that spends a member's balances (points on a gift, a count card's uses):
    # whose they are - the request field naming the member, or (an object the request
    # names by id, the field of it naming its member). What the member presents (the
    # request's credential) is checked for them and cleared: the service never sees it.
    payer: "str | tuple[ById, str]" = ""
    # Each call takes a token of the caller's lookups (a PIN set or tried: gateway/limits.py).
    limited: bool = False


_MEMBER, _CARDS = "/huiyuan.member.v1.MemberService/", "/huiyuan.member.v1.CardService/"
_WALLET, _POINTS = "/huiyuan.wallet.v1.WalletService/", "/huiyuan.points.v1.PointsService/"
_CAMPAIGN = "/huiyuan.campaign.v1.CampaignService/"
_COUNT_CARDS = "/huiyuan.wallet.v1.CountCardService/"
_PINS = "/huiyuan.member.v1.PaymentPinService/"
CAMPAIGN_BY_ID = ById("campaign", f"{_CAMPAIGN}GetCampaign", "campaign_id", "campaign.org_path", "CAMPAIGN_NOT_FOUND")
TEMPLATE_BY_ID = ById("campaign", f"{_CAMPAIGN}GetCouponTemplate", "template_id", "template.org_path",
                      "TEMPLATE_NOT_FOUND")
RULE_BY_ID = ById("points", f"{_POINTS}GetRule", "rule_id", "rule.org_path", "RULE_NOT_FOUND")
GIFT_BY_ID = ById("points", f"{_POINTS}GetGift", "gift_id", "gift.org_path", "GIFT_NOT_FOUND")
PACKAGE_BY_ID = ById("wallet", f"{_WALLET}GetTopUpPackage", "package_id", "package.org_path", "PACKAGE_NOT_FOUND")
CARD_TYPE_BY_ID = ById("cards", f"{_CARDS}GetCardType", "card_type_id", "card_type.org_path", "CARD_TYPE_NOT_FOUND")
# A top-up is its store's: the money goes back from that store's till.
TOP_UP_BY_ID = ById("wallet", f"{_WALLET}GetTopUp", "top_up_id", "top_up.store_path", "TOP_UP_NOT_FOUND")
# A member is its home store's: that store and the nodes above it may correct or tag them,
# and adjust their points. The node that registered them (开卡门店) reads them too. A
# request may name them inside the member it carries.
MEMBER_BY_ID = ById("member", f"{_MEMBER}GetMember", "member_id", "member.home_store_path", "MEMBER_NOT_FOUND",
                    read_from="member.registered_org_path")
MEMBER_IN_REQUEST = replace(MEMBER_BY_ID, in_request="member.member_id")
MEMBER_CONTACTED = replace(MEMBER_BY_ID, in_request="contact.member_id")
CARD_BY_NUMBER = ById("cards", f"{_CARDS}GetCard", "card_number", "", "CARD_NOT_FOUND",
                      via=("card.member_id", MEMBER_BY_ID))
# A count card plan is its node's; a count card is usable (and read) under its plan's
# node, and refunded by the store that sold it, or above; a use is its store's.
PLAN_BY_ID = ById("count_cards", f"{_COUNT_CARDS}GetCountCardPlan", "plan_id", "plan.org_path",
                  "COUNT_CARD_PLAN_NOT_FOUND")
COUNT_CARD_BY_ID = ById("count_cards", f"{_COUNT_CARDS}GetCountCard", "card_id", "card.org_path", "COUNT_CARD_NOT_FOUND")
COUNT_CARD_SOLD_BY_ID = replace(COUNT_CARD_BY_ID, path="card.sold_store_path")
COUNT_CARD_USE_BY_ID = ById("count_cards", f"{_COUNT_CARDS}GetCountCardUse", "use_id", "use.store_path",
                            "COUNT_CARD_USE_NOT_FOUND")

# Full method name -> route: the configuration calls of every service; a back office's
# member file; at the counter, cards, count cards and the points mall; top-ups and their
# refunds, corrections, a member's statement and points history, and the stores'
# settlement.
ROUTES: dict[str, Route] = {
    # The member file of a back office: find, open, export to Excel, import, correct.
    "/huiyuan.member.v1.MemberService/ListMembers": Route("member", LIST, BACK_OFFICE, "filter.org_path"),
    "/huiyuan.member.v1.MemberService/ExportMembers": Route("member", LIST, BACK_OFFICE, "filter.org_path"),
    "/huiyuan.member.v1.MemberService/GetMember": Route("member", READ, BACK_OFFICE, by_id=MEMBER_BY_ID),
    "/huiyuan.member.v1.MemberService/GetVisitStats": Route("member", READ, BACK_OFFICE, by_id=MEMBER_BY_ID),
    "/huiyuan.member.v1.MemberService/ImportMembers": Route("member", OWN_NODE, CONFIGURERS),
    # A member moved to another home store stays in the caller's scope.
    "/huiyuan.member.v1.MemberService/UpdateMember": Route(
        "member", WRITE, BACK_OFFICE, "member.home_store_path", by_id=MEMBER_IN_REQUEST),
    "/huiyuan.member.v1.CardService/ListCards": Route("cards", READ, BACK_OFFICE, by_id=MEMBER_BY_ID),
    # A card and its history (挂失, 冻结, 补卡: who, when, why), for the offices that see its member.
    "/huiyuan.member.v1.CardService/GetCard": Route("cards", READ, BACK_OFFICE, by_id=CARD_BY_NUMBER),
    "/huiyuan.member.v1.CardService/ListCardEvents": Route("cards", READ, BACK_OFFICE, by_id=CARD_BY_NUMBER),
    "/huiyuan.member.v1.TierService/ListTierHistory": Route("tiers", READ, BACK_OFFICE, by_id=MEMBER_BY_ID),
    # 回访记录: kept and read by every office that sees the member (a call changes no
    # profile, so the registering store may make one too), with the key as the actor.
    "/huiyuan.member.v1.CareService/RecordCareContact": Route("care", READ, BACK_OFFICE, by_id=MEMBER_CONTACTED),
    "/huiyuan.member.v1.CareService/ListCareContacts": Route("care", READ, BACK_OFFICE, by_id=MEMBER_BY_ID),
    "/huiyuan.member.v1.TierService/AssignTier": Route("tiers", WRITE, CONFIGURERS, by_id=MEMBER_BY_ID),
    "/huiyuan.member.v1.OrgService/CreateOrgNode": Route("org", WRITE, HQ_ONLY, "parent_path"),
    "/huiyuan.member.v1.OrgService/UpdateOrgNode": Route("org", WRITE, HQ_ONLY, "org_node.path"),
    "/huiyuan.member.v1.OrgService/GetOrgNode": Route("org", READ, BACK_OFFICE, "path"),
    "/huiyuan.member.v1.OrgService/ListOrgNodes": Route("org", LIST, BACK_OFFICE, "under_path"),
    # 挂失, 解挂 and 补卡 at any till; freezing a card (suspected fraud) is HQ's.
    "/huiyuan.member.v1.CardService/ReportCardLost": Route("cards", SERVE, EVERY_ROLE),
    "/huiyuan.member.v1.CardService/CancelCardLoss": Route("cards", SERVE, EVERY_ROLE),
    "/huiyuan.member.v1.CardService/ReplaceCard": Route("cards", SERVE, EVERY_ROLE),
    # 销卡 on a manager's key, at any store: the stored value and points are the member's,
    # not the card's, and stay with them (found by phone or another card).
    "/huiyuan.member.v1.CardService/CancelCard": Route("cards", SERVE, BACK_OFFICE),
    "/huiyuan.member.v1.CardService/FreezeCard": Route("cards", WRITE, HQ_ONLY),
    "/huiyuan.member.v1.CardService/UnfreezeCard": Route("cards", WRITE, HQ_ONLY),
    "/huiyuan.member.v1.CardService/CreateCardType": Route("cards", WRITE, CONFIGURERS, "card_type.org_path"),
    "/huiyuan.member.v1.CardService/GetCardType": Route("cards", READ, BACK_OFFICE, by_id=CARD_TYPE_BY_ID),
    "/huiyuan.member.v1.CardService/ListCardTypes": Route("cards", LIST, BACK_OFFICE, "usable_at_path"),
    "/huiyuan.member.v1.TierService/CreateTier": Route("tiers", WRITE, HQ_ONLY),
    "/huiyuan.member.v1.TierService/UpdateTier": Route("tiers", WRITE, HQ_ONLY),
    "/huiyuan.member.v1.TierService/ListTiers": Route("tiers", READ, BACK_OFFICE),
    "/huiyuan.points.v1.PointsService/CreateRule": Route("points", WRITE, CONFIGURERS, "rule.org_path"),
    "/huiyuan.points.v1.PointsService/GetRule": Route("points", READ, BACK_OFFICE, by_id=RULE_BY_ID),
    "/huiyuan.points.v1.PointsService/ListRules": Route("points", LIST, BACK_OFFICE, "org_path"),
    "/huiyuan.points.v1.PointsService/EndRule": Route("points", WRITE, CONFIGURERS, by_id=RULE_BY_ID),
    "/huiyuan.points.v1.PointsService/SetOffsetPolicy": Route("points", WRITE, CONFIGURERS, "policy.org_path"),
    "/huiyuan.points.v1.PointsService/CreateGift": Route("points", WRITE, CONFIGURERS, "gift.org_path"),
    "/huiyuan.points.v1.PointsService/GetGift": Route("points", READ, BACK_OFFICE, by_id=GIFT_BY_ID),
    # The points mall at the till: the gifts its store offers, handed over for points.
    "/huiyuan.points.v1.PointsService/ListGifts": Route("points", LIST, EVERY_ROLE, "org_path"),
    "/huiyuan.points.v1.PointsService/RedeemGift": Route("points", AT_STORE, STORE_ROLES, "store_path", GIFT_BY_ID,
                                                         payer="member_id"),
    "/huiyuan.points.v1.PointsService/AdjustGiftStock": Route("points", WRITE, CONFIGURERS, by_id=GIFT_BY_ID),
    "/huiyuan.wallet.v1.WalletService/CreateTopUpPackage": Route("wallet", WRITE, CONFIGURERS, "package.org_path"),
    "/huiyuan.wallet.v1.WalletService/GetTopUpPackage": Route("wallet", READ, BACK_OFFICE, by_id=PACKAGE_BY_ID),
    "/huiyuan.wallet.v1.WalletService/ListTopUpPackages": Route("wallet", LIST, BACK_OFFICE, "org_path"),
    "/huiyuan.wallet.v1.WalletService/EndTopUpPackage": Route("wallet", WRITE, CONFIGURERS, by_id=PACKAGE_BY_ID),
    # Prepaid money goes back only on a manager's key, at the store that took it, or above.
    "/huiyuan.wallet.v1.WalletService/GetTopUp": Route("wallet", READ, BACK_OFFICE, by_id=TOP_UP_BY_ID),
    # A refunded top-up counts toward the tiers no more (gateway/top_ups.py).
    "/huiyuan.wallet.v1.WalletService/RefundTopUp": Route("wallet", WRITE, BACK_OFFICE, by_id=TOP_UP_BY_ID,
                                                          then=top_ups.refunded),
    "/huiyuan.wallet.v1.WalletService/GetSettlement": Route("wallet", LIST, BACK_OFFICE, "org_path"),
    # Corrections, audited by the services: stored value by HQ alone, points by HQ and
    # the regions; the member must exist and, for a region, be one of its stores'.
    "/huiyuan.wallet.v1.WalletService/Adjust": Route("wallet", WRITE, HQ_ONLY, by_id=MEMBER_BY_ID),
    # A member's statement and points history, for the offices that see the member.
    "/huiyuan.wallet.v1.WalletService/ListEntries": Route("wallet", READ, BACK_OFFICE, by_id=MEMBER_BY_ID),
    "/huiyuan.points.v1.PointsService/ListHistory": Route("points", READ, BACK_OFFICE, by_id=MEMBER_BY_ID),
    "/huiyuan.points.v1.PointsService/Adjust": Route("points", WRITE, CONFIGURERS, by_id=MEMBER_BY_ID),
    # Reminders: the members whose points, earned under the caller's node, expire soon.
    "/huiyuan.points.v1.PointsService/ListExpiringMembers": Route("points", LIST, BACK_OFFICE, "org_path"),
    # 次卡: plans set up by HQ and the regions, listed at every till; sold and punched at
    # a till; a use undone and a card refunded on a manager's key (the money goes back
    # from the store that took it); a card and its history read by the offices over it.
    f"{_COUNT_CARDS}CreateCountCardPlan": Route("count_cards", WRITE, CONFIGURERS, "plan.org_path"),
    f"{_COUNT_CARDS}GetCountCardPlan": Route("count_cards", READ, BACK_OFFICE, by_id=PLAN_BY_ID),
    f"{_COUNT_CARDS}ListCountCardPlans": Route("count_cards", LIST, EVERY_ROLE, "org_path"),
    f"{_COUNT_CARDS}EndCountCardPlan": Route("count_cards", WRITE, CONFIGURERS, by_id=PLAN_BY_ID),
    f"{_COUNT_CARDS}SellCountCard": Route("count_cards", AT_STORE, STORE_ROLES, "store_path", PLAN_BY_ID,
                                          member="member_id"),
    f"{_COUNT_CARDS}UseCountCard": Route("count_cards", AT_STORE, STORE_ROLES, "store_path", COUNT_CARD_BY_ID,
                                         payer=(COUNT_CARD_BY_ID, "card.member_id")),
    f"{_COUNT_CARDS}GetCountCard": Route("count_cards", READ, BACK_OFFICE, by_id=COUNT_CARD_BY_ID),
    f"{_COUNT_CARDS}ListCountCards": Route("count_cards", READ, BACK_OFFICE, by_id=MEMBER_BY_ID),
    f"{_COUNT_CARDS}ListCountCardEntries": Route("count_cards", READ, BACK_OFFICE, by_id=COUNT_CARD_BY_ID),
    f"{_COUNT_CARDS}GetCountCardUse": Route("count_cards", READ, BACK_OFFICE, by_id=COUNT_CARD_USE_BY_ID),
    f"{_COUNT_CARDS}UndoCountCardUse": Route("count_cards", WRITE, BACK_OFFICE, by_id=COUNT_CARD_USE_BY_ID),
    f"{_COUNT_CARDS}RefundCountCard": Route("count_cards", WRITE, BACK_OFFICE, by_id=COUNT_CARD_SOLD_BY_ID),
    # 支付密码: set by the member at a till (with their card, QR code or PIN), unlocked or
    # cleared by a store manager at any store (the member is the chain's).
    f"{_PINS}SetPaymentPin": Route("pins", SERVE, STORE_ROLES, limited=True),
    f"{_PINS}ResetPaymentPin": Route("pins", SERVE, BACK_OFFICE),
    "/huiyuan.campaign.v1.CampaignService/CreateCampaign": Route("campaign", WRITE, CONFIGURERS, "campaign.org_path"),
    "/huiyuan.campaign.v1.CampaignService/SetCampaignStatus": Route("campaign", WRITE, CONFIGURERS, by_id=CAMPAIGN_BY_ID),
    "/huiyuan.campaign.v1.CampaignService/GetCampaign": Route("campaign", READ, BACK_OFFICE, by_id=CAMPAIGN_BY_ID),
    "/huiyuan.campaign.v1.CampaignService/GetCampaignStats": Route("campaign", READ, BACK_OFFICE, by_id=CAMPAIGN_BY_ID),
    "/huiyuan.campaign.v1.CampaignService/Simulate": Route("campaign", READ, BACK_OFFICE, by_id=CAMPAIGN_BY_ID),
    "/huiyuan.campaign.v1.CampaignService/ListCampaigns": Route("campaign", LIST, BACK_OFFICE, "org_path"),
    "/huiyuan.campaign.v1.CampaignService/CreateCouponTemplate": Route(
        "campaign", WRITE, CONFIGURERS, "template.org_path"),
    "/huiyuan.campaign.v1.CampaignService/GetCouponTemplate": Route("campaign", READ, BACK_OFFICE, by_id=TEMPLATE_BY_ID),
    # A region issues its own templates' coupons, to members of its own; HQ's only HQ.
    "/huiyuan.campaign.v1.CampaignService/IssueCoupons": Route("campaign", WRITE, CONFIGURERS, by_id=TEMPLATE_BY_ID,
                                                               members="member_ids"),
}
SERVICE_NAMES = sorted({method[1:].partition("/")[0] for method in ROUTES})


@cache
def changes(method: str) -> bool:
    """Does the method change something (its request carries a request_id, AIP-155)?
    Those are recorded in the audit trail once they succeed."""
    return "request_id" in message_types(method)[0].DESCRIPTOR.fields_by_name


def get_field(message, dotted: str):
    for name in dotted.split("."):
        message = getattr(message, name)
    return message


def set_field(message, dotted: str, value) -> None:
    *parents, name = dotted.split(".")
    for parent in parents:
        message = getattr(message, parent)
    setattr(message, name, value)


def _method(method: str):
    service, _, name = method[1:].partition("/")
    return descriptor_pool.Default().FindServiceByName(service).methods_by_name[name]


@cache
def message_types(method: str):
    """(request class, response class) of a full method name, from the descriptor pool."""
    found = _method(method)
    return GetMessageClass(found.input_type), GetMessageClass(found.output_type)


@cache
def is_streamed(method: str) -> bool:
    """Does the method answer with a stream (an export)?"""
    return _method(method).server_streaming


@dataclass
class PassThrough(grpc.GenericRpcHandler):
    auth: Authenticator
    services: object  # gateway.servicer.Services
    lookups: TokenBuckets  # PINs tried, per key (gateway/limits.py)
    database: Database  # the gateway's database: the audit trail (gateway/audit.py)

    def service(self, handler_call_details):
        method = handler_call_details.method
        route = ROUTES.get(method)
        if route is None:
            return None
        request_type, response_type = message_types(method)
        codec = dict(request_deserializer=request_type.FromString, response_serializer=response_type.SerializeToString)
        if is_streamed(method):
            async def stream(request, context):
                _, call, _ = await self._admit(method, route, request, context)
                async with relayed(route.service):
                    async for chunk in call(request, timeout=passed_on_deadline(context, LONG_CALL_S)):
                        yield chunk

            return grpc.unary_stream_rpc_method_handler(stream, **codec)

        async def forward(request, context):
            asked = None
            if changes(method):  # as the caller asked it, for the trail
                asked = type(request)()
                asked.CopyFrom(request)
            caller, call, node = await self._admit(method, route, request, context)
            async with relayed(route.service):  # a file imported with a long deadline keeps it
                answer = await call(request, timeout=passed_on_deadline(context))
            if route.then is not None:
                await route.then(self.services, caller, request, answer)
            if asked is not None:  # done: who changed what (gateway/audit.py)
                target = named(request, route.by_id) if route.by_id is not None else audit.first_id(answer)
                await audit.record(self.database, caller, method, asked, target, node)
            return answer

        return grpc.unary_unary_rpc_method_handler(forward, **codec)

    async def _admit(self, method: str, route: Route, request, context):
        """Checks the caller and scope and rewrites the request for the service; returns
        the caller, the service's method to call with it and the node it acts on."""
        caller = await self.auth.caller(context, route.roles)
        name = method.rpartition("/")[2]
        if route.limited:
            self.lookups.take(caller.key_id)
        node = await self._check_scope(caller, route, request)
        if route.payer:
            await self._check_payer(caller, route, request, name)
        fields = request.DESCRIPTOR.fields_by_name
        if "request_id" in fields and request.request_id:
            request.request_id = derived_id(caller.key_id, request.request_id, name)
        if "actor" in fields:  # the audit trail names the credential, not what the client claims
            request.actor.CopyFrom(caller.actor)
        return caller, getattr(getattr(self.services, route.service), name), node

    async def _check_payer(self, caller: Caller, route: Route, request, name: str) -> None:
        """What the member presents to spend (request.credential) is theirs, checked by
        the member service (a PIN tried once for this request), then cleared."""
        if isinstance(route.payer, str):
            member_id = get_field(request, route.payer)
        else:
            b, member_field = route.payer
            found = await fetched(self.services, b, named(request, b), NotFound(b.not_found, "Not found.", "不存在。"))
            member_id = get_field(found, member_field)
        if request.credential.WhichOneof("proof") == "pin":
            self.lookups.take(caller.key_id)
        async with relayed("member"):
            await self.services.pins.VerifyPaymentCredential(payment_pin_pb2.VerifyPaymentCredentialRequest(
                request_id=derived_id(caller.key_id, request.request_id, f"{name}:credential"), member_id=member_id,
                credential=request.credential))
        request.ClearField("credential")

    async def _check_scope(self, caller: Caller, route: Route, request) -> str:
        """The scope check; the node the request acts on (the caller's, for what is done
        at any store or at the caller's own node)."""
        if route.kind in (SERVE, OWN_NODE):
            return caller.org_path
        if route.kind == AT_STORE:
            if not get_field(request, route.path):
                set_field(request, route.path, caller.store_path)
            if not caller.covers(get_field(request, route.path) or CHAIN):
                raise auth.denied()
            if route.by_id is not None:
                await check_named(caller, route, self.services, named(request, route.by_id))
            if route.member:
                await check_member(self.services, get_field(request, route.member))
            return get_field(request, route.path)
        if route.by_id is not None:
            node = await check_named(caller, route, self.services, named(request, route.by_id))
            if route.path and get_field(request, route.path) and not caller.covers(get_field(request, route.path)):
                raise auth.denied()  # a node the change would set, beside the object's own
            if route.members:
                await check_members(caller, self.services, get_field(request, route.members))
            return node
        if route.kind == LIST and not get_field(request, route.path):
            set_field(request, route.path, caller.org_path)
        path = get_field(request, route.path) if route.path else CHAIN
        allowed = on_line(path, caller.org_path) if route.kind == READ else caller.covers(path)
        if not allowed:
            raise auth.denied()
        return path


async def check_member(services, member_id: str) -> None:
    """The member a request serves exists (no scope: any store serves any member)."""
    await fetched(services, MEMBER_BY_ID, member_id, NotFound("MEMBER_NOT_FOUND", "No such member.", "会员不存在。"))


FIND_MEMBERS_AT_ONCE = 1_000  # member.v1 FindMembers' most keys a call


async def check_members(caller: Caller, services, member_ids) -> None:
    """Every member named exists and is the caller's (registered or homed under its node)."""
    wanted = list(dict.fromkeys(member_ids))
    for start in range(0, len(wanted), FIND_MEMBERS_AT_ONCE):
        page = wanted[start:start + FIND_MEMBERS_AT_ONCE]
        async with relayed("member"):
            found = (await services.member.FindMembers(member_pb2.FindMembersRequest(member_ids=page))).members
        for member_id in page:
            member = found.get(member_id)
            if member is None or not (caller.covers(member.home_store_path) or caller.covers(member.registered_org_path)):
                raise NotFound("MEMBER_NOT_FOUND", "No such member in your scope.", "您的范围内没有该会员。",
                               member_id=member_id)


async def fetched(services, b: ById, object_id: str, not_found: NotFound):
    """What b.method answers for the object; its service's NOT_FOUND raised as not_found."""
    get_request_type, _ = message_types(b.method)
    try:
        async with relayed(b.stub):
            return await getattr(getattr(services, b.stub), b.method.rpartition("/")[2])(
                get_request_type(**{b.id_field: object_id}))
    except DomainError as error:
        if error.code == grpc.StatusCode.NOT_FOUND:
            raise not_found from None
        raise


def named(request, b: ById) -> str:
    """The id of the object the request names."""
    return get_field(request, b.in_request or b.id_field)


async def check_named(caller: Caller, route: Route, services, object_id: str) -> str:
    """The scope check of an object named by id (route.by_id), fetched from its service
    for its node, which it answers. Missing, or off the caller's line: one NOT_FOUND,
    word for word. On the line but above the caller's node (an HQ campaign, seen from a
    region), or seen only from its read_from node (a member registered by the caller's
    store, homed in another): readable, and for a WRITE, denied."""
    b = route.by_id
    not_found = NotFound(b.not_found, "Not found in your scope.", "您的范围内不存在。")
    found = await fetched(services, b, object_id, not_found)
    if b.via is not None:  # its owner's scope is its scope; off it, the object itself is not found
        owner_field, owner = b.via
        try:
            return await check_named(caller, replace(route, by_id=owner), services, get_field(found, owner_field))
        except NotFound:
            raise not_found from None
    path = node_of(b, found)
    if not sees(caller, b, found):
        raise not_found
    if route.kind == WRITE and not caller.covers(path):
        raise auth.denied()  # seen from below (an HQ campaign), changed only from above
    return path


def node_of(b: ById, found) -> str:
    """The node an object belongs to; found: what b.method answers for it."""
    return get_field(found, b.path) or (b.read_from and get_field(found, b.read_from)) or CHAIN


def sees(caller: Caller, b: ById, found) -> bool:
    """May the caller read this object: it lies on the caller's line (at, above or below
    the caller's node), or its read_from node is under the caller's."""
    return on_line(node_of(b, found), caller.org_path) or bool(
        b.read_from and caller.covers(get_field(found, b.read_from)))
