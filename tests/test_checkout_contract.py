"""What a terminal's program can rely on at checkout: a price check that writes nothing,
refusals with a specific reason, the domain of the rule that refused, the amount due in
ErrorInfo metadata and Chinese that names no code; and refunds that go back the way the
order was paid, unit shares and tender shares rounded cumulatively."""

import itertools
import re
from datetime import UTC

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.runtime.money import cumulative_split, share
from huiyuan.runtime.status import from_status
from tests.support import rid
from tests.test_gateway import as_, chain, shop  # noqa: F401 - the fixtures these tests share

TEA = pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=2, unit_price_fen=60_00)


def refused(call, request, key):
    """(code, the refusal as the runtime reads it, zh-CN message, field violations) of a
    call that must fail."""
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=as_(key))
    error = from_status(rpc_status.from_call(caught.value))
    fields = {v.field: v.reason for v in getattr(error, "violations", [])}
    assert error.zh and not re.search(r"[A-Z]{2,}_[A-Z_]+", error.zh), f"a code in the Chinese message: {error.zh}"
    return caught.value.code(), error, error.zh, fields


def order(member_id, coupons=(), points=0, tenders=(), card=""):
    return pb.CheckoutRequest(
        request_id=rid(),
        member_id=member_id,
        lines=[TEA],
        coupon_codes=list(coupons),
        points_to_use=points,
        tenders=list(tenders),
        card_number=card,
    )


def test_a_price_check_says_what_is_due_and_writes_nothing(shop):
    stub, terminal, member_id, card, codes, hq_key = shop
    before = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    priced = stub.PriceOrder(
        pb.PriceOrderRequest(
            member_id=member_id, card_number=card, lines=[TEA], coupon_codes=[codes[1]], points_to_use=500
        ),
        metadata=as_(terminal),
    )
    # 120.00 - 20.00 (满100减20) - 5.00 (coupon) = 95.00; 500 points pay 5.00; at most half in points
    assert (priced.list_total_fen, priced.discount_total_fen, priced.points_offset_fen, priced.amount_due_fen) == (
        120_00,
        25_00,
        5_00,
        90_00,
    )
    assert priced.max_points == 1_000 and priced.items[0].payable_fen == 95_00
    assert priced.lines[-1] == "积分抵扣 500 分  -¥5.00"
    after = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    assert after == before  # no hold, no reservation, the coupon still usable
    assert (
        refused(stub.PriceOrder, pb.PriceOrderRequest(member_id=member_id, lines=[TEA], points_to_use=1_500), terminal)[
            1
        ].reason
        == "INSUFFICIENT_POINTS"
    )
    code, _, _, fields = refused(stub.PriceOrder, pb.PriceOrderRequest(member_id="x", lines=[]), terminal)
    assert (code, fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        {"member_id": "MEMBER_ID_INVALID", "lines": "LINES_REQUIRED"},
    )


def test_a_checkout_refusal_names_its_reason_its_domain_and_what_is_due(shop):
    stub, terminal, member_id, card, codes, hq_key = shop
    wrong = order(member_id, [codes[2]], 500, [pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=80_00)], card)
    code, info, zh, fields = refused(stub.Checkout, wrong, terminal)
    assert (code, info.reason, info.domain, fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "TENDERS_DO_NOT_ADD_UP",
        "gateway.huiyuan",
        {"tenders": "TENDERS_DO_NOT_ADD_UP"},
    )
    assert info.metadata["amount_due_fen"] == "9000" and info.metadata["order_id"].startswith("o_")
    assert "¥90.00" in zh
    again = refused(stub.Checkout, wrong, terminal)[1]  # a retry: the same refusal
    assert (again.reason, again.metadata, again.en) == (info.reason, info.metadata, info.en)

    # more points than the member has, and more than the order takes
    code, info, *_ = refused(
        stub.Checkout,
        order(member_id, points=1_500, tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=85_00)], card=card),
        terminal,
    )
    assert (code, info.reason, info.metadata["available_points"]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_POINTS",
        "1000",
    )
    small = pb.CheckoutLine(line_id="1", sku="candy", category="food", quantity=1, unit_price_fen=10_00)
    code, info, _, fields = refused(
        stub.Checkout,
        pb.CheckoutRequest(
            request_id=rid(),
            member_id=member_id,
            lines=[small],
            points_to_use=800,
            card_number=card,
            tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=2_00)],
        ),
        terminal,
    )
    assert (code, info.reason, fields, info.metadata["max_points"]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "POINTS_OVER_CAP",
        {"points_to_use": "POINTS_OVER_CAP"},
        "500",
    )

    # the wallet's rule refuses: its reason and its domain, said as the checkout's
    rich = order(member_id, tenders=[pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=1_180_00)], card=card)
    rich.lines[0].quantity = 20  # 1,200.00 - 20.00: more than the ¥200 the member holds
    code, info, zh, _ = refused(stub.Checkout, rich, terminal)
    assert (code, info.reason, info.domain) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_BALANCE",
        "wallet.huiyuan",
    )
    assert zh.startswith("结账未成功，本单未扣任何款项")

    # a coupon used already: the campaign's rule
    first = order(member_id, [codes[3]], tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=95_00)])
    assert stub.Checkout(first, metadata=as_(terminal)).state == pb.ORDER_STATE_PAID
    again = order(member_id, [codes[3]], tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=95_00)])
    code, info, zh, _ = refused(stub.Checkout, again, terminal)
    assert (code, info.reason, info.domain, info.metadata["coupon_code"]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "COUPON_ALREADY_USED",
        "campaign.huiyuan",
        codes[3],
    )
    assert "已经用过" in zh


def test_unit_and_tender_shares_are_rounded_cumulatively():
    """¥89.99 for 3 units: the first gives back ¥30.00, the other two ¥59.99; a tender's
    share never goes down as more is refunded, and the last refund takes what is left."""
    assert [share(89_99, units, 3) for units in (1, 3)] == [30_00, 89_99]
    assert share(89_99, 3, 3) - share(89_99, 1, 3) == 59_99
    paid = [44_99, 50_00, 1]  # stored value, cash, a fen by bank card
    steps = [cumulative_split(so_far, paid) for so_far in (0, 31_66, 31_67, 80_00, 95_00)]
    assert all(a <= b for earlier, later in itertools.pairwise(steps) for a, b in zip(earlier, later))
    assert steps[-1] == paid and all(sum(s) == n for s, n in zip(steps, (0, 31_66, 31_67, 80_00, 95_00)))


def test_a_refund_goes_back_to_each_tender_in_its_share(shop):
    """3 × ¥33.33 = ¥99.99, less a ¥5.00 coupon: ¥94.99, paid ¥44.99 from stored value and
    ¥50.00 in cash. One unit back: ¥31.66 (a third of ¥94.99, to the fen), of which
    stored value ¥15.00 (44.99/94.99 of it, to the fen) and cash ¥16.66; the other two:
    what is left of each, ¥29.99 and ¥33.34."""
    stub, terminal, member_id, card, codes, hq_key = shop
    paid = stub.Checkout(
        pb.CheckoutRequest(
            request_id=rid(),
            member_id=member_id,
            coupon_codes=[codes[0]],
            card_number=card,
            lines=[pb.CheckoutLine(line_id="1", sku="cake", category="food", quantity=3, unit_price_fen=33_33)],
            tenders=[
                pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=44_99),
                pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=50_00),
            ],
        ),
        metadata=as_(terminal),
    )
    one = stub.Refund(
        pb.RefundRequest(request_id=rid(), order_id=paid.order_id, lines=[pb.RefundLine(line_id="1", quantity=1)]),
        metadata=as_(terminal),
    )
    assert (one.stored_value_fen, [(t.kind, t.amount_fen) for t in one.tenders], one.state) == (
        15_00,
        [(pb.TENDER_KIND_CASH, 16_66)],
        pb.ORDER_STATE_PARTLY_REFUNDED,
    )
    rest = stub.Refund(pb.RefundRequest(request_id=rid(), order_id=paid.order_id), metadata=as_(terminal))
    assert (rest.stored_value_fen, [(t.kind, t.amount_fen) for t in rest.tenders], rest.state) == (
        29_99,
        [(pb.TENDER_KIND_CASH, 33_34)],
        pb.ORDER_STATE_REFUNDED,
    )


@pytest.fixture(scope="module")
def gateway_with_a_points_bug(chain, database_url, points_service):
    """A gateway whose points service fails the calls named in BUGS (its own process's
    INTERNAL, through the real interceptor), on the points service's database."""
    from gateway.app import SPEC as GATEWAY
    from huiyuan.database.idempotency import Idempotency
    from huiyuan.gateway.v1 import gateway_pb2_grpc
    from huiyuan.points.v1 import points_pb2_grpc
    from huiyuan.runtime.server import ServiceSpec
    from services.points.app import SPEC as POINTS
    from services.points.servicers.points import PointsServicer
    from services.points.storage import tables as storage
    from tests.conftest import ServiceThread, per_service

    class WithABug(PointsServicer):
        async def Accrue(self, request, context):
            if "Accrue" in BUGS:
                raise RuntimeError("a bug in the accrual")
            return await super().Accrue(request, context)

        async def QuoteOffset(self, request, context):
            if "QuoteOffset" in BUGS:
                raise RuntimeError("a bug in the offset")
            return await super().QuoteOffset(request, context)

    def register(server, ctx):
        points_pb2_grpc.add_PointsServiceServicer_to_server(
            WithABug(ctx, Idempotency(ctx.database, storage.idempotency_keys, "points")), server
        )

    points = ServiceThread(
        ServiceSpec("points", POINTS.service_names, POINTS.migrations_dir, register),
        per_service(database_url, "points"),
    )
    patch = pytest.MonkeyPatch()
    patch.setenv("HUIYUAN_POINTS_ADDR", points.app.address)
    gateway = ServiceThread(GATEWAY, per_service(database_url, "gateway"))
    yield gateway_pb2_grpc.GatewayServiceStub(gateway.channel)
    gateway.stop()
    points.stop()
    patch.undo()


BUGS: set[str] = set()


def test_a_services_failure_after_the_payment_leaves_the_order_not_finished_never_refused(
    shop, gateway_with_a_points_bug
):
    """The wallet captured; then the points service fails (a bug, INTERNAL). The terminal
    hears ORDER_NOT_FINISHED with the cause, never a refusal nor a retryable-looking bug,
    and the order stays for the next run: once the bug is gone, the same request pays,
    once."""
    stub, terminal, member_id, card, codes, hq_key = shop
    buggy = gateway_with_a_points_bug
    before = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    request = order(member_id, tenders=[pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=100_00)], card=card)
    BUGS.add("Accrue")
    try:
        code, info, zh, _ = refused(buggy.Checkout, request, terminal)
        assert (code, info.reason, info.metadata["cause"]) == (
            grpc.StatusCode.UNAVAILABLE,
            "ORDER_NOT_FINISHED",
            "INTERNAL",
        )
        assert refused(buggy.Checkout, request, terminal)[1].reason == "ORDER_NOT_FINISHED"  # and again
    finally:
        BUGS.clear()
    paid = buggy.Checkout(request, metadata=as_(terminal))
    assert paid.state == pb.ORDER_STATE_PAID and paid.order_id == info.metadata["order_id"]
    after = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    assert after.stored_value_available_fen == before.stored_value_available_fen - 100_00
    assert after.points_available == before.points_available + paid.receipt.points_earned


def test_a_services_failure_before_anything_is_reserved_ends_the_order_with_it(shop, gateway_with_a_points_bug):
    """A bug while the order is priced: nothing is reserved, so the order ends there, and
    the terminal hears the service's INTERNAL (its domain, its trace id) on every retry,
    not a retryable UNAVAILABLE that would never get through."""
    stub, terminal, member_id, card, codes, hq_key = shop
    request = order(member_id, points=100, tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=99_00)], card=card)
    before = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    BUGS.add("QuoteOffset")
    try:
        answers = [refused(gateway_with_a_points_bug.Checkout, request, terminal)[:2] for _ in range(2)]
    finally:
        BUGS.clear()
    assert [(code, info.reason, info.domain) for code, info in answers] == [
        (grpc.StatusCode.INTERNAL, "INTERNAL", "points.huiyuan")
    ] * 2
    assert answers[0][1].metadata == answers[1][1].metadata  # the same trace id: the one failure, replayed
    assert stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal)) == before


def test_a_retry_waits_for_the_run_that_holds_the_order_then_takes_over_a_lapsed_one(
    shop, gateway_with_a_points_bug, database_url
):
    """An order whose run stalled (or whose gateway died) holding its lease: a retry within
    a short deadline hears ORDER_NOT_FINISHED (another run is working), never a second
    decision; once the lease lapses, the retry takes the order over and pays it, once."""
    from datetime import datetime, timedelta

    from sqlalchemy import update

    from gateway.storage.tables import orders
    from huiyuan.database.engines import make_sync_engine
    from tests.conftest import per_service

    stub, terminal, member_id, card, codes, hq_key = shop
    buggy = gateway_with_a_points_bug
    before = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    request = order(member_id, tenders=[pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=100_00)], card=card)
    BUGS.add("Accrue")
    try:  # the payment taken, the order left unfinished
        order_id = refused(buggy.Checkout, request, terminal)[1].metadata["order_id"]
    finally:
        BUGS.clear()
    engine = make_sync_engine(per_service(database_url, "gateway"), "gateway")
    with engine.begin() as db:  # a run of another process holds it for the next 3 s
        db.execute(
            update(orders)
            .where(orders.c.order_id == order_id)
            .values(run_id="a-stalled-run", lease_until=datetime.now(UTC) + timedelta(seconds=3))
        )
    engine.dispose()
    with pytest.raises(grpc.RpcError) as caught:
        buggy.Checkout(request, metadata=as_(terminal), timeout=1)
    info = error_details_pb2.ErrorInfo()
    next(d for d in rpc_status.from_call(caught.value).details if d.Unpack(info))
    assert (caught.value.code(), info.reason, info.metadata["cause"]) == (
        grpc.StatusCode.UNAVAILABLE,
        "ORDER_NOT_FINISHED",
        "ANOTHER_RUN_WORKING",
    )
    paid = buggy.Checkout(request, metadata=as_(terminal), timeout=10)  # waits out the lease, then finishes it
    assert paid.state == pb.ORDER_STATE_PAID and paid.order_id == order_id
    after = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    assert after.stored_value_available_fen == before.stored_value_available_fen - 100_00


def test_orders_decided_before_the_decision_entry_read_as_the_sagas_read_them_now(database_url, tmp_path, request):
    """Migration 0009: an order logged as three entries (lookup, quote, offset) gets its
    decision entry with those three messages; a refused order gets the refusal its
    terminal heard, replayed as the same reason; a refund gets its update_time."""
    import sqlalchemy as sa
    from google.rpc import status_pb2

    from gateway.app import SPEC
    from huiyuan.campaign.v1 import campaign_pb2
    from huiyuan.database import engines as db, migrate
    from huiyuan.gateway.v1 import saga_log_pb2
    from huiyuan.member.v1 import member_pb2 as mpb
    from huiyuan.points.v1 import points_pb2
    from huiyuan.runtime.status import from_status
    from tests.conftest import database_of_its_own

    url = database_of_its_own(database_url, tmp_path, request, "gateway")
    migrate.upgrade(SPEC.migrations_dir, url, "gateway", "0008")
    lookup = mpb.LookupMemberResponse(member=mpb.Member(member_id="m_1", name="旧单"))
    quote = campaign_pb2.QuoteResponse(payable_fen=95_00, list_total_fen=120_00)
    offset = points_pb2.QuoteOffsetResponse(max_points=1_000, points_per_yuan=100)
    refused = pb.CheckoutResponse(
        order_id="o_2", state=pb.ORDER_STATE_REFUSED, refusal_reason="TENDERS_DO_NOT_ADD_UP", amount_due_fen=90_00
    )
    t0 = "2026-12-01 10:00:00"
    engine = db.make_sync_engine(url, "gateway")
    try:
        with engine.begin() as connection:
            for step, message in (("lookup", lookup), ("quote", quote), ("offset", offset)):
                connection.execute(
                    sa.text("INSERT INTO saga_log (order_id, step, payload, log_time) VALUES ('o_1', :s, :p, :t)"),
                    {"s": step, "p": message.SerializeToString(), "t": t0},
                )
            for order_id, state, response in (
                ("o_1", "PENDING", None),
                ("o_2", "REFUSED", refused.SerializeToString()),
            ):
                connection.execute(
                    sa.text(
                        "INSERT INTO orders (order_id, key_id, request_id, request_hash, request, member_id, org_path,"
                        " store_path, state, response, create_time, update_time) VALUES (:o, 'k', :o, 'h', :r, 'm_1', 'x',"
                        " 'x', :s, :resp, :t, :t)"
                    ),
                    {"o": order_id, "r": b"", "s": state, "resp": response, "t": t0},
                )
            connection.execute(
                sa.text(
                    "INSERT INTO refunds (refund_id, order_id, key_id, request_id, request_hash, lines, plan, state,"
                    " create_time) VALUES ('rf_1', 'o_1', 'k', 'r', 'h', '{}', :p, 'DONE', :t)"
                ),
                {"p": b"", "t": t0},
            )
        migrate.upgrade(SPEC.migrations_dir, url, "gateway")
        with engine.connect() as connection:
            decision = connection.execute(
                sa.text("SELECT payload FROM saga_log WHERE order_id = 'o_1' AND step = 'decision'")
            ).scalar_one()
            refusal = connection.execute(sa.text("SELECT refusal FROM orders WHERE order_id = 'o_2'")).scalar_one()
            pending = connection.execute(sa.text("SELECT refusal FROM orders WHERE order_id = 'o_1'")).scalar_one()
            refund_time = connection.execute(sa.text("SELECT update_time FROM refunds")).scalar_one()
    finally:
        engine.dispose()
    assert saga_log_pb2.CheckoutDecision.FromString(decision) == saga_log_pb2.CheckoutDecision(
        lookup=lookup, quote=quote, offset=offset
    )
    heard = from_status(status_pb2.Status.FromString(refusal))
    assert (heard.code, heard.reason, heard.metadata) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "TENDERS_DO_NOT_ADD_UP",
        {"order_id": "o_2", "amount_due_fen": "9000"},
    )
    assert pending is None and refund_time is not None


def test_a_refund_after_one_made_under_the_stored_value_first_rule_still_adds_up():
    """¥50 stored value and ¥50 cash; a refund made before the proportional rule gave
    ¥50 back to stored value. The next ¥25 cannot come from stored value (it has given
    all it paid): cash gives it, and the last ¥25 too, so each tender ends at what it paid."""
    from gateway.use_cases.tenders import returned_by_tender, tenders_back

    sv, cash = pb.TENDER_KIND_STORED_VALUE, pb.TENDER_KIND_CASH
    paid = [pb.Tender(kind=sv, amount_fen=50_00), pb.Tender(kind=cash, amount_fen=50_00, reference="drawer")]
    plans = [pb.RefundResponse(stored_value_fen=50_00)]
    for _ in range(2):
        stored, others = tenders_back(paid, returned_by_tender(plans), 25_00)
        assert (stored, [(t.kind, t.amount_fen, t.reference) for t in others]) == (0, [(cash, 25_00, "drawer")])
        plans.append(pb.RefundResponse(stored_value_fen=stored, tenders=others))
    assert returned_by_tender(plans) == {(sv, ""): 50_00, (cash, "drawer"): 50_00}
