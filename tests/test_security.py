"""Secrets at rest, what a till may see and spend, scope on every path, rate limits and
message sizes at the gateway (issue 36: items 1, 4 and 5)."""

import logging
import re
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from google.type import date_pb2
from grpc_status import rpc_status

from gateway.domain.callers import Role
from gateway.use_cases import bootstrap
from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.common.v1 import actor_pb2, credential_pb2, file_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2, member_pb2_grpc, payment_pin_pb2, payment_pin_pb2_grpc
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.wallet.v1 import count_card_pb2, count_card_pb2_grpc, wallet_pb2
from tests.conftest import per_service
from tests.support import STORE, Stubs, card_type, fresh_pin, new_phone, refusal_of, rid, tables_holding
from tests.test_gateway import as_, chain, code_and_reason, issue  # noqa: F401 - chain: the fixture these tests share

EAST, SOUTH, GZ = "hq/east", "hq/south", "hq/south/gz-001"
CSV = file_pb2.FILE_FORMAT_CSV

# What the flows of this module wrote that must be nowhere at rest, searched for at the end.
SECRETS: dict[str, str] = {}


def test_a_replayed_key_issue_answers_with_the_key_s_id_and_not_the_key(chain):
    stub, hq_key = chain
    request = pb.IssueApiKeyRequest(request_id=rid(), org_path=STORE, role=pb.ROLE_STORE_MANAGER, label="店长")
    first = stub.IssueApiKey(request, metadata=as_(hq_key))
    assert first.api_key.startswith("hy_") and not first.secret_shown_before
    SECRETS["an issued key"] = first.api_key
    again = stub.IssueApiKey(request, metadata=as_(hq_key))
    assert (again.key_id, again.api_key, again.secret_shown_before) == (first.key_id, "", True)
    assert stub.ListOrders(pb.ListOrdersRequest(), metadata=as_(first.api_key)).orders is not None  # it works


def test_a_key_is_issued_only_for_a_node_there_is_and_a_role_that_works_there(chain, database_url, monkeypatch, capsys):
    from huiyuan_cli import cli

    stub, hq_key = chain
    for org_path, role, refused in [
        ("hq/east/sh-404", pb.ROLE_STORE_MANAGER, (grpc.StatusCode.NOT_FOUND, "ORG_NODE_NOT_FOUND")),
        (f"{STORE}/pos-9", pb.ROLE_TERMINAL, (grpc.StatusCode.NOT_FOUND, "ORG_NODE_NOT_FOUND")),
        ("hq", pb.ROLE_TERMINAL, (grpc.StatusCode.INVALID_ARGUMENT, "ORG_LEVEL_INVALID")),
        (EAST, pb.ROLE_STORE_MANAGER, (grpc.StatusCode.INVALID_ARGUMENT, "ORG_LEVEL_INVALID")),
    ]:
        request = pb.IssueApiKeyRequest(request_id=rid(), org_path=org_path, role=role)
        assert code_and_reason(stub.IssueApiKey, request, hq_key) == refused, org_path
    assert issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key  # a node there is, a role that works there

    # The operator's command holds to the same, reading the org tree from the member database.
    gateway_url, member_url = per_service(database_url, "gateway"), per_service(database_url, "member")
    for org_path, role, reason in [
        ("hq", Role.TERMINAL, "ORG_LEVEL_INVALID"),
        ("hq/west", Role.REGIONAL_MANAGER, "ORG_NODE_NOT_FOUND"),
    ]:
        with pytest.raises(Exception) as caught:
            bootstrap.issue_key(gateway_url, org_path, role, "t", member_database_url=member_url)
        assert caught.value.reason == reason
    monkeypatch.setenv("HUIYUAN_GATEWAY_DATABASE_URL", gateway_url)
    monkeypatch.setenv("HUIYUAN_MEMBER_DATABASE_URL", member_url)
    monkeypatch.setenv("HUIYUAN_LANG", "en")  # the lines below as the English table says them
    assert cli.main(["key", "issue", "--org", "hq", "--role", "TERMINAL"]) == 1
    assert "ORG_LEVEL_INVALID" in capsys.readouterr().err
    assert cli.main(["key", "issue", "--org", EAST, "--role", "REGIONAL_MANAGER", "--label", "华东"]) == 0
    assert "api key hy_" in capsys.readouterr().out


def test_a_region_imports_members_only_into_its_own_stores_row_by_row(chain, member_service):
    stub, hq_key = chain
    east = issue(stub, hq_key, EAST, pb.ROLE_REGIONAL_MANAGER).api_key
    phones = [new_phone() for _ in range(3)]
    content = f"姓名,手机,门店\n东,{phones[0]},{STORE}\n南,{phones[1]},{GZ}\n无店,{phones[2]},\n".encode()
    members = member_pb2_grpc.MemberServiceStub(stub.channel)
    result = members.ImportMembers(
        member_pb2.ImportMembersRequest(request_id=rid(), content=content, format=CSV), metadata=as_(east)
    )
    assert (result.imported_rows, result.rejected_rows) == (2, 1)
    assert [(r.row_number, r.field, r.reason) for r in result.rejects] == [
        (3, "home_store_path", "HOME_STORE_OUT_OF_SCOPE")
    ]
    with pytest.raises(grpc.RpcError):  # nobody was registered in the south
        Stubs(member_service.channel).member.LookupMember(member_pb2.LookupMemberRequest(phone=phones[1]))
    hq_import = members.ImportMembers(
        member_pb2.ImportMembersRequest(  # HQ's node holds every store
            request_id=rid(), content=f"姓名,手机,门店\n南,{phones[1]},{GZ}\n".encode(), format=CSV
        ),
        metadata=as_(hq_key),
    )
    assert (hq_import.imported_rows, hq_import.rejected_rows) == (1, 0)


def registered_at(member_service, store: str) -> str:
    """A member registered at a store (and homed there), by the member service itself."""
    return (
        Stubs(member_service.channel)
        .member.RegisterMember(
            member_pb2.RegisterMemberRequest(
                request_id=rid(),
                channel=member_pb2.REGISTRATION_CHANNEL_STORE,
                member=member_pb2.Member(name="范围会员", phone=new_phone()),
                actor=actor_pb2.Actor(operator_id="t", org_path=store),
            )
        )
        .member.member_id
    )


def test_a_region_issues_coupons_only_to_members_there_are_in_its_scope(chain, member_service, campaign_service):
    stub, hq_key = chain
    east = as_(issue(stub, hq_key, EAST, pb.ROLE_REGIONAL_MANAGER).api_key)
    campaigns = campaign_pb2_grpc.CampaignServiceStub(stub.channel)
    template = campaigns.CreateCouponTemplate(
        campaign_pb2.CreateCouponTemplateRequest(
            request_id=rid(),
            template=campaign_pb2.CouponTemplate(
                name="华东3元券", kind=campaign_pb2.COUPON_KIND_FIXED, amount_fen=3_00, valid_days=7, org_path=EAST
            ),
        ),
        metadata=east,
    ).template
    ours, theirs, nobody = registered_at(member_service, STORE), registered_at(member_service, GZ), "m_" + "7" * 26
    for member_ids in ([nobody], [ours, theirs]):
        with pytest.raises(grpc.RpcError) as caught:
            campaigns.IssueCoupons(
                campaign_pb2.IssueCouponsRequest(
                    request_id=rid(), template_id=template.template_id, member_ids=member_ids
                ),
                metadata=east,
            )
        code, reason, _ = refusal_of(caught.value)
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND"), member_ids  # as one missing
    given = campaigns.IssueCoupons(
        campaign_pb2.IssueCouponsRequest(request_id=rid(), template_id=template.template_id, member_ids=[ours, ours]),
        metadata=east,
    ).coupons
    assert [c.member_id for c in given] == [ours, ours]
    direct = campaign_pb2_grpc.CampaignServiceStub(campaign_service.channel)
    assert direct.ListMemberCoupons(campaign_pb2.ListMemberCouponsRequest(member_id=theirs)).coupons == []


def retry_info(error: grpc.RpcError) -> error_details_pb2.RetryInfo | None:
    for detail in rpc_status.from_call(error).details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info
    return None


def test_a_till_s_lookups_are_limited_and_it_is_told_when_to_try_again(chain):
    """A till looking up 300 phone numbers it does not know gets RESOURCE_EXHAUSTED after
    its burst, with how long to wait; after that wait it may look one up again. Another
    key has its own allowance."""
    stub, hq_key = chain
    till = as_(issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key)
    answered, limited = 0, None
    for _ in range(300):
        try:
            stub.LookupMember(pb.LookupMemberRequest(phone=new_phone()), metadata=till)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                answered += 1  # NOT_FOUND: nobody has that number
                continue
            limited = error
            break
    assert limited is not None and 5 <= answered < 100, answered
    assert refusal_of(limited)[:2] == (grpc.StatusCode.RESOURCE_EXHAUSTED, "LOOKUP_RATE_EXCEEDED")
    delay = retry_info(limited).retry_delay.ToTimedelta().total_seconds()
    assert 0 < delay <= 5, delay
    other = as_(issue(stub, hq_key, STORE, pb.ROLE_STORE_MANAGER).api_key)
    assert code_and_reason(stub.LookupMember, pb.LookupMemberRequest(phone=new_phone()), None) != (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "LOOKUP_RATE_EXCEEDED",
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.LookupMember(pb.LookupMemberRequest(phone=new_phone()), metadata=other)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND  # its own allowance
    time.sleep(delay)
    with pytest.raises(grpc.RpcError) as caught:
        stub.LookupMember(pb.LookupMemberRequest(phone=new_phone()), metadata=till)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND  # answered again


def test_the_gateway_reads_no_large_message_but_a_file(chain):
    """Beyond the largest file (16 MiB) gRPC itself refuses a message before reading it,
    credential or none; a message for any call but a file's upload is refused past 4 MiB."""
    stub, hq_key = chain
    channel = grpc.insecure_channel(stub.address, options=[("grpc.max_send_message_length", 100 * 2**20)])

    def call(method, request_bytes, key=None):
        send = channel.unary_unary(
            f"/huiyuan.gateway.v1.GatewayService/{method}",
            request_serializer=lambda raw: raw,
            response_deserializer=lambda raw: raw,
        )
        try:
            send(request_bytes, metadata=as_(key) if key else (), timeout=30)
        except grpc.RpcError as error:
            return error
        return None

    huge = pb.LookupMemberRequest(phone="1" * (60 * 2**20)).SerializeToString()
    refused = call("LookupMember", huge)
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # gRPC's own: no credential was read either
    till = issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key
    refused = call("LookupMember", pb.LookupMemberRequest(phone="1" * (5 * 2**20)).SerializeToString(), till)
    assert refusal_of(refused)[:2] == (grpc.StatusCode.RESOURCE_EXHAUSTED, "REQUEST_TOO_LARGE")
    assert retry_info(refused) is None  # the same request never fits
    manager = issue(stub, hq_key, STORE, pb.ROLE_STORE_MANAGER).api_key
    company = ("手机,金额(分)\n" + "13900000000,100\n" * (5 * 2**20 // 16)).encode()
    batch = pb.BatchTopUpRequest(request_id=rid(), batch_id="big", content=company, format=CSV).SerializeToString()
    refused = call("BatchTopUp", batch, manager)
    assert refused is None or refusal_of(refused)[1] not in ("REQUEST_TOO_LARGE", ""), refusal_of(refused)
    channel.close()


# ---------------------------------------------------------------- paying needs the member


@pytest.fixture
def counter(chain, member_service, points_service):
    """A till (each test its own: lookups and PINs tried are counted per key) and its
    store's manager; a gift in the points mall; a count card plan."""
    stub, hq_key = chain
    till = issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key
    manager = issue(stub, hq_key, STORE, pb.ROLE_STORE_MANAGER).api_key
    gift = (
        points_pb2_grpc.PointsServiceStub(points_service.channel)
        .CreateGift(
            points_pb2.CreateGiftRequest(
                request_id=rid(), gift=points_pb2.Gift(name="帆布袋", points=100, stock=100, org_path="hq")
            )
        )
        .gift
    )
    plan = (
        count_card_pb2_grpc.CountCardServiceStub(stub.channel)
        .CreateCountCardPlan(
            count_card_pb2.CreateCountCardPlanRequest(
                request_id=rid(),
                plan=count_card_pb2.CountCardPlan(
                    name="茶饮5次卡", org_path="hq", uses=5, price_fen=50_00, valid_days=30
                ),
            ),
            metadata=as_(hq_key),
        )
        .plan
    )
    return stub, till, manager, card_type(Stubs(member_service.channel)), gift.gift_id, plan.plan_id


def a_member(counter, points_service):
    """A member with a card, ¥500 stored value and 10,000 points; (member_id, card, phone)."""
    stub, till, _, card_type_id, *_ = counter
    registered = stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(),
            card_type_id=card_type_id,
            member=member_pb2.Member(
                name="付款会员", phone=new_phone(), birthday=date_pb2.Date(year=1990, month=5, day=17)
            ),
        ),
        metadata=as_(till),
    )
    member_id = registered.member.member_id
    stub.TopUp(
        pb.TopUpRequest(request_id=rid(), member_id=member_id, amount_fen=500_00, tender=pb.TENDER_KIND_CASH),
        metadata=as_(till),
    )
    points_pb2_grpc.PointsServiceStub(points_service.channel).Grant(
        points_pb2.GrantRequest(
            request_id=rid(), member_id=member_id, points=10_000, source=points_pb2.LOT_SOURCE_SIGN_UP
        )
    )
    return member_id, registered.card.card_number, registered.member.phone


def sale(member_id, stored_value=0, points=0, cash=0, **credential) -> pb.CheckoutRequest:
    """A ¥10 tea, paid as asked (100 points pay ¥1 by the chain's default policy)."""
    tenders = [
        pb.Tender(kind=kind, amount_fen=amount)
        for kind, amount in ((pb.TENDER_KIND_STORED_VALUE, stored_value), (pb.TENDER_KIND_CASH, cash))
        if amount
    ]
    return pb.CheckoutRequest(
        request_id=rid(),
        member_id=member_id,
        points_to_use=points,
        tenders=tenders,
        lines=[pb.CheckoutLine(line_id="1", sku="tea-1", quantity=1, unit_price_fen=10_00)],
        **credential,
    )


def refused_with(call, request, key):
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=as_(key))
    return refusal_of(caught.value)[:2], rpc_status.from_call(caught.value)


def metadata_of(status) -> dict:
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return dict(info.metadata)
    return {}


def balances(stub, card, key):
    found = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(key))
    return found.stored_value_available_fen, found.points_available


def test_a_till_that_found_a_member_by_phone_sees_them_but_spends_nothing(counter, points_service):
    stub, till, manager, *_ = counter
    member_id, card, phone = a_member(counter, points_service)
    seen = stub.LookupMember(pb.LookupMemberRequest(phone=phone), metadata=as_(till)).member
    assert (seen.phone, seen.HasField("birthday")) == (f"{phone[:3]}****{phone[-4:]}", False)  # a till's view
    full = stub.LookupMember(pb.LookupMemberRequest(phone=phone), metadata=as_(manager)).member
    assert (full.phone, full.birthday.month) == (phone, 5)  # the manager's: everything
    for request in (
        sale(member_id, stored_value=10_00),
        sale(member_id, points=500, stored_value=5_00),
        sale(member_id, points=500, cash=5_00),
    ):
        (code, reason), _ = refused_with(stub.Checkout, request, till)
        assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "PAYMENT_CREDENTIAL_REQUIRED"), request
    assert balances(stub, card, till) == (500_00, 10_000)  # nothing moved
    assert stub.Checkout(sale(member_id, cash=10_00), metadata=as_(till)).state == pb.ORDER_STATE_PAID  # cash: fine
    priced = stub.PriceOrder(
        pb.PriceOrderRequest(
            member_id=member_id,
            points_to_use=500,
            lines=[pb.CheckoutLine(line_id="1", sku="tea-1", quantity=1, unit_price_fen=10_00)],
        ),
        metadata=as_(till),
    )
    assert priced.amount_due_fen == 5_00  # a price check spends nothing: it needs nothing


_RECORD_OWN = set(vars(logging.makeLogRecord({}))) - {"msg", "args"}  # created, thread, ...: not what was logged


def holds_number(record: logging.LogRecord, number: str) -> bool:
    """Does what was logged (its message, arguments and extra fields) hold number as a
    number of its own? Not inside another one: a record's timestamps and the addresses
    a library prints are digits too, and a random PIN turns up in them by chance."""
    logged = f"{record.getMessage()} {[v for k, v in vars(record).items() if k not in _RECORD_OWN]}"
    return re.search(rf"(?<![0-9A-Fa-fx.]){number}(?![0-9])", logged) is not None


def test_a_member_pays_with_their_card_their_qr_code_or_their_pin(
    counter, member_service, points_service, database_url, caplog
):
    caplog.set_level("DEBUG")
    stub, till, manager, _, gift_id, plan_id = counter
    member_id, card, phone = a_member(counter, points_service)
    other_id, other_card, _ = a_member(counter, points_service)
    paid = stub.Checkout(sale(member_id, stored_value=10_00, card_number=card), metadata=as_(till))
    assert paid.receipt.stored_value_paid_fen == 10_00
    qr = Stubs(member_service.channel).member.IssueQrToken(member_pb2.IssueQrTokenRequest(member_id=member_id)).qr_token
    assert (
        stub.Checkout(sale(member_id, points=500, cash=5_00, qr_token=qr), metadata=as_(till)).receipt.points_used
        == 500
    )
    (code, reason), _ = refused_with(stub.Checkout, sale(other_id, stored_value=10_00, qr_token=qr), till)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CARD_NOT_OF_MEMBER")  # the QR code is another's
    (code, reason), _ = refused_with(stub.Checkout, sale(other_id, stored_value=10_00, card_number=card), till)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CARD_NOT_OF_MEMBER")

    # The PIN: set at the till with the card (a phone number proves nothing), then paid with.
    pins = payment_pin_pb2_grpc.PaymentPinServiceStub(stub.channel)
    pin = fresh_pin(database_url)
    SECRETS["a PIN set"] = pin

    def set_pin(new, **proof):
        return pins.SetPaymentPin(
            payment_pin_pb2.SetPaymentPinRequest(
                request_id=rid(), member_id=member_id, pin=new, proof=credential_pb2.PaymentCredential(**proof)
            ),
            metadata=as_(till),
        )

    with pytest.raises(grpc.RpcError) as caught:
        set_pin(pin)
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "PAYMENT_CREDENTIAL_REQUIRED")
    for trivial in ("123456", "888888", "12345"):
        with pytest.raises(grpc.RpcError) as caught:
            set_pin(trivial, card_number=card)
        assert refusal_of(caught.value)[2] == {"pin": "PIN_INVALID"}
    (code, reason), _ = refused_with(stub.Checkout, sale(member_id, stored_value=10_00, payment_pin=pin), till)
    assert reason == "PIN_NOT_SET"
    assert set_pin(pin, card_number=card).state.pin_set
    assert stub.Checkout(sale(member_id, stored_value=10_00, payment_pin=pin), metadata=as_(till)).state == (
        pb.ORDER_STATE_PAID
    )
    changed = fresh_pin(database_url)
    SECRETS["a PIN changed to"] = changed
    assert set_pin(changed, pin=pin).state.pin_set  # the PIN it had proves the member too
    assert stub.Checkout(sale(member_id, points=500, cash=5_00, payment_pin=changed), metadata=as_(till)).state == (
        pb.ORDER_STATE_PAID
    )
    assert balances(stub, card, till) == (500_00 - 20_00, 10_000 - 1_000)

    # A gift for points and a count card's use: the same proof, checked by the gateway.
    points = points_pb2_grpc.PointsServiceStub(stub.channel)

    def redeem(**proof):
        return points.RedeemGift(
            points_pb2.RedeemGiftRequest(
                request_id=rid(),
                member_id=member_id,
                gift_id=gift_id,
                credential=credential_pb2.PaymentCredential(**proof),
            ),
            metadata=as_(till),
        )

    def needs_the_member(spend):
        """Refused with no credential, and with another member's card."""
        for proof, refused in (
            ({}, (grpc.StatusCode.PERMISSION_DENIED, "PAYMENT_CREDENTIAL_REQUIRED")),
            ({"card_number": other_card}, (grpc.StatusCode.FAILED_PRECONDITION, "CARD_NOT_OF_MEMBER")),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                spend(**proof)
            assert refusal_of(caught.value)[:2] == refused

    needs_the_member(redeem)
    assert redeem(card_number=card).points == 100
    assert redeem(pin=changed).points == 100
    cards = count_card_pb2_grpc.CountCardServiceStub(stub.channel)
    count_card = cards.SellCountCard(
        count_card_pb2.SellCountCardRequest(
            request_id=rid(), member_id=member_id, plan_id=plan_id, tender=wallet_pb2.TENDER_CASH
        ),
        metadata=as_(till),
    ).card

    def punch(**proof):
        return cards.UseCountCard(
            count_card_pb2.UseCountCardRequest(
                request_id=rid(), card_id=count_card.card_id, credential=credential_pb2.PaymentCredential(**proof)
            ),
            metadata=as_(till),
        )

    needs_the_member(punch)
    assert punch(qr_token=qr).card.uses_left == 4
    assert punch(pin=changed).card.uses_left == 3
    for record in caplog.records:  # no log line holds a PIN, whoever wrote it
        assert not holds_number(record, pin) and not holds_number(record, changed), record


def test_a_pin_locks_after_five_wrong_tries_each_counted_once_and_a_manager_unlocks_it(counter, points_service):
    from concurrent.futures import ThreadPoolExecutor

    stub, till, manager, *_ = counter
    member_id, card, _ = a_member(counter, points_service)
    pins = payment_pin_pb2_grpc.PaymentPinServiceStub(stub.channel)
    pins.SetPaymentPin(
        payment_pin_pb2.SetPaymentPinRequest(
            request_id=rid(),
            member_id=member_id,
            pin="246813",
            proof=credential_pb2.PaymentCredential(card_number=card),
        ),
        metadata=as_(till),
    )

    def wrong(request=None):
        request = request or sale(member_id, stored_value=10_00, payment_pin="135792")
        (code, reason), status = refused_with(stub.Checkout, request, till)
        return reason, metadata_of(status)

    first = sale(member_id, stored_value=10_00, payment_pin="135792")
    assert wrong(first)[0] == "PIN_INCORRECT" and wrong(first)[1]["tries_left"] == "4"  # the retry counts nothing
    with ThreadPoolExecutor(2) as pool:  # the same request twice at once: one try
        twice = sale(member_id, stored_value=10_00, payment_pin="135792")
        assert [r[1]["tries_left"] for r in pool.map(wrong, [twice, twice])] == ["3", "3"]
    assert wrong()[1]["tries_left"] == "2"
    assert wrong()[1]["tries_left"] == "1"
    reason, metadata = wrong()
    assert reason == "PIN_LOCKED" and metadata["unlock_time"] > "2026"
    (code, reason), _ = refused_with(stub.Checkout, sale(member_id, stored_value=10_00, payment_pin="246813"), till)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PIN_LOCKED")  # even the right one, for now
    assert stub.Checkout(sale(member_id, stored_value=10_00, card_number=card), metadata=as_(till)).state == (
        pb.ORDER_STATE_PAID
    )  # the card still pays
    reset = payment_pin_pb2.ResetPaymentPinRequest(request_id=rid(), member_id=member_id)
    assert code_and_reason(pins.ResetPaymentPin, reset, till) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    state = pins.ResetPaymentPin(reset, metadata=as_(manager)).state
    assert (state.pin_set, state.failed_tries, state.HasField("unlock_time")) == (True, 0, False)
    assert stub.Checkout(sale(member_id, stored_value=10_00, payment_pin="246813"), metadata=as_(till)).state == (
        pb.ORDER_STATE_PAID
    )
    pins.ResetPaymentPin(
        payment_pin_pb2.ResetPaymentPinRequest(request_id=rid(), member_id=member_id, clear=True), metadata=as_(manager)
    )
    assert wrong(sale(member_id, stored_value=10_00, payment_pin="246813"))[0] == "PIN_NOT_SET"


def test_the_member_service_counts_one_try_for_one_request_sent_twice_at_once(counter, member_service, points_service):
    """Beneath the checkout's lease: the same VerifyPaymentCredential twice at once, and
    again after, is one wrong try; another request is another."""
    stub, till, *_ = counter
    member_id, card, _ = a_member(counter, points_service)
    pins = payment_pin_pb2_grpc.PaymentPinServiceStub(member_service.channel)
    pins.SetPaymentPin(
        payment_pin_pb2.SetPaymentPinRequest(
            request_id=rid(),
            member_id=member_id,
            pin="246813",
            proof=credential_pb2.PaymentCredential(card_number=card),
        )
    )

    def tried(request_id):
        return pins.VerifyPaymentCredential.future(
            payment_pin_pb2.VerifyPaymentCredentialRequest(
                request_id=request_id, member_id=member_id, credential=credential_pb2.PaymentCredential(pin="135792")
            )
        )

    def tries_left(future):
        with pytest.raises(grpc.RpcError) as caught:
            future.result()
        assert refusal_of(caught.value)[1] == "PIN_INCORRECT"
        return metadata_of(rpc_status.from_call(caught.value))["tries_left"]

    once = rid()
    assert [tries_left(f) for f in [tried(once), tried(once)]] == ["4", "4"]
    assert tries_left(tried(once)) == "4" and tries_left(tried(rid())) == "3"


def test_the_pos_command_sets_a_pin_pays_with_it_and_a_manager_clears_it(counter, points_service, monkeypatch, capsys):
    from huiyuan_cli import pos
    from tests.support import pos_args

    stub, till, manager, *_ = counter
    member_id, card, phone = a_member(counter, points_service)
    monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", stub.address)
    monkeypatch.setenv("HUIYUAN_LANG", "en")  # the lines below as the English table says them

    def run(*words, key=till):
        assert pos.run(pos_args(*words, "--key", key)) == 0
        return capsys.readouterr().out

    assert run("set-pin", "--card", card, "--new-pin", "246813") == "付款会员: payment PIN set\n"
    tea = ["checkout", "--phone", phone, "--line", "tea-1:tea:1:10", "--stored-value", "10"]
    with pytest.raises(grpc.RpcError) as caught:  # found by phone: nothing to spend with
        run(*tea)
    assert refusal_of(caught.value)[1] == "PAYMENT_CREDENTIAL_REQUIRED"
    assert "stored value paid ¥10.00, left ¥490.00" in run(*tea, "--pin", "246813")
    assert run("reset-pin", "--phone", phone, "--clear", key=manager) == "付款会员: payment PIN cleared\n"
    with pytest.raises(grpc.RpcError) as caught:
        run(*tea, "--pin", "246813")
    assert refusal_of(caught.value)[1] == "PIN_NOT_SET"


def test_no_secret_of_these_flows_is_kept_anywhere(chain, database_url):
    """Run last in this module: every key and PIN its flows made, searched for in every
    table of every service. Checked by hand too (docs/security.md lists each table)."""
    assert {"an issued key", "a PIN set", "a PIN changed to"} <= set(SECRETS), "the flows above ran"
    for what, secret in SECRETS.items():
        assert tables_holding(database_url, secret) == [], what
