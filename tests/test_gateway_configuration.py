"""No configuration is accepted and then ignored (docs/configuration-audit.md): what HQ
sets up through the gateway, with the services' own stubs, either shows at the till -
a points multiplier campaign in what a checkout earns, a new-member gift at
registration, a points rule scoped to a terminal at that terminal - or is refused at
creation, field by field, with its reason. A chain of its own: its campaigns and rules
price only its own checkouts."""

import grpc
import pytest

from huiyuan.campaign.v1 import campaign_pb2 as cpb, campaign_pb2_grpc
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import card_pb2, card_pb2_grpc, member_pb2, org_pb2, org_pb2_grpc
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.wallet.v1 import count_card_pb2, count_card_pb2_grpc, wallet_pb2, wallet_pb2_grpc
from tests.support import STORE, Stubs, new_phone, refusal_of, rid
from tests.test_gateway import as_, chain, issue  # noqa: F401 - chain is the fixture these tests share

TILL, SELF_SERVICE = f"{STORE}/pos-1", f"{STORE}/pos-2"
SOUTH_STORE = "hq/south/gz-002"


@pytest.fixture(scope="module")
def office(chain, member_service):
    """HQ's key and the services' stubs aimed at the gateway; a terminal key for two tills
    of the store; a store in the south (ensure_org made the south); 1 point a yuan everywhere."""
    stub, hq_key = chain
    org = Stubs(member_service.channel).org
    for request_id, parent, code, kind in (
        ("org-gz-002", "hq/south", "gz-002", org_pb2.ORG_NODE_KIND_STORE),
        ("org-pos-2", STORE, "pos-2", org_pb2.ORG_NODE_KIND_TERMINAL),
    ):
        org.CreateOrgNode(
            org_pb2.CreateOrgNodeRequest(
                request_id=request_id, parent_path=parent, org_node=org_pb2.OrgNode(code=code, name=code, kind=kind)
            )
        )
    hq = as_(hq_key)
    points = points_pb2_grpc.PointsServiceStub(stub.channel)
    points.CreateRule(
        points_pb2.CreateRuleRequest(
            request_id=rid(), rule=points_pb2.Rule(name="1元1分", org_path="hq", priority=1, points_per_yuan_bp=10_000)
        ),
        metadata=hq,
    )
    tills = {till: issue(stub, hq_key, till, pb.ROLE_TERMINAL).api_key for till in (TILL, SELF_SERVICE)}
    return stub, hq, tills, campaign_pb2_grpc.CampaignServiceStub(stub.channel), points


def register(stub, terminal, **fields):
    return stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(), member=member_pb2.Member(name="配置会员", phone=new_phone(), **fields)
        ),
        metadata=as_(terminal),
    )


def pay_cash(stub, terminal, member_id, yuan):
    return stub.Checkout(
        pb.CheckoutRequest(
            request_id=rid(),
            member_id=member_id,
            lines=[pb.CheckoutLine(line_id="1", sku="rice-1", category="food", quantity=1, unit_price_fen=yuan * 100)],
            tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=yuan * 100)],
        ),
        metadata=as_(terminal),
    ).receipt


def refused(call, request, metadata):
    """(code, {field: reason}) of a refused call."""
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=metadata)
    code, _, violations = refusal_of(caught.value)
    return code, violations


def set_status(campaigns, hq, campaign_id, status):
    campaigns.SetCampaignStatus(
        cpb.SetCampaignStatusRequest(request_id=rid(), campaign_id=campaign_id, status=status), metadata=hq
    )


def test_a_points_multiplier_campaign_reaches_what_the_checkout_earns(office):
    """Issue 35: Quote said 2x, the accrual gave 1x. Now a ¥100 order earns 200 points."""
    stub, hq, tills, campaigns, _ = office
    tag = f"双倍{rid()[:6]}"
    double = campaigns.CreateCampaign(
        cpb.CreateCampaignRequest(
            request_id=rid(),
            campaign=cpb.Campaign(
                name="双倍积分周",
                kind=cpb.CAMPAIGN_KIND_POINTS_MULTIPLIER,
                org_path="hq/east",
                tags=[tag],
                points_multiplier_bp=20_000,
            ),
        ),
        metadata=hq,
    ).campaign
    set_status(campaigns, hq, double.campaign_id, cpb.CAMPAIGN_STATUS_ACTIVE)
    try:
        assert (
            pay_cash(stub, tills[TILL], register(stub, tills[TILL], tags=[tag]).member.member_id, 100).points_earned
            == 200
        )
        assert pay_cash(stub, tills[TILL], register(stub, tills[TILL]).member.member_id, 100).points_earned == 100
    finally:
        set_status(campaigns, hq, double.campaign_id, cpb.CAMPAIGN_STATUS_ENDED)


def test_the_accrual_explains_the_campaign_multiplier_and_takes_the_greater_of_it_and_the_rules(office, points_service):
    points = points_pb2_grpc.PointsServiceStub(points_service.channel)
    member = "m_" + "5" * 26

    def preview(**fields):
        return points.PreviewAccrual(
            points_pb2.PreviewAccrualRequest(
                member_id=member,
                store_path=STORE,
                lines=[points_pb2.OrderLine(line_id="1", category="food", paid_fen=100_00)],
                **fields,
            )
        ).lines[0]

    line = preview(campaign_multiplier_bp=20_000, campaign_multiplier_name="双倍积分周")
    assert (line.points, line.explanation) == (200, "1元1分: 100.00 yuan x 1 x 2 (双倍积分周)")
    assert preview(campaign_multiplier_bp=20_000, tier_multiplier_bp=15_000).points == 300  # the tier's on top
    bad = points_pb2.AccrueRequest(
        request_id=rid(),
        member_id=member,
        order_id="o-bad",
        store_path=STORE,
        lines=[points_pb2.OrderLine(line_id="1", paid_fen=1_00)],
        campaign_multiplier_bp=9_000,
        terminal_path="hq/south/gz-002/pos-1",
    )
    assert refused(points.Accrue, bad, ())[1] == {
        "campaign_multiplier_bp": "MULTIPLIER_INVALID",
        "terminal_path": "TERMINAL_NOT_IN_STORE",
    }


def test_a_points_rule_scoped_to_a_terminal_gives_points_at_that_terminal_only(office):
    """Issue 35: a rule for …/sh-001/pos-2 was accepted, and a checkout there earned nothing by it."""
    stub, hq, tills, _, points = office
    kiosk = points.CreateRule(
        points_pb2.CreateRuleRequest(
            request_id=rid(),
            rule=points_pb2.Rule(name="自助机3倍", org_path=SELF_SERVICE, priority=50, points_per_yuan_bp=30_000),
        ),
        metadata=hq,
    ).rule
    member_id = register(stub, tills[TILL]).member.member_id
    assert pay_cash(stub, tills[SELF_SERVICE], member_id, 10).points_earned == 30
    assert pay_cash(stub, tills[TILL], member_id, 10).points_earned == 10  # the store's other till: the chain's rule
    assert kiosk in points.ListRules(points_pb2.ListRulesRequest(org_path=SELF_SERVICE), metadata=hq).rules


def test_a_new_member_gift_gives_its_coupon_at_registration_once(office):
    """Issue 35: a NEW_MEMBER_GIFT campaign gave new members nothing."""
    stub, hq, tills, campaigns, _ = office
    template = campaigns.CreateCouponTemplate(
        cpb.CreateCouponTemplateRequest(
            request_id=rid(),
            template=cpb.CouponTemplate(
                name="新人10元券",
                kind=cpb.COUPON_KIND_FIXED,
                amount_fen=10_00,
                threshold_fen=50_00,
                valid_days=30,
                org_path="hq/east",
            ),
        ),
        metadata=hq,
    ).template
    gift = campaigns.CreateCampaign(
        cpb.CreateCampaignRequest(
            request_id=rid(),
            campaign=cpb.Campaign(
                name="新人礼",
                kind=cpb.CAMPAIGN_KIND_NEW_MEMBER_GIFT,
                org_path="hq/east",
                coupon_template_id=template.template_id,
            ),
        ),
        metadata=hq,
    ).campaign
    assert gift.coupon_template_id == template.template_id
    request = pb.RegisterMemberRequest(request_id=rid(), member=member_pb2.Member(name="新会员", phone=new_phone()))
    assert register(stub, tills[TILL]).gift_coupons == []  # a draft gives nothing
    set_status(campaigns, hq, gift.campaign_id, cpb.CAMPAIGN_STATUS_ACTIVE)
    try:
        registered = stub.RegisterMember(request, metadata=as_(tills[TILL]))
        assert [(c.name, c.terms, c.template_id) for c in registered.gift_coupons] == [
            ("新人10元券", "满¥50.00减¥10.00", template.template_id)
        ]
        assert (
            stub.RegisterMember(request, metadata=as_(tills[TILL])) == registered
        )  # the retry: one member, one coupon
        found = stub.LookupMember(pb.LookupMemberRequest(phone=registered.member.phone), metadata=as_(tills[TILL]))
        assert [c.coupon_code for c in found.usable_coupons] == [registered.gift_coupons[0].coupon_code]
        homed_south = register(stub, tills[TILL], home_store_path=SOUTH_STORE)
        assert homed_south.gift_coupons == []  # the gift is the east's: a member of the south's store gets none
    finally:
        set_status(campaigns, hq, gift.campaign_id, cpb.CAMPAIGN_STATUS_ENDED)
    assert register(stub, tills[TILL]).gift_coupons == []


def test_a_new_member_gift_is_refused_unless_it_can_be_given(office):
    _, hq, _, campaigns, _ = office
    store_only = campaigns.CreateCouponTemplate(
        cpb.CreateCouponTemplateRequest(
            request_id=rid(),
            template=cpb.CouponTemplate(
                name="本店券", kind=cpb.COUPON_KIND_FIXED, amount_fen=3_00, valid_days=7, org_path=STORE
            ),
        ),
        metadata=hq,
    ).template

    def gift(**fields):
        return cpb.CreateCampaignRequest(
            request_id=rid(),
            campaign=cpb.Campaign(name="新人礼", kind=cpb.CAMPAIGN_KIND_NEW_MEMBER_GIFT, org_path="hq/east", **fields),
        )

    assert refused(campaigns.CreateCampaign, gift(), hq) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        {"campaign.coupon_template_id": "COUPON_TEMPLATE_REQUIRED"},
    )
    assert refused(campaigns.CreateCampaign, gift(coupon_template_id=store_only.template_id), hq) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        {"campaign.coupon_template_id": "TEMPLATE_OUT_OF_SCOPE"},
    )
    with pytest.raises(grpc.RpcError) as caught:
        campaigns.CreateCampaign(gift(coupon_template_id="ct_" + "0" * 26), metadata=hq)
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.NOT_FOUND, "TEMPLATE_NOT_FOUND")
    assert refused(campaigns.CreateCampaign, gift(tier_ids=["gold"], budget_fen=100_00, rate_bp=9_000), hq)[1] == {
        "campaign.coupon_template_id": "COUPON_TEMPLATE_REQUIRED",
        "campaign.tier_ids": "FIELD_NOT_FOR_KIND",
        "campaign.budget_fen": "FIELD_NOT_FOR_KIND",
        "campaign.rate_bp": "FIELD_NOT_FOR_KIND",
    }


@pytest.mark.parametrize(
    "kind, fields, violations",
    [
        (
            cpb.CAMPAIGN_KIND_POINTS_MULTIPLIER,
            {
                "points_multiplier_bp": 20_000,
                "budget_fen": 100_00,
                "rate_bp": 9_000,
                "categories": ["tea"],
                "on_original_price": True,
            },
            {"campaign.budget_fen", "campaign.rate_bp", "campaign.categories", "campaign.on_original_price"},
        ),
        (
            cpb.CAMPAIGN_KIND_LIMITED_PRICE,
            {"sku_prices_fen": {"tea-1": 50_00}, "categories": ["tea"], "points_multiplier_bp": 20_000},
            {"campaign.categories", "campaign.points_multiplier_bp"},
        ),
        (
            cpb.CAMPAIGN_KIND_MEMBER_DAY,
            {
                "rate_bp": 9_000,
                "weekdays": [3],
                "steps": [cpb.ThresholdStep(threshold_fen=1)],
                "coupon_template_id": "ct_x",
                "sku_prices_fen": {"a": 1},
            },
            {"campaign.steps", "campaign.coupon_template_id", "campaign.sku_prices_fen"},
        ),
        (
            cpb.CAMPAIGN_KIND_COUPONS,
            {"budget_fen": 100_00, "tags": ["企业"], "weekdays": [1], "exclusive_group": "g"},
            {"campaign.tags", "campaign.weekdays", "campaign.exclusive_group"},
        ),
    ],
)
def test_a_campaign_field_its_kind_does_not_read_is_refused(office, kind, fields, violations):
    _, hq, _, campaigns, _ = office
    request = cpb.CreateCampaignRequest(
        request_id=rid(), campaign=cpb.Campaign(name="多余字段", kind=kind, org_path="hq", **fields)
    )
    code, found = refused(campaigns.CreateCampaign, request, hq)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and found == dict.fromkeys(violations, "FIELD_NOT_FOR_KIND")


def test_a_threshold_step_takes_its_own_kind_s_amount_only(office):
    _, hq, _, campaigns, _ = office
    both = [cpb.ThresholdStep(threshold_fen=100_00, reduction_fen=10_00, rate_bp=9_000)]
    for kind, extra in (
        (cpb.CAMPAIGN_KIND_THRESHOLD_REDUCTION, "rate_bp"),
        (cpb.CAMPAIGN_KIND_THRESHOLD_DISCOUNT, "reduction_fen"),
    ):
        request = cpb.CreateCampaignRequest(
            request_id=rid(), campaign=cpb.Campaign(name="满减满折", kind=kind, org_path="hq", steps=both)
        )
        assert refused(campaigns.CreateCampaign, request, hq)[1] == {f"campaign.steps[0].{extra}": "FIELD_NOT_FOR_KIND"}


def test_a_coupon_template_field_its_kind_does_not_read_is_refused(office):
    _, hq, _, campaigns, _ = office
    when = {"valid_days": 30}
    fixed = cpb.CouponTemplate(
        name="5元券", kind=cpb.COUPON_KIND_FIXED, amount_fen=5_00, rate_bp=9_000, cap_fen=1_00, org_path="hq", **when
    )
    share = cpb.CouponTemplate(
        name="9折券", kind=cpb.COUPON_KIND_PERCENTAGE, rate_bp=9_000, amount_fen=5_00, org_path="hq", **when
    )
    dated = cpb.CouponTemplate(name="5元券", kind=cpb.COUPON_KIND_FIXED, amount_fen=5_00, org_path="hq", **when)
    dated.valid_from_time.GetCurrentTime()
    for template, violations in ((fixed, {"template.rate_bp", "template.cap_fen"}), (share, {"template.amount_fen"})):
        assert refused(
            campaigns.CreateCouponTemplate, cpb.CreateCouponTemplateRequest(request_id=rid(), template=template), hq
        ) == (grpc.StatusCode.INVALID_ARGUMENT, dict.fromkeys(violations, "FIELD_NOT_FOR_KIND"))
    assert refused(
        campaigns.CreateCouponTemplate, cpb.CreateCouponTemplateRequest(request_id=rid(), template=dated), hq
    )[1] == {"template.valid_from_time": "FIELD_NOT_FOR_VALIDITY"}


def test_a_multiplier_rule_takes_the_base_rule_s_caps_and_expiry_and_a_param_needs_its_policy(office):
    _, hq, _, _, points = office
    multiplier = points_pb2.Rule(
        name="双倍",
        org_path="hq",
        priority=77,
        multiplier_bp=20_000,
        cap_per_order=10,
        cap_per_day=10,
        pending_days=3,
        expiry_policy=points_pb2.EXPIRY_POLICY_NEVER,
    )
    assert refused(points.CreateRule, points_pb2.CreateRuleRequest(request_id=rid(), rule=multiplier), hq) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        {f"rule.{f}": "NOT_FOR_MULTIPLIER" for f in ("cap_per_order", "cap_per_day", "pending_days", "expiry_policy")},
    )
    base = points_pb2.Rule(name="1元1分", org_path="hq", priority=78, points_per_yuan_bp=10_000, expiry_param=90)
    assert refused(points.CreateRule, points_pb2.CreateRuleRequest(request_id=rid(), rule=base), hq)[1] == {
        "rule.expiry_param": "EXPIRY_POLICY_REQUIRED"
    }


def test_what_applies_by_the_store_is_refused_at_a_terminal(office):
    """A campaign, coupon template, top-up package, count card plan, gift, offset policy
    or card type is found by the store it is used at: scoped to one till it would never
    apply. (A points rule can: the checkout says its till.)"""
    stub, hq, _, campaigns, points = office
    wallet = wallet_pb2_grpc.WalletServiceStub(stub.channel)
    count_cards = count_card_pb2_grpc.CountCardServiceStub(stub.channel)
    cards = card_pb2_grpc.CardServiceStub(stub.channel)
    calls = [
        (
            campaigns.CreateCampaign,
            cpb.CreateCampaignRequest(
                request_id=rid(),
                campaign=cpb.Campaign(
                    name="收银台9折",
                    kind=cpb.CAMPAIGN_KIND_CATEGORY_DISCOUNT,
                    org_path=TILL,
                    rate_bp=9_000,
                    categories=["tea"],
                ),
            ),
            "campaign.org_path",
        ),
        (
            campaigns.CreateCouponTemplate,
            cpb.CreateCouponTemplateRequest(
                request_id=rid(),
                template=cpb.CouponTemplate(
                    name="收银台券", kind=cpb.COUPON_KIND_FIXED, amount_fen=1_00, valid_days=1, org_path=TILL
                ),
            ),
            "template.org_path",
        ),
        (
            wallet.CreateTopUpPackage,
            wallet_pb2.CreateTopUpPackageRequest(
                request_id=rid(),
                package=wallet_pb2.TopUpPackage(
                    name="充100送1", org_path=TILL, steps=[wallet_pb2.PackageStep(threshold_fen=100_00, bonus_fen=1_00)]
                ),
            ),
            "package.org_path",
        ),
        (
            count_cards.CreateCountCardPlan,
            count_card_pb2.CreateCountCardPlanRequest(
                request_id=rid(),
                plan=count_card_pb2.CountCardPlan(name="5次卡", org_path=TILL, uses=5, price_fen=50_00),
            ),
            "plan.org_path",
        ),
        (
            points.CreateGift,
            points_pb2.CreateGiftRequest(
                request_id=rid(), gift=points_pb2.Gift(name="杯子", points=100, stock=1, org_path=TILL)
            ),
            "gift.org_path",
        ),
        (
            points.SetOffsetPolicy,
            points_pb2.SetOffsetPolicyRequest(
                request_id=rid(), policy=points_pb2.OffsetPolicy(org_path=TILL, points_per_yuan=100, max_share_bp=5_000)
            ),
            "policy.org_path",
        ),
        (
            cards.CreateCardType,
            card_pb2.CreateCardTypeRequest(
                request_id=rid(),
                card_type=card_pb2.CardType(name="收银台卡", org_path=TILL, form=card_pb2.CARD_FORM_INDIVIDUAL),
            ),
            "card_type.org_path",
        ),
    ]
    for call, request, field in calls:
        assert refused(call, request, hq) == (grpc.StatusCode.INVALID_ARGUMENT, {field: "TERMINAL_SCOPE_NOT_SUPPORTED"})


def test_a_card_type_carries_every_balance_and_is_an_individual_s(office):
    """Balances are the member's, reached with any card: a type that carries only some,
    or is a family's or a company's, would be a promise no till keeps."""
    stub, hq, tills, _, _ = office
    cards = card_pb2_grpc.CardServiceStub(stub.channel)

    def card_type(**fields):
        return card_pb2.CreateCardTypeRequest(
            request_id=rid(),
            card_type=card_pb2.CardType(
                name="储值卡", org_path="hq", **{"form": card_pb2.CARD_FORM_INDIVIDUAL, **fields}
            ),
        )

    assert refused(cards.CreateCardType, card_type(capabilities=[card_pb2.CARD_CAPABILITY_STORED_VALUE]), hq) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        {"card_type.capabilities": "CAPABILITIES_NOT_SUPPORTED"},
    )
    for form in (card_pb2.CARD_FORM_ASSOCIATED, card_pb2.CARD_FORM_GROUP):
        assert refused(cards.CreateCardType, card_type(form=form), hq)[1] == {
            "card_type.form": "CARD_FORM_NOT_SUPPORTED"
        }
    every = [
        card_pb2.CARD_CAPABILITY_DISCOUNT,
        card_pb2.CARD_CAPABILITY_POINTS,
        card_pb2.CARD_CAPABILITY_STORED_VALUE,
        card_pb2.CARD_CAPABILITY_TIMES,
    ]
    assert list(cards.CreateCardType(card_type(), metadata=hq).card_type.capabilities) == every  # none given: all
    made = cards.CreateCardType(card_type(capabilities=list(reversed(every))), metadata=hq).card_type
    registered = stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(), card_type_id=made.card_type_id, member=member_pb2.Member(name="持卡", phone=new_phone())
        ),
        metadata=as_(tills[TILL]),
    )
    assert pay_cash(stub, tills[TILL], registered.member.member_id, 10).points_earned == 10


def test_an_org_node_keeps_the_chain_s_business_time(office):
    """Business days are the chain's (HUIYUAN_CHAIN_TIME_ZONE) in every store: a store's own
    zone would be kept and never used."""
    stub, hq, _, _, _ = office
    org = org_pb2_grpc.OrgServiceStub(stub.channel)
    create = org_pb2.CreateOrgNodeRequest(
        request_id=rid(),
        parent_path="hq/south",
        org_node=org_pb2.OrgNode(
            code="urumqi-1", name="乌鲁木齐店", kind=org_pb2.ORG_NODE_KIND_STORE, time_zone="Asia/Urumqi"
        ),
    )
    assert refused(org.CreateOrgNode, create, hq) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        {"org_node.time_zone": "TIME_ZONE_NOT_SUPPORTED"},
    )
    update = org_pb2.UpdateOrgNodeRequest(
        request_id=rid(),
        org_node=org_pb2.OrgNode(path=SOUTH_STORE, time_zone="UTC"),
        update_mask={"paths": ["time_zone"]},
    )
    assert refused(org.UpdateOrgNode, update, hq)[1] == {"org_node.time_zone": "TIME_ZONE_NOT_SUPPORTED"}
    create.org_node.ClearField("time_zone")
    assert org.CreateOrgNode(create, metadata=hq).org_node.time_zone == "Asia/Shanghai"  # the chain's, inherited


def test_a_card_type_s_default_tier_and_validity_and_the_tier_s_benefits_show_at_the_till(office):
    """Fields that took effect before issue 35 but had no test through the gateway."""
    from huiyuan.member.v1 import tier_pb2, tier_pb2_grpc

    stub, hq, tills, _, _ = office
    tier = (
        tier_pb2_grpc.TierServiceStub(stub.channel)
        .CreateTier(
            tier_pb2.CreateTierRequest(
                request_id=rid(),
                tier=tier_pb2.Tier(
                    name="联名卡会员", rank=40, price_rate_bp=9_000, points_multiplier_bp=10_000, benefits="茶饮九折"
                ),
            ),
            metadata=hq,
        )
        .tier
    )
    yearly = (
        card_pb2_grpc.CardServiceStub(stub.channel)
        .CreateCardType(
            card_pb2.CreateCardTypeRequest(
                request_id=rid(),
                card_type=card_pb2.CardType(
                    name="联名年卡",
                    org_path="hq/east",
                    form=card_pb2.CARD_FORM_INDIVIDUAL,
                    default_tier_id=tier.tier_id,
                    validity_days=365,
                ),
            ),
            metadata=hq,
        )
        .card_type
    )
    registered = stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(), card_type_id=yearly.card_type_id, member=member_pb2.Member(name="联名", phone=new_phone())
        ),
        metadata=as_(tills[TILL]),
    )
    card = registered.card
    assert card.expire_time.seconds - card.issue_time.seconds == 365 * 86400
    found = stub.LookupMember(pb.LookupMemberRequest(card_number=card.card_number), metadata=as_(tills[TILL]))
    assert (found.tier.tier_id, found.tier.benefits) == (tier.tier_id, "茶饮九折")
    paid = stub.Checkout(
        pb.CheckoutRequest(  # ¥100.00 at the tier's 九折
            request_id=rid(),
            member_id=registered.member.member_id,
            card_number=card.card_number,
            lines=[pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=1, unit_price_fen=100_00)],
            tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=90_00)],
        ),
        metadata=as_(tills[TILL]),
    ).receipt
    assert (paid.discount_total_fen, paid.points_earned) == (10_00, 90)


def test_a_base_rule_s_pending_days_keep_its_points_from_the_till_until_then(office, points_service):
    stub, hq, tills, _, points = office
    points.CreateRule(
        points_pb2.CreateRuleRequest(
            request_id=rid(),
            rule=points_pb2.Rule(
                name="礼盒7天后可用",
                org_path="hq",
                priority=60,
                points_per_yuan_bp=10_000,
                categories=["gift-box"],
                pending_days=7,
                expiry_policy=points_pb2.EXPIRY_POLICY_DAYS,
                expiry_param=30,
            ),
        ),
        metadata=hq,
    )
    member_id = register(stub, tills[TILL]).member.member_id
    paid = stub.Checkout(
        pb.CheckoutRequest(
            request_id=rid(),
            member_id=member_id,
            lines=[pb.CheckoutLine(line_id="1", sku="box-1", category="gift-box", quantity=1, unit_price_fen=50_00)],
            tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=50_00)],
        ),
        metadata=as_(tills[TILL]),
    ).receipt
    assert (paid.points_earned, paid.points_left) == (50, 0)  # earned, not spendable for a week
    balance = (
        points_pb2_grpc.PointsServiceStub(points_service.channel)
        .GetBalance(points_pb2.GetBalanceRequest(member_id=member_id))
        .balance
    )
    assert (balance.available_points, balance.pending_points) == (0, 50)
