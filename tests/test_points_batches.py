"""Accruals, holds and captures that arrive together run as one batch
(database/batching.py): each after the ones before it, each with its own outcome, stored
for its replay. Driven through the service's own batch functions, on its database, so
that what goes together is certain; concurrency through gRPC is test_points_service's."""

from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from sqlalchemy.exc import IntegrityError

from huiyuan.database.idempotency import Idempotency
from huiyuan.points.v1 import points_pb2 as pb
from huiyuan.runtime.errors import DomainError
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.serving import serving_rpc
from services.points.domain import rules as domain
from services.points.servicers.points import PointsServicer
from services.points.storage import tables as storage
from services.points.use_cases import accrual, spending
from tests.invariants import assert_points_held
from tests.support import rid
from tests.test_points_service import STORE, THURSDAY, _accrue, balance, grant, hold, points, ts  # noqa: F401 - the fixture


@pytest.fixture(scope="module")
def servicer(points_service):
    ctx = points_service.app.context
    return PointsServicer(ctx, Idempotency(ctx.database, storage.idempotency_keys, "points"))


def _hold_item(member_id, n, request_id=None):
    request = pb.HoldRequest(
        request_id=request_id or rid(),
        member_id=member_id,
        points=n,
        ttl=Duration(seconds=60),
        store_path=STORE,
        order_id="o-1",
    )
    return request, spending.HoldAsk(new_id("ph"), member_id, n, timedelta(seconds=60), "o-1", STORE)


async def _serving(rpc, coroutine):
    """The batch function, as the server runs it: within the RPC its idempotency keys record."""
    serving_rpc.set(f"/huiyuan.points.v1.PointsService/{rpc}")
    return await coroutine


def _capture_item(hold_id, n, request_id=None):
    return pb.CaptureRequest(request_id=request_id or rid(), hold_id=hold_id, points=n), spending.CaptureAsk(hold_id, n)


def _accrue_item(member_id, order_id, fen, request_id=None):
    request = pb.AccrueRequest(
        request_id=request_id or rid(),
        member_id=member_id,
        order_id=order_id,
        store_path=STORE,
        tier_id="silver",
        paid_time=ts(THURSDAY),
        lines=[pb.OrderLine(line_id="1", category="food", paid_fen=fen)],
    )
    order = domain.Order(STORE, "silver", THURSDAY, [domain.Line("1", "food", fen)])
    return request, accrual.AccrueAsk(member_id, order_id, order)


def _reason(outcome) -> str:
    assert isinstance(outcome, DomainError), outcome
    return outcome.reason


def test_holds_placed_together_each_take_what_the_ones_before_left(points, points_service, servicer):
    member, other, stranger = new_id("m"), new_id("m"), new_id("m")
    grant(points, member, 100)
    grant(points, other, 30)
    earlier = _hold_item(member, 10)
    first_alone = points_service.run(_serving("Hold", servicer._place_holds([earlier])))[0]
    refused = _hold_item(member, 60)
    items = [
        _hold_item(member, 40),
        _hold_item(other, 30),
        refused,
        _hold_item(stranger, 1),
        _hold_item(member, 50),
        earlier,
        (pb.HoldRequest(request_id=earlier[0].request_id, member_id=member, points=20), earlier[1]),
    ]
    outcomes = points_service.run(_serving("Hold", servicer._place_holds(items)))
    assert [o.hold.points for o in outcomes[:2]] == [40, 30]
    assert _reason(outcomes[2]) == "INSUFFICIENT_POINTS"  # 100 - 10 - 40 leaves 50: not for 60, but for the next
    assert _reason(outcomes[3]) == "INSUFFICIENT_POINTS"  # a member the service has never seen has none
    assert outcomes[4].hold.points == 50
    assert outcomes[5] == first_alone  # a replay answers as the first did and holds nothing
    assert _reason(outcomes[6]) == "REQUEST_ID_REUSED"
    assert (balance(points, member).held_points, balance(points, other).available_points) == (100, 0)
    grant(points, member, 100)
    assert (
        _reason(points_service.run(_serving("Hold", servicer._place_holds([refused])))[0]) == "INSUFFICIENT_POINTS"
    )  # stays refused
    assert balance(points, member).held_points == 100
    assert_points_held(points.url)


def test_captures_together_keep_what_they_spend_and_answer_each_balance(points, points_service, servicer):
    member, other = new_id("m"), new_id("m")
    grant(points, member, 100)
    grant(points, other, 50)
    a, b, c = (hold(points, member, n) for n in (30, 20, 10))
    d = hold(points, other, 50)
    twice = _capture_item(a.hold_id, 30)
    items = [
        twice,
        _capture_item(d.hold_id, 20),
        _capture_item(a.hold_id, 5),
        _capture_item(b.hold_id, 15),
        _capture_item("ph_nope", 1),
        _capture_item(c.hold_id, 11),
        twice,
    ]
    outcomes = points_service.run(_serving("Capture", servicer._capture_holds(items)))
    assert (outcomes[0].balance.available_points, outcomes[0].balance.held_points) == (40, 30)
    # 30 given back to the lot the hold had emptied
    assert (outcomes[1].hold.captured_points, outcomes[1].balance.available_points) == (20, 30)
    assert _reason(outcomes[2]) == "HOLD_ALREADY_CAPTURED"
    # the member's second capture in the batch: its balance as it left it (5 given back)
    assert (outcomes[3].balance.available_points, outcomes[3].balance.held_points) == (45, 10)
    assert _reason(outcomes[4]) == "HOLD_NOT_FOUND"
    assert [v.reason for v in outcomes[5].violations] == ["CAPTURE_EXCEEDS_HOLD"]
    assert outcomes[6] == outcomes[0]
    after = balance(points, member)
    assert (after.available_points, after.held_points) == (45, 10)
    assert balance(points, other).available_points == 30
    assert_points_held(points.url)


def test_accruals_together_each_earn_once_and_pay_debt_first(points, points_service, servicer):
    member, other, owing = new_id("m"), new_id("m"), new_id("m")
    _accrue(points, owing, f"o1-{owing}", 50_00)  # 50 points, spent, then the order refunded: 50 owed
    spend = hold(points, owing, 50)
    points.Capture(pb.CaptureRequest(request_id=rid(), hold_id=spend.hold_id, points=50))
    points.Reverse(
        pb.ReverseRequest(request_id=rid(), member_id=owing, order_id=f"o1-{owing}", refunded_paid_fen=50_00)
    )
    done_before = f"o0-{member}"
    _accrue(points, member, done_before, 10_00)
    first = _accrue_item(member, f"o2-{member}", 100_00)
    items = [
        first,
        _accrue_item(other, f"o2-{member}", 30_00),
        _accrue_item(owing, f"o3-{owing}", 80_00),
        _accrue_item(other, done_before, 5_00),
        _accrue_item(member, f"o4-{member}", 20_00),
        first,
    ]
    outcomes = points_service.run(_serving("Accrue", servicer._accrue_batch(items)))
    assert (outcomes[0].points, outcomes[0].balance.available_points) == (100, 110)
    assert _reason(outcomes[1]) == "ORDER_ALREADY_ACCRUED"  # the same order, later in the batch
    assert (outcomes[2].debt_paid_points, outcomes[2].balance.available_points, outcomes[2].balance.debt_points) == (
        50,
        30,
        0,
    )
    assert _reason(outcomes[3]) == "ORDER_ALREADY_ACCRUED"
    assert outcomes[4].balance.available_points == 130  # the member's second order, after the first
    assert outcomes[5] == outcomes[0]
    assert (balance(points, member).available_points, balance(points, other).available_points) == (130, 0)
    assert_points_held(points.url)


def test_a_batch_that_cannot_commit_runs_each_call_alone(points, points_service, servicer):
    member = new_id("m")
    grant(points, member, 100)
    # Two asks for one hold id: the batch's insert fails on the key and rolls back
    # whole; alone, the first is placed and the second fails by itself.
    first, second = _hold_item(member, 10), _hold_item(member, 20)
    items = [first, (second[0], spending.HoldAsk(first[1].hold_id, member, 20, timedelta(seconds=60), "o-1", STORE))]
    outcomes = points_service.run(_serving("Hold", servicer._place_holds(items)))
    assert outcomes[0].hold.points == 10
    assert isinstance(outcomes[1], IntegrityError)
    assert balance(points, member).held_points == 10
    assert_points_held(points.url)
