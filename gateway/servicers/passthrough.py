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

Scope, by the kind of call: gateway/domain/scopes.py (the rules), use_cases/scopes.py (the checks).
A server-streaming method (an export) passes through chunk by chunk. A call that
changes something (its request has a request_id) is recorded in the audit trail once
its service answered OK (use_cases/audit.py): the key, the request as its caller sent it
(without secrets) and the node it acted on, as the scope check found it.
"""

from dataclasses import dataclass
from functools import cache

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass

from gateway.domain.callers import BACK_OFFICE_ROLES as BACK_OFFICE, STORE_ROLES
from gateway.domain.limits import TokenBuckets
from gateway.domain.scopes import (
    AT_STORE,
    CAMPAIGN_BY_ID,
    CARD_BY_NUMBER,
    CARD_TYPE_BY_ID,
    CONFIGURERS,
    COUNT_CARD_BY_ID,
    COUNT_CARD_SOLD_BY_ID,
    COUNT_CARD_USE_BY_ID,
    EVERY_ROLE,
    GIFT_BY_ID,
    HQ_ONLY,
    ISSUE_COUPONS,
    LIST,
    MEMBER_BY_ID,
    MEMBER_CONTACTED,
    MEMBER_IN_REQUEST,
    OWN_NODE,
    PACKAGE_BY_ID,
    PLAN_BY_ID,
    READ,
    RULE_BY_ID,
    SEGMENT_BY_ID,
    SEGMENT_IN_REQUEST,
    SERVE,
    TAG_RULE_BY_ID,
    TEMPLATE_BY_ID,
    TOP_UP_BY_ID,
    WRITE,
    Route,
    set_field,  # noqa: F401 - a route's tests fill requests with it
)
from gateway.servicers.auth import Authenticator
from gateway.servicers.deadlines import LONG_CALL_S, passed_on_deadline
from gateway.use_cases import passthrough, top_ups
from gateway.use_cases.relay import Services
from huiyuan.database import Database

_MEMBER, _CARDS = "/huiyuan.member.v1.MemberService/", "/huiyuan.member.v1.CardService/"
_WALLET, _POINTS = "/huiyuan.wallet.v1.WalletService/", "/huiyuan.points.v1.PointsService/"
_CAMPAIGN = "/huiyuan.campaign.v1.CampaignService/"
_COUNT_CARDS = "/huiyuan.wallet.v1.CountCardService/"
_PINS = "/huiyuan.member.v1.PaymentPinService/"
_PLANS, _BENEFITS = "/huiyuan.member.v1.MembershipPlanService/", "/huiyuan.member.v1.BenefitService/"
_PROGRAMME, _SCORES = "/huiyuan.member.v1.TierProgrammeService/", "/huiyuan.member.v1.ValueScoreService/"
_SEGMENTS = "/huiyuan.member.v1.SegmentService/"

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
    # Issue 40, item 5: automatic tags (HQ's and regions') and saved segments (any office's);
    # a segment's members are read from over its owner only (gateway/domain/scopes.py).
    f"{_SEGMENTS}CreateTagRule": Route("segments", WRITE, CONFIGURERS, "tag_rule.org_path"),
    f"{_SEGMENTS}GetTagRule": Route("segments", READ, BACK_OFFICE, by_id=TAG_RULE_BY_ID),
    f"{_SEGMENTS}ListTagRules": Route("segments", LIST, BACK_OFFICE, "org_path"),
    f"{_SEGMENTS}DeleteTagRule": Route("segments", WRITE, CONFIGURERS, by_id=TAG_RULE_BY_ID),
    f"{_SEGMENTS}RunTagRules": Route("segments", WRITE, HQ_ONLY),
    f"{_SEGMENTS}CreateSegment": Route("segments", WRITE, BACK_OFFICE, "segment.org_path"),
    f"{_SEGMENTS}GetSegment": Route("segments", READ, BACK_OFFICE, by_id=SEGMENT_BY_ID),
    f"{_SEGMENTS}ListSegments": Route("segments", LIST, BACK_OFFICE, "org_path"),
    f"{_SEGMENTS}UpdateSegment": Route("segments", WRITE, BACK_OFFICE, by_id=SEGMENT_IN_REQUEST),
    f"{_SEGMENTS}DeleteSegment": Route("segments", WRITE, BACK_OFFICE, by_id=SEGMENT_BY_ID),
    f"{_SEGMENTS}CountSegment": Route("segments", WRITE, BACK_OFFICE, by_id=SEGMENT_BY_ID),
    f"{_SEGMENTS}ListSegmentMembers": Route("segments", WRITE, BACK_OFFICE, by_id=SEGMENT_BY_ID),
    f"{_SEGMENTS}ExportSegment": Route("segments", WRITE, BACK_OFFICE, by_id=SEGMENT_BY_ID),
    # A member moved to another home store stays in the caller's scope.
    "/huiyuan.member.v1.MemberService/UpdateMember": Route(
        "member", WRITE, BACK_OFFICE, "member.home_store_path", by_id=MEMBER_IN_REQUEST
    ),
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
    "/huiyuan.points.v1.PointsService/GetOffsetPolicy": Route("points", READ, BACK_OFFICE, "org_path"),
    "/huiyuan.points.v1.PointsService/CreateGift": Route("points", WRITE, CONFIGURERS, "gift.org_path"),
    "/huiyuan.points.v1.PointsService/GetGift": Route("points", READ, BACK_OFFICE, by_id=GIFT_BY_ID),
    # The points mall at the till: the gifts its store offers, handed over for points.
    "/huiyuan.points.v1.PointsService/ListGifts": Route("points", LIST, EVERY_ROLE, "org_path"),
    "/huiyuan.points.v1.PointsService/RedeemGift": Route(
        "points", AT_STORE, STORE_ROLES, "store_path", GIFT_BY_ID, payer="member_id"
    ),
    "/huiyuan.points.v1.PointsService/AdjustGiftStock": Route("points", WRITE, CONFIGURERS, by_id=GIFT_BY_ID),
    "/huiyuan.wallet.v1.WalletService/CreateTopUpPackage": Route("wallet", WRITE, CONFIGURERS, "package.org_path"),
    "/huiyuan.wallet.v1.WalletService/GetTopUpPackage": Route("wallet", READ, BACK_OFFICE, by_id=PACKAGE_BY_ID),
    "/huiyuan.wallet.v1.WalletService/ListTopUpPackages": Route("wallet", LIST, BACK_OFFICE, "org_path"),
    "/huiyuan.wallet.v1.WalletService/EndTopUpPackage": Route("wallet", WRITE, CONFIGURERS, by_id=PACKAGE_BY_ID),
    # Prepaid money goes back only on a manager's key, at the store that took it, or above.
    "/huiyuan.wallet.v1.WalletService/GetTopUp": Route("wallet", READ, BACK_OFFICE, by_id=TOP_UP_BY_ID),
    # A refunded top-up counts toward the tiers no more (use_cases/top_ups.py).
    "/huiyuan.wallet.v1.WalletService/RefundTopUp": Route(
        "wallet", WRITE, BACK_OFFICE, by_id=TOP_UP_BY_ID, then=top_ups.refunded
    ),
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
    f"{_COUNT_CARDS}SellCountCard": Route(
        "count_cards", AT_STORE, STORE_ROLES, "store_path", PLAN_BY_ID, member="member_id"
    ),
    f"{_COUNT_CARDS}UseCountCard": Route(
        "count_cards", AT_STORE, STORE_ROLES, "store_path", COUNT_CARD_BY_ID, payer=(COUNT_CARD_BY_ID, "card.member_id")
    ),
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
    "/huiyuan.campaign.v1.CampaignService/SetCampaignStatus": Route(
        "campaign", WRITE, CONFIGURERS, by_id=CAMPAIGN_BY_ID
    ),
    "/huiyuan.campaign.v1.CampaignService/RescheduleCampaign": Route(
        "campaign", WRITE, CONFIGURERS, by_id=CAMPAIGN_BY_ID
    ),
    "/huiyuan.campaign.v1.CampaignService/GetCampaign": Route("campaign", READ, BACK_OFFICE, by_id=CAMPAIGN_BY_ID),
    "/huiyuan.campaign.v1.CampaignService/GetCampaignStats": Route("campaign", READ, BACK_OFFICE, by_id=CAMPAIGN_BY_ID),
    "/huiyuan.campaign.v1.CampaignService/Simulate": Route("campaign", READ, BACK_OFFICE, by_id=CAMPAIGN_BY_ID),
    "/huiyuan.campaign.v1.CampaignService/ListCampaigns": Route("campaign", LIST, BACK_OFFICE, "org_path"),
    "/huiyuan.campaign.v1.CampaignService/CreateCouponTemplate": Route(
        "campaign", WRITE, CONFIGURERS, "template.org_path"
    ),
    "/huiyuan.campaign.v1.CampaignService/GetCouponTemplate": Route(
        "campaign", READ, BACK_OFFICE, by_id=TEMPLATE_BY_ID
    ),
    # The templates on a back office's line: what its console issues coupons of.
    "/huiyuan.campaign.v1.CampaignService/ListCouponTemplates": Route("campaign", LIST, BACK_OFFICE, "org_path"),
    # A region issues its own templates' coupons, to members of its own; HQ's only HQ.
    "/huiyuan.campaign.v1.CampaignService/IssueCoupons": ISSUE_COUPONS,
    # A member's coupons (used and expired too), for the offices that see the member:
    # the member's file, as their statement is.
    f"{_CAMPAIGN}ListMemberCoupons": Route("campaign", READ, BACK_OFFICE, by_id=MEMBER_BY_ID),
    # 付费会员 (issue 40, paid membership): plans are HQ's and offered at every till; a
    # term paid online is bought by HQ's integration (at a till it is a checkout line);
    # a manager refunds what is left of a member's terms; the unearned revenue and the
    # uses of the benefits are read by the offices over the stores; a quota is used at a
    # till and a use undone on a manager's key.
    f"{_PLANS}CreatePlan": Route("memberships", WRITE, HQ_ONLY),
    f"{_PLANS}GetPlan": Route("memberships", READ, EVERY_ROLE),
    f"{_PLANS}ListPlans": Route("memberships", READ, EVERY_ROLE),
    f"{_PLANS}PurchaseMembership": Route("memberships", WRITE, HQ_ONLY, "store_path", member="member_id"),
    f"{_PLANS}ListMembershipTerms": Route("memberships", READ, BACK_OFFICE, by_id=MEMBER_BY_ID),
    f"{_PLANS}RefundMembership": Route("memberships", WRITE, BACK_OFFICE, by_id=MEMBER_BY_ID),
    f"{_PLANS}GetUnearnedRevenue": Route("memberships", LIST, BACK_OFFICE, "org_path"),
    f"{_BENEFITS}ListMemberBenefits": Route("benefits", SERVE, EVERY_ROLE),
    f"{_BENEFITS}ConsumeBenefit": Route("benefits", AT_STORE, STORE_ROLES, "store_path", member="member_id"),
    f"{_BENEFITS}UndoBenefitUse": Route("benefits", SERVE, BACK_OFFICE),
    f"{_BENEFITS}ListBenefitUses": Route("benefits", READ, BACK_OFFICE, by_id=MEMBER_BY_ID),
    f"{_BENEFITS}SummarizeBenefitUses": Route("benefits", LIST, BACK_OFFICE, "org_path"),
    f"{_BENEFITS}ListMemberBenefitUseCounts": Route("benefits", LIST, BACK_OFFICE, "org_path"),
    # Issue 40, tier programmes and the value score (docs/loyalty.md): HQ sets the
    # programme and the weights and runs the jobs; the offices over a member read their
    # tier page and score; each office lists the members of its line at risk of moving down.
    f"{_PROGRAMME}CreateTierProgrammeVersion": Route("tier_programmes", WRITE, HQ_ONLY),
    f"{_PROGRAMME}ListTierProgrammeVersions": Route("tier_programmes", READ, BACK_OFFICE),
    f"{_PROGRAMME}GetMemberTierProgress": Route("tier_programmes", READ, BACK_OFFICE, by_id=MEMBER_BY_ID),
    f"{_PROGRAMME}ListMembersAtRisk": Route("tier_programmes", LIST, BACK_OFFICE, "org_path"),
    f"{_PROGRAMME}RunTierReevaluation": Route("tier_programmes", WRITE, HQ_ONLY),
    f"{_SCORES}SetValueScoreWeights": Route("value_scores", WRITE, HQ_ONLY),
    f"{_SCORES}GetValueScoreWeights": Route("value_scores", READ, BACK_OFFICE),
    f"{_SCORES}GetValueScore": Route("value_scores", READ, BACK_OFFICE, by_id=MEMBER_BY_ID),
    f"{_SCORES}ListValueScoreHistory": Route("value_scores", READ, BACK_OFFICE, by_id=MEMBER_BY_ID),
    f"{_SCORES}RecomputeValueScore": Route("value_scores", WRITE, BACK_OFFICE, by_id=MEMBER_BY_ID),
    f"{_SCORES}RunValueScoreRecompute": Route("value_scores", WRITE, HQ_ONLY),
}
SERVICE_NAMES = sorted({method[1:].partition("/")[0] for method in ROUTES})


@cache
def changes(method: str) -> bool:
    """Does the method change something (its request carries a request_id, AIP-155)?
    Those are recorded in the audit trail once they succeed."""
    return "request_id" in message_types(method)[0].DESCRIPTOR.fields_by_name


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
    services: Services
    lookups: TokenBuckets  # PINs tried, per key (gateway/domain/limits.py)
    database: Database  # the gateway's database: the audit trail (use_cases/audit.py)

    def service(self, handler_call_details):
        method = handler_call_details.method
        route = ROUTES.get(method)
        if route is None:
            return None
        request_type, response_type = message_types(method)
        codec = dict(request_deserializer=request_type.FromString, response_serializer=response_type.SerializeToString)
        if is_streamed(method):

            async def streamed(request, context):
                caller = await self.auth.caller(context, route.roles)
                async for chunk in passthrough.stream(
                    self.services,
                    self.lookups,
                    caller,
                    method,
                    route,
                    request,
                    lambda: passed_on_deadline(context, LONG_CALL_S),
                ):
                    yield chunk

            return grpc.unary_stream_rpc_method_handler(streamed, **codec)

        async def forward(request, context):
            asked = None
            if changes(method):  # as the caller asked it, for the trail
                asked = type(request)()
                asked.CopyFrom(request)
            caller = await self.auth.caller(context, route.roles, method=method if changes(method) else "")
            return await passthrough.forward(
                self.services,
                self.database,
                self.lookups,
                caller,
                method,
                route,
                request,
                asked,
                lambda: passed_on_deadline(context),
            )

        return grpc.unary_unary_rpc_method_handler(forward, **codec)
