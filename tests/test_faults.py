"""Crash tests: the gateway dies (as SIGKILL would) at a step of the checkout saga.
After a restart every saga ends paid or compensated, nothing moves twice, no hold is
left behind, and the terminal's retry gets the final answer."""

import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway import auth, bootstrap
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.gateway.v1 import gateway_pb2_grpc
from huiyuan.member.v1 import member_pb2
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.runtime import migrate
from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from tests.conftest import per_service
from tests.support import ACTOR, STORE, Stubs, ensure_org, new_phone, rid
from tests.test_runtime import _free_port

ROOT = Path(__file__).resolve().parent.parent


class GatewayProcess:
    def __init__(self, url: str, addresses: dict[str, str], faults: str = ""):
        self.port = _free_port()
        env = {**os.environ, "HUIYUAN_DATABASE_URL": url, "HUIYUAN_GATEWAY_PORT": str(self.port),
               "HUIYUAN_LOG_LEVEL": "ERROR", "HUIYUAN_FAULTS": faults, "HUIYUAN_SAGA_RECOVER_AFTER_S": "1",
               **{f"HUIYUAN_{name.upper()}_ADDR": address for name, address in addresses.items()}}
        self.process = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=ROOT, env=env)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                if health_pb2_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    break
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline and self.process.poll() is None, "the gateway never became SERVING"
            time.sleep(0.2)
        self.stub = gateway_pb2_grpc.GatewayServiceStub(self.channel)

    def stop(self):
        self.channel.close()
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(20)


@pytest.fixture(scope="module")
def world(database_url, member_service, wallet_service, points_service, campaign_service):
    from gateway.app import SPEC

    url = per_service(database_url, "gateway")
    migrate.upgrade(SPEC.migrations_dir, url, "gateway")
    ensure_org(Stubs(member_service.channel))
    _, key = bootstrap.issue_key(url, f"{STORE}/pos-1", auth.Role.TERMINAL, "fault test")
    points_pb2_grpc.PointsServiceStub(points_service.channel).CreateRule(points_pb2.CreateRuleRequest(
        request_id="fault-rule", rule=points_pb2.Rule(name="1元1分", org_path="hq", priority=1, points_per_yuan_bp=10_000)))
    addresses = {name: s.app.address for name, s in [("member", member_service), ("wallet", wallet_service),
                                                     ("points", points_service), ("campaign", campaign_service)]}
    return url, addresses, key, member_service, wallet_service, points_service


def _member_with_money(world) -> str:
    _, _, _, member_service, wallet_service, points_service = world
    member = Stubs(member_service.channel).member.RegisterMember(member_pb2.RegisterMemberRequest(
        request_id=rid(), channel=member_pb2.REGISTRATION_CHANNEL_STORE, actor=ACTOR,
        member=member_pb2.Member(name="故障测试", phone=new_phone()))).member
    wallet_pb2_grpc.WalletServiceStub(wallet_service.channel).TopUp(wallet_pb2.TopUpRequest(
        request_id=rid(), member_id=member.member_id, amount_fen=100_00, tender=wallet_pb2.TENDER_CASH,
        store_path=STORE, actor=ACTOR))
    points_pb2_grpc.PointsServiceStub(points_service.channel).Grant(points_pb2.GrantRequest(
        request_id=rid(), member_id=member.member_id, points=300, source=points_pb2.LOT_SOURCE_SIGN_UP))
    return member.member_id


def _balances(world, member_id):
    _, _, _, _, wallet_service, points_service = world
    stored = wallet_pb2_grpc.WalletServiceStub(wallet_service.channel).GetBalance(
        wallet_pb2.GetBalanceRequest(member_id=member_id)).balance
    points = points_pb2_grpc.PointsServiceStub(points_service.channel).GetBalance(
        points_pb2.GetBalanceRequest(member_id=member_id)).balance
    return stored.available_fen, stored.held_fen, points.available_points, points.held_points


def _order(member_id):  # 30.00 - 200 points (2.00) = 28.00 from stored value
    return pb.CheckoutRequest(
        request_id=rid(), member_id=member_id, points_to_use=200,
        lines=[pb.CheckoutLine(line_id="1", sku="tea", category="tea", quantity=1, unit_price_fen=30_00)],
        tenders=[pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=28_00)])


@pytest.mark.parametrize("point", ["checkout-reserved", "checkout-captured"])
def test_a_retry_after_the_gateway_died_gets_the_one_final_answer(world, point):
    url, addresses, key, *_ = world
    member_id = _member_with_money(world)
    request = _order(member_id)
    dying = GatewayProcess(url, addresses, faults=point)
    with pytest.raises(grpc.RpcError) as caught:
        dying.stub.Checkout(request, metadata=(("authorization", f"ApiKey {key}"),), timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE and dying.process.wait(10) == 137
    dying.stop()
    restarted = GatewayProcess(url, addresses)
    try:
        paid = restarted.stub.Checkout(request, metadata=(("authorization", f"ApiKey {key}"),), timeout=30)
        assert paid.state == pb.ORDER_STATE_PAID and paid.receipt.stored_value_paid_fen == 28_00
        assert restarted.stub.Checkout(request, metadata=(("authorization", f"ApiKey {key}"),), timeout=30) == paid
    finally:
        restarted.stop()
    assert _balances(world, member_id) == (72_00, 0, 100 + 28, 0)  # charged once, nothing left held


def test_the_recovery_loop_finishes_a_saga_nobody_retries(world):
    url, addresses, key, *_ = world
    member_id = _member_with_money(world)
    dying = GatewayProcess(url, addresses, faults="checkout-reserved")
    with pytest.raises(grpc.RpcError):
        dying.stub.Checkout(_order(member_id), metadata=(("authorization", f"ApiKey {key}"),), timeout=30)
    dying.stop()
    assert _balances(world, member_id)[1] == 28_00  # the hold the dead saga left
    restarted = GatewayProcess(url, addresses)
    try:
        deadline = time.monotonic() + 30
        while _balances(world, member_id) != (72_00, 0, 128, 0) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        restarted.stop()
    assert _balances(world, member_id) == (72_00, 0, 128, 0)
