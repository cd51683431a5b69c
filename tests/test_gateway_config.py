"""The services' configuration calls through the gateway: each service's own generated
stub, pointed at the gateway, with a back-office credential; every passed-through
method × every role × a target in and out of the caller's scope."""

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import date_pb2

from gateway.servicers import passthrough
from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.common.v1 import actor_pb2, file_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import card_pb2, care_pb2, member_pb2, member_pb2_grpc, segment_pb2, segment_pb2_grpc
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.wallet.v1 import count_card_pb2, count_card_pb2_grpc, wallet_pb2, wallet_pb2_grpc
from tests.support import STORE, Stubs, new_phone, refusal_of, rid
from tests.test_gateway import as_, chain, code_and_reason, issue  # noqa: F401 - chain is the fixture these tests share

EAST, SOUTH, GZ = "hq/east", "hq/south", "hq/south/gz-001"
HQ, REGION, STORE_MANAGER, TERMINAL = (
    pb.ROLE_HQ_ADMIN,
    pb.ROLE_REGIONAL_MANAGER,
    pb.ROLE_STORE_MANAGER,
    pb.ROLE_TERMINAL,
)
BACK_OFFICE, CONFIGURERS, HQ_ONLY = {HQ, REGION, STORE_MANAGER}, {HQ, REGION}, {HQ}
EVERYONE = {HQ, REGION, STORE_MANAGER, TERMINAL}
SEGMENTS = "/huiyuan.member.v1.SegmentService/"

# Who may call each method, written out here (not read from gateway/servicers/passthrough.py).
ADMITTED = {
    "/huiyuan.member.v1.MemberService/ListMembers": BACK_OFFICE,
    "/huiyuan.member.v1.MemberService/ExportMembers": BACK_OFFICE,
    "/huiyuan.member.v1.MemberService/GetMember": BACK_OFFICE,
    "/huiyuan.member.v1.MemberService/GetVisitStats": BACK_OFFICE,
    "/huiyuan.member.v1.MemberService/ImportMembers": CONFIGURERS,
    "/huiyuan.member.v1.MemberService/UpdateMember": BACK_OFFICE,
    "/huiyuan.member.v1.CardService/ListCards": BACK_OFFICE,
    "/huiyuan.member.v1.TierService/ListTierHistory": BACK_OFFICE,
    "/huiyuan.member.v1.TierService/AssignTier": CONFIGURERS,
    "/huiyuan.member.v1.OrgService/CreateOrgNode": HQ_ONLY,
    "/huiyuan.member.v1.OrgService/UpdateOrgNode": HQ_ONLY,
    "/huiyuan.member.v1.OrgService/GetOrgNode": BACK_OFFICE,
    "/huiyuan.member.v1.OrgService/ListOrgNodes": BACK_OFFICE,
    "/huiyuan.member.v1.CardService/ReportCardLost": EVERYONE,
    "/huiyuan.member.v1.CardService/CancelCardLoss": EVERYONE,
    "/huiyuan.member.v1.CardService/ReplaceCard": EVERYONE,
    "/huiyuan.member.v1.CardService/CancelCard": BACK_OFFICE,
    "/huiyuan.member.v1.CardService/FreezeCard": HQ_ONLY,
    "/huiyuan.member.v1.CardService/UnfreezeCard": HQ_ONLY,
    "/huiyuan.member.v1.CardService/CreateCardType": CONFIGURERS,
    "/huiyuan.member.v1.CardService/GetCardType": BACK_OFFICE,
    "/huiyuan.member.v1.CardService/ListCardTypes": BACK_OFFICE,
    "/huiyuan.member.v1.CardService/GetCard": BACK_OFFICE,
    "/huiyuan.member.v1.CardService/ListCardEvents": BACK_OFFICE,
    "/huiyuan.member.v1.TierService/CreateTier": HQ_ONLY,
    "/huiyuan.member.v1.TierService/UpdateTier": HQ_ONLY,
    "/huiyuan.member.v1.TierService/ListTiers": BACK_OFFICE,
    "/huiyuan.points.v1.PointsService/CreateRule": CONFIGURERS,
    "/huiyuan.points.v1.PointsService/GetRule": BACK_OFFICE,
    "/huiyuan.points.v1.PointsService/ListRules": BACK_OFFICE,
    "/huiyuan.points.v1.PointsService/EndRule": CONFIGURERS,
    "/huiyuan.points.v1.PointsService/SetOffsetPolicy": CONFIGURERS,
    "/huiyuan.points.v1.PointsService/GetOffsetPolicy": BACK_OFFICE,
    "/huiyuan.points.v1.PointsService/CreateGift": CONFIGURERS,
    "/huiyuan.points.v1.PointsService/GetGift": BACK_OFFICE,
    "/huiyuan.points.v1.PointsService/ListGifts": EVERYONE,
    "/huiyuan.points.v1.PointsService/RedeemGift": {STORE_MANAGER, TERMINAL},
    "/huiyuan.points.v1.PointsService/AdjustGiftStock": CONFIGURERS,
    "/huiyuan.wallet.v1.WalletService/CreateTopUpPackage": CONFIGURERS,
    "/huiyuan.wallet.v1.WalletService/GetTopUpPackage": BACK_OFFICE,
    "/huiyuan.wallet.v1.WalletService/ListTopUpPackages": BACK_OFFICE,
    "/huiyuan.wallet.v1.WalletService/EndTopUpPackage": CONFIGURERS,
    "/huiyuan.wallet.v1.WalletService/Adjust": HQ_ONLY,
    "/huiyuan.wallet.v1.WalletService/ListEntries": BACK_OFFICE,
    "/huiyuan.points.v1.PointsService/ListHistory": BACK_OFFICE,
    "/huiyuan.points.v1.PointsService/Adjust": CONFIGURERS,
    "/huiyuan.points.v1.PointsService/ListExpiringMembers": BACK_OFFICE,
    "/huiyuan.wallet.v1.WalletService/GetTopUp": BACK_OFFICE,
    "/huiyuan.wallet.v1.WalletService/RefundTopUp": BACK_OFFICE,
    "/huiyuan.wallet.v1.WalletService/GetSettlement": BACK_OFFICE,
    "/huiyuan.campaign.v1.CampaignService/CreateCampaign": CONFIGURERS,
    "/huiyuan.campaign.v1.CampaignService/SetCampaignStatus": CONFIGURERS,
    "/huiyuan.campaign.v1.CampaignService/RescheduleCampaign": CONFIGURERS,
    "/huiyuan.campaign.v1.CampaignService/GetCampaign": BACK_OFFICE,
    "/huiyuan.campaign.v1.CampaignService/GetCampaignStats": BACK_OFFICE,
    "/huiyuan.campaign.v1.CampaignService/Simulate": BACK_OFFICE,
    "/huiyuan.campaign.v1.CampaignService/ListCampaigns": BACK_OFFICE,
    "/huiyuan.campaign.v1.CampaignService/CreateCouponTemplate": CONFIGURERS,
    "/huiyuan.campaign.v1.CampaignService/GetCouponTemplate": BACK_OFFICE,
    "/huiyuan.campaign.v1.CampaignService/ListCouponTemplates": BACK_OFFICE,
    "/huiyuan.campaign.v1.CampaignService/IssueCoupons": CONFIGURERS,
    "/huiyuan.campaign.v1.CampaignService/ListMemberCoupons": BACK_OFFICE,
    "/huiyuan.member.v1.CareService/RecordCareContact": BACK_OFFICE,
    "/huiyuan.member.v1.CareService/ListCareContacts": BACK_OFFICE,
    "/huiyuan.wallet.v1.CountCardService/CreateCountCardPlan": CONFIGURERS,
    "/huiyuan.wallet.v1.CountCardService/GetCountCardPlan": BACK_OFFICE,
    "/huiyuan.wallet.v1.CountCardService/ListCountCardPlans": EVERYONE,
    "/huiyuan.wallet.v1.CountCardService/EndCountCardPlan": CONFIGURERS,
    "/huiyuan.wallet.v1.CountCardService/SellCountCard": {STORE_MANAGER, TERMINAL},
    "/huiyuan.wallet.v1.CountCardService/UseCountCard": {STORE_MANAGER, TERMINAL},
    "/huiyuan.wallet.v1.CountCardService/GetCountCard": BACK_OFFICE,
    "/huiyuan.wallet.v1.CountCardService/ListCountCards": BACK_OFFICE,
    "/huiyuan.wallet.v1.CountCardService/ListCountCardEntries": BACK_OFFICE,
    "/huiyuan.wallet.v1.CountCardService/GetCountCardUse": BACK_OFFICE,
    "/huiyuan.wallet.v1.CountCardService/UndoCountCardUse": BACK_OFFICE,
    "/huiyuan.wallet.v1.CountCardService/RefundCountCard": BACK_OFFICE,
    "/huiyuan.member.v1.PaymentPinService/SetPaymentPin": {STORE_MANAGER, TERMINAL},
    "/huiyuan.member.v1.PaymentPinService/ResetPaymentPin": BACK_OFFICE,
    "/huiyuan.member.v1.MembershipPlanService/CreatePlan": HQ_ONLY,
    "/huiyuan.member.v1.MembershipPlanService/GetPlan": EVERYONE,
    "/huiyuan.member.v1.MembershipPlanService/ListPlans": EVERYONE,
    "/huiyuan.member.v1.MembershipPlanService/PurchaseMembership": HQ_ONLY,
    "/huiyuan.member.v1.MembershipPlanService/ListMembershipTerms": BACK_OFFICE,
    "/huiyuan.member.v1.MembershipPlanService/RefundMembership": BACK_OFFICE,
    "/huiyuan.member.v1.MembershipPlanService/GetUnearnedRevenue": BACK_OFFICE,
    "/huiyuan.member.v1.BenefitService/ListMemberBenefits": EVERYONE,
    "/huiyuan.member.v1.BenefitService/ConsumeBenefit": {STORE_MANAGER, TERMINAL},
    "/huiyuan.member.v1.BenefitService/UndoBenefitUse": BACK_OFFICE,
    "/huiyuan.member.v1.BenefitService/ListBenefitUses": BACK_OFFICE,
    "/huiyuan.member.v1.BenefitService/SummarizeBenefitUses": BACK_OFFICE,
    "/huiyuan.member.v1.BenefitService/ListMemberBenefitUseCounts": BACK_OFFICE,
    "/huiyuan.member.v1.TierProgrammeService/CreateTierProgrammeVersion": HQ_ONLY,
    "/huiyuan.member.v1.TierProgrammeService/ListTierProgrammeVersions": BACK_OFFICE,
    "/huiyuan.member.v1.TierProgrammeService/GetMemberTierProgress": BACK_OFFICE,
    "/huiyuan.member.v1.TierProgrammeService/ListMembersAtRisk": BACK_OFFICE,
    "/huiyuan.member.v1.TierProgrammeService/RunTierReevaluation": HQ_ONLY,
    "/huiyuan.member.v1.ValueScoreService/SetValueScoreWeights": HQ_ONLY,
    "/huiyuan.member.v1.ValueScoreService/GetValueScoreWeights": BACK_OFFICE,
    "/huiyuan.member.v1.ValueScoreService/GetValueScore": BACK_OFFICE,
    "/huiyuan.member.v1.ValueScoreService/ListValueScoreHistory": BACK_OFFICE,
    "/huiyuan.member.v1.ValueScoreService/RecomputeValueScore": BACK_OFFICE,
    "/huiyuan.member.v1.ValueScoreService/RunValueScoreRecompute": HQ_ONLY,
    # issue 40, item 5: automatic tags and saved segments
    f"{SEGMENTS}CreateTagRule": CONFIGURERS,
    f"{SEGMENTS}GetTagRule": BACK_OFFICE,
    f"{SEGMENTS}ListTagRules": BACK_OFFICE,
    f"{SEGMENTS}DeleteTagRule": CONFIGURERS,
    f"{SEGMENTS}RunTagRules": HQ_ONLY,
    f"{SEGMENTS}CreateSegment": BACK_OFFICE,
    f"{SEGMENTS}GetSegment": BACK_OFFICE,
    f"{SEGMENTS}ListSegments": BACK_OFFICE,
    f"{SEGMENTS}UpdateSegment": BACK_OFFICE,
    f"{SEGMENTS}DeleteSegment": BACK_OFFICE,
    f"{SEGMENTS}CountSegment": BACK_OFFICE,
    f"{SEGMENTS}ListSegmentMembers": BACK_OFFICE,
    f"{SEGMENTS}ExportSegment": BACK_OFFICE,
}
# What a caller gets for what it may not see.
UNSEEN = {
    "OUT_OF_SCOPE",
    "MEMBER_NOT_FOUND",
    "CAMPAIGN_NOT_FOUND",
    "CARD_TYPE_NOT_FOUND",
    "RULE_NOT_FOUND",
    "GIFT_NOT_FOUND",
    "PACKAGE_NOT_FOUND",
    "TEMPLATE_NOT_FOUND",
    "TAG_RULE_NOT_FOUND",
    "SEGMENT_NOT_FOUND",
    "TOP_UP_NOT_FOUND",
    "CARD_NOT_FOUND",
    "COUNT_CARD_PLAN_NOT_FOUND",
    "COUNT_CARD_NOT_FOUND",
    "COUNT_CARD_USE_NOT_FOUND",
}
# What a request needs beside its target for the service to answer it.
CSV = file_pb2.FILE_FORMAT_CSV
FILLED = {
    "/huiyuan.wallet.v1.WalletService/GetSettlement": {
        "start_date": date_pb2.Date(year=2026, month=1, day=1),
        "end_date": date_pb2.Date(year=2026, month=1, day=31),
    },
    "/huiyuan.member.v1.MemberService/ExportMembers": {"format": CSV},
    f"{SEGMENTS}ExportSegment": {"format": CSV},
    f"{SEGMENTS}CreateTagRule": {
        "tag_rule": segment_pb2.TagRule(tag="矩阵沉睡", dormant=segment_pb2.DormantRule(days=90))
    },
    f"{SEGMENTS}CreateSegment": {"segment": segment_pb2.Segment(name="矩阵分群")},
    f"{SEGMENTS}UpdateSegment": {"segment": segment_pb2.Segment(name="矩阵分群改")},
    "/huiyuan.points.v1.PointsService/ListExpiringMembers": {"within": Duration(seconds=30 * 86400)},
    "/huiyuan.member.v1.MemberService/ImportMembers": {"format": CSV, "content": b"name,phone\n"},
    "/huiyuan.member.v1.CareService/RecordCareContact": {
        "contact": care_pb2.CareContact(
            channel=care_pb2.CARE_CHANNEL_IN_STORE, topic=care_pb2.CARE_TOPIC_FOLLOW_UP, note="矩阵"
        )
    },
    "/huiyuan.wallet.v1.CountCardService/CreateCountCardPlan": {
        "plan": count_card_pb2.CountCardPlan(name="矩阵5次卡", uses=5, price_fen=50_00)
    },
    "/huiyuan.wallet.v1.CountCardService/UndoCountCardUse": {"reason": "矩阵"},
    "/huiyuan.wallet.v1.CountCardService/RefundCountCard": {"reason": "矩阵"},
    "/huiyuan.wallet.v1.CountCardService/SellCountCard": {"tender": wallet_pb2.TENDER_CASH},
    "/huiyuan.member.v1.MembershipPlanService/GetUnearnedRevenue": {
        "as_of_date": date_pb2.Date(year=2026, month=1, day=31)
    },
    "/huiyuan.member.v1.BenefitService/SummarizeBenefitUses": {
        "start_date": date_pb2.Date(year=2026, month=1, day=1),
        "end_date": date_pb2.Date(year=2026, month=1, day=31),
    },
    "/huiyuan.member.v1.BenefitService/ListMemberBenefitUseCounts": {
        "start_date": date_pb2.Date(year=2026, month=1, day=1),
        "end_date": date_pb2.Date(year=2026, month=1, day=31),
    },
}
NODE_OF = {HQ: "hq", REGION: EAST, STORE_MANAGER: STORE, TERMINAL: f"{STORE}/pos-1"}


@pytest.fixture(scope="module")
def office(chain, member_service, campaign_service, points_service, wallet_service):
    """A key per role in the east; a member with a card, a campaign, a coupon template, a
    card type, a points rule, a gift, a top-up package and a top-up in the east and in the south (a
    store there, hq/south/gz-001, made by ensure_org), by their id field."""
    stub, hq_key = chain
    keys = {role: hq_key if role == HQ else issue(stub, hq_key, NODE_OF[role], role).api_key for role in NODE_OF}
    member_ids = {
        region: Stubs(member_service.channel)
        .member.RegisterMember(
            member_pb2.RegisterMemberRequest(
                request_id=rid(),
                channel=member_pb2.REGISTRATION_CHANNEL_STORE,
                actor=actor_pb2.Actor(operator_id="t", org_path=store),
                member=member_pb2.Member(name="矩阵会员", phone=new_phone(), home_store_path=store),
            )
        )
        .member.member_id
        for region, store in ((EAST, STORE), (SOUTH, GZ))
    }  # each registered at its home store
    campaigns = campaign_pb2_grpc.CampaignServiceStub(campaign_service.channel)
    points = points_pb2_grpc.PointsServiceStub(points_service.channel)
    wallet = wallet_pb2_grpc.WalletServiceStub(wallet_service.channel)
    campaign_ids, template_ids, card_type_ids, rule_ids, gift_ids, package_ids, top_up_ids = {}, {}, {}, {}, {}, {}, {}
    card_numbers, plan_ids, count_card_ids, use_ids = {}, {}, {}, {}
    tag_rule_ids, segment_ids = {}, {}
    segments = segment_pb2_grpc.SegmentServiceStub(member_service.channel)
    count_cards = count_card_pb2_grpc.CountCardServiceStub(wallet_service.channel)
    for priority, region in enumerate((EAST, SOUTH), start=9_100):
        campaign_ids[region] = campaigns.CreateCampaign(
            campaign_pb2.CreateCampaignRequest(
                request_id=rid(),
                campaign=campaign_pb2.Campaign(
                    name=f"{region} 满50减5",
                    kind=campaign_pb2.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
                    org_path=region,
                    steps=[campaign_pb2.ThresholdStep(threshold_fen=50_00, reduction_fen=5_00)],
                ),
            )
        ).campaign.campaign_id
        card_type_ids[region] = (
            Stubs(member_service.channel)
            .card.CreateCardType(
                card_pb2.CreateCardTypeRequest(
                    request_id=rid(),
                    card_type=card_pb2.CardType(
                        name=f"{region} 卡", org_path=region, form=card_pb2.CARD_FORM_INDIVIDUAL
                    ),
                )
            )
            .card_type.card_type_id
        )
        card_numbers[region] = (
            Stubs(member_service.channel)
            .card.IssueCard(
                card_pb2.IssueCardRequest(
                    request_id=rid(),
                    member_id=member_ids[region],
                    card_type_id=card_type_ids[region],
                    actor=actor_pb2.Actor(operator_id="t", org_path=region),
                )
            )
            .card.card_number
        )
        tag_rule_ids[region] = segments.CreateTagRule(
            segment_pb2.CreateTagRuleRequest(
                request_id=rid(),
                tag_rule=segment_pb2.TagRule(
                    org_path=region, tag=f"{region[3:]}{rid()[:6]}", dormant=segment_pb2.DormantRule(days=30)
                ),
            )
        ).tag_rule.rule_id
        segment_ids[region] = segments.CreateSegment(  # a store's: every office over it reads its members
            segment_pb2.CreateSegmentRequest(
                request_id=rid(), segment=segment_pb2.Segment(org_path=STORE if region == EAST else GZ, name="群")
            )
        ).segment.segment_id
        rule_ids[region] = points.CreateRule(
            points_pb2.CreateRuleRequest(
                request_id=rid(),
                rule=points_pb2.Rule(
                    name=f"{region} 双倍", org_path=region, priority=priority, points_per_yuan_bp=20_000
                ),
            )
        ).rule.rule_id
        template_ids[region] = campaigns.CreateCouponTemplate(
            campaign_pb2.CreateCouponTemplateRequest(
                request_id=rid(),
                template=campaign_pb2.CouponTemplate(
                    name=f"{region} 3元券",
                    kind=campaign_pb2.COUPON_KIND_FIXED,
                    amount_fen=3_00,
                    valid_days=7,
                    org_path=region,
                ),
            )
        ).template.template_id
        gift_ids[region] = points.CreateGift(
            points_pb2.CreateGiftRequest(
                request_id=rid(), gift=points_pb2.Gift(name=f"{region} 杯", points=100, stock=5, org_path=region)
            )
        ).gift.gift_id
        package_ids[region] = wallet.CreateTopUpPackage(
            wallet_pb2.CreateTopUpPackageRequest(
                request_id=rid(),
                package=wallet_pb2.TopUpPackage(
                    name=f"{region} 充500送1",
                    org_path=region,
                    steps=[wallet_pb2.PackageStep(threshold_fen=500_00, bonus_fen=1)],
                ),
            )
        ).package.package_id
        top_up_ids[region] = wallet.TopUp(
            wallet_pb2.TopUpRequest(
                request_id=rid(),
                member_id=member_ids[region],
                amount_fen=50_00,
                tender=wallet_pb2.TENDER_CASH,
                store_path=STORE if region == EAST else GZ,
                actor=actor_pb2.Actor(operator_id="t", org_path="hq"),
            )
        ).top_up_id
        plan_ids[region] = count_cards.CreateCountCardPlan(
            count_card_pb2.CreateCountCardPlanRequest(
                request_id=rid(),
                actor=actor_pb2.Actor(operator_id="t", org_path="hq"),
                plan=count_card_pb2.CountCardPlan(name=f"{region} 10次卡", org_path=region, uses=10, price_fen=100_00),
            )
        ).plan.plan_id
        count_card_ids[region] = count_cards.SellCountCard(
            count_card_pb2.SellCountCardRequest(
                request_id=rid(),
                member_id=member_ids[region],
                plan_id=plan_ids[region],
                store_path=STORE if region == EAST else GZ,
                tender=wallet_pb2.TENDER_CASH,
                actor=actor_pb2.Actor(operator_id="t", org_path="hq"),
            )
        ).card.card_id
        use_ids[region] = count_cards.UseCountCard(
            count_card_pb2.UseCountCardRequest(
                request_id=rid(),
                card_id=count_card_ids[region],
                store_path=STORE if region == EAST else GZ,
                actor=actor_pb2.Actor(operator_id="t", org_path="hq"),
            )
        ).use.entry_id
    return (
        stub,
        keys,
        {
            "member_id": member_ids,
            "campaign_id": campaign_ids,
            "template_id": template_ids,
            "card_type_id": card_type_ids,
            "rule_id": rule_ids,
            "gift_id": gift_ids,
            "package_id": package_ids,
            "top_up_id": top_up_ids,
            "card_number": card_numbers,
            "plan_id": plan_ids,
            "card_id": count_card_ids,
            "use_id": use_ids,
            "tag_rule_id": tag_rule_ids,
            "segment_id": segment_ids,
        },
    )


def _request(method: str, target: str, ids_by_field):
    """The method's request aimed at target: its node field set, or the id of the object there."""
    route = passthrough.ROUTES[method]
    request_type, _ = passthrough.message_types(method)
    request = request_type(**FILLED.get(method, {}))
    if "request_id" in request.DESCRIPTOR.fields_by_name:
        request.request_id = rid()
    if route.by_id is not None:
        b = route.by_id
        passthrough.set_field(request, b.in_request or b.id_field, ids_by_field[b.id_field][target])
    elif route.path:
        passthrough.set_field(request, route.path, target)
    if route.member:  # a member served at any store: the east one, wherever the target
        passthrough.set_field(request, route.member, ids_by_field["member_id"][EAST])
    return request


def _call(stub, method, request, key):
    streamed = passthrough.is_streamed(method)
    call = (stub.channel.unary_stream if streamed else stub.channel.unary_unary)(
        method, request_serializer=type(request).SerializeToString, response_deserializer=lambda raw: raw
    )
    try:
        answer = call(request, metadata=as_(key) if key else ())
        if streamed:
            list(answer)  # a stream's refusal comes as it is read
        return None
    except grpc.RpcError as error:
        return error.code(), refusal_of(error)[1] if error.code() != grpc.StatusCode.UNIMPLEMENTED else ""


def test_every_passed_through_method_is_in_the_matrix():
    assert set(ADMITTED) == set(passthrough.ROUTES)


@pytest.mark.parametrize("role", [HQ, REGION, STORE_MANAGER, TERMINAL])
@pytest.mark.parametrize("method", sorted(ADMITTED))
def test_config_matrix(office, method, role):
    """Each method × role, aimed in scope (the east) and out of it (the south): admitted
    and in scope, the service answers (perhaps refusing the request itself); otherwise
    PERMISSION_DENIED OUT_OF_SCOPE - or, for an object named by id that the caller may
    not see, the same NOT_FOUND a missing one gets."""
    stub, keys, ids_by_field = office
    route = passthrough.ROUTES[method]
    # In scope: the caller's own node, or an object in the east (on the line of every
    # east key). Out of scope: the south. Tiers belong to the whole chain: no target.
    mine = EAST if route.by_id is not None else NODE_OF[role]
    targets = [(mine, True), (SOUTH, role == HQ)] if route.path or route.by_id else [("", True)]
    for target, in_scope in targets:
        outcome = _call(stub, method, _request(method, target, ids_by_field), keys[role])
        if role not in ADMITTED[method]:
            assert outcome == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE"), (target, outcome)
        elif in_scope and route.kind == passthrough.LIST:  # a back office lists what is on its line
            assert outcome is None, (target, outcome)
        elif in_scope:  # the service answers, or refuses the request on its merits
            assert outcome is None or outcome[1] not in UNSEEN, (target, outcome)
        elif route.by_id is not None:
            assert outcome == (grpc.StatusCode.NOT_FOUND, route.by_id.not_found), (target, outcome)
        else:
            assert outcome == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE"), (target, outcome)


def test_a_region_configures_its_campaigns_with_the_campaign_service_s_own_stub(office):
    stub, keys, ids_by_field = office
    campaign_ids = ids_by_field["campaign_id"]
    campaigns = campaign_pb2_grpc.CampaignServiceStub(stub.channel)  # the service's stub, aimed at the gateway
    region, hq = as_(keys[REGION]), as_(keys[HQ])

    def offer(org_path):
        return campaign_pb2.CreateCampaignRequest(
            request_id=rid(),
            campaign=campaign_pb2.Campaign(
                name="满80减8",
                kind=campaign_pb2.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
                org_path=org_path,
                steps=[campaign_pb2.ThresholdStep(threshold_fen=80_00, reduction_fen=8_00)],
            ),
        )

    request = offer(EAST)
    made = campaigns.CreateCampaign(request, metadata=region).campaign
    assert (
        made.org_path == EAST and campaigns.CreateCampaign(request, metadata=region).campaign == made
    )  # one, on retry
    chain_wide = campaigns.CreateCampaign(offer("hq"), metadata=hq).campaign
    listed = {
        c.campaign_id for c in campaigns.ListCampaigns(campaign_pb2.ListCampaignsRequest(), metadata=region).campaigns
    }
    assert {made.campaign_id, campaign_ids[EAST], chain_wide.campaign_id} <= listed  # its own and what applies to it
    assert campaign_ids[SOUTH] not in listed
    assert (
        campaigns.GetCampaign(
            campaign_pb2.GetCampaignRequest(campaign_id=chain_wide.campaign_id), metadata=region
        ).campaign
        == chain_wide
    )  # HQ's, read from below
    pause = campaign_pb2.SetCampaignStatusRequest(
        request_id=rid(), campaign_id=chain_wide.campaign_id, status=campaign_pb2.CAMPAIGN_STATUS_ACTIVE
    )
    with pytest.raises(grpc.RpcError) as caught:
        campaigns.SetCampaignStatus(pause, metadata=region)  # ... but changed only from above
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    bad = offer(EAST)
    bad.campaign.steps[0].reduction_fen = 90_00  # a reduction above its threshold: the service's own refusal
    with pytest.raises(grpc.RpcError) as caught:
        campaigns.CreateCampaign(bad, metadata=region)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "campaign.steps[0].reduction_fen" in refusal_of(caught.value)[2]
    with pytest.raises(grpc.RpcError) as caught:
        campaigns.CreateCampaign(offer(EAST))
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIAL_REQUIRED")
    with pytest.raises(grpc.RpcError) as caught:  # only configuration passes: the checkout's calls do not
        campaigns.ReserveCoupons(campaign_pb2.ReserveCouponsRequest(request_id=rid()), metadata=hq)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_points_rules_of_a_region_through_the_points_service_s_own_stub(office):
    stub, keys, ids_by_field = office
    points = points_pb2_grpc.PointsServiceStub(stub.channel)
    region = as_(keys[REGION])
    rule = points_pb2.CreateRuleRequest(
        request_id=rid(), rule=points_pb2.Rule(name="华东双倍", org_path=EAST, priority=50, points_per_yuan_bp=20_000)
    )
    made = points.CreateRule(rule, metadata=region).rule
    assert made.org_path == EAST
    assert made in points.ListRules(points_pb2.ListRulesRequest(), metadata=region).rules
    rule.request_id, rule.rule.org_path = rid(), SOUTH
    with pytest.raises(grpc.RpcError) as caught:
        points.CreateRule(rule, metadata=region)
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    claimed = {"operator_id": "someone-else", "org_path": "hq"}
    ended = points.EndRule(
        points_pb2.EndRuleRequest(request_id=rid(), rule_id=made.rule_id, actor=claimed), metadata=region
    ).rule
    assert ended.ended_by.startswith("key:") and ended.end_time.seconds > 0  # the credential, not the claim
    assert made.rule_id not in [
        r.rule_id for r in points.ListRules(points_pb2.ListRulesRequest(), metadata=region).rules
    ]
    with pytest.raises(grpc.RpcError) as caught:  # the south's rule, from the east: as if there were none
        points.EndRule(
            points_pb2.EndRuleRequest(request_id=rid(), rule_id=ids_by_field["rule_id"][SOUTH]), metadata=region
        )
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.NOT_FOUND, "RULE_NOT_FOUND")


def test_a_back_office_looking_a_member_up_sees_only_the_coupons_usable_in_its_scope(office, campaign_service):
    stub, keys, _ = office
    member = stub.RegisterMember(
        pb.RegisterMemberRequest(request_id=rid(), member=member_pb2.Member(name="券会员", phone=new_phone())),
        metadata=as_(keys[TERMINAL]),
    ).member
    campaigns = campaign_pb2_grpc.CampaignServiceStub(campaign_service.channel)
    for name, scope in (("全国券", "hq"), ("华东券", EAST), ("华南券", SOUTH), ("本店券", STORE)):
        template = campaigns.CreateCouponTemplate(
            campaign_pb2.CreateCouponTemplateRequest(
                request_id=rid(),
                template=campaign_pb2.CouponTemplate(
                    name=name, kind=campaign_pb2.COUPON_KIND_FIXED, amount_fen=3_00, valid_days=30, org_path=scope
                ),
            )
        ).template
        campaigns.IssueCoupons(
            campaign_pb2.IssueCouponsRequest(
                request_id=rid(), template_id=template.template_id, member_ids=[member.member_id]
            )
        )

    def seen_by(role):
        found = stub.LookupMember(pb.LookupMemberRequest(phone=member.phone), metadata=as_(keys[role]))
        return {c.name for c in found.usable_coupons}

    assert seen_by(TERMINAL) == seen_by(STORE_MANAGER) == {"全国券", "华东券", "本店券"}
    assert seen_by(REGION) == {"全国券", "华东券", "本店券"}  # nothing of the south's offers
    assert seen_by(HQ) == {"全国券", "华东券", "华南券", "本店券"}


def test_each_back_office_lists_the_top_up_packages_of_its_line_and_ends_its_own(office, wallet_service):
    stub, keys, _ = office
    wallet = wallet_pb2_grpc.WalletServiceStub(stub.channel)
    east, south = (
        wallet_pb2_grpc.WalletServiceStub(wallet_service.channel)
        .CreateTopUpPackage(
            wallet_pb2.CreateTopUpPackageRequest(
                request_id=rid(),
                package=wallet_pb2.TopUpPackage(
                    name="充1000送100",
                    org_path=region,
                    steps=[wallet_pb2.PackageStep(threshold_fen=1000_00, bonus_fen=100_00)],
                ),
            )
        )
        .package.package_id
        for region in (EAST, SOUTH)
    )

    def listed(role):
        return {
            p.package_id
            for p in wallet.ListTopUpPackages(wallet_pb2.ListTopUpPackagesRequest(), metadata=as_(keys[role])).packages
        }

    assert east in listed(REGION) and south not in listed(REGION)  # its region's, and none of the south's
    assert east in listed(STORE_MANAGER) and south not in listed(STORE_MANAGER)  # the region's apply in its store
    assert {east, south} <= listed(HQ)
    request = wallet_pb2.EndTopUpPackageRequest(request_id=rid(), package_id=east)
    ended = wallet.EndTopUpPackage(request, metadata=as_(keys[REGION])).package
    assert ended.ended_by.startswith("key:") and east not in listed(REGION)
    with pytest.raises(grpc.RpcError) as caught:  # the south's, from the east: as if there were none
        wallet.EndTopUpPackage(
            wallet_pb2.EndTopUpPackageRequest(request_id=rid(), package_id=south), metadata=as_(keys[REGION])
        )
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.NOT_FOUND, "PACKAGE_NOT_FOUND")


def test_a_region_issues_coupons_of_its_own_templates_only(office, campaign_service):
    stub, keys, ids_by_field = office
    campaigns = campaign_pb2_grpc.CampaignServiceStub(stub.channel)
    region = as_(keys[REGION])
    member = ids_by_field["member_id"][EAST]  # one of its own (tests/test_security.py: no other)

    def issue(template_id):
        return campaigns.IssueCoupons(
            campaign_pb2.IssueCouponsRequest(request_id=rid(), template_id=template_id, member_ids=[member]),
            metadata=region,
        )

    issued = issue(ids_by_field["template_id"][EAST]).coupons
    assert [c.member_id for c in issued] == [member] and issued[0].name == f"{EAST} 3元券"
    chain_wide = (
        campaign_pb2_grpc.CampaignServiceStub(campaign_service.channel)
        .CreateCouponTemplate(
            campaign_pb2.CreateCouponTemplateRequest(
                request_id=rid(),
                template=campaign_pb2.CouponTemplate(
                    name="全国券", kind=campaign_pb2.COUPON_KIND_FIXED, amount_fen=2_00, valid_days=7, org_path="hq"
                ),
            )
        )
        .template
    )
    assert (
        campaigns.GetCouponTemplate(
            campaign_pb2.GetCouponTemplateRequest(template_id=chain_wide.template_id), metadata=region
        ).template
        == chain_wide
    )  # read from below...
    for template_id, refused in (
        (chain_wide.template_id, (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")),
        (ids_by_field["template_id"][SOUTH], (grpc.StatusCode.NOT_FOUND, "TEMPLATE_NOT_FOUND")),
    ):
        with pytest.raises(grpc.RpcError) as caught:  # ... but issued only from above; the south's is not there
            issue(template_id)
        assert refusal_of(caught.value)[:2] == refused


def test_a_region_gives_its_segment_one_coupon_each_and_a_retry_gives_nothing_more(
    office, member_service, campaign_service
):
    """IssueSegmentCoupons: the members a filter selects under the caller's node each get
    one coupon of a template the caller owns; counted first with validate_only; the same
    request_id again answers the same and issues nothing; the south's members and
    template stay out of the east's reach."""
    stub, keys, ids_by_field = office
    region = as_(keys[REGION])
    members = Stubs(member_service.channel)
    since = Timestamp()
    since.GetCurrentTime()
    east = {members.register(name=f"东{i}").member_id for i in range(5)}
    south = members.member.RegisterMember(
        member_pb2.RegisterMemberRequest(
            request_id=rid(),
            channel=member_pb2.REGISTRATION_CHANNEL_STORE,
            member=member_pb2.Member(name="南", phone=new_phone()),
            actor=actor_pb2.Actor(operator_id="c", org_path=GZ),
        )
    ).member.member_id
    east_template, south_template = ids_by_field["template_id"][EAST], ids_by_field["template_id"][SOUTH]
    coupons = campaign_pb2_grpc.CampaignServiceStub(campaign_service.channel)

    def held(member_id):
        return [
            c.template_id
            for c in coupons.ListMemberCoupons(campaign_pb2.ListMemberCouponsRequest(member_id=member_id)).coupons
        ]

    def request(**fields):  # the segment: members registered since the test began (the caller's node when unset)
        fields.setdefault("template_id", east_template)
        segment = member_pb2.MemberFilter(registered_after=since, org_path=fields.pop("org_path", ""))
        return pb.IssueSegmentCouponsRequest(request_id=fields.pop("request_id", rid()), segment=segment, **fields)

    counted = stub.IssueSegmentCoupons(request(validate_only=True), metadata=region)
    assert (counted.member_count, counted.issued_count) == (5, 0) and not any(held(m) for m in east)
    issue = request()
    answer = stub.IssueSegmentCoupons(issue, metadata=region)
    assert (answer.member_count, answer.issued_count) == (5, 5)
    assert stub.IssueSegmentCoupons(issue, metadata=region) == answer
    assert {m: held(m) for m in east | {south}} == {**{m: [east_template] for m in east}, south: []}
    for refused, expected in [
        (request(org_path=SOUTH), (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")),
        (request(template_id=south_template), (grpc.StatusCode.NOT_FOUND, "TEMPLATE_NOT_FOUND")),
        (request(request_id=issue.request_id, validate_only=True, org_path="hq/east/sh-001"), None),
        (
            request(request_id=issue.request_id, org_path="hq/east/sh-001"),
            (grpc.StatusCode.FAILED_PRECONDITION, "REQUEST_ID_REUSED"),
        ),
    ]:
        if expected is None:  # counting is never remembered: it may reuse the id
            assert stub.IssueSegmentCoupons(refused, metadata=region).member_count == 5
            continue
        assert code_and_reason(stub.IssueSegmentCoupons, refused, keys[REGION]) == expected
    assert code_and_reason(stub.IssueSegmentCoupons, request(), keys[STORE_MANAGER]) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "OUT_OF_SCOPE",
    )
    bad = pb.IssueSegmentCouponsRequest(segment=member_pb2.MemberFilter(org_path="hq//east"))
    with pytest.raises(grpc.RpcError) as caught:
        stub.IssueSegmentCoupons(bad, metadata=region)
    assert refusal_of(caught.value)[2] == {
        "request_id": "REQUEST_ID_INVALID",
        "template_id": "TEMPLATE_ID_REQUIRED",
        "segment.org_path": "ORG_PATH_INVALID",
    }
    everyone = stub.IssueSegmentCoupons(
        request(  # HQ's, over the chain; another key's request_id is its own
            request_id=issue.request_id, template_id=south_template
        ),
        metadata=as_(keys[HQ]),
    )
    assert (everyone.member_count, everyone.issued_count) == (6, 6) and held(south) == [south_template]


def test_a_back_office_tags_the_members_of_its_stores_with_the_member_service_s_own_stub(office):
    """UpdateMember passed through: the east's manager tags an east member, who then
    falls in a segment by that tag; the south's member is not there for the east."""
    stub, keys, ids_by_field = office
    members = member_pb2_grpc.MemberServiceStub(stub.channel)  # the service's stub, aimed at the gateway
    tag = f"沉睡{rid()[:6]}"

    def tag_member(member_id, role):
        return members.UpdateMember(
            member_pb2.UpdateMemberRequest(
                request_id=rid(),
                member=member_pb2.Member(member_id=member_id, tags=[tag]),
                update_mask=field_mask_pb2.FieldMask(paths=["tags"]),
            ),
            metadata=as_(keys[role]),
        ).member

    assert list(tag_member(ids_by_field["member_id"][EAST], REGION).tags) == [tag]
    counted = stub.IssueSegmentCoupons(
        pb.IssueSegmentCouponsRequest(
            request_id=rid(),
            template_id=ids_by_field["template_id"][EAST],
            validate_only=True,
            segment=member_pb2.MemberFilter(tag=tag),
        ),
        metadata=as_(keys[REGION]),
    )
    assert counted.member_count == 1
    with pytest.raises(grpc.RpcError) as caught:
        tag_member(ids_by_field["member_id"][SOUTH], STORE_MANAGER)
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND")
    assert list(tag_member(ids_by_field["member_id"][SOUTH], HQ).tags) == [tag]
    with pytest.raises(grpc.RpcError) as caught:  # the east's member, moved out of the east by the east
        members.UpdateMember(
            member_pb2.UpdateMemberRequest(
                request_id=rid(),
                member=member_pb2.Member(member_id=ids_by_field["member_id"][EAST], home_store_path=GZ),
                update_mask=field_mask_pb2.FieldMask(paths=["home_store_path"]),
            ),
            metadata=as_(keys[REGION]),
        )
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
