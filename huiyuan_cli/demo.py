"""Demo data for `huiyuan up`: an HQ, two regions, four stores with a terminal each,
three tiers, a card type, a few members with cards, a top-up package (充100送20), some
stored value, a count card on sale (茶饮10次卡), points rules and points, a gift in the
points mall, an active 满100减20 and a coupon each, and a terminal key for `huiyuan pos`.
Every call has a fixed request_id, so seeding twice changes nothing."""

from datetime import datetime, timedelta

import grpc
from google.protobuf import field_mask_pb2
from google.type import date_pb2

from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.common.v1 import actor_pb2
from huiyuan.member.v1 import (
    card_pb2,
    card_pb2_grpc,
    member_pb2,
    member_pb2_grpc,
    org_pb2,
    org_pb2_grpc,
    tier_pb2,
    tier_pb2_grpc,
)
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.runtime import clients
from huiyuan.runtime.business_time import CHAIN_ZONE
from huiyuan.runtime.service_auth import Identity
from huiyuan.runtime.status import parse_rpc_error
from huiyuan.wallet.v1 import count_card_pb2, count_card_pb2_grpc, wallet_pb2, wallet_pb2_grpc
from huiyuan_cli.cli_text import t

HQ_ACTOR = actor_pb2.Actor(operator_id="system:demo", org_path="hq")
ORG = [  # (parent, code, name, kind)
    ("", "hq", "汇元连锁总部", org_pb2.ORG_NODE_KIND_HQ),
    ("hq", "east", "华东区", org_pb2.ORG_NODE_KIND_REGION),
    ("hq", "south", "华南区", org_pb2.ORG_NODE_KIND_REGION),
    ("hq/east", "sh-001", "上海南京西路店", org_pb2.ORG_NODE_KIND_STORE),
    ("hq/east", "hz-001", "杭州西湖店", org_pb2.ORG_NODE_KIND_STORE),
    ("hq/south", "gz-001", "广州天河店", org_pb2.ORG_NODE_KIND_STORE),
    ("hq/south", "sz-001", "深圳南山店", org_pb2.ORG_NODE_KIND_STORE),
]
TIERS = [  # (name, rank, price rate, points multiplier, benefits, spend and top-ups that reach it in fen)
    ("普通会员", 0, 10000, 10000, "消费1元积1分", 0, 0),
    ("银卡会员", 10, 9800, 12000, "累计消费满500元升级;九八折,1.2倍积分", 500_00, 0),
    ("金卡会员", 20, 9500, 15000, "累计消费满3000元或累计充值满2000元升级;九五折,1.5倍积分,生日礼", 3_000_00, 2_000_00),
]
BIRTHDAY_SOON = {2: 2, 3: 5}  # 王芳's birthday two days after the first seeding, 李娜's five
MEMBERS = [  # (name, phone, store)
    ("张伟", "13800000001", "hq/east/sh-001"),
    ("王芳", "13800000002", "hq/east/sh-001"),
    ("李娜", "13800000003", "hq/east/hz-001"),
    ("刘洋", "13800000004", "hq/south/gz-001"),
    ("陈静", "13800000005", "hq/south/sz-001"),
    ("杨磊", "13800000006", "hq/south/sz-001"),
]


def _ignore_exists(call, request):
    try:
        return call(request, timeout=5)
    except grpc.RpcError as error:
        code, _, _ = parse_rpc_error(error)
        if code != grpc.StatusCode.ALREADY_EXISTS:
            raise
        return None


def seed(identity: Identity, address: str, wallet_address: str, points_address: str, campaign_address: str) -> None:
    """Seeds the chain through the services' own calls, signed by identity (the operator's)."""
    member_ids = _seed_members(clients.blocking_channel("member", identity, address))
    _seed_wallet(clients.blocking_channel("wallet", identity, wallet_address), member_ids)
    _seed_points(clients.blocking_channel("points", identity, points_address), member_ids)
    _seed_campaign(clients.blocking_channel("campaign", identity, campaign_address), member_ids)
    _seed_terminal_key()
    _seed_people()


# The console's demo logins, a person per role (docs/console.md). The password is the
# demo's, printed by `huiyuan up`: for a machine of one's own, never a shared one.
DEMO_PASSWORD = "huiyuan2026"
DEMO_PEOPLE = [  # (login, name, org node, role)
    ("hq.admin", "赵总（总部管理员）", "hq", "HQ_ADMIN"),
    ("east.manager", "钱经理（华东区域经理）", "hq/east", "REGIONAL_MANAGER"),
    ("sh001.manager", "孙店长（上海南京西路店）", "hq/east/sh-001", "STORE_MANAGER"),
    ("hq.finance", "李会计（总部财务）", "hq", "FINANCE"),
    ("hq.marketing", "周策划（总部市场）", "hq", "MARKETING"),
]


def _seed_people() -> None:
    """The console's demo logins, written straight into the gateway's database as
    `huiyuan person create` writes them (left as they are when seeded before)."""
    from gateway.domain.people import PersonRole
    from gateway.use_cases import bootstrap
    from huiyuan.runtime.config import Settings

    for login, name, org_path, role in DEMO_PEOPLE:
        bootstrap.create_person(
            Settings.from_env("gateway").database_url,
            login=login,
            name=name,
            phone="",
            org_path=org_path,
            role=PersonRole(role),
            password=DEMO_PASSWORD,
            member_database_url=Settings.from_env("member").database_url,
            exist_ok=True,
        )


def _seed_points(channel: grpc.Channel, member_ids: list[str]) -> None:
    with channel:
        points = points_pb2_grpc.PointsServiceStub(channel)
        _ignore_exists(
            points.CreateRule,
            points_pb2.CreateRuleRequest(
                request_id="demo-rule-base",
                rule=points_pb2.Rule(name="消费1元积1分", org_path="hq", priority=10, points_per_yuan_bp=10_000),
            ),
        )
        _ignore_exists(
            points.CreateRule,
            points_pb2.CreateRuleRequest(
                request_id="demo-rule-wed",
                rule=points_pb2.Rule(
                    name="周三会员日 双倍积分", org_path="hq", priority=20, multiplier_bp=20_000, weekdays=[3]
                ),
            ),
        )
        for i, member_id in enumerate(member_ids, start=1):
            points.Grant(
                points_pb2.GrantRequest(
                    request_id=f"demo-points-{i}",
                    member_id=member_id,
                    points=500 * i,
                    source=points_pb2.LOT_SOURCE_SIGN_UP,
                    memo="开卡礼",
                ),
                timeout=5,
            )
        points.CreateGift(
            points_pb2.CreateGiftRequest(
                request_id="demo-gift-bag",
                gift=points_pb2.Gift(name="品牌帆布袋", points=300, stock=100, per_member_limit=1, org_path="hq"),
            ),
            timeout=5,
        )
    print(t("demo_points"))


def _seed_campaign(channel: grpc.Channel, member_ids: list[str]) -> None:
    with channel:
        campaign = campaign_pb2_grpc.CampaignServiceStub(channel)
        offer = campaign.CreateCampaign(
            campaign_pb2.CreateCampaignRequest(
                request_id="demo-campaign-100-20",
                actor=HQ_ACTOR,
                campaign=campaign_pb2.Campaign(
                    name="满100减20",
                    kind=campaign_pb2.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
                    org_path="hq",
                    steps=[campaign_pb2.ThresholdStep(threshold_fen=100_00, reduction_fen=20_00)],
                ),
            ),
            timeout=5,
        ).campaign
        _ignore_precondition(
            campaign.SetCampaignStatus,
            campaign_pb2.SetCampaignStatusRequest(
                request_id="demo-campaign-100-20-on",
                campaign_id=offer.campaign_id,
                status=campaign_pb2.CAMPAIGN_STATUS_ACTIVE,
            ),
        )
        template = campaign.CreateCouponTemplate(
            campaign_pb2.CreateCouponTemplateRequest(
                request_id="demo-coupon-5",
                actor=HQ_ACTOR,
                template=campaign_pb2.CouponTemplate(
                    name="5元无门槛券",
                    kind=campaign_pb2.COUPON_KIND_FIXED,
                    amount_fen=5_00,
                    valid_days=365,
                    org_path="hq",
                ),
            ),
            timeout=5,
        ).template
        campaign.IssueCoupons(
            campaign_pb2.IssueCouponsRequest(
                request_id="demo-coupons", template_id=template.template_id, member_ids=member_ids
            ),
            timeout=5,
        )
    print(t("demo_campaigns"))


def _seed_terminal_key() -> None:
    """A terminal key for the first till of hq/east/sh-001, for `huiyuan pos`."""
    from gateway.domain.callers import Role
    from gateway.use_cases import bootstrap
    from huiyuan.runtime.config import Settings
    from huiyuan_cli.pos import demo_key_path

    path = demo_key_path()
    if not path.exists():
        _, key = bootstrap.issue_key(
            Settings.from_env("gateway").database_url,
            "hq/east/sh-001/pos-1",
            Role.TERMINAL,
            "demo till",
            member_database_url=Settings.from_env("member").database_url,
        )
        path.write_text(key + "\n")
        path.chmod(0o600)
    print(t("demo_terminal_key", path=path))


def _ignore_precondition(call, request):
    """Setting a status again after a restart: the campaign is already where we want it."""
    try:
        return call(request, timeout=5)
    except grpc.RpcError as error:
        if parse_rpc_error(error)[0] != grpc.StatusCode.FAILED_PRECONDITION:
            raise
        return None


def _seed_members(channel: grpc.Channel) -> list[str]:
    member_ids = []
    with channel:
        org = org_pb2_grpc.OrgServiceStub(channel)
        for parent, code, name, kind in ORG:
            _ignore_exists(
                org.CreateOrgNode,
                org_pb2.CreateOrgNodeRequest(
                    request_id=f"demo-org-{code}",
                    parent_path=parent,
                    actor=HQ_ACTOR,
                    org_node=org_pb2.OrgNode(code=code, name=name, kind=kind),
                ),
            )  # the chain's zone, inherited
            if kind == org_pb2.ORG_NODE_KIND_STORE:
                _ignore_exists(
                    org.CreateOrgNode,
                    org_pb2.CreateOrgNodeRequest(
                        request_id=f"demo-org-{code}-pos1",
                        parent_path=f"{parent}/{code}",
                        actor=HQ_ACTOR,
                        org_node=org_pb2.OrgNode(code="pos-1", name="收银台1", kind=org_pb2.ORG_NODE_KIND_TERMINAL),
                    ),
                )
        tiers = tier_pb2_grpc.TierServiceStub(channel)
        tier_ids = []
        for name, rank, rate, multiplier, benefits, spend, top_ups in TIERS:
            response = tiers.CreateTier(
                tier_pb2.CreateTierRequest(
                    request_id=f"demo-tier-{rank}",
                    actor=HQ_ACTOR,
                    tier=tier_pb2.Tier(
                        name=name,
                        rank=rank,
                        price_rate_bp=rate,
                        points_multiplier_bp=multiplier,
                        benefits=benefits,
                        upgrade_spend_fen=spend,
                        upgrade_top_up_fen=top_ups,
                    ),
                ),
                timeout=5,
            )
            tier_ids.append(response.tier.tier_id)
        cards = card_pb2_grpc.CardServiceStub(channel)
        card_type = cards.CreateCardType(
            card_pb2.CreateCardTypeRequest(
                request_id="demo-card-type",
                actor=HQ_ACTOR,
                card_type=card_pb2.CardType(
                    name="会员储值卡", org_path="hq", form=card_pb2.CARD_FORM_INDIVIDUAL, default_tier_id=tier_ids[0]
                ),
            ),
            timeout=5,
        ).card_type  # it carries all: stored value, points, the tier's price, count cards
        members = member_pb2_grpc.MemberServiceStub(channel)
        for i, (name, phone, store) in enumerate(MEMBERS, start=1):
            actor = actor_pb2.Actor(operator_id="cashier-01", org_path=f"{store}/pos-1")
            member = members.RegisterMember(
                member_pb2.RegisterMemberRequest(
                    request_id=f"demo-member-{i}",
                    channel=member_pb2.REGISTRATION_CHANNEL_STORE,
                    actor=actor,
                    member=member_pb2.Member(name=name, phone=phone, marketing_consent=True),
                ),
                timeout=5,
            ).member
            member_ids.append(member.member_id)
            cards.IssueCard(
                card_pb2.IssueCardRequest(
                    request_id=f"demo-card-{i}",
                    member_id=member.member_id,
                    card_type_id=card_type.card_type_id,
                    card_number=f"80000000000000{i:02d}",
                    actor=actor,
                ),
                timeout=5,
            )
            if i in BIRTHDAY_SOON:
                _birthday_soon(members, member, BIRTHDAY_SOON[i])
            if i == 1:
                tiers.AssignTier(
                    tier_pb2.AssignTierRequest(
                        request_id="demo-gold-1",
                        member_id=member.member_id,
                        tier_id=tier_ids[2],
                        reason="demo: top customer",
                        actor=HQ_ACTOR,
                    ),
                    timeout=5,
                )
    print(t("demo_chain", nodes=len(ORG), tiers=len(TIERS), members=len(MEMBERS)))
    return member_ids


def _birthday_soon(members, member, days: int) -> None:
    """A birthday some days after the first seeding, so that `huiyuan pos care` has one
    to show; left alone once given."""
    if members.GetMember(member_pb2.GetMemberRequest(member_id=member.member_id), timeout=5).member.HasField(
        "birthday"
    ):
        return  # (RegisterMember's replay answers the member as first registered)
    day = datetime.now(CHAIN_ZONE).date() + timedelta(days=days)
    members.UpdateMember(
        member_pb2.UpdateMemberRequest(
            request_id=f"demo-birthday-{member.member_id}",
            member=member_pb2.Member(
                member_id=member.member_id, birthday=date_pb2.Date(year=1990, month=day.month, day=day.day)
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["birthday"]),
        ),
        timeout=5,
    )


def _seed_wallet(channel: grpc.Channel, member_ids: list[str]) -> None:
    with channel:
        wallet = wallet_pb2_grpc.WalletServiceStub(channel)
        wallet.CreateTopUpPackage(
            wallet_pb2.CreateTopUpPackageRequest(
                request_id="demo-package-100-20",
                actor=HQ_ACTOR,
                package=wallet_pb2.TopUpPackage(
                    name="充100送20",
                    org_path="hq",
                    steps=[
                        wallet_pb2.PackageStep(threshold_fen=100_00, bonus_fen=20_00),
                        wallet_pb2.PackageStep(threshold_fen=500_00, bonus_fen=150_00),
                    ],
                ),
            ),
            timeout=5,
        )
        for i, (member_id, (_, _, store)) in enumerate(zip(member_ids, MEMBERS), start=1):
            wallet.TopUp(
                wallet_pb2.TopUpRequest(
                    request_id=f"demo-top-up-{i}",
                    member_id=member_id,
                    amount_fen=i * 100_00,
                    tender=wallet_pb2.TENDER_WECHAT_PAY,
                    store_path=store,
                    actor=actor_pb2.Actor(operator_id="cashier-01", org_path=f"{store}/pos-1"),
                ),
                timeout=5,
            )
        count_card_pb2_grpc.CountCardServiceStub(channel).CreateCountCardPlan(
            count_card_pb2.CreateCountCardPlanRequest(
                request_id="demo-count-card-tea-10",
                actor=HQ_ACTOR,
                plan=count_card_pb2.CountCardPlan(
                    name="茶饮10次卡", org_path="hq", uses=10, price_fen=150_00, valid_days=365, skus=["tea-1"]
                ),
            ),
            timeout=5,
        )
    print(t("demo_stored_value", top_ups=len(member_ids)))
