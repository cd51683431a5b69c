"""The gateway in front of the real services, each on an ephemeral port: credentials,
roles and scope, and the terminal's calls passed through with their refusals."""

import contextlib
import socket
import time
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import date_pb2

from gateway.domain.callers import Role
from gateway.use_cases import bootstrap
from huiyuan.common.v1 import file_pb2
from huiyuan.database import migrate
from huiyuan.gateway.v1 import gateway_pb2 as pb, gateway_pb2_grpc
from huiyuan.member.v1 import member_pb2
from tests.conftest import ServiceThread, per_service
from tests.support import STORE, Stubs, ensure_org, new_phone, pos_args, refusal, refusal_of, rid

ADDRESS_VARS = {name: f"HUIYUAN_{name.upper()}_ADDR" for name in ("member", "wallet", "points", "campaign")}


@pytest.fixture(scope="module")
def chain(database_url, member_service, wallet_service, points_service, campaign_service):
    """Every service running; the gateway pointed at them; an HQ key made by bootstrap."""
    from gateway.app import SPEC

    patch = pytest.MonkeyPatch()
    for service, var in ADDRESS_VARS.items():
        running = {
            "member": member_service,
            "wallet": wallet_service,
            "points": points_service,
            "campaign": campaign_service,
        }[service]
        patch.setenv(var, running.app.address)
    url = per_service(database_url, "gateway")
    migrate.upgrade(SPEC.migrations_dir, url, "gateway")
    gateway = ServiceThread(SPEC, url)
    ensure_org(Stubs(member_service.channel))
    _, hq_key = bootstrap.issue_key(
        url, "hq", Role.HQ_ADMIN, "first admin", member_database_url=per_service(database_url, "member")
    )
    stub = gateway_pb2_grpc.GatewayServiceStub(gateway.channel)
    stub.channel = gateway.channel  # for the services' own stubs, passed through (tests/test_gateway_config.py)
    stub.address = gateway.app.address  # for `huiyuan pos`
    yield stub, hq_key
    gateway.stop()
    patch.undo()


def as_(key):
    return (("authorization", f"Bearer {key}"),)


def issue(stub, hq_key, org_path, role):
    return stub.IssueApiKey(
        pb.IssueApiKeyRequest(request_id=rid(), org_path=org_path, role=role, label="t"), metadata=as_(hq_key)
    )


def code_and_reason(call, request, key=None):
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=as_(key) if key else ())
    return refusal_of(caught.value)[:2]


def test_a_terminal_registers_tops_up_and_looks_a_member_up(chain):
    stub, hq_key = chain
    terminal = issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key
    phone = new_phone()
    request = pb.RegisterMemberRequest(request_id=rid(), member=member_pb2.Member(name="网关会员", phone=phone))
    member = stub.RegisterMember(request, metadata=as_(terminal)).member
    assert stub.RegisterMember(request, metadata=as_(terminal)).member == member  # a retry: one member
    top_up = pb.TopUpRequest(
        request_id=rid(), member_id=member.member_id, amount_fen=100_00, tender=pb.TENDER_KIND_CASH
    )
    done = stub.TopUp(top_up, metadata=as_(terminal))
    assert done.stored_value_available_fen == 100_00 and done.receipt_lines[-1] == "储值余额 ¥100.00"
    assert stub.TopUp(top_up, metadata=as_(terminal)).top_up_id == done.top_up_id  # nothing moves twice
    found = stub.LookupMember(pb.LookupMemberRequest(phone=phone), metadata=as_(terminal))
    assert (found.member.member_id, found.stored_value_available_fen, found.points_available) == (
        member.member_id,
        100_00,
        0,
    )
    assert code_and_reason(stub.LookupMember, pb.LookupMemberRequest(phone=new_phone()), terminal) == (
        grpc.StatusCode.NOT_FOUND,
        "MEMBER_NOT_FOUND",
    )  # the member service's refusal, passed on
    ghost = pb.TopUpRequest(request_id=rid(), member_id="m_" + "9" * 26, amount_fen=1_00, tender=pb.TENDER_KIND_CASH)
    assert code_and_reason(stub.TopUp, ghost, terminal) == (grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND")


def test_no_credential_a_bad_one_or_a_revoked_one_is_unauthenticated(chain):
    stub, hq_key = chain
    lookup = pb.LookupMemberRequest(phone=new_phone())
    assert code_and_reason(stub.LookupMember, lookup) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIAL_REQUIRED")
    assert code_and_reason(stub.LookupMember, lookup, "hy_not-a-key") == (
        grpc.StatusCode.UNAUTHENTICATED,
        "CREDENTIAL_INVALID",
    )
    issued = issue(stub, hq_key, STORE, pb.ROLE_STORE_MANAGER)
    stub.RevokeApiKey(pb.RevokeApiKeyRequest(request_id=rid(), key_id=issued.key_id), metadata=as_(hq_key))
    assert code_and_reason(stub.LookupMember, lookup, issued.api_key) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "CREDENTIAL_INVALID",
    )


def test_a_key_goes_as_bearer_and_the_deprecated_apikey_form_still_works(chain):
    """The documented form is `authorization: Bearer <key>` (as_ above sends it, the
    refusal says it, in both languages); `ApiKey <key>` is accepted for one version."""
    from grpc_status import rpc_status

    from huiyuan.runtime.status import from_status

    stub, hq_key = chain
    terminal = issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key
    phone = new_phone()
    stub.RegisterMember(
        pb.RegisterMemberRequest(request_id=rid(), member=member_pb2.Member(name="旧终端", phone=phone)),
        metadata=as_(terminal),
    )
    lookup = pb.LookupMemberRequest(phone=phone)
    for header in (f"ApiKey {terminal}", f"bearer {terminal}"):
        found = stub.LookupMember(lookup, metadata=(("authorization", header),)).member
        assert found.phone == f"{phone[:3]}****{phone[-4:]}"  # a till's view
    for header in (terminal, f"Basic {terminal}", "Bearer "):
        with pytest.raises(grpc.RpcError) as caught:
            stub.LookupMember(lookup, metadata=(("authorization", header),))
        refused = from_status(rpc_status.from_call(caught.value))
        assert refused.reason == "CREDENTIAL_REQUIRED", header
        assert "authorization: Bearer <key>" in refused.en and "authorization: Bearer <key>" in refused.zh


def export_request(org_path: str, file_format=file_pb2.FILE_FORMAT_CSV, days: int = 1) -> pb.ExportOrdersRequest:
    """The orders of org_path from a day ago until `days` later."""
    request = pb.ExportOrdersRequest(org_path=org_path, format=file_format)
    start = datetime.now(UTC) - timedelta(days=1)
    request.start_time.FromDatetime(start)
    request.end_time.FromDatetime(start + timedelta(days=days))
    return request


def report_request(org_path: str) -> pb.RunReportRequest:
    """The node's sales of 23 November 2026."""
    return pb.RunReportRequest(
        report=pb.REPORT_KIND_SALES,
        org_path=org_path,
        period=pb.ReportPeriod(kind=pb.PERIOD_KIND_DAY, day=date_pb2.Date(year=2026, month=11, day=23)),
    )


def segment_request(org_path: str) -> pb.IssueSegmentCouponsRequest:
    return pb.IssueSegmentCouponsRequest(
        request_id=rid(),
        template_id="ct_" + "7" * 26,
        validate_only=True,
        segment=member_pb2.MemberFilter(org_path=org_path),
    )


def batch_request(store_path: str) -> pb.BatchTopUpRequest:
    return pb.BatchTopUpRequest(
        request_id=rid(),
        batch_id="matrix",
        store_path=store_path,
        content="手机,金额(分)\n13900000000,100\n".encode(),
        format=file_pb2.FILE_FORMAT_CSV,
    )


@pytest.mark.parametrize(
    "role, org_path",
    [
        (pb.ROLE_TERMINAL, f"{STORE}/pos-1"),
        (pb.ROLE_STORE_MANAGER, STORE),
        (pb.ROLE_REGIONAL_MANAGER, "hq/east"),
        (pb.ROLE_HQ_ADMIN, "hq"),
    ],
)
def test_role_matrix(chain, role, org_path):
    """Each gateway call × each role, aimed in scope and out of it: admitted and in scope,
    the call runs (perhaps refused on its merits); a role the call does not admit, or a
    target outside the credential's node, gets PERMISSION_DENIED OUT_OF_SCOPE - or, for
    an order, the NOT_FOUND a missing one gets. The services' configuration calls have
    their own matrix (tests/test_gateway_config.py)."""
    stub, hq_key = chain
    key = hq_key if role == pb.ROLE_HQ_ADMIN else issue(stub, hq_key, org_path, role).api_key
    at_store = role in (pb.ROLE_TERMINAL, pb.ROLE_STORE_MANAGER)
    back_office = role != pb.ROLE_TERMINAL
    today = date_pb2.Date(year=2026, month=11, day=23)
    ghost = "m_" + "7" * 26
    line = pb.CheckoutLine(line_id="1", sku="tea", quantity=1, unit_price_fen=1_00)
    calls = [  # (call, request in scope, admitted, request out of scope or None: the credential is the scope)
        (stub.LookupMember, pb.LookupMemberRequest(phone=new_phone()), True, None),
        (
            stub.RegisterMember,
            pb.RegisterMemberRequest(request_id=rid(), member=member_pb2.Member(name="矩阵", phone=new_phone())),
            at_store,
            None,
        ),
        (
            stub.TopUp,
            pb.TopUpRequest(request_id=rid(), member_id=ghost, amount_fen=1_00, tender=pb.TENDER_KIND_CASH),
            at_store,
            None,
        ),
        (
            stub.Checkout,
            pb.CheckoutRequest(
                request_id=rid(),
                member_id=ghost,
                lines=[line],
                tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=1_00)],
            ),
            at_store,
            None,
        ),
        (stub.PriceOrder, pb.PriceOrderRequest(member_id=ghost, lines=[line]), at_store, None),
        (stub.Refund, pb.RefundRequest(request_id=rid(), order_id="o_none"), at_store, None),
        (stub.GetOrder, pb.GetOrderRequest(order_id="o_none"), True, None),
        (
            stub.ListOrders,
            pb.ListOrdersRequest(org_path=STORE),
            back_office,
            pb.ListOrdersRequest(org_path="hq/south/gz-001") if role != pb.ROLE_HQ_ADMIN else None,
        ),
        (
            stub.SettleOrder,
            pb.SettleOrderRequest(request_id=rid(), order_id="o_none", reason="矩阵"),
            back_office,
            None,
        ),
        (
            stub.GetStoreDailySummary,
            pb.GetStoreDailySummaryRequest(store_path=STORE, date=today),
            back_office,
            pb.GetStoreDailySummaryRequest(store_path="hq/south/gz-001", date=today)
            if role != pb.ROLE_HQ_ADMIN
            else None,
        ),
        (
            stub.ExportOrders,
            export_request(STORE),
            back_office,
            export_request("hq/south/gz-001") if role != pb.ROLE_HQ_ADMIN else None,
        ),
        (
            stub.IssueSegmentCoupons,
            segment_request(STORE),
            role in (pb.ROLE_REGIONAL_MANAGER, pb.ROLE_HQ_ADMIN),
            segment_request("hq/south/gz-001") if role != pb.ROLE_HQ_ADMIN else None,
        ),
        (
            stub.BatchTopUp,
            batch_request(STORE),
            back_office,
            batch_request("hq/south/gz-001") if role != pb.ROLE_HQ_ADMIN else None,
        ),
        (
            stub.IssueApiKey,
            pb.IssueApiKeyRequest(request_id=rid(), org_path=STORE, role=pb.ROLE_TERMINAL),
            role == pb.ROLE_HQ_ADMIN,
            None,
        ),
        (stub.RevokeApiKey, pb.RevokeApiKeyRequest(request_id=rid(), key_id="k_none"), role == pb.ROLE_HQ_ADMIN, None),
        (
            stub.RunReport,
            report_request(STORE),
            back_office,
            report_request("hq/south/gz-001") if role != pb.ROLE_HQ_ADMIN else None,
        ),
        (
            stub.ExportReport,
            pb.ExportReportRequest(report=report_request(STORE), format=file_pb2.FILE_FORMAT_CSV),
            back_office,
            pb.ExportReportRequest(report=report_request("hq/south/gz-001"), format=file_pb2.FILE_FORMAT_CSV)
            if role != pb.ROLE_HQ_ADMIN
            else None,
        ),
        (
            stub.ListApiKeys,
            pb.ListApiKeysRequest(org_path=STORE),
            back_office,
            pb.ListApiKeysRequest(org_path="hq/south/gz-001") if role != pb.ROLE_HQ_ADMIN else None,
        ),
        (
            stub.ListAuditEntries,
            pb.ListAuditEntriesRequest(org_path=STORE),
            back_office,
            pb.ListAuditEntriesRequest(org_path="hq/south/gz-001") if role != pb.ROLE_HQ_ADMIN else None,
        ),
        # people (tests/test_people.py): a key signs in to nothing, has no session to end or
        # password to change; HQ creates and disables people; the offices list theirs
        (stub.SignIn, pb.SignInRequest(login="nobody", password="x"), True, None),
        (stub.SignOut, pb.SignOutRequest(), True, None),
        (
            stub.ChangePassword,
            pb.ChangePasswordRequest(request_id=rid(), current_password="x", new_password="y"),
            True,
            None,
        ),
        (stub.GetSelf, pb.GetSelfRequest(), True, None),
        (
            stub.CreatePerson,
            pb.CreatePersonRequest(request_id=rid(), person=pb.Person(login="matrix"), initial_password="x"),
            role == pb.ROLE_HQ_ADMIN,
            None,
        ),
        (
            stub.ListPersons,
            pb.ListPersonsRequest(org_path=STORE),
            back_office,
            pb.ListPersonsRequest(org_path="hq/south/gz-001") if role != pb.ROLE_HQ_ADMIN else None,
        ),
        (
            stub.DisablePerson,
            pb.DisablePersonRequest(request_id=rid(), person_id="p_none"),
            role == pb.ROLE_HQ_ADMIN,
            None,
        ),
    ]
    assert {c._method for c, *_ in calls} == {
        f"/huiyuan.gateway.v1.GatewayService/{m.name}".encode()
        for m in pb.DESCRIPTOR.services_by_name["GatewayService"].methods
    }
    for call, request, admitted, elsewhere in calls:
        for target, in_scope in ((request, True), (elsewhere, False)):
            if target is None:
                continue
            try:
                answer = call(target, metadata=as_(key))
                if hasattr(answer, "__next__"):  # a streamed answer fails as it is read
                    list(answer)
                outcome = None
            except grpc.RpcError as error:
                outcome = refusal_of(error)[:2]
            if admitted and in_scope:
                assert outcome is None or outcome[1] != "OUT_OF_SCOPE", (call, outcome)
            else:
                assert outcome == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE"), (call, outcome)


def test_keys_are_bound_to_the_level_their_role_works_at(chain):
    stub, hq_key = chain
    bad = pb.IssueApiKeyRequest(request_id=rid(), org_path="hq", role=pb.ROLE_TERMINAL)
    with pytest.raises(grpc.RpcError) as caught:
        stub.IssueApiKey(bad, metadata=as_(hq_key))
    assert refusal_of(caught.value)[2] == {"org_path": "ORG_LEVEL_INVALID"}


@pytest.fixture(scope="module")
def shop(chain, member_service, points_service, campaign_service):
    """A terminal, a member with a card, ¥200 stored value, 1,000 points, a coupon,
    a 满100减20 campaign and a 1-point-a-yuan rule."""
    from huiyuan.campaign.v1 import campaign_pb2
    from huiyuan.points.v1 import points_pb2, points_pb2_grpc
    from tests.support import card_type

    stub, hq_key = chain
    terminal = issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key
    registered = stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(),
            member=member_pb2.Member(name="结账会员", phone=new_phone()),
            card_type_id=card_type(Stubs(member_service.channel)),
        ),
        metadata=as_(terminal),
    )
    member_id = registered.member.member_id
    stub.TopUp(
        pb.TopUpRequest(request_id=rid(), member_id=member_id, amount_fen=200_00, tender=pb.TENDER_KIND_CASH),
        metadata=as_(terminal),
    )
    points = points_pb2_grpc.PointsServiceStub(points_service.channel)
    points.Grant(
        points_pb2.GrantRequest(
            request_id=rid(), member_id=member_id, points=1_000, source=points_pb2.LOT_SOURCE_SIGN_UP
        )
    )
    campaign, offer, template = offers(points, campaign_service)
    coupons = campaign.IssueCoupons(
        campaign_pb2.IssueCouponsRequest(request_id=rid(), template_id=template.template_id, member_ids=[member_id] * 4)
    ).coupons
    yield stub, terminal, member_id, registered.card.card_number, [c.coupon_code for c in coupons], hq_key
    campaign.SetCampaignStatus(
        campaign_pb2.SetCampaignStatusRequest(
            request_id=rid(), campaign_id=offer.campaign_id, status=campaign_pb2.CAMPAIGN_STATUS_ENDED
        )
    )


def offers(points, campaign_service):
    """A rule of a point a yuan, an active 满100减20 in the east and a 5元 coupon template:
    (the campaign service's stub, the campaign, the template)."""
    from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
    from huiyuan.points.v1 import points_pb2

    points.CreateRule(
        points_pb2.CreateRuleRequest(
            request_id="gw-rule",
            rule=points_pb2.Rule(name="1元1分", org_path="hq", priority=1, points_per_yuan_bp=10_000),
        )
    )
    campaign = campaign_pb2_grpc.CampaignServiceStub(campaign_service.channel)
    offer = campaign.CreateCampaign(
        campaign_pb2.CreateCampaignRequest(
            request_id=rid(),
            campaign=campaign_pb2.Campaign(
                name="满100减20",
                kind=campaign_pb2.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
                org_path="hq/east",
                steps=[campaign_pb2.ThresholdStep(threshold_fen=100_00, reduction_fen=20_00)],
            ),
        )
    ).campaign
    campaign.SetCampaignStatus(
        campaign_pb2.SetCampaignStatusRequest(
            request_id=rid(), campaign_id=offer.campaign_id, status=campaign_pb2.CAMPAIGN_STATUS_ACTIVE
        )
    )
    template = campaign.CreateCouponTemplate(
        campaign_pb2.CreateCouponTemplateRequest(
            request_id=rid(),
            template=campaign_pb2.CouponTemplate(
                name="5元券", kind=campaign_pb2.COUPON_KIND_FIXED, amount_fen=5_00, valid_days=30, org_path="hq"
            ),
        )
    ).template
    return campaign, offer, template


def checkout_request(member_id, card, coupon, stored_value, points=500):
    return pb.CheckoutRequest(
        request_id=rid(),
        member_id=member_id,
        card_number=card,
        coupon_codes=[coupon],
        points_to_use=points,
        lines=[pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=2, unit_price_fen=60_00)],
        tenders=[pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=stored_value)],
    )


def test_one_checkout_takes_discount_coupon_points_and_stored_value_once(shop):
    stub, terminal, member_id, card, codes, hq_key = shop
    # 120.00 - 20.00 (满100减20) - 5.00 (coupon) - 5.00 (500 points) = 90.00 from stored value
    request = checkout_request(member_id, card, codes[0], 90_00)
    paid = stub.Checkout(request, metadata=as_(terminal))
    r = paid.receipt
    assert paid.state == pb.ORDER_STATE_PAID
    assert (r.list_total_fen, r.discount_total_fen, r.points_offset_fen, r.stored_value_paid_fen) == (
        120_00,
        25_00,
        5_00,
        90_00,
    )
    assert (r.stored_value_left_fen, r.points_earned, r.points_left) == (110_00, 90, 1_000 - 500 + 90)
    assert stub.Checkout(request, metadata=as_(terminal)) == paid  # the retry: the same receipt, nothing twice
    after = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    assert (after.stored_value_available_fen, after.points_available) == (110_00, 590)
    assert codes[0] not in after.usable_coupon_codes
    assert [(c.coupon_code, c.name, c.terms) for c in after.usable_coupons] == [
        (code, "5元券", "减¥5.00") for code in after.usable_coupon_codes
    ] and len(after.usable_coupons) >= 3
    order = stub.GetOrder(pb.GetOrderRequest(order_id=paid.order_id), metadata=as_(terminal))
    assert order.state == pb.ORDER_STATE_PAID and order.receipt == paid.receipt
    elsewhere = issue(stub, hq_key, "hq/south/gz-001", pb.ROLE_STORE_MANAGER).api_key
    assert (
        code_and_reason(stub.GetOrder, pb.GetOrderRequest(order_id=paid.order_id), elsewhere)
        == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")
        == code_and_reason(stub.GetOrder, pb.GetOrderRequest(order_id="o_nothing"), elsewhere)
    )  # the same answer: nothing leaks


def test_a_campaign_for_a_tag_prices_the_checkout_of_a_member_who_carries_it(shop, campaign_service):
    """The member's tags reach the pricing engine: a tea 9折 for one tag's members."""
    from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc

    stub, terminal, *_ = shop
    tag = f"企业{rid()[:6]}"
    campaign = campaign_pb2_grpc.CampaignServiceStub(campaign_service.channel)
    offer = campaign.CreateCampaign(
        campaign_pb2.CreateCampaignRequest(
            request_id=rid(),
            campaign=campaign_pb2.Campaign(
                name="企业客户 茶9折",
                kind=campaign_pb2.CAMPAIGN_KIND_CATEGORY_DISCOUNT,
                org_path="hq/east",
                rate_bp=9_000,
                categories=["tea"],
                tags=[tag],
            ),
        )
    ).campaign
    campaign.SetCampaignStatus(
        campaign_pb2.SetCampaignStatusRequest(
            request_id=rid(), campaign_id=offer.campaign_id, status=campaign_pb2.CAMPAIGN_STATUS_ACTIVE
        )
    )

    def paid_by(tags, cash_fen):
        member = stub.RegisterMember(
            pb.RegisterMemberRequest(
                request_id=rid(), member=member_pb2.Member(name="标签结账", phone=new_phone(), tags=tags)
            ),
            metadata=as_(terminal),
        ).member
        return stub.Checkout(
            pb.CheckoutRequest(
                request_id=rid(),
                member_id=member.member_id,
                lines=[pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=2, unit_price_fen=60_00)],
                tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=cash_fen)],
            ),
            metadata=as_(terminal),
        ).receipt

    try:
        # 120.00 - 12.00 (9折) - 20.00 (满100减20 on the 108.00 left) = 88.00; without the tag, 100.00
        assert paid_by([tag], 88_00).discount_total_fen == 32_00
        assert paid_by(["别的"], 100_00).discount_total_fen == 20_00
    finally:
        campaign.SetCampaignStatus(
            campaign_pb2.SetCampaignStatusRequest(
                request_id=rid(), campaign_id=offer.campaign_id, status=campaign_pb2.CAMPAIGN_STATUS_ENDED
            )
        )


def test_the_back_office_lists_its_orders_newest_first_and_settles_only_what_needs_it(shop):
    stub, terminal, member_id, card, _, hq_key = shop

    def cash_order(cash_fen):  # 120.00 - 20.00 (满100减20) = 100.00, in cash
        return pb.CheckoutRequest(
            request_id=rid(),
            member_id=member_id,
            card_number=card,
            lines=[pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=2, unit_price_fen=60_00)],
            tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=cash_fen)],
        )

    paid = [stub.Checkout(cash_order(100_00), metadata=as_(terminal)) for _ in range(3)]
    with pytest.raises(grpc.RpcError) as caught:
        stub.Checkout(cash_order(99_00), metadata=as_(terminal))
    assert refusal_of(caught.value)[2] == {"tenders": "TENDERS_DO_NOT_ADD_UP"}
    manager = issue(stub, hq_key, STORE, pb.ROLE_STORE_MANAGER).api_key
    first = stub.ListOrders(pb.ListOrdersRequest(state=pb.ORDER_STATE_PAID, page_size=2), metadata=as_(manager))
    assert [o.order_id for o in first.orders] == [paid[2].order_id, paid[1].order_id]
    assert (first.orders[0].store_path, first.orders[0].member_id, first.orders[0].receipt) == (
        STORE,
        member_id,
        paid[2].receipt,
    )
    second = stub.ListOrders(
        pb.ListOrdersRequest(state=pb.ORDER_STATE_PAID, page_size=2, page_token=first.next_page_token),
        metadata=as_(manager),
    )
    assert second.orders[0].order_id == paid[0].order_id
    till = stub.ListOrders(
        pb.ListOrdersRequest(org_path=f"{STORE}/pos-1", state=pb.ORDER_STATE_PAID, page_size=3), metadata=as_(manager)
    )  # one till's orders
    assert [o.order_id for o in till.orders] == [p.order_id for p in reversed(paid)]
    assert stub.ListOrders(pb.ListOrdersRequest(org_path=f"{STORE}/pos-9"), metadata=as_(manager)).orders == []
    # a member's orders, of a period: from the second order's time to the third's (excluded)
    mine = stub.ListOrders(
        pb.ListOrdersRequest(member_id=member_id, state=pb.ORDER_STATE_PAID, page_size=500), metadata=as_(manager)
    )
    assert {p.order_id for p in paid} <= {o.order_id for o in mine.orders}
    assert {o.member_id for o in mine.orders} == {member_id}
    nobody = "m_" + "5" * 26  # no order of theirs (the role matrix checks out "m_777...")
    assert stub.ListOrders(pb.ListOrdersRequest(member_id=nobody), metadata=as_(manager)).orders == []
    between = pb.ListOrdersRequest(
        member_id=member_id, start_time=first.orders[1].create_time, end_time=first.orders[0].create_time, page_size=1
    )
    in_period = stub.ListOrders(between, metadata=as_(manager))
    assert [o.order_id for o in in_period.orders] == [paid[1].order_id] and not in_period.next_page_token
    backwards = pb.ListOrdersRequest(start_time=first.orders[0].create_time, end_time=first.orders[1].create_time)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListOrders(backwards, metadata=as_(manager))
    assert refusal_of(caught.value)[2] == {"end_time": "PERIOD_INVALID"}
    refused = stub.ListOrders(
        pb.ListOrdersRequest(org_path="hq/east", state=pb.ORDER_STATE_REFUSED, page_size=1),
        metadata=as_(issue(stub, hq_key, "hq/east", pb.ROLE_REGIONAL_MANAGER).api_key),
    )
    assert refused.orders[0].refusal_reason == "TENDERS_DO_NOT_ADD_UP" and not refused.orders[0].HasField("receipt")
    with pytest.raises(grpc.RpcError) as caught:  # a token is only good for the filter it was issued for
        stub.ListOrders(pb.ListOrdersRequest(page_size=2, page_token=first.next_page_token), metadata=as_(manager))
    assert refusal_of(caught.value)[2] == {"page_token": "PAGE_TOKEN_MISMATCH"}
    south = issue(stub, hq_key, "hq/south", pb.ROLE_REGIONAL_MANAGER).api_key
    assert code_and_reason(stub.ListOrders, pb.ListOrdersRequest(org_path=STORE), south) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "OUT_OF_SCOPE",
    )
    assert stub.ListOrders(pb.ListOrdersRequest(), metadata=as_(south)).orders == []  # its own node: none there
    bad_list = pb.ListOrdersRequest(org_path="HQ//east", state=99, page_size=-1, page_token="not-a-token")
    with pytest.raises(grpc.RpcError) as caught:  # every bad field at once, nothing read
        stub.ListOrders(bad_list, metadata=as_(manager))
    assert refusal_of(caught.value)[2] == {
        "org_path": "ORG_PATH_INVALID",
        "state": "STATE_INVALID",
        "page_size": "PAGE_SIZE_NEGATIVE",
        "page_token": "PAGE_TOKEN_INVALID",
    }
    with pytest.raises(grpc.RpcError) as caught:
        stub.SettleOrder(pb.SettleOrderRequest(), metadata=as_(manager))
    assert refusal_of(caught.value)[2] == {
        "request_id": "REQUEST_ID_INVALID",
        "order_id": "ORDER_ID_REQUIRED",
        "reason": "REASON_REQUIRED",
    }
    settle = pb.SettleOrderRequest(request_id=rid(), order_id=paid[0].order_id, reason="核对")
    assert code_and_reason(stub.SettleOrder, settle, manager) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ORDER_NEEDS_NO_SETTLEMENT",
    )  # nothing of it was refused
    assert code_and_reason(stub.SettleOrder, settle, south) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")


def test_a_back_office_exports_the_orders_of_its_node_for_excel(shop):
    """Read back as a back office opens it: Chinese headers, names not paths, amounts as
    numbers formatted #,##0.00, the time an Excel date-time in the chain's zone, a
    column for each tender; a refused order only when asked for."""
    import csv
    import io
    from decimal import Decimal

    from openpyxl import load_workbook

    from huiyuan.runtime.business_time import local

    stub, terminal, member_id, card, _, hq_key = shop
    order = pb.CheckoutRequest(
        request_id=rid(),
        member_id=member_id,
        card_number=card,
        lines=[
            pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=2, unit_price_fen=60_00)
        ],  # 满100减20: 100.00 in cash
        tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=100_00)],
    )
    before = datetime.now(UTC).replace(microsecond=0)
    paid = stub.Checkout(order, metadata=as_(terminal))
    after = datetime.now(UTC)
    stub.Refund(
        pb.RefundRequest(request_id=rid(), order_id=paid.order_id, lines=[pb.RefundLine(line_id="1", quantity=1)]),
        metadata=as_(terminal),
    )
    short = pb.CheckoutRequest()
    short.CopyFrom(order)
    short.request_id, short.tenders[0].amount_fen = rid(), 99_00
    with pytest.raises(grpc.RpcError):
        stub.Checkout(short, metadata=as_(terminal))
    manager = issue(stub, hq_key, STORE, pb.ROLE_STORE_MANAGER).api_key
    refused_id = (
        stub.ListOrders(pb.ListOrdersRequest(state=pb.ORDER_STATE_REFUSED, page_size=1), metadata=as_(manager))
        .orders[0]
        .order_id
    )

    header = [
        "订单号",
        "下单时间",
        "门店",
        "收银台",
        "会员号",
        "状态",
        "商品原价",
        "优惠",
        "销售额",
        "积分抵扣",
        "储值支付",
        "现金",
        "银行卡",
        "微信支付",
        "支付宝",
        "使用积分",
        "获得积分",
        "退货件数",
        "拒绝原因",
    ]

    def csv_export(request, key):
        chunks = list(stub.ExportOrders(request, metadata=as_(key)))
        rows = list(csv.reader(io.StringIO(b"".join(c.chunk for c in chunks).decode("utf-8-sig"), newline="")))
        assert rows[0] == header
        return chunks[0].file_name, {row[0]: row for row in rows[1:]}

    def exported(request, key):
        if request.format == file_pb2.FILE_FORMAT_CSV:
            return csv_export(request, key)
        chunks = list(stub.ExportOrders(request, metadata=as_(key)))
        sheet = load_workbook(io.BytesIO(b"".join(c.chunk for c in chunks))).worksheets[0]
        rows = list(sheet.iter_rows())
        assert sheet.title == "订单" and [c.value for c in rows[0]] == header and rows[0][0].font.b
        return chunks[0].file_name, {row[0].value: row for row in rows[1:]}

    name, orders = exported(export_request(STORE), manager)
    row = orders[paid.order_id]
    assert name.startswith("orders-hq_east_sh-001-") and name.endswith(".csv")
    assert row[2:6] == ["SH-001", "POS-1", member_id, "部分退款"]  # the store's and till's names
    assert before <= datetime.strptime(row[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=local(after).tzinfo) <= after
    assert row[6:] == [
        "120.00",
        "20.00",
        "100.00",
        "0.00",
        "0.00",
        "100.00",
        "",
        "",
        "",
        "0",
        "100",
        "1",
        "",
    ]  # cash only
    assert all(r[2] == "SH-001" for r in orders.values()) and refused_id not in orders  # it moved nothing
    name, refused = exported(
        pb.ExportOrdersRequest(
            state=pb.ORDER_STATE_REFUSED,
            format=file_pb2.FILE_FORMAT_CSV,
            start_time=export_request(STORE).start_time,
            end_time=export_request(STORE).end_time,
        ),
        manager,
    )
    assert refused[refused_id][5:7] == ["已拒绝", ""] and refused[refused_id][-1].startswith(
        "各支付方式合计须为 ¥100.00"
    )
    assert paid.order_id not in refused

    name, in_excel = exported(export_request(STORE, file_pb2.FILE_FORMAT_XLSX), manager)
    assert name.endswith(".xlsx") and in_excel.keys() == orders.keys()
    cells = in_excel[paid.order_id]
    time = cells[1]
    assert time.is_date and time.value.tzinfo is None and time.number_format == "yyyy-mm-dd hh:mm:ss"
    assert local(before).replace(tzinfo=None) <= time.value <= local(after).replace(tzinfo=None)  # the chain's clock
    money = cells[6:12]
    assert all(c.data_type == "n" and c.number_format == "#,##0.00" for c in money)  # numbers Excel adds up
    assert [Decimal(str(c.value)) for c in money] == [Decimal(x) for x in row[6:12]]
    assert [c.value for c in cells[12:15]] == [None, None, None]  # no bank card, WeChat Pay or Alipay
    assert [c.value for c in cells[15:18]] == [0, 100, 1] and cells[0].data_type == "s"
    east = issue(stub, hq_key, "hq/east", pb.ROLE_REGIONAL_MANAGER).api_key
    assert paid.order_id in exported(export_request("", days=2), east)[1]  # its own node by default
    south = issue(stub, hq_key, "hq/south", pb.ROLE_REGIONAL_MANAGER).api_key
    assert exported(export_request(""), south)[1] == {}
    earlier = export_request(STORE)
    earlier.end_time.FromDatetime(earlier.start_time.ToDatetime() + timedelta(minutes=1))
    assert exported(earlier, manager)[1] == {}
    bad = pb.ExportOrdersRequest(org_path="HQ//x", state=99, format=9)
    bad.end_time.FromDatetime(datetime.now(UTC))
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.ExportOrders(bad, metadata=as_(manager)))
    assert refusal_of(caught.value)[2] == {
        "org_path": "ORG_PATH_INVALID",
        "start_time": "PERIOD_REQUIRED",
        "state": "STATE_INVALID",
        "format": "FORMAT_INVALID",
    }
    quarter_and_more = export_request(STORE, days=94)
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.ExportOrders(quarter_and_more, metadata=as_(manager)))
    assert refusal_of(caught.value)[2] == {"end_time": "PERIOD_INVALID"}


def test_the_pos_command_lists_a_store_s_orders_and_prints_a_receipt(shop, monkeypatch, capsys, tmp_path):
    from huiyuan_cli import pos

    stub, terminal, member_id, card, _, hq_key = shop
    monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", stub.address)
    manager = issue(stub, hq_key, STORE, pb.ROLE_STORE_MANAGER).api_key
    paid = stub.Checkout(
        pb.CheckoutRequest(
            request_id=rid(),
            member_id=member_id,
            card_number=card,
            lines=[pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=2, unit_price_fen=60_00)],
            tenders=[pb.Tender(kind=pb.TENDER_KIND_WECHAT_PAY, amount_fen=100_00)],
        ),
        metadata=as_(terminal),
    )
    assert pos.run(pos_args("orders", "--key", manager, "--state", "paid", "--limit", "1")) == 0
    listed = capsys.readouterr().out  # in Chinese, the default
    assert listed.startswith(f"订单 {paid.order_id}  ") and f"已支付  {STORE}  销售额 ¥100.00" in listed
    assert pos.run(pos_args("receipt", paid.order_id, "--key", terminal)) == 0
    receipt = capsys.readouterr().out
    assert (
        receipt.startswith(f"订单 {paid.order_id}  {STORE}\n  1  tea-1  2 x ¥60.00  -¥20.00  ¥100.00\n  合计 ¥120.00\n")
        and "\n  收款 微信支付 ¥100.00\n" in receipt
    )
    monkeypatch.setenv("HUIYUAN_LANG", "en")
    assert pos.run(pos_args("receipt", paid.order_id, "--key", terminal)) == 0
    assert "paid ¥100.00 (wechat-pay)" in capsys.readouterr().out  # in English, as --tender names it
    monkeypatch.delenv("HUIYUAN_LANG")
    with pytest.raises(SystemExit, match="needs-attention"):  # an unknown state is named, not a traceback
        pos.run(pos_args("orders", "--key", manager, "--state", "open"))
    with pytest.raises(grpc.RpcError) as caught:  # settling takes a manager, and a reason
        pos.run(pos_args("settle", paid.order_id, "--key", manager))
    assert refusal_of(caught.value)[2] == {"reason": "REASON_REQUIRED"}
    assert pos.run(pos_args("refund", paid.order_id, "--line", "1:1", "--key", terminal)) == 0
    refunded = capsys.readouterr().out.splitlines()
    assert (refunded[1], refunded[-1]) == ("退回微信支付 ¥50.00", "订单现为 部分退款")
    from huiyuan.runtime import files

    def exported(*words):
        out = tmp_path / "orders.xlsx"
        assert pos.run(pos_args("export", "--key", manager, *words, "--out", str(out))) == 0
        assert capsys.readouterr().out.startswith(f"已写入 {out}（")
        return {row[0] for row in files.read_rows(out.read_bytes(), xlsx=True)}

    # today's orders, whatever today is: by its name, this month (the default), or today's date
    from huiyuan.runtime.business_time import local

    today = f"{local(datetime.now(UTC)):%Y-%m-%d}"
    for words in (("--from", "today"), (), ("--month", "this"), ("--from", today, "--to", today), ("--from", "今天")):
        assert paid.order_id in exported(*words), words
    assert paid.order_id not in exported("--month", "last") | exported("--from", "yesterday", "--to", "yesterday")
    with pytest.raises(SystemExit, match="--to 需要与 --from 一起给出"):
        pos.run(pos_args("export", "--key", manager, "--to", today))


def test_a_refusal_is_printed_in_the_service_s_own_words_in_the_chosen_language(shop, monkeypatch, capsys):
    """The services' zh-CN LocalizedMessage in Chinese (the default), their English with
    --lang en; each bad field on its line; exit 1, no traceback."""
    from huiyuan_cli import cli

    stub, terminal, _, _, _, _ = shop
    monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", stub.address)
    assert cli.main(["pos", "lookup", "--card", "8000000000999999", "--key", terminal]) == 1
    assert capsys.readouterr().err == "被拒绝：卡号不存在。（CARD_NOT_FOUND）\n"
    assert cli.main(["pos", "lookup", "--card", "8000000000999999", "--key", terminal, "--lang", "en"]) == 1
    assert capsys.readouterr().err == "refused: NOT_FOUND CARD_NOT_FOUND No such card.\n"
    assert cli.main(["pos", "lookup", "--card", "123", "--key", terminal]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "被拒绝：请求中有 1 处填写有误，请改正后重试。（CARD_NUMBER_INVALID）",
        "  card_number：card_number must be 8 to 20 digits（CARD_NUMBER_INVALID）",
    ]


def test_the_pos_command_refuses_a_mistyped_amount_or_line_before_calling_anyone(capsys):
    from huiyuan_cli import pos

    assert pos_args("top-up", "--amount", "99.5").amount == 99_50
    for amount in ("12.345", "-5", "abc", "NaN", "1e3"):  # a fen is never rounded away, nor a sign dropped
        with pytest.raises(SystemExit):
            pos_args("top-up", "--amount", amount)
        assert capsys.readouterr().err.startswith(f"huiyuan pos：--amount：{amount}：金额")
    args = pos_args("checkout", "--card", "8000000000000001", "--line", "tea-1:tea:2", "--key", "k")
    with pytest.raises(SystemExit, match="商品:品类:数量:单价"):
        pos.run(args)  # refused before the lookup: no gateway is listening here
    assert pos.sale_line("1", "tea-1:tea:2:60.5") == pb.CheckoutLine(
        line_id="1", sku="tea-1", category="tea", quantity=2, unit_price_fen=60_50
    )
    with pytest.raises(SystemExit, match="行号:数量"):
        pos.returned_line("1:one")


@contextlib.contextmanager
def gateway_not_answering(how: str):
    """An address where no gateway answers: "down", a port nobody listens on; "frozen",
    a socket that takes connections (the kernel completes them) and never says a word,
    as a gateway process stopped with SIGSTOP does."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        if how == "frozen":
            sock.listen(16)
        else:
            sock.close()
        yield address


@pytest.mark.parametrize("how", ["down", "frozen"])
def test_a_till_top_up_or_checkout_with_no_gateway_ends_in_seconds_and_its_request_id_does_it_once(
    shop, how, monkeypatch, capsys
):
    """With the gateway down or frozen, `pos top-up` and `pos checkout` end within about
    3 s with exit 75 and the request id (their lookup got no answer: nothing was sent);
    `pos lookup` alone says nobody answered. Run again with the id against the gateway,
    each is done once: a second run prints the same, the stored value moved once."""
    from huiyuan_cli import cli, pos

    stub, terminal, _, card, _, _ = shop
    commands = [
        ["top-up", "--card", card, "--amount", "100", "--key", terminal],
        ["checkout", "--card", card, "--line", "tea-1:tea:2:60", "--stored-value", "100", "--key", terminal],
    ]
    request_ids = []

    def stored_value():
        return stub.LookupMember(
            pb.LookupMemberRequest(card_number=card), metadata=as_(terminal)
        ).stored_value_available_fen

    before = stored_value()
    with gateway_not_answering(how) as address:
        monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", address)
        for words in commands:
            started = time.monotonic()
            assert cli.main(["pos", *words, "--lang", "en"]) == pos.OUTCOME_UNKNOWN
            assert time.monotonic() - started < 4
            told = capsys.readouterr().err
            assert "was not sent" in told and "Traceback" not in told
            request_ids.append(told.split("--request-id ")[1].split()[0])
        started = time.monotonic()
        assert cli.main(["pos", "lookup", "--card", card, "--key", terminal]) == 1
        assert time.monotonic() - started < 4 and capsys.readouterr().err.startswith("没有应答（")
    monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", stub.address)
    # ¥100 loaded once, then 120 - 20 (满100减20) paid once
    for words, request_id, after in zip(commands, request_ids, (before + 100_00, before)):
        assert cli.main(["pos", *words, "--request-id", request_id]) == 0
        done = capsys.readouterr().out
        assert cli.main(["pos", *words, "--request-id", request_id]) == 0
        assert capsys.readouterr().out == done
        assert stored_value() == after


def test_the_pos_command_sends_its_key_as_bearer(monkeypatch):
    """What `huiyuan pos` puts on the wire, seen by a gRPC server standing in for the
    gateway (the gateway itself accepts the deprecated form too, so cannot tell)."""
    from concurrent import futures

    from huiyuan_cli import pos

    heard = []

    def record(request, context):
        heard.append(dict(context.invocation_metadata()).get("authorization"))
        context.abort(grpc.StatusCode.NOT_FOUND, "no such member")

    server = grpc.server(futures.ThreadPoolExecutor(1))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "huiyuan.gateway.v1.GatewayService",
                {
                    "LookupMember": grpc.unary_unary_rpc_method_handler(
                        record, request_deserializer=bytes, response_serializer=bytes
                    )
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", f"127.0.0.1:{port}")
        with pytest.raises(grpc.RpcError):
            pos.run(pos_args("lookup", "--card", "8000000000000001", "--key", "hy_key"))
    finally:
        server.stop(0)
    assert heard == ["Bearer hy_key"]


def test_a_lookup_with_no_gateway_says_nobody_answered_not_that_it_was_refused(monkeypatch, capsys):
    from huiyuan_cli import cli

    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", f"127.0.0.1:{unused.getsockname()[1]}")
    assert cli.main(["--lang", "en", "pos", "lookup", "--phone", "13800138000", "--key", "hy_x"]) == 1
    told = capsys.readouterr().err
    assert told.startswith("no answer: ") and "refused:" not in told  # UNAVAILABLE, or the deadline amid retries


def test_a_refused_checkout_releases_everything_it_reserved(shop):
    stub, terminal, member_id, card, codes, _ = shop
    before = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    too_much = checkout_request(member_id, card, codes[1], 400_00, points=0)
    too_much.lines[0].quantity = 9  # 540.00 - 20.00 - 5.00 = 515.00 ... paid 400.00 + cash 115.00
    too_much.tenders.append(pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=115_00))
    assert code_and_reason(stub.Checkout, too_much, terminal) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_BALANCE",
    )
    after = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    assert (after.stored_value_available_fen, after.points_available) == (
        before.stored_value_available_fen,
        before.points_available,
    )
    assert codes[1] in after.usable_coupon_codes  # the coupon was released
    assert code_and_reason(stub.Checkout, too_much, terminal) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_BALANCE",
    )  # the same answer again
    short = checkout_request(member_id, card, codes[1], 10_00)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Checkout(short, metadata=as_(terminal))
    assert refusal_of(caught.value)[2] == {"tenders": "TENDERS_DO_NOT_ADD_UP"}
    empty = pb.CheckoutRequest(request_id=rid(), member_id=member_id)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Checkout(empty, metadata=as_(terminal))
    assert refusal_of(caught.value)[2] == {"lines": "LINES_REQUIRED"}


def test_one_trace_covers_a_checkout_the_services_and_their_sql(shop, spans):
    stub, terminal, member_id, card, codes, _ = shop
    from opentelemetry import propagate, trace

    with trace.get_tracer("tests").start_as_current_span("terminal") as root:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        request = checkout_request(member_id, card, codes[1], 95_00, points=0)
        stub.Checkout(request, metadata=as_(terminal) + tuple(carrier.items()))
    mine = [s for s in spans.get_finished_spans() if s.context.trace_id == root.get_span_context().trace_id]
    names = {s.name for s in mine}
    for rpc in (
        "huiyuan.gateway.v1.GatewayService/Checkout",
        "huiyuan.member.v1.MemberService/LookupMember",
        "huiyuan.campaign.v1.CampaignService/Quote",
        "huiyuan.wallet.v1.WalletService/Capture",
        "huiyuan.points.v1.PointsService/Accrue",
    ):
        assert rpc in names, rpc
    by_id = {s.context.span_id: s for s in mine}
    capture = next(s for s in mine if s.name == "huiyuan.wallet.v1.WalletService/Capture")
    chain = []
    node = capture
    while node.parent is not None and node.parent.span_id in by_id:
        node = by_id[node.parent.span_id]
        chain.append(node.name)
    assert "huiyuan.gateway.v1.GatewayService/Checkout" in chain and chain[-1] == "terminal"
    assert any(
        s.parent is not None and s.parent.span_id == capture.context.span_id and s.attributes.get("db.statement")
        for s in mine
    )  # the wallet's SQL under its server span


def test_refunds_by_line_return_the_apportioned_amounts_and_points(shop, campaign_service):
    from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc

    stub, terminal, member_id, card, codes, _ = shop
    campaigns = campaign_pb2_grpc.CampaignServiceStub(campaign_service.channel)
    (offer,) = [
        c
        for c in campaigns.ListCampaigns(campaign_pb2.ListCampaignsRequest(org_path=STORE)).campaigns
        if c.name == "满100减20"
    ]

    def given():  # what the 满100减20 campaign counts as given: orders, fen
        stats = campaigns.GetCampaignStats(campaign_pb2.GetCampaignStatsRequest(campaign_id=offer.campaign_id))
        return stats.orders, stats.discount_fen

    # tea 2 x 60.00 + cup 1 x 30.00 = 150.00; 满100减20 and the 5.00 coupon spread 4:1, then
    # 500 points (5.00) spread 4:1: the tea line costs 96.00 of money, the cup 24.00
    stub.TopUp(
        pb.TopUpRequest(request_id=rid(), member_id=member_id, amount_fen=200_00, tender=pb.TENDER_KIND_CASH),
        metadata=as_(terminal),
    )
    request = checkout_request(member_id, card, codes[2], 120_00)
    request.lines.append(pb.CheckoutLine(line_id="2", sku="cup-1", category="ware", quantity=1, unit_price_fen=30_00))
    before_order = given()
    paid = stub.Checkout(request, metadata=as_(terminal))
    items = [
        (x.line_id, x.sku, x.quantity, x.unit_price_fen, x.discount_fen, x.payable_fen, x.returned_quantity)
        for x in paid.receipt.items
    ]
    assert items[1] == ("2", "cup-1", 1, 30_00, 5_00, 25_00, 0) and items[0][:4] == ("1", "tea-1", 2, 60_00)
    assert sum(x.discount_fen for x in paid.receipt.items) == paid.receipt.discount_total_fen
    assert (
        sum(x.payable_fen for x in paid.receipt.items) == paid.receipt.list_total_fen - paid.receipt.discount_total_fen
    )
    before = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    assert given() == (before_order[0] + 1, before_order[1] + 20_00)
    cup = pb.RefundRequest(request_id=rid(), order_id=paid.order_id, lines=[pb.RefundLine(line_id="2", quantity=1)])
    back = stub.Refund(cup, metadata=as_(terminal))
    assert (back.stored_value_fen, back.points_returned, back.points_clawed_back, back.state) == (
        24_00,
        100,
        24,
        pb.ORDER_STATE_PARTLY_REFUNDED,
    )
    assert stub.Refund(cup, metadata=as_(terminal)) == back  # a retry moves nothing again
    wrong = pb.RefundRequest(
        request_id=rid(),
        order_id=paid.order_id,
        lines=[
            pb.RefundLine(line_id="tea-1", quantity=1),
            pb.RefundLine(line_id="2", quantity=1),  # a sku; a returned line
            pb.RefundLine(line_id="1", quantity=3),
        ],
    )  # 2 bought
    with pytest.raises(grpc.RpcError) as caught:
        stub.Refund(wrong, metadata=as_(terminal))
    assert refusal_of(caught.value) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "LINE_NOT_IN_ORDER",
        {
            "lines[0].line_id": "LINE_NOT_IN_ORDER",
            "lines[1].quantity": "REFUND_EXCEEDS_ORDER",
            "lines[2].quantity": "REFUND_EXCEEDS_ORDER",
        },
    )
    now = stub.GetOrder(pb.GetOrderRequest(order_id=paid.order_id), metadata=as_(terminal))
    assert now.state == pb.ORDER_STATE_PARTLY_REFUNDED  # nothing of the wrong refund was written
    assert [(x.line_id, x.returned_quantity) for x in now.receipt.items] == [("1", 0), ("2", 1)]
    assert given() == (before_order[0] + 1, before_order[1] + 16_00)  # the cup's 4.00 of 满100减20 is back
    rest = stub.Refund(pb.RefundRequest(request_id=rid(), order_id=paid.order_id), metadata=as_(terminal))
    assert (rest.stored_value_fen, rest.points_returned, rest.points_clawed_back, rest.state) == (
        96_00,
        400,
        96,
        pb.ORDER_STATE_REFUNDED,
    )
    assert given() == before_order  # all returned: no longer an order of the campaign
    after = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    assert after.stored_value_available_fen == before.stored_value_available_fen + 120_00
    assert after.points_available == before.points_available + 500 - 120
    assert (
        stub.GetOrder(pb.GetOrderRequest(order_id=paid.order_id), metadata=as_(terminal)).state
        == pb.ORDER_STATE_REFUNDED
    )
    again = pb.RefundRequest(request_id=rid(), order_id=paid.order_id, lines=[pb.RefundLine(line_id="1", quantity=1)])
    assert code_and_reason(stub.Refund, again, terminal) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ORDER_NOT_REFUNDABLE",
    )


def test_a_store_s_day_fans_out_across_the_services_within_scope(shop):
    from datetime import datetime

    from google.type import date_pb2

    from huiyuan.runtime.business_time import CHAIN_ZONE

    stub, terminal, _, _, _, hq_key = shop
    today = datetime.now(CHAIN_ZONE)
    request = pb.GetStoreDailySummaryRequest(
        store_path=STORE, date=date_pb2.Date(year=today.year, month=today.month, day=today.day)
    )
    manager = issue(stub, hq_key, STORE, pb.ROLE_STORE_MANAGER).api_key
    day = stub.GetStoreDailySummary(request, metadata=as_(manager))
    assert day.orders >= 3 and day.sales_fen > 0 and day.discount_fen > 0
    assert day.top_up_fen >= 400_00 and day.stored_value_spent_fen > 0 and day.points_earned > 0
    assert day.points_spent >= 500 and day.new_members >= 1
    south = issue(stub, hq_key, "hq/south", pb.ROLE_REGIONAL_MANAGER).api_key
    for key in (south, terminal):
        assert code_and_reason(stub.GetStoreDailySummary, request, key) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "OUT_OF_SCOPE",
        )
    assert stub.GetStoreDailySummary(request, metadata=as_(hq_key)) == day


def test_a_campaign_whose_books_disagree_does_not_hold_up_a_refund(shop, campaign_service):
    from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc

    stub, terminal, member_id, card, codes, _ = shop
    campaigns = campaign_pb2_grpc.CampaignServiceStub(campaign_service.channel)
    (offer,) = [
        c
        for c in campaigns.ListCampaigns(campaign_pb2.ListCampaignsRequest(org_path=STORE)).campaigns
        if c.name == "满100减20"
    ]
    stub.TopUp(
        pb.TopUpRequest(request_id=rid(), member_id=member_id, amount_fen=100_00, tender=pb.TENDER_KIND_CASH),
        metadata=as_(terminal),
    )
    paid = stub.Checkout(checkout_request(member_id, card, codes[3], 90_00), metadata=as_(terminal))
    campaigns.ReturnDiscounts(
        campaign_pb2.ReturnDiscountsRequest(  # someone gave the discount back already
            request_id=rid(),
            order_id=paid.order_id,
            adjustments=[campaign_pb2.Adjustment(campaign_id=offer.campaign_id, amount_fen=20_00)],
        )
    )
    given = campaigns.GetCampaignStats(campaign_pb2.GetCampaignStatsRequest(campaign_id=offer.campaign_id))
    back = stub.Refund(pb.RefundRequest(request_id=rid(), order_id=paid.order_id), metadata=as_(terminal))
    assert (back.state, back.stored_value_fen) == (pb.ORDER_STATE_REFUNDED, 90_00)  # the money went back all the same
    assert campaigns.GetCampaignStats(campaign_pb2.GetCampaignStatsRequest(campaign_id=offer.campaign_id)) == given


@pytest.mark.parametrize(
    "stamp", [Timestamp(seconds=10**12), Timestamp(nanos=-5)], ids=["year-33658", "nanos-negative"]
)
def test_an_order_time_outside_a_timestamp_s_range_is_invalid_argument_naming_its_field(chain, stamp):
    """ListOrders and ExportOrders with a start or end outside years 1 to 9999 (or nanos
    below 0): INVALID_ARGUMENT, TIMESTAMP_OUT_OF_RANGE on that field (huiyuan/runtime/inbound.py, before the servicer) - not INTERNAL."""
    stub, hq_key = chain
    for field in ("start_time", "end_time"):
        listed = pb.ListOrdersRequest()
        getattr(listed, field).CopyFrom(stamp)
        code, reason, fields = refusal(stub.ListOrders, listed, metadata=as_(hq_key))
        assert (code, reason, fields) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "TIMESTAMP_OUT_OF_RANGE",
            {field: "TIMESTAMP_OUT_OF_RANGE"},
        )
        exported = export_request("hq")
        getattr(exported, field).CopyFrom(stamp)
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.ExportOrders(exported, metadata=as_(hq_key)))
        assert refusal_of(caught.value) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "TIMESTAMP_OUT_OF_RANGE",
            {field: "TIMESTAMP_OUT_OF_RANGE"},
        )
