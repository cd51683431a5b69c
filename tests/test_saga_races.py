"""One saga run decides an order: the same checkout or refund sent twice at once.

A terminal that retries during a slow saga, or the recovery loop that takes an order
over while its first run is still working, must not make a second decision: both
callers hear one answer, and what moved (stored value, points, coupons) is exactly
what that answer says. On PostgreSQL, where the runs really overlap: with the saga's
lease as configured (a second run waits for the first), and with leases that lapse at
once and the recovery loop taking over every order as soon as it is written, so that
runs overlap and only the saga's log keeps them agreeing.
"""

import itertools
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
import pytest

from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from tests.conftest import drop_pg_database, new_pg_database, per_service
from tests.invariants import assert_books_balance, assert_points_held
from tests.support import STORE, Stubs, card_type, new_phone, refusal_of, rid
from tests.test_gateway import as_, chain, issue, offers  # noqa: F401 - chain is the fixture these tests share

MEMBERS = 8
STORED_VALUE = 5_000_00
POINTS = 50_000


@pytest.fixture(scope="module")
def database_url(pg_server):
    """PostgreSQL only: on SQLite one writer at a time keeps the runs from overlapping."""
    url = new_pg_database(pg_server)
    yield url
    drop_pg_database(pg_server, url)


@dataclass
class Member:
    coupons: list[str]
    card: str  # what the member shows to spend
    next_coupon: int = 0  # the first coupon no test has named yet
    stored_fen: int = STORED_VALUE  # what the member holds, as the answers so far say
    points: int = POINTS
    redeemed: set[str] = field(default_factory=set)


@dataclass
class Till:
    gateway: object
    metadata: tuple
    members: dict[str, Member]
    campaign: campaign_pb2_grpc.CampaignServiceStub
    wallet: wallet_pb2_grpc.WalletServiceStub
    points: points_pb2_grpc.PointsServiceStub


@pytest.fixture(scope="module")
def till(chain, member_service, wallet_service, points_service, campaign_service):
    """A terminal; members with stored value, points and forty 5元 coupons each; a
    满100减20 campaign and a rule of a point a yuan."""
    stub, hq_key = chain
    terminal = issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key
    points = points_pb2_grpc.PointsServiceStub(points_service.channel)
    campaign, offer, template = offers(points, campaign_service)
    members = {}
    cards_of_type = card_type(Stubs(member_service.channel))
    for _ in range(MEMBERS):
        registered = stub.RegisterMember(
            pb.RegisterMemberRequest(
                request_id=rid(),
                member=member_pb2.Member(name="并发会员", phone=new_phone()),
                card_type_id=cards_of_type,
            ),
            metadata=as_(terminal),
        )
        member_id = registered.member.member_id
        stub.TopUp(
            pb.TopUpRequest(request_id=rid(), member_id=member_id, amount_fen=STORED_VALUE, tender=pb.TENDER_KIND_CASH),
            metadata=as_(terminal),
        )
        points.Grant(
            points_pb2.GrantRequest(
                request_id=rid(), member_id=member_id, points=POINTS, source=points_pb2.LOT_SOURCE_SIGN_UP
            )
        )
        members[member_id] = Member(
            [
                c.coupon_code
                for c in campaign.IssueCoupons(
                    campaign_pb2.IssueCouponsRequest(
                        request_id=rid(), template_id=template.template_id, member_ids=[member_id] * 40
                    )
                ).coupons
            ],
            registered.card.card_number,
        )
    yield Till(
        stub, as_(terminal), members, campaign, wallet_pb2_grpc.WalletServiceStub(wallet_service.channel), points
    )
    campaign.SetCampaignStatus(
        campaign_pb2.SetCampaignStatusRequest(
            request_id=rid(), campaign_id=offer.campaign_id, status=campaign_pb2.CAMPAIGN_STATUS_ENDED
        )
    )


def outcome(future):
    """The answer, or the refusal as (code, ErrorInfo reason, field violations)."""
    try:
        return future.result(timeout=60)
    except grpc.RpcError as error:
        return (error.code(), *refusal_of(error)[1:])


def twice_at_once(call, request, metadata):
    """The same request sent twice at once: both answers."""
    first, second = call.future(request, metadata=metadata), call.future(request, metadata=metadata)
    return outcome(first), outcome(second)


def orders(till: Till, rng: random.Random, per_member: int) -> list[pb.CheckoutRequest]:
    """Checkouts with a coupon, points, stored value and cash; one in five names a coupon
    an earlier order took (refused if that order was paid)."""
    requests = []
    for member_id, member in till.members.items():
        used: list[str] = []
        for _ in range(per_member):
            if used and rng.random() < 0.2:
                code = rng.choice(used)
            else:
                code, member.next_coupon = member.coupons[member.next_coupon], member.next_coupon + 1
            used.append(code)
            points = rng.choice([0, 100, 500])
            # 2 teas at 60.00 = 120.00, less 20.00 (满100减20) and 5.00 (the coupon) = 95.00, less the points
            due = 95_00 - points
            stored = rng.randrange(1_00, due)
            requests.append(
                pb.CheckoutRequest(
                    request_id=rid(),
                    member_id=member_id,
                    coupon_codes=[code],
                    points_to_use=points,
                    card_number=member.card,
                    lines=[
                        pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=2, unit_price_fen=60_00),
                        pb.CheckoutLine(line_id="2", sku="cake-1", category="food", quantity=3, unit_price_fen=0),
                    ],
                    tenders=[
                        pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=stored),
                        pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=due - stored),
                    ],
                )
            )
    rng.shuffle(requests)
    return requests


def member_coupons(till: Till, member_id: str) -> dict[str, int]:
    """Every coupon of the member by code: its state."""
    states, token = {}, ""
    while True:
        page = till.campaign.ListMemberCoupons(
            campaign_pb2.ListMemberCouponsRequest(member_id=member_id, page_size=100, page_token=token)
        )
        states.update({c.coupon_code: c.state for c in page.coupons})
        if not (token := page.next_page_token):
            return states


def assert_moved_as_answered(till: Till, answered: list[tuple[pb.CheckoutRequest, object]]) -> None:
    """For each member, stored value and points moved exactly as the PAID answers say;
    the coupons of paid orders are redeemed, every other one is available again."""
    for request, answer in answered:
        if isinstance(answer, pb.CheckoutResponse):
            member = till.members[request.member_id]
            assert answer.state == pb.ORDER_STATE_PAID
            member.stored_fen -= answer.receipt.stored_value_paid_fen
            member.points += answer.receipt.points_earned - answer.receipt.points_used
            assert request.coupon_codes[0] not in member.redeemed, "one coupon paid two orders"
            member.redeemed.add(request.coupon_codes[0])
    for member_id, member in till.members.items():
        stored = till.wallet.GetBalance(wallet_pb2.GetBalanceRequest(member_id=member_id)).balance.available_fen
        points = till.points.GetBalance(points_pb2.GetBalanceRequest(member_id=member_id)).balance.available_points
        assert (stored, points) == (member.stored_fen, member.points), member_id
        states = member_coupons(till, member_id)
        assert {c for c, s in states.items() if s == campaign_pb2.COUPON_STATE_REDEEMED} == member.redeemed
        assert {c for c, s in states.items() if s != campaign_pb2.COUPON_STATE_REDEEMED} == (
            set(member.coupons) - member.redeemed
        )
        assert all(s == campaign_pb2.COUPON_STATE_AVAILABLE for c, s in states.items() if c not in member.redeemed)


def checkouts_sent_twice(till: Till, requests: list[pb.CheckoutRequest]) -> list[tuple[pb.CheckoutRequest, object]]:
    """Each request sent twice at once, eight requests at a time; both answers must be one."""
    with ThreadPoolExecutor(8) as pool:
        pairs = list(pool.map(lambda r: twice_at_once(till.gateway.Checkout, r, till.metadata), requests))
    for request, (first, second) in zip(requests, pairs):
        assert first == second, (request.request_id, first, second)
        again = outcome(till.gateway.Checkout.future(request, metadata=till.metadata))
        assert again == first, "a replay answers as the first answer did"
    return [(request, first) for request, (first, _) in zip(requests, pairs)]


@pytest.fixture
def overlapping_runs(monkeypatch):
    """Leases that lapse as soon as they are taken, and a recovery loop that takes over
    every order at once: runs of one saga overlap as they would after a long stall."""
    from gateway.use_cases import leases, recovery

    monkeypatch.setattr(leases, "LEASE_S", 0.0)
    monkeypatch.setattr(recovery, "RECOVER_AFTER", recovery.RECOVER_AFTER * 0)
    monkeypatch.setattr(recovery, "RECOVERY_INTERVAL_S", 0.01)


def test_a_checkout_sent_twice_at_once_is_decided_once(till, database_url):
    answered = checkouts_sent_twice(till, orders(till, random.Random(35), per_member=15))
    outcomes = [a.state if isinstance(a, pb.CheckoutResponse) else a[1] for _, a in answered]
    assert outcomes.count(pb.ORDER_STATE_PAID) > 80 and outcomes.count("COUPON_ALREADY_USED") > 5, outcomes
    assert_moved_as_answered(till, answered)
    assert_books_balance(per_service(database_url, "wallet"))
    assert_points_held(per_service(database_url, "points"))


def test_runs_that_overlap_still_make_one_decision(till, database_url, overlapping_runs):
    answered = checkouts_sent_twice(till, orders(till, random.Random(36), per_member=12))
    assert_moved_as_answered(till, answered)
    assert_books_balance(per_service(database_url, "wallet"))
    assert_points_held(per_service(database_url, "points"))


def paid_orders(till: Till, count: int) -> list[tuple[str, pb.CheckoutResponse]]:
    """(member, answer) of orders of 3 teas at ¥29.99 and 2 cakes at ¥10.00 (¥109.97,
    less 满100减20: ¥89.97), paid part in stored value, part in cash."""
    paid = []
    for n, member_id in zip(range(count), itertools.cycle(list(till.members))):
        stored = 40_00 + n
        answer = till.gateway.Checkout(
            pb.CheckoutRequest(
                request_id=rid(),
                member_id=member_id,
                card_number=till.members[member_id].card,
                lines=[
                    pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=3, unit_price_fen=29_99),
                    pb.CheckoutLine(line_id="2", sku="cake-1", category="food", quantity=2, unit_price_fen=10_00),
                ],
                tenders=[
                    pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=stored),
                    pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=89_97 - stored),
                ],
            ),
            metadata=till.metadata,
        )
        till.members[member_id].stored_fen -= stored
        till.members[member_id].points += answer.receipt.points_earned
        paid.append((member_id, answer))
    return paid


def again(call, request, till: Till):
    return outcome(call.future(request, metadata=till.metadata))


def refunds_sent_twice(till: Till, paid: list[tuple[str, pb.CheckoutResponse]]) -> list[list[pb.RefundResponse]]:
    """Of each order, a tea and the rest of the order as two refunds, each sent twice, all
    four at once: each refund's two answers are one, state included. Each order's
    answers, the refund planned first first."""

    def four_at_once(order: pb.CheckoutResponse) -> list[pb.RefundResponse]:
        tea = pb.RefundRequest(
            request_id=rid(), order_id=order.order_id, lines=[pb.RefundLine(line_id="1", quantity=1)]
        )
        rest = pb.RefundRequest(
            request_id=rid(),
            order_id=order.order_id,
            lines=[pb.RefundLine(line_id="1", quantity=2), pb.RefundLine(line_id="2", quantity=2)],
        )
        answers = [
            outcome(f) for f in [till.gateway.Refund.future(r, metadata=till.metadata) for r in (tea, rest, tea, rest)]
        ]
        assert answers[0] == answers[2] and answers[1] == answers[3], answers
        assert all(isinstance(a, pb.RefundResponse) for a in answers), answers
        assert (
            again(till.gateway.Refund, tea, till) == answers[0] and again(till.gateway.Refund, rest, till) == answers[1]
        )
        return sorted(answers[:2], key=lambda a: a.state)  # PARTLY_REFUNDED (4), then REFUNDED (5)

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(four_at_once, [answer for _, answer in paid]))


def assert_refunded_exactly(till: Till, paid, refunded: list[list[pb.RefundResponse]]) -> None:
    """Every order came back whole, each tender exactly what it paid, over its two refunds;
    stored value and points stand as the answers say."""
    for (member_id, order), answers in zip(paid, refunded):
        assert [a.state for a in answers] == [pb.ORDER_STATE_PARTLY_REFUNDED, pb.ORDER_STATE_REFUNDED]
        tenders = {t.kind: t.amount_fen for t in order.receipt.tenders}
        assert sum(a.stored_value_fen for a in answers) == tenders[pb.TENDER_KIND_STORED_VALUE]
        assert [t.kind for a in answers for t in a.tenders] == [pb.TENDER_KIND_CASH] * 2
        assert sum(t.amount_fen for a in answers for t in a.tenders) == tenders[pb.TENDER_KIND_CASH]
        till.members[member_id].stored_fen += sum(a.stored_value_fen for a in answers)
        till.members[member_id].points -= sum(a.points_clawed_back for a in answers)
    for member_id, member in till.members.items():
        stored = till.wallet.GetBalance(wallet_pb2.GetBalanceRequest(member_id=member_id)).balance.available_fen
        points = till.points.GetBalance(points_pb2.GetBalanceRequest(member_id=member_id)).balance.available_points
        assert (stored, points) == (member.stored_fen, member.points), member_id


def test_refunds_of_one_order_sent_twice_at_once_each_answer_once(till, database_url):
    paid = paid_orders(till, 24)
    assert_refunded_exactly(till, paid, refunds_sent_twice(till, paid))
    assert_books_balance(per_service(database_url, "wallet"))


def test_refund_runs_that_overlap_still_answer_once(till, database_url, overlapping_runs):
    paid = paid_orders(till, 16)
    assert_refunded_exactly(till, paid, refunds_sent_twice(till, paid))
    assert_books_balance(per_service(database_url, "wallet"))
