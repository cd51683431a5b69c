"""What a terminal's program can rely on at checkout: a price check that writes nothing,
refusals with a specific reason, the domain of the rule that refused, the amount due in
ErrorInfo metadata and Chinese that names no code; and refunds that go back the way the
order was paid, unit shares and tender shares rounded cumulatively."""

import re

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.runtime.money import cumulative_split, share
from tests.support import rid
from tests.test_gateway import as_, chain, shop  # noqa: F401 - the fixtures these tests share

TEA = pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=2, unit_price_fen=60_00)


def refused(call, request, key):
    """(code, ErrorInfo, zh-CN message, field violations) of a call that must fail."""
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=as_(key))
    status = rpc_status.from_call(caught.value)
    info, zh, fields = error_details_pb2.ErrorInfo(), "", {}
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.LocalizedMessage.DESCRIPTOR):
            message = error_details_pb2.LocalizedMessage()
            detail.Unpack(message)
            zh = message.message if message.locale == "zh-CN" else zh
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = {v.field: v.reason for v in bad.field_violations}
    assert zh and not re.search(r"[A-Z]{2,}_[A-Z_]+", zh), f"a code in the Chinese message: {zh}"
    return caught.value.code(), info, zh, fields


def order(member_id, coupons=(), points=0, tenders=(), card=""):
    return pb.CheckoutRequest(request_id=rid(), member_id=member_id, lines=[TEA], coupon_codes=list(coupons),
                              points_to_use=points, tenders=list(tenders), card_number=card)


def test_a_price_check_says_what_is_due_and_writes_nothing(shop):
    stub, terminal, member_id, card, codes, hq_key = shop
    before = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    priced = stub.PriceOrder(pb.PriceOrderRequest(member_id=member_id, card_number=card, lines=[TEA],
                                                  coupon_codes=[codes[1]], points_to_use=500), metadata=as_(terminal))
    # 120.00 - 20.00 (满100减20) - 5.00 (coupon) = 95.00; 500 points pay 5.00; at most half in points
    assert (priced.list_total_fen, priced.discount_total_fen, priced.points_offset_fen, priced.amount_due_fen) == (
        120_00, 25_00, 5_00, 90_00)
    assert priced.max_points == 1_000 and priced.items[0].payable_fen == 95_00
    assert priced.lines[-1] == "积分抵扣 500 分  -¥5.00"
    after = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    assert after == before  # no hold, no reservation, the coupon still usable
    assert refused(stub.PriceOrder, pb.PriceOrderRequest(member_id=member_id, lines=[TEA], points_to_use=1_500),
                   terminal)[1].reason == "INSUFFICIENT_POINTS"
    code, _, _, fields = refused(stub.PriceOrder, pb.PriceOrderRequest(member_id="x", lines=[]), terminal)
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, {"member_id": "MEMBER_ID_INVALID",
                                                                 "lines": "LINES_REQUIRED"})


def test_a_checkout_refusal_names_its_reason_its_domain_and_what_is_due(shop):
    stub, terminal, member_id, card, codes, hq_key = shop
    wrong = order(member_id, [codes[2]], 500, [pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=80_00)], card)
    code, info, zh, fields = refused(stub.Checkout, wrong, terminal)
    assert (code, info.reason, info.domain, fields) == (
        grpc.StatusCode.INVALID_ARGUMENT, "TENDERS_DO_NOT_ADD_UP", "gateway.huiyuan", {"tenders": "TENDERS_DO_NOT_ADD_UP"})
    assert info.metadata["amount_due_fen"] == "9000" and info.metadata["order_id"].startswith("o_")
    assert "¥90.00" in zh
    assert refused(stub.Checkout, wrong, terminal)[1] == info  # a retry: the same refusal

    # more points than the member has, and more than the order takes
    code, info, *_ = refused(stub.Checkout, order(member_id, points=1_500, tenders=[
        pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=85_00)], card=card), terminal)
    assert (code, info.reason, info.metadata["available_points"]) == (
        grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_POINTS", "1000")
    small = pb.CheckoutLine(line_id="1", sku="candy", category="food", quantity=1, unit_price_fen=10_00)
    code, info, _, fields = refused(stub.Checkout, pb.CheckoutRequest(
        request_id=rid(), member_id=member_id, lines=[small], points_to_use=800, card_number=card,
        tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=2_00)]), terminal)
    assert (code, info.reason, fields, info.metadata["max_points"]) == (
        grpc.StatusCode.INVALID_ARGUMENT, "POINTS_OVER_CAP", {"points_to_use": "POINTS_OVER_CAP"}, "500")

    # the wallet's rule refuses: its reason and its domain, said as the checkout's
    rich = order(member_id, tenders=[pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=1_180_00)], card=card)
    rich.lines[0].quantity = 20  # 1,200.00 - 20.00: more than the ¥200 the member holds
    code, info, zh, _ = refused(stub.Checkout, rich, terminal)
    assert (code, info.reason, info.domain) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_BALANCE",
                                                "wallet.huiyuan")
    assert zh.startswith("结账未成功，本单未扣任何款项")

    # a coupon used already: the campaign's rule
    first = order(member_id, [codes[3]], tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=95_00)])
    assert stub.Checkout(first, metadata=as_(terminal)).state == pb.ORDER_STATE_PAID
    again = order(member_id, [codes[3]], tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=95_00)])
    code, info, zh, _ = refused(stub.Checkout, again, terminal)
    assert (code, info.reason, info.domain, info.metadata["coupon_code"]) == (
        grpc.StatusCode.FAILED_PRECONDITION, "COUPON_ALREADY_USED", "campaign.huiyuan", codes[3])
    assert "已经用过" in zh


def test_unit_and_tender_shares_are_rounded_cumulatively():
    """¥89.99 for 3 units: the first gives back ¥30.00, the other two ¥59.99; a tender's
    share never goes down as more is refunded, and the last refund takes what is left."""
    assert [share(89_99, units, 3) for units in (1, 3)] == [30_00, 89_99]
    assert share(89_99, 3, 3) - share(89_99, 1, 3) == 59_99
    paid = [44_99, 50_00, 1]  # stored value, cash, a fen by bank card
    steps = [cumulative_split(so_far, paid) for so_far in (0, 31_66, 31_67, 80_00, 95_00)]
    assert all(a <= b for earlier, later in zip(steps, steps[1:]) for a, b in zip(earlier, later))
    assert steps[-1] == paid and all(sum(s) == n for s, n in zip(steps, (0, 31_66, 31_67, 80_00, 95_00)))


def test_a_refund_goes_back_to_each_tender_in_its_share(shop):
    """3 × ¥33.33 = ¥99.99, less a ¥5.00 coupon: ¥94.99, paid ¥44.99 from stored value and
    ¥50.00 in cash. One unit back: ¥31.66 (a third of ¥94.99, to the fen), of which
    stored value ¥15.00 (44.99/94.99 of it, to the fen) and cash ¥16.66; the other two:
    what is left of each, ¥29.99 and ¥33.34."""
    stub, terminal, member_id, card, codes, hq_key = shop
    paid = stub.Checkout(pb.CheckoutRequest(
        request_id=rid(), member_id=member_id, coupon_codes=[codes[0]], card_number=card,
        lines=[pb.CheckoutLine(line_id="1", sku="cake", category="food", quantity=3, unit_price_fen=33_33)],
        tenders=[pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=44_99),
                 pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=50_00)]), metadata=as_(terminal))
    one = stub.Refund(pb.RefundRequest(request_id=rid(), order_id=paid.order_id,
                                       lines=[pb.RefundLine(line_id="1", quantity=1)]), metadata=as_(terminal))
    assert (one.stored_value_fen, [(t.kind, t.amount_fen) for t in one.tenders], one.state) == (
        15_00, [(pb.TENDER_KIND_CASH, 16_66)], pb.ORDER_STATE_PARTLY_REFUNDED)
    rest = stub.Refund(pb.RefundRequest(request_id=rid(), order_id=paid.order_id), metadata=as_(terminal))
    assert (rest.stored_value_fen, [(t.kind, t.amount_fen) for t in rest.tenders], rest.state) == (
        29_99, [(pb.TENDER_KIND_CASH, 33_34)], pb.ORDER_STATE_REFUNDED)


@pytest.fixture(scope="module")
def gateway_with_a_points_bug(chain, database_url, points_service):
    """A gateway whose points service fails every accrual while BUG is set (its own
    process's INTERNAL, through the real interceptor), on the points service's database."""
    from gateway.app import SPEC as GATEWAY
    from huiyuan.points.v1 import points_pb2_grpc
    from huiyuan.runtime.idempotency import Idempotency
    from huiyuan.runtime.server import ServiceSpec
    from huiyuan.gateway.v1 import gateway_pb2_grpc
    from services.points import storage
    from services.points.app import SPEC as POINTS
    from services.points.servicer import PointsServicer
    from tests.conftest import ServiceThread, per_service

    class WithABug(PointsServicer):
        async def Accrue(self, request, context):
            if BUG:
                raise RuntimeError("a bug in the accrual")
            return await super().Accrue(request, context)

    def register(server, ctx):
        points_pb2_grpc.add_PointsServiceServicer_to_server(
            WithABug(ctx, Idempotency(ctx.direct, storage.idempotency_keys, "points")), server)

    points = ServiceThread(ServiceSpec("points", POINTS.service_names, POINTS.migrations_dir, register),
                           per_service(database_url, "points"))
    patch = pytest.MonkeyPatch()
    patch.setenv("HUIYUAN_POINTS_ADDR", points.app.address)
    gateway = ServiceThread(GATEWAY, per_service(database_url, "gateway"))
    yield gateway_pb2_grpc.GatewayServiceStub(gateway.channel)
    gateway.stop()
    points.stop()
    patch.undo()


BUG = False


def test_a_services_failure_after_the_payment_leaves_the_order_not_finished_never_refused(
        shop, gateway_with_a_points_bug):
    """The wallet captured; then the points service fails (a bug, INTERNAL). The terminal
    hears ORDER_NOT_FINISHED with the cause, never a refusal nor a retryable-looking bug,
    and the order stays for the next run: once the bug is gone, the same request pays,
    once."""
    global BUG
    stub, terminal, member_id, card, codes, hq_key = shop
    buggy = gateway_with_a_points_bug
    before = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    request = order(member_id, tenders=[pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=100_00)], card=card)
    BUG = True
    try:
        code, info, zh, _ = refused(buggy.Checkout, request, terminal)
        assert (code, info.reason, info.metadata["cause"]) == (
            grpc.StatusCode.UNAVAILABLE, "ORDER_NOT_FINISHED", "INTERNAL")
        assert refused(buggy.Checkout, request, terminal)[1].reason == "ORDER_NOT_FINISHED"  # and again
    finally:
        BUG = False
    paid = buggy.Checkout(request, metadata=as_(terminal))
    assert paid.state == pb.ORDER_STATE_PAID and paid.order_id == info.metadata["order_id"]
    after = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    assert after.stored_value_available_fen == before.stored_value_available_fen - 100_00
    assert after.points_available == before.points_available + paid.receipt.points_earned
