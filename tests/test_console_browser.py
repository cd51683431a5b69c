"""The console in Chromium, against the real gateway and services (each on an ephemeral
port, on SQLite): a regional manager signs in and reads its region's dashboard, exports a report
and opens it, creates, simulates and publishes a campaign that prices the next checkout
at one of its stores; a store manager sees nothing of another region, by URL either; a
login locked after 5 wrong passwords; forms posted without their CSRF token refused.
Screenshots of the dashboard and a report page go to var/screenshots (git-ignored)."""

import re
import tempfile
import time

import grpc
import openpyxl
import pytest

from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2
from tests.console_support import SCREENSHOTS, ConsoleThread, chromium_or_skip
from tests.support import STORE, Stubs, card_type, new_phone, rid
from tests.test_gateway import as_, chain, issue  # noqa: F401 - the fixture

PASSWORD = "Console123"


@pytest.fixture(params=["sqlite"], scope="module")
def database_url(request):
    """The browser tests run once, on SQLite: what they hold to is the console and the
    gateway's answers; the services' PostgreSQL paths are the other tests'."""
    yield f"sqlite:///{tempfile.mkdtemp()}/member.db"


def person(stub, hq_key, login, org_path, role):
    return stub.CreatePerson(
        pb.CreatePersonRequest(
            request_id=rid(),
            person=pb.Person(login=login, name=f"{login}", phone="13900139000", org_path=org_path, role=role),
            initial_password=PASSWORD,
        ),
        metadata=as_(hq_key),
    ).person


@pytest.fixture(scope="module")
def world(chain, member_service):
    """The chain with people and a day of sales at the east's store; the console."""
    stub, hq_key = chain
    person(stub, hq_key, "east.manager", "hq/east", pb.PERSON_ROLE_REGIONAL_MANAGER)
    person(stub, hq_key, "gz.manager", "hq/south/gz-001", pb.PERSON_ROLE_STORE_MANAGER)
    person(stub, hq_key, "locked.one", "hq/east/sh-001", pb.PERSON_ROLE_STORE_MANAGER)
    person(stub, hq_key, "hq.boss", "hq", pb.PERSON_ROLE_HQ_ADMIN)
    terminal = issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key
    registered = stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(),
            member=member_pb2.Member(name="华东会员", phone=new_phone()),
            card_type_id=card_type(Stubs(member_service.channel)),
        ),
        metadata=as_(terminal),
    )
    member = registered.member
    stub.TopUp(
        pb.TopUpRequest(request_id=rid(), member_id=member.member_id, amount_fen=300_00, tender=pb.TENDER_KIND_CASH),
        metadata=as_(terminal),
    )
    for price in (35_00, 48_00, 120_00):
        stub.Checkout(cash_order(member.member_id, registered.card.card_number, price, price), metadata=as_(terminal))
    console = ConsoleThread(stub.address)
    yield stub, terminal, member, registered.card.card_number, console
    console.stop()


def cash_order(member_id, card, price, cash):
    return pb.CheckoutRequest(
        request_id=rid(),
        member_id=member_id,
        card_number=card,
        lines=[pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=1, unit_price_fen=price)],
        tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=cash)],
    )


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
    opened = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    errors: list[str] = []
    opened.on("weberror", lambda error: errors.append(str(error.error)))
    opened.errors = errors  # type: ignore[attr-defined]
    yield opened
    opened.close()


def sign_in(page, url, login, password=PASSWORD):
    page.goto(f"{url}/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_a_regional_manager_reads_the_region_s_dashboard_and_exports_a_report(world, context, tmp_path):
    stub, _, _, _, console = world
    page = context.new_page()
    sign_in(page, console.url, "east.manager")
    page.wait_for_selector("#dashboard-title")
    assert "EAST" in page.inner_text("#dashboard-title") or "east" in page.inner_text("#dashboard-title")
    # the sales fold into the rollups within seconds: the page shows them once they have
    deadline = time.monotonic() + 20
    while "¥203.00" not in page.inner_text("#tile-month-net") and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
    assert "¥203.00" in page.inner_text("#tile-month-net")
    assert page.inner_text("#tile-month-orders").split()[1] == "3"
    assert "¥300.00" in page.inner_text("#tile-loaded")
    assert "区域经理" in page.inner_text("#who")
    page.wait_for_selector("[data-chart='chart-trend'][data-drawn='1'] canvas")
    page.wait_for_selector("[data-chart='chart-heat'][data-drawn='1'] canvas")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    page.click("header nav >> text=报表")
    page.wait_for_selector("#table-summary")
    assert "经营概况" in page.inner_text("#report-title")
    assert "¥203.00" in page.inner_text("#table-summary")
    page.wait_for_selector("[data-chart='chart-trend'][data-drawn='1'] canvas")
    page.screenshot(path=str(SCREENSHOTS / "report-sales.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#export")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".xlsx"
    workbook = openpyxl.load_workbook(saved)
    values = [cell for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True) for cell in row]
    assert 203.0 in values  # the net sales, in yuan, as a number
    page.click("nav.tabs >> text=消费行为")
    page.wait_for_selector("[data-chart='chart-hour_weekday'][data-drawn='1'] canvas")
    assert context.errors == []


def test_a_campaign_made_simulated_and_published_in_the_console_prices_the_next_checkout(world, context):
    stub, terminal, member, card, console = world
    page = context.new_page()
    sign_in(page, console.url, "east.manager")
    page.goto(f"{console.url}/campaigns/new")
    page.fill("input[name=name]", "华东满50减8")
    page.select_option("select[name=org_path]", "hq/east")
    page.fill("input[name=threshold]", "abc")
    page.click("#campaign-form button[type=submit]")
    assert "门槛" in page.inner_text("[data-field=threshold]")  # refused by the console, beside its field
    page.fill("input[name=name]", "")
    page.fill("input[name=threshold]", "50")
    page.fill("input[name=amount]", "80")
    page.click("#campaign-form button[type=submit]")  # refused by the campaign service, through the gateway
    assert "填写有误" in page.inner_text("#form-error")
    assert page.inner_text("[data-field=name]") == "请填写名称。"
    assert page.inner_text("[data-field=amount]") == "减免金额须大于 0 且不超过门槛。"
    page.fill("input[name=name]", "华东满50减8")
    page.fill("input[name=amount]", "8")
    page.click("#campaign-form button[type=submit]")
    page.wait_for_selector("#campaign-name")
    assert page.inner_text("#campaign-status") == "草稿"
    page.fill("#simulate-form input[name=price]", "60")
    page.click("#simulate")
    page.wait_for_selector("#quote")
    assert page.inner_text("#quote-discount") == "¥8.00" and page.inner_text("#quote-payable") == "¥52.00"
    page.click("#publish")
    page.wait_for_selector("#pause")
    assert page.inner_text("#campaign-status") == "进行中"
    paid = stub.Checkout(cash_order(member.member_id, card, 60_00, 52_00), metadata=as_(terminal))
    assert paid.state == pb.ORDER_STATE_PAID and paid.receipt.discount_total_fen == 8_00
    # the order, in the region's orders and its receipt
    page.click("header nav >> text=订单")
    assert paid.order_id in page.inner_text("#orders")
    page.click(f"text={paid.order_id}")
    assert page.inner_text("#order-state") == "已支付" and "¥8.00" in page.content()
    # the audit trail names the person
    page.goto(f"{console.url}/org/audit")
    assert re.search(r"person:p_\S+", page.inner_text("#audit"))
    assert "SetCampaignStatus" in page.inner_text("#audit")


def test_a_regional_manager_reports_a_member_s_card_lost_and_found(world, context):
    stub, terminal, member, card, console = world
    page = context.new_page()
    sign_in(page, console.url, "east.manager")
    page.goto(f"{console.url}/members?q={member.phone}")
    page.click("#members a")
    assert page.inner_text("#member-name") == "华东会员"
    assert "freeze" not in page.inner_html("#card-form")  # freezing is HQ's
    page.select_option("#card-form select[name=action]", "lost")
    page.fill("#card-form input[name=reason]", "会员来电挂失")
    page.click("#card-form button[type=submit]")
    assert page.inner_text("#cards .card-state") == "已挂失"
    with pytest.raises(grpc.RpcError):  # a lost card pays for nothing at a till
        stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    page.select_option("#card-form select[name=action]", "found")
    page.fill("#card-form input[name=reason]", "卡已找到")
    page.click("#card-form button[type=submit]")
    assert page.inner_text("#cards .card-state") == "正常"


def test_hq_issues_a_till_s_key_shown_once_and_revokes_it(world, context):
    stub, _, _, _, console = world
    page = context.new_page()
    sign_in(page, console.url, "hq.boss")
    page.goto(f"{console.url}/org/keys")
    page.select_option("#key-form select[name=org_path]", "hq/east/sh-001")
    page.select_option("#key-form select[name=role]", "TERMINAL")
    page.fill("#key-form input[name=label]", "3号收银台")
    page.click("#key-form button[type=submit]")
    key = page.inner_text("#issued-key")
    me = stub.GetSelf(pb.GetSelfRequest(), metadata=as_(key))
    assert (me.role, me.org_path) == (pb.ROLE_TERMINAL, "hq/east/sh-001")
    page.goto(f"{console.url}/org/keys")
    assert key not in page.content()  # shown that once: the gateway keeps its hash only
    row = page.locator("#keys tr", has_text=me.key_id)
    row.locator("button").click()
    page.wait_for_load_state()
    assert "已吊销" in page.locator("#keys tr", has_text=me.key_id).inner_text()
    with pytest.raises(grpc.RpcError):
        stub.GetSelf(pb.GetSelfRequest(), metadata=as_(key))
    # a regional manager reads its region's keys, and issues none
    other = context.browser.new_context()
    regional = other.new_page()
    sign_in(regional, console.url, "east.manager")
    regional.goto(f"{console.url}/org/keys")
    assert me.key_id in regional.inner_text("#keys") and regional.query_selector("#key-form") is None
    other.close()


def test_a_store_manager_sees_nothing_of_another_region_even_by_url(world, context):
    _, _, member, _, console = world
    page = context.new_page()
    sign_in(page, console.url, "gz.manager")
    page.wait_for_selector("#dashboard-title")
    response = page.goto(f"{console.url}/members/{member.member_id}")
    assert response is not None and response.status in (403, 404)
    assert "华东会员" not in page.content()
    response = page.goto(f"{console.url}/reports?kind=sales&node=hq/east&period=month")
    assert response is not None and response.status == 403
    assert "超出" in page.inner_text("#refusal")
    page.goto(f"{console.url}/members?q={member.phone}")
    assert "华东会员" not in page.content()
    # and in its own store, its own reports
    response = page.goto(f"{console.url}/reports?kind=sales&period=month")
    assert response is not None and response.status == 200


def test_five_wrong_passwords_lock_a_login(world, context):
    _, _, _, _, console = world
    page = context.new_page()
    for _ in range(4):
        sign_in(page, console.url, "locked.one", "Wrong12345")
        assert page.inner_text("#login-error") == "账号或密码错误。"
    sign_in(page, console.url, "locked.one", "Wrong12345")
    assert "锁定" in page.inner_text("#login-error")
    sign_in(page, console.url, "locked.one")  # the right password, locked all the same
    assert "锁定" in page.inner_text("#login-error")


def test_a_form_posted_without_its_csrf_token_is_refused(world, context):
    stub, _, _, _, console = world
    page = context.new_page()
    sign_in(page, console.url, "east.manager")
    page.wait_for_selector("#dashboard-title")
    form = {"name": "跨站活动", "org_path": "hq/east", "kind": "reduction", "threshold": "10", "amount": "1"}
    for token in (None, "forged"):
        sent = dict(form, **({"csrf_token": token} if token else {}))
        answer = context.request.post(f"{console.url}/campaigns/new", form=sent, max_redirects=0)
        assert answer.status == 403
    # every form of the console, each of its POST routes: refused without the token
    posts = [r.path for r in console.app.routes if "POST" in (getattr(r, "methods", None) or ())]
    assert len(posts) >= 8
    for path in posts:
        answer = context.request.post(console.url + re.sub(r"{\w+}", "c_none", path), form={}, max_redirects=0)
        assert answer.status == 403, path
    page.goto(f"{console.url}/campaigns")
    assert "跨站活动" not in page.content()
    # the login form too: its token is a cookie's, submitted again
    assert (
        context.request.post(f"{console.url}/login", form={"login": "east.manager", "password": PASSWORD}).status == 403
    )


def test_every_answer_carries_the_security_headers_and_the_session_cookie_is_http_only(world, context):
    _, _, _, _, console = world
    page = context.new_page()
    response = page.goto(f"{console.url}/login")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    sign_in(page, console.url, "east.manager")
    page.wait_for_selector("#dashboard-title")
    cookie = next(c for c in context.cookies() if c["name"] == "hy_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["value"] not in page.content()  # the session is never in a page
