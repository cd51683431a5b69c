"""The configuration and card lists page by AIP-158 like every other list: more items
than a page come back in their documented order across pages, none twice and none left
out, the last page without a token; a token is good only for the RPC and the filter
that made it (PAGE_TOKEN_MISMATCH), a negative page_size is PAGE_SIZE_NEGATIVE. And the
callers that need a whole list (a till's screen, `huiyuan pos`) read it to its end."""

import grpc
import pytest

from huiyuan.common.v1 import actor_pb2
from huiyuan.gateway.v1 import gateway_pb2 as gw
from huiyuan.member.v1 import card_pb2, member_pb2, tier_pb2
from huiyuan.points.v1 import points_pb2 as pp, points_pb2_grpc
from huiyuan.runtime.ids import new_id
from huiyuan.wallet.v1 import count_card_pb2 as cc, count_card_pb2_grpc, wallet_pb2, wallet_pb2_grpc
from tests.support import ACTOR, STORE, Stubs, ensure_org, new_phone, pos_args, refusal, rid
from tests.test_gateway import as_, chain, issue  # noqa: F401 - chain is the fixture these tests share

INVALID = grpc.StatusCode.INVALID_ARGUMENT
HQ = actor_pb2.Actor(operator_id="hq-ops", org_path="hq")
PAGE = 2  # the page these tests read by: every list below holds more than two pages


def read_in_pages(call, request, field: str) -> list:
    """Every item of a list, PAGE at a time: each page but the last is full and has a
    token, the last has none."""
    request.page_size, seen = PAGE, []
    while True:
        page = call(request)
        items = list(getattr(page, field))
        seen += items
        if not page.next_page_token:
            assert len(items) <= PAGE
            return seen
        assert len(items) == PAGE
        request.page_token = page.next_page_token


def check_pages(call, request, field: str, order, another_filter, another_list) -> list:
    """The list paged: the whole list in one page, in its documented order (order(item):
    a key that strictly increases along the list, so no item comes twice), the same read
    PAGE at a time; its tokens refused with another filter (None: the list has none) and
    by another list RPC (another_list: the RPC, a request), a negative page_size refused.
    Returns the items."""
    whole = list(getattr(call(type(request)(**_filter(request), page_size=500)), field))
    assert len(whole) > 2 * PAGE
    keys = [order(item) for item in whole]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert read_in_pages(call, type(request)(**_filter(request)), field) == whole
    first = call(type(request)(**_filter(request), page_size=PAGE))
    assert first.next_page_token
    mismatch = (INVALID, "PAGE_TOKEN_MISMATCH", {"page_token": "PAGE_TOKEN_MISMATCH"})
    if another_filter is not None:
        another_filter.page_token = first.next_page_token
        assert refusal(call, another_filter) == mismatch
    other_call, other_request = another_list
    other_request.page_token = first.next_page_token
    assert refusal(other_call, other_request) == mismatch
    negative = type(request)(**_filter(request), page_size=-1)
    assert refusal(call, negative) == (INVALID, "PAGE_SIZE_NEGATIVE", {"page_size": "PAGE_SIZE_NEGATIVE"})
    return whole


def _filter(request) -> dict:
    """The request's fields but its page's."""
    return {f.name: v for f, v in request.ListFields() if f.name not in ("page_size", "page_token")}


# ---------------------------------------------------------------- the member service


@pytest.fixture(scope="module")
def stubs(member_service):
    s = Stubs(member_service.channel)
    ensure_org(s)
    return s


def new_card_type(stubs, name: str, org_path: str) -> card_pb2.CardType:
    return stubs.card.CreateCardType(
        card_pb2.CreateCardTypeRequest(
            request_id=rid(),
            card_type=card_pb2.CardType(name=name, org_path=org_path, form=card_pb2.CARD_FORM_INDIVIDUAL),
        )
    ).card_type


def test_card_types_page_by_org_path_name_and_id(stubs):
    for name, org_path in [
        ("B", "hq"),
        ("A", "hq"),
        ("A", "hq"),
        ("C", "hq/east"),
        ("A", "hq/east"),
        ("A", "hq/east/sh-001"),
    ]:
        new_card_type(stubs, name, org_path)
    listed = check_pages(
        stubs.card.ListCardTypes,
        card_pb2.ListCardTypesRequest(usable_at_path="hq/east"),
        "card_types",
        lambda t: (t.org_path, t.name, t.card_type_id),
        card_pb2.ListCardTypesRequest(usable_at_path="hq"),
        (stubs.tier.ListTiers, tier_pb2.ListTiersRequest()),
    )
    assert [(t.org_path, t.name) for t in listed] == [
        ("hq", "A"),
        ("hq", "A"),
        ("hq", "B"),
        ("hq/east", "A"),
        ("hq/east", "C"),
    ]  # not the store's own type


def test_a_member_s_cards_page_newest_first(stubs):
    member = stubs.register("多卡")
    kind = new_card_type(stubs, "储值卡", "hq").card_type_id
    issued = [
        stubs.card.IssueCard(
            card_pb2.IssueCardRequest(request_id=rid(), member_id=member.member_id, card_type_id=kind, actor=ACTOR)
        ).card
        for _ in range(5)
    ]
    listed = check_pages(
        stubs.card.ListCards,
        card_pb2.ListCardsRequest(member_id=member.member_id),
        "cards",
        lambda c: (-c.issue_time.ToMicroseconds(), c.card_number),
        card_pb2.ListCardsRequest(member_id=stubs.register("别人").member_id),
        (stubs.card.ListCardTypes, card_pb2.ListCardTypesRequest()),
    )
    assert [c.card_number for c in listed] == [c.card_number for c in reversed(issued)]


def test_tiers_page_lowest_rank_first(stubs):
    for rank in (30, 10, 50, 20, 40):
        stubs.tier.CreateTier(
            tier_pb2.CreateTierRequest(
                request_id=rid(),
                tier=tier_pb2.Tier(name=f"第{rank}级", rank=rank, price_rate_bp=10000, points_multiplier_bp=10000),
            )
        )
    listed = check_pages(
        stubs.tier.ListTiers,
        tier_pb2.ListTiersRequest(),
        "tiers",
        lambda t: t.rank,
        None,
        (stubs.member.ListAttributeDefinitions, member_pb2.ListAttributeDefinitionsRequest()),
    )
    assert [t.rank for t in listed] == [10, 20, 30, 40, 50]


def test_attribute_definitions_page_by_key(stubs):
    for key in ("shoe_size", "allergy", "skin", "hobby", "car"):
        stubs.member.CreateAttributeDefinition(
            member_pb2.CreateAttributeDefinitionRequest(
                request_id=rid(),
                attribute_definition={"key": key, "display_name": key, "type": member_pb2.ATTRIBUTE_TYPE_TEXT},
            )
        )
    listed = check_pages(
        stubs.member.ListAttributeDefinitions,
        member_pb2.ListAttributeDefinitionsRequest(),
        "attribute_definitions",
        lambda d: d.key,
        None,
        (stubs.tier.ListTiers, tier_pb2.ListTiersRequest()),
    )
    assert [d.key for d in listed] == ["allergy", "car", "hobby", "shoe_size", "skin"]


# ---------------------------------------------------------------- the points service


@pytest.fixture(scope="module")
def points(points_service):
    return points_pb2_grpc.PointsServiceStub(points_service.channel)


def new_gift(points, name: str, cost: int, org_path: str = "hq") -> pp.Gift:
    return points.CreateGift(
        pp.CreateGiftRequest(request_id=rid(), gift=pp.Gift(name=name, points=cost, stock=5, org_path=org_path))
    ).gift


def test_rules_page_highest_priority_first(points):
    base, multiplier = {"points_per_yuan_bp": 10_000}, {"multiplier_bp": 20_000}
    # a base rule and a multiplier may share a priority: then they come by rule_id
    for priority, org_path, earns in [
        (10, "hq", base),
        (30, "hq/east", multiplier),
        (20, "hq", base),
        (30, "hq", base),
        (5, "hq/east/sh-001", base),
        (1, "hq/south", base),
    ]:
        points.CreateRule(
            pp.CreateRuleRequest(
                request_id=rid(), rule=pp.Rule(name=f"规则{priority}", org_path=org_path, priority=priority, **earns)
            )
        )
    listed = check_pages(
        points.ListRules,
        pp.ListRulesRequest(org_path="hq/east"),
        "rules",
        lambda r: (-r.priority, r.rule_id),
        pp.ListRulesRequest(org_path="hq/east", show_ended=True),
        (points.ListGifts, pp.ListGiftsRequest(org_path="hq/east")),
    )
    assert [r.priority for r in listed] == [30, 30, 20, 10, 5]  # not the south's


def test_gifts_page_cheapest_first_and_a_token_stays_good_as_gifts_are_added(points):
    made = [new_gift(points, f"礼品{cost}", cost) for cost in (300, 100, 200, 100, 500)]
    new_gift(points, "南区礼品", 50, "hq/south")
    listed = check_pages(
        points.ListGifts,
        pp.ListGiftsRequest(org_path="hq/east"),
        "gifts",
        lambda g: (g.points, g.gift_id),
        pp.ListGiftsRequest(org_path="hq"),
        (points.ListRules, pp.ListRulesRequest(org_path="hq/east")),
    )
    assert sorted(g.gift_id for g in listed) == sorted(g.gift_id for g in made)
    # A gift added before the page's position is not on the next page, one added after it is:
    # no gift of the first read comes twice or goes missing.
    first = points.ListGifts(pp.ListGiftsRequest(org_path="hq/east", page_size=PAGE))
    cheap, dear = new_gift(points, "新便宜", 1), new_gift(points, "新贵", 900)
    rest = read_in_pages(
        points.ListGifts, pp.ListGiftsRequest(org_path="hq/east", page_token=first.next_page_token), "gifts"
    )
    assert [g.gift_id for g in [*first.gifts, *rest]] == [g.gift_id for g in listed] + [dear.gift_id]
    assert cheap.gift_id not in [g.gift_id for g in rest]


# ---------------------------------------------------------------- the wallet service


@pytest.fixture(scope="module")
def wallet(wallet_service):
    return wallet_pb2_grpc.WalletServiceStub(wallet_service.channel)


@pytest.fixture(scope="module")
def count_cards(wallet_service):
    return count_card_pb2_grpc.CountCardServiceStub(wallet_service.channel)


def new_plan(count_cards, name: str, org_path: str = "hq/east", actor=HQ) -> cc.CountCardPlan:
    return count_cards.CreateCountCardPlan(
        cc.CreateCountCardPlanRequest(
            request_id=rid(),
            actor=actor,
            plan=cc.CountCardPlan(name=name, org_path=org_path, uses=10, price_fen=100_00),
        )
    ).plan


def test_top_up_packages_page_oldest_first(wallet, count_cards):
    made = [
        wallet.CreateTopUpPackage(
            wallet_pb2.CreateTopUpPackageRequest(
                request_id=rid(),
                actor=HQ,
                package=wallet_pb2.TopUpPackage(
                    name=f"充{n}00送{n}0",
                    org_path=org_path,
                    steps=[wallet_pb2.PackageStep(threshold_fen=n * 100_00, bonus_fen=n * 10_00)],
                ),
            )
        ).package
        for n, org_path in [(1, "hq"), (2, "hq/east"), (3, "hq"), (4, "hq/east/sh-001"), (5, "hq/east")]
    ]
    listed = check_pages(
        wallet.ListTopUpPackages,
        wallet_pb2.ListTopUpPackagesRequest(store_path=STORE),
        "packages",
        lambda p: p.package_id,
        wallet_pb2.ListTopUpPackagesRequest(org_path="hq/east"),
        (count_cards.ListCountCardPlans, cc.ListCountCardPlansRequest(store_path=STORE)),
    )
    assert {p.package_id for p in listed} == {p.package_id for p in made}
    check_pages(
        wallet.ListTopUpPackages,
        wallet_pb2.ListTopUpPackagesRequest(org_path="hq/east"),
        "packages",
        lambda p: p.package_id,
        wallet_pb2.ListTopUpPackagesRequest(org_path="hq/east", show_ended=True),
        (count_cards.ListCountCardPlans, cc.ListCountCardPlansRequest(org_path="hq/east")),
    )


def test_count_card_plans_page_by_name_and_id(wallet, count_cards):
    made = [
        new_plan(count_cards, name, org_path)
        for name, org_path in [
            ("游泳", "hq/east"),
            ("理发", "hq/east"),
            ("洗车", "hq"),
            ("游泳", "hq/east/sh-001"),
            ("按摩", "hq/east"),
        ]
    ]
    listed = check_pages(
        count_cards.ListCountCardPlans,
        cc.ListCountCardPlansRequest(store_path=STORE),
        "plans",
        lambda p: (p.name, p.plan_id),
        cc.ListCountCardPlansRequest(store_path="hq/east/hz-001"),
        (wallet.ListTopUpPackages, wallet_pb2.ListTopUpPackagesRequest(store_path=STORE)),
    )
    assert sorted(p.plan_id for p in listed) == sorted(p.plan_id for p in made)


def test_a_member_s_count_cards_page_newest_first(wallet, count_cards):
    plan = new_plan(count_cards, "瑜伽10次卡")
    member_id = new_id("m")
    sold = [
        count_cards.SellCountCard(
            cc.SellCountCardRequest(
                request_id=rid(),
                member_id=member_id,
                plan_id=plan.plan_id,
                store_path=STORE,
                tender=wallet_pb2.TENDER_CASH,
                actor=ACTOR,
            )
        ).card
        for _ in range(5)
    ]
    listed = check_pages(
        count_cards.ListCountCards,
        cc.ListCountCardsRequest(member_id=member_id),
        "cards",
        lambda c: tuple(-ord(ch) for ch in c.card_id),  # ids of one length, descending
        cc.ListCountCardsRequest(member_id=member_id, usable_at_store_path=STORE),
        (count_cards.ListCountCardPlans, cc.ListCountCardPlansRequest()),
    )
    assert {c.card_id for c in listed} == {c.card_id for c in sold}


# ---------------------------------------------------------------- their callers


MORE_THAN_A_PAGE = 51  # the services' default page is 50


def test_a_till_sees_every_count_card_of_a_member_usable_there(chain, count_cards):
    stub, hq_key = chain
    till = issue(stub, hq_key, f"{STORE}/pos-1", gw.ROLE_TERMINAL).api_key
    phone = new_phone()
    member = stub.RegisterMember(
        gw.RegisterMemberRequest(request_id=rid(), member=member_pb2.Member(name="次卡大户", phone=phone)),
        metadata=as_(till),
    ).member
    plan = new_plan(count_cards, "健身1次卡")
    sold = [
        count_cards.SellCountCard(
            cc.SellCountCardRequest(
                request_id=rid(),
                member_id=member.member_id,
                plan_id=plan.plan_id,
                store_path=STORE,
                tender=wallet_pb2.TENDER_CASH,
                actor=ACTOR,
            )
        ).card.card_id
        for _ in range(MORE_THAN_A_PAGE)
    ]
    seen = stub.LookupMember(gw.LookupMemberRequest(phone=phone), metadata=as_(till)).usable_count_cards
    assert [c.card_id for c in seen] == sorted(sold, reverse=True)  # every one, newest first


def test_pos_lists_every_plan_and_gift_on_offer(chain, count_cards, points, monkeypatch, capsys):
    from huiyuan_cli import pos

    stub, hq_key = chain
    monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", stub.address)
    monkeypatch.setenv("HUIYUAN_LANG", "en")  # the lines below as the English table says them
    till = issue(stub, hq_key, f"{STORE}/pos-1", gw.ROLE_TERMINAL).api_key
    plans = [new_plan(count_cards, f"套餐{n:02d}", "hq").plan_id for n in range(MORE_THAN_A_PAGE)]
    gifts = [new_gift(points, f"赠品{n:02d}", 10 + n).gift_id for n in range(MORE_THAN_A_PAGE)]

    def run(*words):
        assert pos.run(pos_args(*words, "--key", till)) == 0
        return capsys.readouterr().out

    shown = run("count-card-plans")
    assert all(f"plan {plan_id}  " in shown for plan_id in plans)
    shown = run("gifts")
    assert all(f"gift {gift_id}  " in shown for gift_id in gifts)
