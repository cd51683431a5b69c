"""Crash tests: each service and the gateway, each in its own process, dies (as SIGKILL
would) at a step of the checkout saga. After a restart every saga ends paid once,
nothing moves twice, no hold is left behind, the wallet's books balance, no points lot
goes below zero, and the terminal's retry gets the final answer within 30 s."""

import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from gateway.domain.callers import Role
from gateway.use_cases import bootstrap
from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.common.v1 import file_pb2
from huiyuan.database import migrate
from huiyuan.gateway.v1 import gateway_pb2 as pb, gateway_pb2_grpc
from huiyuan.member.v1 import card_pb2, member_pb2, tier_pb2
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.runtime.ids import new_id
from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from tests.conftest import as_gateway, per_service
from tests.invariants import assert_books_balance, points_spent
from tests.support import ACTOR, STORE, Stubs, card_type, ensure_org, pos_args, refusal_of, rid
from tests.test_runtime import _free_port

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("member", "wallet", "points", "campaign")
FINAL_ANSWER_WITHIN_S = 30


class Process:
    """A service or the gateway as its own OS process, on a port that stays its own
    across restarts (the others keep calling it there)."""

    def __init__(self, name: str, database_url: str, env: dict[str, str]):
        self.name, self.port = name, _free_port()
        self.database_url = per_service(database_url, name)
        self.env = {
            **env,
            f"HUIYUAN_{name.upper()}_DATABASE_URL": self.database_url,
            f"HUIYUAN_{name.upper()}_PORT": str(self.port),
        }
        self.process: subprocess.Popen | None = None
        options = [
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 500),
        ]  # find a restarted process at once
        self.channel = (
            grpc.insecure_channel(f"127.0.0.1:{self.port}", options=options)
            if name == "gateway"
            else as_gateway(name, f"127.0.0.1:{self.port}", options)
        )

    def start(self, faults: str = "") -> "Process":
        module = "gateway" if self.name == "gateway" else f"services.{self.name}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", module], cwd=ROOT, env={**self.env, "HUIYUAN_FAULTS": faults}
        )
        return self

    def wait_serving(self) -> "Process":
        deadline = time.monotonic() + 30
        while True:
            try:
                if (
                    health_pb2_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    == 1
                ):
                    return self
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline and self.process.poll() is None, f"{self.name} never became SERVING"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(20)


class Chain:
    """The four services and the gateway, each a process, on one database."""

    def __init__(self, database_url: str):
        from gateway.app import SPEC as gateway
        from services.campaign.app import SPEC as campaign
        from services.member.app import SPEC as member
        from services.points.app import SPEC as points
        from services.wallet.app import SPEC as wallet

        # os.environ holds the keys tests/conftest.py made
        env = {**os.environ, "HUIYUAN_LOG_LEVEL": "ERROR", "HUIYUAN_SAGA_RECOVER_AFTER_S": "1"}
        self.processes = {name: Process(name, database_url, env) for name in (*SERVICES, "gateway")}
        addresses = {f"HUIYUAN_{p.name.upper()}_ADDR": f"127.0.0.1:{p.port}" for p in self.processes.values()}
        for process in self.processes.values():
            process.env.update(addresses)
        for spec in (member, wallet, points, campaign, gateway):
            migrate.upgrade(spec.migrations_dir, self.processes[spec.name].database_url, spec.name)
        for process in self.processes.values():
            process.start()
        for process in self.processes.values():
            process.wait_serving()
        self.member = Stubs(self.processes["member"].channel)
        self.wallet = wallet_pb2_grpc.WalletServiceStub(self.processes["wallet"].channel)
        self.points = points_pb2_grpc.PointsServiceStub(self.processes["points"].channel)
        self.campaign = campaign_pb2_grpc.CampaignServiceStub(self.processes["campaign"].channel)
        self.gateway = gateway_pb2_grpc.GatewayServiceStub(self.processes["gateway"].channel)

    def issue_key(self, org_path: str, role, label: str) -> str:
        """A key made by the operator's command (gateway/use_cases/bootstrap.py)."""
        return bootstrap.issue_key(
            self.processes["gateway"].database_url,
            org_path,
            role,
            label,
            member_database_url=self.processes["member"].database_url,
        )[1]

    def restart(self, name: str, faults: str = "") -> None:
        self.processes[name].stop()
        self.processes[name].start(faults).wait_serving()

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
            process.channel.close()


@pytest.fixture(scope="module")
def chain(database_url):
    chain = Chain(database_url)
    try:
        ensure_org(chain.member)
        chain.key = chain.issue_key(f"{STORE}/pos-1", Role.TERMINAL, "fault test")
        chain.points.CreateRule(
            points_pb2.CreateRuleRequest(
                request_id="fault-rule",
                rule=points_pb2.Rule(name="1元1分", org_path="hq", priority=1, points_per_yuan_bp=10_000),
            )
        )
        offer = chain.campaign.CreateCampaign(
            campaign_pb2.CreateCampaignRequest(
                request_id=rid(),
                campaign=campaign_pb2.Campaign(
                    name="满30减3",
                    kind=campaign_pb2.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
                    org_path="hq",
                    budget_fen=1_000_00,
                    steps=[campaign_pb2.ThresholdStep(threshold_fen=30_00, reduction_fen=3_00)],
                ),
            )
        ).campaign
        chain.campaign.SetCampaignStatus(
            campaign_pb2.SetCampaignStatusRequest(
                request_id=rid(), campaign_id=offer.campaign_id, status=campaign_pb2.CAMPAIGN_STATUS_ACTIVE
            )
        )
        chain.campaign_id = offer.campaign_id
        chain.template_id = chain.campaign.CreateCouponTemplate(
            campaign_pb2.CreateCouponTemplateRequest(
                request_id=rid(),
                template=campaign_pb2.CouponTemplate(
                    name="5元券", kind=campaign_pb2.COUPON_KIND_FIXED, amount_fen=5_00, valid_days=30, org_path="hq"
                ),
            )
        ).template.template_id
        yield chain
    finally:
        chain.stop()


CARDS: dict[str, str] = {}  # member id -> the card a member shows to spend (_order)


def _member_with_money(chain: Chain) -> tuple[str, str]:
    """A member with a card, ¥100.00 stored value, 300 points and a ¥5 coupon."""
    member = chain.member.register(name="故障测试")
    CARDS[member.member_id] = chain.member.card.IssueCard(
        card_pb2.IssueCardRequest(
            request_id=rid(), member_id=member.member_id, card_type_id=card_type(chain.member), actor=ACTOR
        )
    ).card.card_number
    chain.wallet.TopUp(
        wallet_pb2.TopUpRequest(
            request_id=rid(),
            member_id=member.member_id,
            amount_fen=100_00,
            tender=wallet_pb2.TENDER_CASH,
            store_path=STORE,
            actor=ACTOR,
        )
    )
    chain.points.Grant(
        points_pb2.GrantRequest(
            request_id=rid(), member_id=member.member_id, points=300, source=points_pb2.LOT_SOURCE_SIGN_UP
        )
    )
    coupon = chain.campaign.IssueCoupons(
        campaign_pb2.IssueCouponsRequest(request_id=rid(), template_id=chain.template_id, member_ids=[member.member_id])
    ).coupons[0]
    return member.member_id, coupon.coupon_code


def _order(member_id: str, coupon_code: str) -> pb.CheckoutRequest:
    """30.00 - 3.00 (满30减3) - 5.00 (coupon) - 2.00 (200 points) = 20.00 from stored value."""
    return pb.CheckoutRequest(
        request_id=rid(),
        member_id=member_id,
        points_to_use=200,
        coupon_codes=[coupon_code],
        card_number=CARDS[member_id],
        lines=[pb.CheckoutLine(line_id="1", sku="tea", category="tea", quantity=1, unit_price_fen=30_00)],
        tenders=[pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=20_00)],
    )


def _as_terminal(chain: Chain):
    return (("authorization", f"Bearer {chain.key}"),)


def _checkout(chain: Chain, request):
    return chain.gateway.Checkout(request, metadata=_as_terminal(chain), timeout=FINAL_ANSWER_WITHIN_S)


def _killed_during(chain: Chain, point: str, call, request, metadata=None):
    """Makes the call while the process the point belongs to dies there, restarts that
    process, and returns the final answer: the first call's if it got one (the saga's
    own retries may finish it), else the one the terminal's retries get, as a cashier's
    app would retry while it hears UNAVAILABLE."""
    dying = point.split(".")[0] if "." in point else "gateway"
    metadata = metadata or _as_terminal(chain)
    chain.restart(dying, faults=point)
    first = call.future(request, metadata=metadata, timeout=FINAL_ANSWER_WITHIN_S)
    assert chain.processes[dying].process.wait(20) == 137, f"{dying} did not die at {point}"
    chain.restart(dying)
    try:
        return first.result()
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    deadline = time.monotonic() + FINAL_ANSWER_WITHIN_S
    while True:
        try:
            return call(request, metadata=metadata, timeout=FINAL_ANSWER_WITHIN_S)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline, error
            time.sleep(0.5)


def _balances(chain: Chain, member_id: str) -> tuple[int, int, int, int]:
    stored = chain.wallet.GetBalance(wallet_pb2.GetBalanceRequest(member_id=member_id)).balance
    points = chain.points.GetBalance(points_pb2.GetBalanceRequest(member_id=member_id)).balance
    return stored.available_fen, stored.held_fen, points.available_points, points.held_points


def _spend(chain: Chain, member_id: str) -> int:
    return chain.member.member.GetVisitStats(member_pb2.GetVisitStatsRequest(member_id=member_id)).stats.total_spend_fen


def _campaign_given(chain: Chain) -> tuple[int, int]:
    stats = chain.campaign.GetCampaignStats(campaign_pb2.GetCampaignStatsRequest(campaign_id=chain.campaign_id))
    return stats.orders, stats.discount_fen


def _assert_paid_once(chain: Chain, member_id: str, coupon_code: str, stats_before) -> None:
    # 20.00 taken once, 200 points spent and 20 earned once, no hold left
    assert _balances(chain, member_id) == (80_00, 0, 300 - 200 + 20, 0)
    assert points_spent(chain.processes["points"].database_url, member_id) == 200
    assert_books_balance(chain.processes["wallet"].database_url)
    coupons = chain.campaign.ListMemberCoupons(campaign_pb2.ListMemberCouponsRequest(member_id=member_id)).coupons
    assert [(c.coupon_code, c.state) for c in coupons] == [(coupon_code, campaign_pb2.COUPON_STATE_REDEEMED)]
    assert _campaign_given(chain) == (stats_before[0] + 1, stats_before[1] + 3_00)  # 满30减3 booked once
    visits = chain.member.member.GetVisitStats(member_pb2.GetVisitStatsRequest(member_id=member_id)).stats
    assert (visits.visit_count, visits.total_spend_fen) == (1, 22_00)


# Every call of the saga, in its order, with the process that dies there. ":after" is
# the hard case: the work is committed and the caller never hears of it.
SAGA_STEPS = [
    "member.LookupMember:after",
    "campaign.Quote:after",
    "points.QuoteOffset:after",
    "campaign.ReserveCoupons:after",
    "points.Hold:after",
    "wallet.Hold:after",
    "checkout-reserved",  # the gateway: every hold made, nothing captured
    "wallet.Capture:before",
    "wallet.Capture:after",
    "checkout-captured",  # the gateway: the pivot done, nothing settled
    "campaign.RedeemCoupons:after",
    "points.Capture:after",
    "points.Accrue:after",
    "member.RecordVisit:after",
]


@pytest.mark.parametrize("point", SAGA_STEPS)
def test_a_process_killed_at_a_checkout_step_leaves_one_payment_and_the_retry_gets_it(chain, point):
    member_id, coupon_code = _member_with_money(chain)
    stats_before = _campaign_given(chain)
    request = _order(member_id, coupon_code)
    answer = _killed_during(chain, point, chain.gateway.Checkout, request)
    assert answer.state == pb.ORDER_STATE_PAID and answer.receipt.stored_value_paid_fen == 20_00
    assert (answer.receipt.points_used, answer.receipt.points_earned) == (200, 20)
    assert _checkout(chain, request) == answer  # and every later retry: the same receipt
    _assert_paid_once(chain, member_id, coupon_code, stats_before)


REFUND_STEPS = [
    "wallet.RefundConsumption:after",
    "refund-stored-value-returned",
    "points.Reverse:after",
    "campaign.ReturnDiscounts:after",
    "member.RecordReturn:after",
]


@pytest.mark.parametrize("point", REFUND_STEPS)
def test_a_process_killed_during_a_refund_returns_the_money_once(chain, point):
    member_id, coupon_code = _member_with_money(chain)
    stats_before = _campaign_given(chain)
    paid = _checkout(chain, _order(member_id, coupon_code))
    request = pb.RefundRequest(request_id=rid(), order_id=paid.order_id, reason="整单退货")
    answer = _killed_during(chain, point, chain.gateway.Refund, request)
    assert (answer.state, answer.stored_value_fen, answer.points_returned, answer.points_clawed_back) == (
        pb.ORDER_STATE_REFUNDED,
        20_00,
        200,
        20,
    )
    assert chain.gateway.Refund(request, metadata=_as_terminal(chain), timeout=FINAL_ANSWER_WITHIN_S) == answer
    assert _balances(chain, member_id) == (100_00, 0, 300, 0)  # all back, the 20 earned taken back, once
    assert points_spent(chain.processes["points"].database_url, member_id) == 20
    assert_books_balance(chain.processes["wallet"].database_url)
    assert _campaign_given(chain) == stats_before  # 满30减3's 3.00 given back once
    assert _spend(chain, member_id) == 0  # the order's spend taken back off the member's, once


def _eventually(chain: Chain, member_id: str, balances: tuple) -> None:
    deadline = time.monotonic() + FINAL_ANSWER_WITHIN_S
    while (now := _balances(chain, member_id)) != balances:
        assert time.monotonic() < deadline, f"the recovery loop left {now}, not {balances}"
        time.sleep(0.3)


def _gateway_dies_at(chain: Chain, point: str, call) -> None:
    """call() fails because the gateway dies at point, and stays dead."""
    chain.restart("gateway", faults=point)
    with pytest.raises(grpc.RpcError):
        call()
    assert chain.processes["gateway"].process.wait(20) == 137


def test_the_recovery_loop_finishes_a_checkout_and_a_refund_nobody_retries(chain):
    member_id, coupon_code = _member_with_money(chain)
    request = _order(member_id, coupon_code)
    _gateway_dies_at(chain, "checkout-reserved", lambda: _checkout(chain, request))
    assert _balances(chain, member_id) == (80_00, 20_00, 100, 200)  # the holds the dead saga left
    chain.restart("gateway")
    _eventually(chain, member_id, (80_00, 0, 120, 0))
    order_id = _checkout(chain, request).order_id  # a late retry: the receipt, nothing moves
    _gateway_dies_at(
        chain,
        "refund-stored-value-returned",
        lambda: chain.gateway.Refund(
            pb.RefundRequest(request_id=rid(), order_id=order_id), metadata=_as_terminal(chain)
        ),
    )
    assert _balances(chain, member_id) == (100_00, 0, 120, 0)  # money back, points not yet
    chain.restart("gateway")
    _eventually(chain, member_id, (100_00, 0, 300, 0))


@pytest.mark.parametrize("down", ["points", "wallet"])
def test_a_checkout_with_a_service_down_is_not_finished_and_its_retry_pays_once(chain, down):
    """What the contract promises while a service does not answer: never a refusal, but
    ORDER_NOT_FINISHED with the order id (money may have moved: take no other payment);
    once the service is back, the same request pays, once."""
    member_id, coupon_code = _member_with_money(chain)
    stats_before = _campaign_given(chain)
    request = _order(member_id, coupon_code)
    chain.processes[down].stop()
    try:
        with pytest.raises(grpc.RpcError) as raised:
            _checkout(chain, request)
        assert refusal_of(raised.value)[:2] == (grpc.StatusCode.UNAVAILABLE, "ORDER_NOT_FINISHED")
        assert _error_info(raised.value).metadata["order_id"].startswith("o_")
    finally:
        chain.processes[down].start().wait_serving()
    answer = _checkout(chain, request)
    assert answer.state == pb.ORDER_STATE_PAID and answer.order_id == _error_info(raised.value).metadata["order_id"]
    _assert_paid_once(chain, member_id, coupon_code, stats_before)


def _error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    next(d for d in rpc_status.from_call(error).details if d.Unpack(info))
    return info


def _lapse_points_holds(chain: Chain, member_id: str) -> None:
    """Move the member's pending points holds past their deadline, as ten minutes with
    the gateway down would."""
    from sqlalchemy import update

    from huiyuan.database.engines import make_sync_engine
    from huiyuan.runtime.holds import HoldState
    from services.points.storage.tables import holds

    engine = make_sync_engine(chain.processes["points"].database_url, "points")
    with engine.begin() as db:
        db.execute(
            update(holds)
            .where(holds.c.member_id == member_id, holds.c.state == HoldState.PENDING.value)
            .values(expire_time=holds.c.create_time)
        )
    engine.dispose()


def test_a_step_refused_after_the_pivot_waits_for_an_operator_and_the_terminal_is_told_not_to_charge_again(chain):
    member_id, coupon_code = _member_with_money(chain)
    request = _order(member_id, coupon_code)
    _gateway_dies_at(chain, "checkout-captured", lambda: _checkout(chain, request))
    _lapse_points_holds(chain, member_id)  # the gateway stayed down past the points hold's deadline
    chain.restart("gateway")
    for _ in range(2):  # every retry gets the same answer: never "refused" once the money moved
        with pytest.raises(grpc.RpcError) as raised:
            _checkout(chain, request)
        code, reason, _ = refusal_of(raised.value)
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "ORDER_NOT_FINISHED")
        assert _error_info(raised.value).metadata["cause"] == "HOLD_EXPIRED"
    order_id = _error_info(raised.value).metadata["order_id"]  # what the cashier quotes to an operator
    order = chain.gateway.GetOrder(pb.GetOrderRequest(order_id=order_id), metadata=_as_terminal(chain))
    assert order.state == pb.ORDER_STATE_NEEDS_ATTENTION
    assert [(s.step, s.reason, s.settled_by) for s in order.refused_steps] == [("points-capture", "HOLD_EXPIRED", "")]
    # 20.00 taken once; the other settle steps done (20 points earned); the lapsed hold
    # gave its 200 points back (the sweeper's, within a second or so): what an operator settles with the member
    _eventually(chain, member_id, (80_00, 0, 320, 0))
    assert points_spent(chain.processes["points"].database_url, member_id) == 0
    assert_books_balance(chain.processes["wallet"].database_url)

    # The store manager finds the order and settles it: it finishes without the step.
    manager_key = chain.issue_key(STORE, Role.STORE_MANAGER, "店长")
    as_manager = (("authorization", f"Bearer {manager_key}"),)
    waiting = chain.gateway.ListOrders(pb.ListOrdersRequest(state=pb.ORDER_STATE_NEEDS_ATTENTION), metadata=as_manager)
    assert order_id in [o.order_id for o in waiting.orders]
    settle = pb.SettleOrderRequest(request_id=rid(), order_id=order_id, reason="网关故障超时，积分由门店承担")
    assert refusal_of(_raises(chain.gateway.SettleOrder, settle, _as_terminal(chain)))[:2] == (
        grpc.StatusCode.PERMISSION_DENIED,
        "OUT_OF_SCOPE",
    )  # a terminal cannot waive anything
    no_reason = pb.SettleOrderRequest(request_id=rid(), order_id=order_id, reason=" ")
    assert refusal_of(_raises(chain.gateway.SettleOrder, no_reason, as_manager))[2] == {"reason": "REASON_REQUIRED"}
    settled = chain.gateway.SettleOrder(settle, metadata=as_manager).order
    assert settled.state == pb.ORDER_STATE_PAID
    assert (settled.receipt.stored_value_paid_fen, settled.receipt.points_used, settled.receipt.points_earned) == (
        20_00,
        200,
        20,
    )
    [step] = settled.refused_steps
    assert (step.step, step.reason, step.settle_reason) == ("points-capture", "HOLD_EXPIRED", settle.reason)
    assert step.settled_by.startswith("key:") and step.HasField("settle_time")
    assert chain.gateway.SettleOrder(settle, metadata=as_manager).order == settled  # settling again changes nothing
    answer = _checkout(chain, request)  # the terminal's retry now gets the receipt
    assert (answer.state, answer.receipt) == (pb.ORDER_STATE_PAID, settled.receipt)
    assert _balances(chain, member_id) == (80_00, 0, 320, 0)  # nothing more moved: the store bore the points
    assert points_spent(chain.processes["points"].database_url, member_id) == 0
    assert_books_balance(chain.processes["wallet"].database_url)
    # Returned later: the money and the 20 points it earned go back; the 200 points,
    # never taken, are not given back a second time.
    back = chain.gateway.Refund(
        pb.RefundRequest(request_id=rid(), order_id=order_id),
        metadata=_as_terminal(chain),
        timeout=FINAL_ANSWER_WITHIN_S,
    )
    assert (back.state, back.stored_value_fen, back.points_returned, back.points_clawed_back) == (
        pb.ORDER_STATE_REFUNDED,
        20_00,
        0,
        20,
    )
    assert _balances(chain, member_id) == (100_00, 0, 300, 0)
    assert_books_balance(chain.processes["wallet"].database_url)


def test_an_order_settled_without_its_coupon_redemption_gives_no_discount_back_to_the_campaign(chain):
    """The campaign's reservation lapsed while the gateway was down after the pivot: the
    redemption is refused and the campaign books nothing. Settled by a manager and later
    returned, the order gives the money and the points back, and asks nothing back of a
    campaign that never booked the discount."""
    from sqlalchemy import select, update

    from gateway.storage.tables import refunds
    from huiyuan.database.engines import make_sync_engine
    from huiyuan.runtime.holds import HoldState
    from services.campaign.storage.tables import reservations

    member_id, coupon_code = _member_with_money(chain)
    stats_before = _campaign_given(chain)
    request = _order(member_id, coupon_code)
    _gateway_dies_at(chain, "checkout-captured", lambda: _checkout(chain, request))
    engine = make_sync_engine(chain.processes["campaign"].database_url, "campaign")
    with engine.begin() as db:  # the gateway stayed down past the reservation's deadline
        db.execute(
            update(reservations)
            .where(reservations.c.member_id == member_id, reservations.c.state == HoldState.PENDING.value)
            .values(expire_time=reservations.c.create_time)
        )
    engine.dispose()
    chain.restart("gateway")
    error = _raises(chain.gateway.Checkout, request, _as_terminal(chain))
    assert refusal_of(error)[:2] == (grpc.StatusCode.UNAVAILABLE, "ORDER_NOT_FINISHED")
    order_id = _error_info(error).metadata["order_id"]
    order = chain.gateway.GetOrder(pb.GetOrderRequest(order_id=order_id), metadata=_as_terminal(chain))
    assert [(s.step, s.settled_by) for s in order.refused_steps] == [("redeem", "")]
    manager_key = chain.issue_key(STORE, Role.STORE_MANAGER, "店长")
    settle = pb.SettleOrderRequest(request_id=rid(), order_id=order_id, reason="券预占超时，优惠由门店承担")
    assert chain.gateway.SettleOrder(settle, metadata=(("authorization", f"Bearer {manager_key}"),)).order.state == (
        pb.ORDER_STATE_PAID
    )
    assert _campaign_given(chain) == stats_before  # the campaign never booked this order
    back = chain.gateway.Refund(
        pb.RefundRequest(request_id=rid(), order_id=order_id),
        metadata=_as_terminal(chain),
        timeout=FINAL_ANSWER_WITHIN_S,
    )
    assert (back.state, back.stored_value_fen, back.points_returned, back.points_clawed_back) == (
        pb.ORDER_STATE_REFUNDED,
        20_00,
        200,
        20,
    )
    assert _balances(chain, member_id) == (100_00, 0, 300, 0)
    assert _campaign_given(chain) == stats_before  # and gets nothing back: none was even asked of it
    engine = make_sync_engine(chain.processes["gateway"].database_url, "gateway")
    with engine.begin() as db:
        [planned] = db.execute(select(refunds.c.discounts).where(refunds.c.order_id == order_id)).scalars()
    engine.dispose()
    assert not campaign_pb2.ReturnDiscountsRequest.FromString(planned or b"").adjustments
    assert_books_balance(chain.processes["wallet"].database_url)


def _raises(call, request, metadata) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, metadata=metadata)
    return raised.value


def test_a_refund_step_refused_after_the_money_went_back_waits_for_an_operator_never_reported_as_refused(chain):
    """The points service's books disagree with the refund's plan (its record of what the
    order earned is gone, as only a bug or a hand-edited database could make it): the
    stored value has gone back, so the cashier must not hear "refused" and pay out again;
    the order waits for a manager, who settles the refund without the refused step."""
    from sqlalchemy import delete

    from huiyuan.database.engines import make_sync_engine
    from services.points.storage.tables import order_accruals

    member_id, coupon_code = _member_with_money(chain)
    checkout = _order(member_id, coupon_code)
    paid = _checkout(chain, checkout)
    order_id = paid.order_id
    engine = make_sync_engine(chain.processes["points"].database_url, "points")
    with engine.begin() as db:
        db.execute(delete(order_accruals).where(order_accruals.c.order_id == order_id))
    engine.dispose()
    request = pb.RefundRequest(request_id=rid(), order_id=order_id)
    for _ in range(2):  # the retry too: the refund waits for an operator, nothing moves twice
        error = _raises(chain.gateway.Refund, request, _as_terminal(chain))
        assert refusal_of(error)[:2] == (grpc.StatusCode.UNAVAILABLE, "REFUND_NOT_FINISHED")
        assert _error_info(error).metadata["order_id"] == order_id
        assert _balances(chain, member_id) == (100_00, 0, 120, 0)  # the 20.00 back once; points untouched
    assert_books_balance(chain.processes["wallet"].database_url)
    order = chain.gateway.GetOrder(pb.GetOrderRequest(order_id=order_id), metadata=_as_terminal(chain))
    assert order.state == pb.ORDER_STATE_NEEDS_ATTENTION
    [step] = order.refused_steps
    assert (step.step, step.reason, step.settled_by) == ("refund-points", "REFUND_EXCEEDS_ORDER", "")
    again = pb.RefundRequest(request_id=rid(), order_id=order_id)  # no other refund meanwhile
    assert refusal_of(_raises(chain.gateway.Refund, again, _as_terminal(chain)))[1] == "ORDER_NOT_REFUNDABLE"
    assert _checkout(chain, checkout) == paid  # the checkout's own retry still gets its receipt

    # The store manager settles: the refund finishes without its points step.
    manager_key = chain.issue_key(STORE, Role.STORE_MANAGER, "店长")
    settle = pb.SettleOrderRequest(request_id=rid(), order_id=order_id, reason="积分账不符，积分不退不扣，已告知会员")
    settled = chain.gateway.SettleOrder(settle, metadata=(("authorization", f"Bearer {manager_key}"),)).order
    assert settled.state == pb.ORDER_STATE_REFUNDED
    assert [(s.step, s.refund_id, s.settle_reason) for s in settled.refused_steps] == [
        ("refund-points", step.refund_id, settle.reason)
    ]
    back = chain.gateway.Refund(request, metadata=_as_terminal(chain))  # the terminal's retry: what moved
    assert (back.state, back.stored_value_fen, back.points_returned, back.points_clawed_back) == (
        pb.ORDER_STATE_REFUNDED,
        20_00,
        0,
        0,
    )
    assert chain.gateway.Refund(request, metadata=_as_terminal(chain)) == back
    assert _balances(chain, member_id) == (100_00, 0, 120, 0)  # nothing moved twice, no points moved
    assert_books_balance(chain.processes["wallet"].database_url)


def test_a_segment_issue_cut_short_by_a_crash_is_finished_by_the_retry_one_coupon_each(chain):
    """The campaign service dies after committing the first page of a segment's coupons,
    before it answers. The retry, after a member joined the segment (so the page falls
    differently and is a new request to the campaign), gives that member a coupon and
    nobody a second one."""
    hq_key = chain.issue_key("hq", Role.HQ_ADMIN, "segment")
    as_hq = (("authorization", f"Bearer {hq_key}"),)
    since = Timestamp()
    since.GetCurrentTime()
    first = [chain.member.register(name="群发").member_id for _ in range(3)]
    request = pb.IssueSegmentCouponsRequest(
        request_id=rid(), template_id=chain.template_id, segment=member_pb2.MemberFilter(registered_after=since)
    )
    chain.restart("campaign", faults="campaign.IssueCoupons:after")
    with pytest.raises(grpc.RpcError) as cut:
        chain.gateway.IssueSegmentCoupons(request, metadata=as_hq, timeout=FINAL_ANSWER_WITHIN_S)
    assert cut.value.code() == grpc.StatusCode.UNAVAILABLE
    assert chain.processes["campaign"].process.wait(20) == 137
    chain.restart("campaign")
    late = chain.member.register(name="后来").member_id
    deadline = time.monotonic() + FINAL_ANSWER_WITHIN_S
    while True:
        try:
            answer = chain.gateway.IssueSegmentCoupons(request, metadata=as_hq, timeout=FINAL_ANSWER_WITHIN_S)
            break
        except grpc.RpcError as error:  # the gateway has not yet reconnected to the restarted campaign
            assert error.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline, error
            time.sleep(0.3)
    assert (answer.member_count, answer.issued_count) == (4, 4)
    held = {
        m: [
            c.template_id
            for c in chain.campaign.ListMemberCoupons(campaign_pb2.ListMemberCouponsRequest(member_id=m)).coupons
        ]
        for m in [*first, late]
    }
    assert held == {m: [chain.template_id] for m in [*first, late]}
    assert chain.gateway.IssueSegmentCoupons(request, metadata=as_hq) == answer  # remembered: nothing more


def test_a_pos_top_up_whose_answer_was_lost_is_finished_by_its_request_id_and_never_charged_twice(
    chain, monkeypatch, capsys
):
    """The gateway dies after the top-up committed, before it answers. The pos command's
    own retries find no gateway, so it says the outcome is unknown and prints the request
    id; run again with it, after the restart, it prints the same top-up and the member was
    charged once. Run with that id and another amount, it is refused, not a second top-up."""
    monkeypatch.setenv("HUIYUAN_LANG", "en")  # what it prints in English (Chinese by default)
    from huiyuan_cli import pos

    member = chain.member.register(name="掉线充值")
    monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", f"127.0.0.1:{chain.processes['gateway'].port}")
    top_up = ["top-up", "--phone", member.phone, "--amount", "100", "--key", chain.key]
    chain.restart("gateway", faults="gateway.TopUp:after")
    assert pos.run(pos_args(*top_up)) == pos.OUTCOME_UNKNOWN
    assert chain.processes["gateway"].process.wait(20) == 137
    told = capsys.readouterr().err
    request_id = told.split("--request-id ")[1].split()[0]
    assert "not known" in told and len(request_id) == 36
    chain.restart("gateway")
    assert pos.run(pos_args(*top_up, "--request-id", request_id)) == 0
    first_line = capsys.readouterr().out.splitlines()[0]
    assert first_line.startswith("top-up ")
    assert pos.run(pos_args(*top_up, "--request-id", request_id)) == 0  # and again: the same answer
    assert capsys.readouterr().out.splitlines()[0] == first_line
    assert _balances(chain, member.member_id)[:2] == (100_00, 0)  # charged once
    with pytest.raises(grpc.RpcError) as reused:
        pos.run(pos_args(*top_up, "--amount", "200", "--request-id", request_id))
    assert _error_info(reused.value).reason == "REQUEST_ID_REUSED"
    assert _balances(chain, member.member_id)[:2] == (100_00, 0)


@pytest.mark.parametrize("command", ["top-up", "checkout"])
def test_a_pos_change_while_the_gateway_is_frozen_ends_in_seconds_and_its_request_id_does_it_once(
    chain, command, monkeypatch, capsys
):
    """The gateway's process stopped (SIGSTOP): it keeps its port and answers nothing.
    `pos top-up` and `pos checkout` (their member lookup first) end within about 3 s
    with exit 75 and the request id. Once the gateway runs again, the command run with
    that id does the change once; run again, it prints the same."""
    monkeypatch.setenv("HUIYUAN_LANG", "en")  # what it prints in English (Chinese by default)
    import signal

    from huiyuan_cli import pos

    member = chain.member.register(name="冻结网关")
    chain.wallet.TopUp(
        wallet_pb2.TopUpRequest(
            request_id=rid(),
            member_id=member.member_id,
            amount_fen=100_00,
            tender=wallet_pb2.TENDER_CASH,
            store_path=STORE,
            actor=ACTOR,
        )
    )
    words = {
        "top-up": ["top-up", "--amount", "50"],  # 30.00 - 3.00 (满30减3) from stored value:
        "checkout": ["checkout", "--line", "tea:tea:1:30", "--stored-value", "27"],
    }[command]
    card = chain.member.card.IssueCard(
        card_pb2.IssueCardRequest(
            request_id=rid(), member_id=member.member_id, card_type_id=card_type(chain.member), actor=ACTOR
        )
    ).card
    # a top-up finds the member by phone; a checkout that spends takes the member's card
    words += ["--phone", member.phone] if command == "top-up" else ["--card", card.card_number]
    words += ["--key", chain.key]
    gateway = chain.processes["gateway"]
    monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", f"127.0.0.1:{gateway.port}")
    os.kill(gateway.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        outcome = pos.run(pos_args(*words))
        took = time.monotonic() - started
    finally:
        os.kill(gateway.process.pid, signal.SIGCONT)
    assert (outcome, took < 4) == (pos.OUTCOME_UNKNOWN, True), took
    request_id = capsys.readouterr().err.split("--request-id ")[1].split()[0]
    assert pos.run(pos_args(*words, "--request-id", request_id)) == 0
    done = capsys.readouterr().out
    assert pos.run(pos_args(*words, "--request-id", request_id)) == 0
    assert capsys.readouterr().out == done
    assert _balances(chain, member.member_id)[:2] == ({"top-up": 150_00, "checkout": 73_00}[command], 0)
    assert_books_balance(chain.processes["wallet"].database_url)


def _counted_top_ups(chain: Chain, member_id: str) -> int:
    """The member's top-ups that count toward the tiers, read by counting one fen more."""
    return (
        chain.member.tier.RecordTopUp(
            tier_pb2.RecordTopUpRequest(
                request_id=rid(), member_id=member_id, top_up_id=rid(), store_path=STORE, amount_fen=1
            )
        ).top_up_total_fen
        - 1
    )


@pytest.mark.parametrize("point", ["member.RecordTopUp:before", "member.RecordTopUp:after"])
def test_a_top_up_whose_count_toward_the_tiers_was_cut_short_is_finished_by_the_retry_once(chain, point):
    """The money is loaded, then the member service dies counting it: the till hears
    UNAVAILABLE, and its retry gets the receipt, the member charged and counted once."""
    member = chain.member.register(name="充值计数")
    request = pb.TopUpRequest(
        request_id=rid(), member_id=member.member_id, amount_fen=300_00, tender=pb.TENDER_KIND_CASH
    )
    answer = _killed_during(chain, point, chain.gateway.TopUp, request)
    assert answer.principal_fen == 300_00
    assert chain.gateway.TopUp(request, metadata=_as_terminal(chain)) == answer
    assert _balances(chain, member.member_id)[:2] == (300_00, 0)
    assert _counted_top_ups(chain, member.member_id) == 300_00


def test_a_top_up_refund_whose_uncount_was_cut_short_is_finished_by_the_retry_once(chain):
    """The money goes back, then the member service dies before it stops counting the
    top-up: the manager's retry gets the wallet's answer, and the top-up counts no more."""
    manager = chain.issue_key(STORE, Role.STORE_MANAGER, "faults")
    member = chain.member.register(name="充值退款计数")
    loaded = chain.gateway.TopUp(
        pb.TopUpRequest(request_id=rid(), member_id=member.member_id, amount_fen=300_00, tender=pb.TENDER_KIND_CASH),
        metadata=_as_terminal(chain),
    )
    wallet = wallet_pb2_grpc.WalletServiceStub(chain.processes["gateway"].channel)
    request = wallet_pb2.RefundTopUpRequest(request_id=rid(), top_up_id=loaded.top_up_id, reason="顾客退款")
    as_manager = (("authorization", f"Bearer {manager}"),)
    answer = _killed_during(chain, "member.RecordTopUpRefund:after", wallet.RefundTopUp, request, as_manager)
    assert answer.principal_fen == 300_00 and wallet.RefundTopUp(request, metadata=as_manager) == answer
    assert _balances(chain, member.member_id)[:2] == (0, 0)
    assert _counted_top_ups(chain, member.member_id) == 0
    assert_books_balance(chain.processes["wallet"].database_url)


def test_a_company_batch_cut_short_by_a_crash_is_finished_by_its_retry_each_row_once(chain):
    """The wallet dies after committing the first part of a 600-row file (500 rows),
    before it answers. Those rows stay applied and recorded; the retry with the same
    request_id applies the other 100, reports the first 500 ALREADY_APPLIED, and is
    remembered: asked again, it answers the same and moves nothing."""
    members = [new_id("m") for _ in range(600)]
    request = wallet_pb2.BatchTopUpRequest(
        request_id=rid(),
        batch_id=f"corp-{rid()[:8]}",
        format=file_pb2.FILE_FORMAT_CSV,
        store_path=STORE,
        actor=ACTOR,
        content=("member_id,amount_fen\n" + "".join(f"{m},100\n" for m in members)).encode(),
    )
    report = _killed_during(chain, "wallet.batch-part-applied", chain.wallet.BatchTopUp, request)
    assert (report.applied_rows, report.rejected_rows, report.total_fen) == (100, 500, 100_00)
    assert [r.reject_reason for r in report.rows] == ["ALREADY_APPLIED"] * 500 + [""] * 100
    assert {
        chain.wallet.GetBalance(wallet_pb2.GetBalanceRequest(member_id=m)).balance.principal_fen for m in members
    } == {100}
    assert chain.wallet.BatchTopUp(request) == report
    assert_books_balance(chain.processes["wallet"].database_url)
