"""The console's 会员 and 订单 pages in Chromium, against the real gateway and services
(on SQLite): a regional manager replaces a member's card (the old one finds the member
no more), edits their phone (the member's audit trail names the person), reads their
tier history, coupons, count cards and orders, records a care contact and searches the
orders; a store manager refunds one line of an order, the money going back as the
checkout's figures say, to the fen, and a second send of the same form moves nothing
twice; a read-only person and a regional manager are refused a refund by the gateway;
another region's member is refused by URL; a search's filters go on with the
gateway's page tokens."""

import tempfile

import grpc
import pytest

from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.common.v1 import actor_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import care_pb2, care_pb2_grpc, member_pb2, tier_pb2, tier_pb2_grpc
from huiyuan.wallet.v1 import count_card_pb2, count_card_pb2_grpc, wallet_pb2, wallet_pb2_grpc
from tests.console_support import SCREENSHOTS, ConsoleThread, LosingProxy, chromium_or_skip
from tests.support import STORE, Stubs, card_type, new_phone, refusal_of, rid
from tests.test_gateway import as_, chain, issue  # noqa: F401 - the fixture

PASSWORD = "Console123"
SOUTH_STORE = "hq/south/gz-001"
NAMES = {
    "east.manager": "王华东",
    "sh.manager": "李店长",
    "east.finance": "赵财务",
    "gz.manager": "陈广州",
}


@pytest.fixture(params=["sqlite"], scope="module")
def database_url(request):
    """Once, on SQLite: what these tests hold to is the console and the gateway's answers."""
    yield f"sqlite:///{tempfile.mkdtemp()}/member.db"


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


@pytest.fixture(scope="module")
def world(chain, member_service, wallet_service, campaign_service):
    """People of the east and the south; an east member with a card, stored value, a
    tier assigned, a coupon, a count card and an order of two lines paid partly in
    stored value; a south member; the console."""
    stub, hq_key = chain
    people = {
        "east.manager": ("hq/east", pb.PERSON_ROLE_REGIONAL_MANAGER),
        "sh.manager": (STORE, pb.PERSON_ROLE_STORE_MANAGER),
        "east.finance": ("hq/east", pb.PERSON_ROLE_FINANCE),
        "gz.manager": (SOUTH_STORE, pb.PERSON_ROLE_STORE_MANAGER),
    }
    for login, (org_path, role) in people.items():
        stub.CreatePerson(
            pb.CreatePersonRequest(
                request_id=rid(),
                person=pb.Person(login=login, name=NAMES[login], org_path=org_path, role=role),
                initial_password=PASSWORD,
            ),
            metadata=as_(hq_key),
        )
    terminal = issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key
    south_terminal = issue(stub, hq_key, SOUTH_STORE, pb.ROLE_TERMINAL).api_key
    kind = card_type(Stubs(member_service.channel))
    registered = stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(), member=member_pb2.Member(name="会员甲", phone=new_phone()), card_type_id=kind
        ),
        metadata=as_(terminal),
    )
    member, card = registered.member, registered.card.card_number
    south = stub.RegisterMember(
        pb.RegisterMemberRequest(request_id=rid(), member=member_pb2.Member(name="华南会员", phone=new_phone())),
        metadata=as_(south_terminal),
    ).member
    stub.TopUp(
        pb.TopUpRequest(request_id=rid(), member_id=member.member_id, amount_fen=100_00, tender=pb.TENDER_KIND_CASH),
        metadata=as_(terminal),
    )
    # a tier assigned by HQ through the gateway: the tier history's entry
    tiers = Stubs(member_service.channel).tier
    tiers.CreateTier(
        tier_pb2.CreateTierRequest(
            request_id=rid(),
            tier=tier_pb2.Tier(name="银卡", rank=20, price_rate_bp=10_000, points_multiplier_bp=10_000),
        )
    )
    gold = tiers.CreateTier(
        tier_pb2.CreateTierRequest(
            request_id=rid(),
            tier=tier_pb2.Tier(name="金卡", rank=30, price_rate_bp=10_000, points_multiplier_bp=10_000),
        )
    ).tier
    tier_pb2_grpc.TierServiceStub(stub.channel).AssignTier(
        tier_pb2.AssignTierRequest(
            request_id=rid(), member_id=member.member_id, tier_id=gold.tier_id, reason="老客户回馈"
        ),
        metadata=as_(hq_key),
    )
    campaigns = campaign_pb2_grpc.CampaignServiceStub(campaign_service.channel)
    template = campaigns.CreateCouponTemplate(
        campaign_pb2.CreateCouponTemplateRequest(
            request_id=rid(),
            template=campaign_pb2.CouponTemplate(
                name="华东5元券",
                kind=campaign_pb2.COUPON_KIND_FIXED,
                amount_fen=5_00,
                valid_days=30,
                org_path="hq/east",
            ),
        )
    ).template
    campaigns.IssueCoupons(
        campaign_pb2.IssueCouponsRequest(
            request_id=rid(), template_id=template.template_id, member_ids=[member.member_id]
        )
    )
    count_cards = count_card_pb2_grpc.CountCardServiceStub(wallet_service.channel)
    actor = actor_pb2.Actor(operator_id="t", org_path="hq")
    plan = count_cards.CreateCountCardPlan(
        count_card_pb2.CreateCountCardPlanRequest(
            request_id=rid(),
            actor=actor,
            plan=count_card_pb2.CountCardPlan(name="洗护10次卡", org_path="hq/east", uses=10, price_fen=200_00),
        )
    ).plan
    count_cards.SellCountCard(
        count_card_pb2.SellCountCardRequest(
            request_id=rid(),
            member_id=member.member_id,
            plan_id=plan.plan_id,
            store_path=STORE,
            tender=wallet_pb2.TENDER_CASH,
            actor=actor,
        )
    )
    # two lines of 40.00: 30.00 of the 80.00 in stored value, the rest in cash
    lines = [
        pb.CheckoutLine(line_id=str(i), sku=f"tea-{i}", category="tea", quantity=1, unit_price_fen=40_00)
        for i in (1, 2)
    ]
    priced = stub.PriceOrder(
        pb.PriceOrderRequest(member_id=member.member_id, card_number=card, lines=lines), metadata=as_(terminal)
    )
    paid = stub.Checkout(
        pb.CheckoutRequest(
            request_id=rid(),
            member_id=member.member_id,
            card_number=card,
            lines=lines,
            tenders=[
                pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=30_00),
                pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=priced.amount_due_fen - 30_00),
            ],
        ),
        metadata=as_(terminal),
    )
    assert paid.state == pb.ORDER_STATE_PAID, paid.refusal_reason
    console = ConsoleThread(stub.address)
    yield {
        "south_terminal": south_terminal,
        "stub": stub,
        "hq_key": hq_key,
        "terminal": terminal,
        "member": member,
        "card": card,
        "south": south,
        "paid": paid,
        "console": console,
    }
    console.stop()


@pytest.fixture(scope="module")
def browser():
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def context(browser):
    opened = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    opened.on("weberror", lambda error: errors.append(str(error.error)))
    opened.errors = errors  # type: ignore[attr-defined]
    yield opened
    opened.close()


def sign_in(context, url, login):
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#who")
    return page


def test_a_regional_manager_replaces_a_card_and_the_old_one_finds_the_member_no_more(world, context):
    stub, member, url = world["stub"], world["member"], world["console"].url
    old_card = world["card"]
    page = sign_in(context, url, "east.manager")
    page.goto(f"{url}/members?q={old_card}")
    page.click("#members a")
    assert page.inner_text("#member-name") == "会员甲"
    page.select_option("#replace-form select[name=card_number]", old_card)
    page.fill("#replace-form input[name=new_card_number]", old_card)  # a number taken: the gateway says so
    page.fill("#replace-form input[name=reason]", "会员卡遗失补办")
    page.click("#replace-form button[type=submit]")
    assert page.inner_text("[data-field=new_card_number]") == "该卡号已被使用。"
    page.fill("#replace-form input[name=reason]", "会员卡遗失补办")
    page.click("#replace-form button[type=submit]")
    new_card = page.inner_text("#new-card")
    assert new_card and new_card != old_card
    states = dict(
        zip(
            page.locator("#cards .card-number").all_inner_texts(),
            page.locator("#cards .card-state").all_inner_texts(),
            strict=True,
        )
    )
    assert states == {old_card: "已换卡", new_card: "正常"}
    assert old_card not in page.locator("#replace-form select[name=card_number]").inner_text()
    # a replaced card is lost no more: the card service's refusal, in its words
    page.select_option("#card-form select[name=card_number]", old_card)
    page.select_option("#card-form select[name=action]", "lost")
    page.fill("#card-form input[name=reason]", "再次挂失")
    page.click("#card-form button[type=submit]")
    assert page.inner_text("#member-error")
    assert page.locator("#cards tr", has_text=old_card).locator(".card-state").inner_text() == "已换卡"
    # the old card finds the member no more, at a till or in the console; the new one does
    with pytest.raises(grpc.RpcError) as caught:
        stub.LookupMember(pb.LookupMemberRequest(card_number=old_card), metadata=as_(world["terminal"]))
    assert refusal_of(caught.value)[1] == "CARD_REPLACED"
    found = stub.LookupMember(pb.LookupMemberRequest(card_number=new_card), metadata=as_(world["terminal"]))
    assert found.member.member_id == member.member_id
    page.goto(f"{url}/members?q={old_card}")
    assert page.query_selector("#members") is None and "会员甲" not in page.inner_text("main")
    page.goto(f"{url}/members?q={new_card}")
    assert page.inner_text("#members a") == "会员甲"
    # the card's history: the replacement, by the person, in the member's trail of cards
    page.goto(f"{url}/org/audit")
    assert "ReplaceCard" in page.inner_text("#audit") and NAMES["east.manager"] in page.inner_text("#audit")
    assert context.errors == []


def test_a_regional_manager_edits_a_member_s_phone_and_the_audit_names_them(world, context):
    stub, member, url = world["stub"], world["member"], world["console"].url
    page = sign_in(context, url, "east.manager")
    page.goto(f"{url}/members/{member.member_id}")
    page.click("#edit-link")
    page.fill("#edit-form input[name=phone]", "12345")
    page.click("#edit-form button[type=submit]")  # refused by the member service, through the gateway
    assert page.inner_text("#form-error")
    assert page.inner_text("[data-field=phone]") == "手机号应为 1 开头的 11 位数字。"
    assert page.input_value("#edit-form input[name=phone]") == "12345"  # the form as it was filled
    south_phone = world["south"].phone
    page.fill("#edit-form input[name=phone]", south_phone)  # another member's
    page.click("#edit-form button[type=submit]")
    assert page.inner_text("[data-field=phone]")
    new = new_phone()
    page.fill("#edit-form input[name=phone]", new)
    page.fill("#edit-form input[name=birthday]", "1990-05-17")
    page.click("#edit-form button[type=submit]")
    page.wait_for_selector("#member-phone")
    assert page.inner_text("#member-phone") == new
    read = stub.LookupMember(pb.LookupMemberRequest(phone=new), metadata=as_(world["hq_key"]))
    assert read.member.member_id == member.member_id
    assert (read.member.birthday.year, read.member.birthday.month, read.member.birthday.day) == (1990, 5, 17)
    page.click("#audit-link")
    row = page.locator("#member-audit tr", has_text="UpdateMember").first
    assert NAMES["east.manager"] in row.locator(".operator").inner_text()
    assert new in row.locator(".change").inner_text() and "phone" in row.locator(".change").inner_text()
    world["member"] = read.member


def test_the_member_s_tier_history_coupons_count_cards_and_orders(world, context):
    member, paid, url = world["member"], world["paid"], world["console"].url
    page = sign_in(context, url, "east.manager")
    page.goto(f"{url}/members/{member.member_id}")
    assert page.inner_text("#member-tier") == "金卡"
    tiers = page.inner_text("#list-tiers")
    assert "金卡" in tiers and "老客户回馈" in tiers
    # a tier given by hand, with why: the history's newest entry, by the person
    page.select_option("#tier-form select[name=tier_id]", label="银卡")
    page.fill("#tier-form input[name=end_date]", "2099-12-31")
    page.fill("#tier-form input[name=reason]", "门店活动保级")
    page.click("#tier-form button[type=submit]")
    page.wait_for_selector("#member-tier")
    assert page.inner_text("#member-tier") == "银卡"
    newest = page.locator("#list-tiers tbody tr").first.inner_text()
    assert "金卡" in newest and "银卡" in newest and "门店活动保级" in newest
    assert NAMES["east.manager"] in newest  # the tier service's trail names the person, and the page their name
    coupons = page.inner_text("#list-coupons")
    assert "华东5元券" in coupons and "可用" in coupons
    count_cards = page.inner_text("#list-count-cards")
    assert "洗护10次卡" in count_cards and "10 / 10" in count_cards and "¥200.00" in count_cards
    orders = page.inner_text("#list-orders")
    assert paid.order_id in orders and yuan(paid.receipt.list_total_fen - paid.receipt.discount_total_fen) in orders
    entries = page.inner_text("#list-entries")
    assert "¥100.00" in entries and "-¥30.00" in entries  # the top-up, the order's stored value
    # a care contact recorded, by the person
    page.select_option("#care-form select[name=channel]", "phone")
    page.select_option("#care-form select[name=topic]", "follow_up")
    page.fill("#care-form input[name=note]", "回访购物体验，满意")
    page.click("#care-form button[type=submit]")
    recorded = page.locator("#list-care tbody tr").first.inner_text()
    assert "回访购物体验，满意" in recorded and NAMES["east.manager"] in recorded
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "member.png"), full_page=True)
    # each list on its own page, paged by the gateway's tokens
    page.goto(f"{url}/members/{member.member_id}/orders")
    assert paid.order_id in page.inner_text("#list-orders")
    page.click(f"#list-orders >> text={paid.order_id}")
    assert page.inner_text("#order-state") == "已支付"
    # the orders searched by the member's phone, and by the day
    page.goto(f"{url}/orders")
    page.fill("#order-search input[name=member]", member.phone)
    page.click("#order-search button[type=submit]")
    assert [paid.order_id] == page.locator("#orders td:first-child a").all_inner_texts()
    page.fill("#order-search input[name=member]", new_phone())
    page.click("#order-search button[type=submit]")
    assert page.inner_text("[data-field=member]")
    page.goto(f"{url}/orders?order_id={paid.order_id}")
    assert page.inner_text("#order-state") == "已支付"
    page.goto(f"{url}/orders?start=2020-01-01&end=2020-01-31")
    assert page.inner_text("#orders tbody") == "暂无订单"
    page.goto(f"{url}/orders?start=2020-02-01&end=2020-01-01")  # a period backwards: the gateway's refusal
    assert page.inner_text("[data-field=end]") == "结束日期须不早于开始日期。"
    assert context.errors == []


def test_a_member_s_list_pages_by_the_gateway_s_tokens(world, context, member_service):
    member, url = world["member"], world["console"].url
    care = care_pb2_grpc.CareServiceStub(member_service.channel)
    notes = [f"第{i:02d}次回访" for i in range(21)]
    for note in notes:
        care.RecordCareContact(
            care_pb2.RecordCareContactRequest(
                request_id=rid(),
                contact=care_pb2.CareContact(
                    member_id=member.member_id,
                    channel=care_pb2.CARE_CHANNEL_IN_STORE,
                    topic=care_pb2.CARE_TOPIC_FOLLOW_UP,
                    note=note,
                ),
                actor=actor_pb2.Actor(operator_id="t", org_path=STORE),
            )
        )
    page = sign_in(context, url, "east.manager")
    page.goto(f"{url}/members/{member.member_id}")
    assert page.locator("#list-care tbody tr").count() == 10  # the first rows; the rest on the list's page
    page.click("#more-care")
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        rows = page.locator("#list-care tbody tr td:nth-child(4)").all_inner_texts()
        assert len(rows) <= 20
        seen += rows
        if page.query_selector("#next-page") is None:
            break
        page.click("#next-page")
    assert pages >= 2 and len(seen) == len(set(seen)) and set(notes) <= set(seen)
    assert seen[: len(notes)] == list(reversed(notes))  # newest first


def test_a_store_manager_refunds_one_line_by_the_checkout_s_figures(world, context):
    stub, paid, url = world["stub"], world["paid"], world["console"].url
    receipt = paid.receipt
    line = next(i for i in receipt.items if i.line_id == "1")
    payable = sum(i.payable_fen for i in receipt.items) - receipt.points_offset_fen
    # the stored value's share of the line: 30.00 of the order's payable, to the fen
    stored_back = receipt.stored_value_paid_fen * line.payable_fen // payable
    assert stored_back * payable == receipt.stored_value_paid_fen * line.payable_fen  # exact, by the figures chosen
    page = sign_in(context, url, "sh.manager")
    page.goto(f"{url}/orders/{paid.order_id}")
    page.fill("input[name=qty_1]", "2")  # more than was bought: the gateway says so, beside it
    page.fill("#refund-form input[name=reason]", "顾客退货")
    page.click("#refund")
    assert page.inner_text("[data-field=qty_1]") == "超出该商品可退数量。"
    assert page.input_value("input[name=qty_1]") == "2"  # the form as it was filled
    assert page.input_value("#refund-form input[name=reason]") == "顾客退货"
    page.fill("input[name=qty_1]", "1")
    sent_id = page.input_value("#refund-form input[name=request_id]")
    csrf = page.input_value("#refund-form input[name=csrf_token]")
    page.click("#refund")
    page.wait_for_selector("#refund-result")
    assert page.inner_text("#refund-stored-value") == yuan(stored_back)
    assert page.locator(".refund-tender").all_inner_texts() == [yuan(line.payable_fen - stored_back)]
    assert page.inner_text("#order-state") == "部分退款"
    assert page.inner_text("#receipt tr[data-line='1'] .returned") == "1"
    assert page.inner_text("#receipt tr[data-line='2'] .returned") == "0"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "order-refunded.png"), full_page=True)
    # the same form sent again (a double click): the same refund, answered again, nothing moved twice
    again = context.request.post(
        f"{url}/orders/{paid.order_id}/refund",
        form={"csrf_token": csrf, "request_id": sent_id, "qty_1": "1", "reason": "顾客退货"},
    )
    assert again.status == 200 and yuan(stored_back) in again.text(), again.text()[-3000:]
    order = stub.GetOrder(pb.GetOrderRequest(order_id=paid.order_id), metadata=as_(world["hq_key"]))
    assert {i.line_id: i.returned_quantity for i in order.receipt.items} == {"1": 1, "2": 0}
    assert order.state == pb.ORDER_STATE_PARTLY_REFUNDED
    # the member's statement: the 30.00 paid, the share back once
    page.goto(f"{url}/members/{world['member'].member_id}/entries")
    entries = page.inner_text("#list-entries")
    assert entries.count(yuan(stored_back)) == 1
    assert context.errors == []


@pytest.mark.parametrize(
    "code, passed_through",
    [(grpc.StatusCode.DEADLINE_EXCEEDED, True), (grpc.StatusCode.UNAVAILABLE, False)],
)
def test_a_refund_whose_answer_is_lost_is_redrawn_with_its_request_id_and_sent_again_moves_money_once(
    world, context, member_service, wallet_service, code, passed_through
):
    """The console behind a proxy that loses the gateway's answer to a refund (done, then
    DEADLINE_EXCEEDED) or never passes the call (UNAVAILABLE): the form comes back with
    the same request_id and says the outcome is unknown; sent again, the refund is done
    once - the line returned once, the stored value paid back once."""
    stub, terminal, hq_key = world["stub"], world["terminal"], world["hq_key"]
    registered = stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(),
            member=member_pb2.Member(name="会员乙", phone=new_phone()),
            card_type_id=card_type(Stubs(member_service.channel)),
        ),
        metadata=as_(terminal),
    )
    member_id = registered.member.member_id
    stub.TopUp(
        pb.TopUpRequest(request_id=rid(), member_id=member_id, amount_fen=50_00, tender=pb.TENDER_KIND_CASH),
        metadata=as_(terminal),
    )
    paid = stub.Checkout(
        pb.CheckoutRequest(
            request_id=rid(),
            member_id=member_id,
            card_number=registered.card.card_number,
            lines=[pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=1, unit_price_fen=20_00)],
            tenders=[pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=20_00)],
        ),
        metadata=as_(terminal),
    )
    assert paid.state == pb.ORDER_STATE_PAID, paid.refusal_reason
    wallet = wallet_pb2_grpc.WalletServiceStub(wallet_service.channel)

    def available():
        return wallet.GetBalance(wallet_pb2.GetBalanceRequest(member_id=member_id)).balance.available_fen

    def returned():
        order = stub.GetOrder(pb.GetOrderRequest(order_id=paid.order_id), metadata=as_(hq_key))
        return order.receipt.items[0].returned_quantity

    proxy = LosingProxy(stub.address)
    console = ConsoleThread(proxy.address)
    try:
        assert available() == 30_00
        page = sign_in(context, console.url, "sh.manager")
        page.goto(f"{console.url}/orders/{paid.order_id}")
        page.fill("input[name=qty_1]", "1")
        page.fill("#refund-form input[name=reason]", "答复丢失")
        sent_id = page.input_value("#refund-form input[name=request_id]")
        proxy.lose_next("/huiyuan.gateway.v1.GatewayService/Refund", code, passed_through)
        page.click("#refund")
        page.wait_for_selector("#refund-form")
        assert "结果未知：请再次提交以完成（不会重复执行）" in page.inner_text("main")
        assert page.input_value("#refund-form input[name=request_id]") == sent_id  # the same request
        assert page.input_value("input[name=qty_1]") == "1"
        assert returned() == (1 if passed_through else 0)
        assert available() == (50_00 if passed_through else 30_00)
        page.click("#refund")  # sent again: done now, or answered as it was done
        page.wait_for_selector("#refund-result")
        assert page.inner_text("#refund-stored-value") == yuan(20_00)
        assert returned() == 1
        assert available() == 50_00  # the 20.00 back once
        assert context.errors == []
    finally:
        console.stop()
        proxy.stop()


def _refund_as(context, url, login, order_id):
    page = sign_in(context, url, login)
    page.goto(f"{url}/orders/{order_id}")
    assert page.query_selector("#refund-form") is None  # not offered; the gateway is the judge all the same
    csrf = page.input_value("input[name=csrf_token]")  # the sign-out form's: the person's token
    return context.request.post(
        f"{url}/orders/{order_id}/refund",
        form={"csrf_token": csrf, "request_id": rid(), "qty_2": "1", "reason": "试退"},
    )


def test_a_read_only_person_and_a_regional_manager_are_refused_a_refund_by_the_gateway(world, browser):
    stub, paid, url = world["stub"], world["paid"], world["console"].url
    for login in ("east.finance", "east.manager"):  # a refund is a store's, at the till or its manager's
        context = browser.new_context(locale="zh-CN")
        answer = _refund_as(context, url, login, paid.order_id)
        said = "此操作超出您的权限范围。"
        assert answer.status == 400 and said in answer.text(), (
            login,
            answer.text()[answer.text().find('class="error"') :][:200],
        )
        context.close()
    order = stub.GetOrder(pb.GetOrderRequest(order_id=paid.order_id), metadata=as_(world["hq_key"]))
    assert {i.line_id: i.returned_quantity for i in order.receipt.items}["2"] == 0
    # a read-only person reads the member and changes nothing: the gateway refuses the form
    member = world["member"]
    context = browser.new_context(locale="zh-CN")
    page = sign_in(context, url, "east.finance")
    page.goto(f"{url}/members/{member.member_id}")
    assert page.query_selector("#edit-link") is None and page.query_selector("#replace-form") is None
    page.goto(f"{url}/members/{member.member_id}/edit")
    page.fill("#edit-form input[name=name]", "财务改名")
    page.click("#edit-form button[type=submit]")
    assert page.inner_text("#form-error") == "您的角色只能查看，不能进行此项修改。"
    read = stub.LookupMember(pb.LookupMemberRequest(phone=member.phone), metadata=as_(world["hq_key"]))
    assert read.member.name == "会员甲"
    context.close()


def test_another_region_s_member_and_order_are_refused_by_url(world, context):
    south, member, paid, url = world["south"], world["member"], world["paid"], world["console"].url
    page = sign_in(context, url, "east.manager")
    for path in ("", "/edit", "/audit", "/coupons", "/orders", "/tiers"):
        response = page.goto(f"{url}/members/{south.member_id}{path}")
        assert response is not None and response.status in (403, 404), path
        assert "华南会员" not in page.content()
    csrf = page.input_value("input[name=csrf_token]")
    posted = context.request.post(
        f"{url}/members/{south.member_id}/edit",
        form={"csrf_token": csrf, "request_id": rid(), "name": "改名", "phone": south.phone},
    )
    assert posted.status in (403, 404)
    # and the south's store manager: neither the east's member nor its order
    other = context.browser.new_context(locale="zh-CN")
    south_page = sign_in(other, url, "gz.manager")
    response = south_page.goto(f"{url}/members/{member.member_id}/coupons")
    assert response is not None and response.status in (403, 404)
    response = south_page.goto(f"{url}/orders/{paid.order_id}")
    assert response is not None and response.status == 404
    south_page.goto(f"{url}/orders?member={member.member_id}")
    assert south_page.inner_text("#orders tbody") == "暂无订单"
    other.close()


def test_the_orders_searched_page_on_with_their_filters(world, context):
    stub, south, url = world["stub"], world["south"], world["console"].url
    taken = [
        stub.Checkout(
            pb.CheckoutRequest(
                request_id=rid(),
                member_id=south.member_id,
                lines=[pb.CheckoutLine(line_id="1", sku="rice", quantity=1, unit_price_fen=(i + 1) * 1_00)],
                tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=(i + 1) * 1_00)],
            ),
            metadata=as_(world["south_terminal"]),
        ).order_id
        for i in range(21)
    ]
    page = sign_in(context, url, "gz.manager")
    page.goto(f"{url}/orders?state=paid")
    page.fill("#order-search input[name=member]", south.phone)
    page.fill("#order-search input[name=start]", "2026-01-01")
    page.fill("#order-search input[name=end]", "2099-12-31")
    page.click("#order-search button[type=submit]")
    first = page.locator("#orders td:first-child a").all_inner_texts()
    assert first == list(reversed(taken))[:20]
    page.click("#next-page")  # the filters go on with the gateway's token
    assert page.input_value("#order-search input[name=member]") == south.phone
    assert page.locator("#orders td:first-child a").all_inner_texts() == [taken[0]]
    assert page.query_selector("#next-page") is None
    page.click("nav.tabs >> text=待处理")  # another state: the filters kept, none needs attention
    assert page.input_value("#order-search input[name=member]") == south.phone
    assert page.inner_text("#orders tbody") == "暂无订单"


def test_a_day_past_what_a_timestamp_holds_is_a_note_beside_the_field_not_an_error_page(world, context):
    """/orders?end=9999-12-31 (its end, the next day's start, is past year 9999) and
    start=0001-01-01 (in Shanghai, before year 1 in UTC): the search page again, 日期超出范围
    beside the date, not a 500."""
    url = world["console"].url
    sign_in(context, url, "east.manager")
    for query, field in (
        ("end=9999-12-31", "end"),
        ("start=0001-01-01", "start"),
        ("start=0001-01-01&end=9999-12-31", "end"),
    ):
        answer = context.request.get(f"{url}/orders?{query}")
        assert answer.status == 400, (query, answer.status)
        assert f'data-field="{field}"' in answer.text() and "日期超出范围。" in answer.text(), query
