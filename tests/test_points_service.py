"""The points service through its generated stub, on SQLite and on PostgreSQL."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import update

from huiyuan.points.v1 import points_pb2 as pb
from huiyuan.points.v1 import points_pb2_grpc
from huiyuan.runtime.db import make_sync_engine
from huiyuan.runtime.ids import new_id
from services.points.storage import lots
from tests.support import refusal, refusal_of, rid

STORE = "hq/east/sh-001"
THURSDAY = datetime(2026, 11, 26, 7, tzinfo=timezone.utc)  # 15:00 in Shanghai
WEDNESDAY = THURSDAY - timedelta(days=1)


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@pytest.fixture(scope="module")
def points(points_service):
    stub = points_pb2_grpc.PointsServiceStub(points_service.channel)
    stub.url = points_service.settings.database_url
    for priority, rule in [(10, pb.Rule(name="消费1元积1分", org_path="hq", priority=10, points_per_yuan_bp=10_000)),
                           (20, pb.Rule(name="会员日双倍", org_path="hq", priority=20, multiplier_bp=20_000, weekdays=[3])),
                           (30, pb.Rule(name="金卡1.5倍", org_path="hq", priority=30, points_per_yuan_bp=15_000,
                                        tier_ids=["gold"], cap_per_order=1000))]:
        stub.CreateRule(pb.CreateRuleRequest(request_id=f"rule-{priority}", rule=rule))
    return stub


def grant(points, member, n):
    return points.Grant(pb.GrantRequest(request_id=rid(), member_id=member, points=n, source=pb.LOT_SOURCE_CAMPAIGN))


def hold(points, member, n, ttl_s=60):
    return points.Hold(pb.HoldRequest(request_id=rid(), member_id=member, points=n, ttl=Duration(seconds=ttl_s),
                                      store_path=STORE)).hold


def balance(points, member):
    return points.GetBalance(pb.GetBalanceRequest(member_id=member)).balance


def test_accrue_explains_every_line_and_an_order_earns_once(points):
    member = new_id("m")
    request = pb.AccrueRequest(request_id=rid(), member_id=member, order_id=f"o-{rid()[:8]}", store_path=STORE,
                               tier_id="silver", paid_time=ts(WEDNESDAY),
                               lines=[pb.OrderLine(line_id="1", category="food", paid_fen=128_99),
                                      pb.OrderLine(line_id="2", category="tea", paid_fen=50)])
    done = points.Accrue(request)
    assert done.points == 258 and [line.points for line in done.lines] == [257, 1]  # 0.50 yuan x 2 = 1
    assert "会员日双倍" in done.lines[0].explanation and done.balance.available_points == 258
    assert points.Accrue(request) == done  # a replay
    again = pb.AccrueRequest()
    again.CopyFrom(request)
    again.request_id = rid()
    assert refusal(points.Accrue, again)[:2] == (grpc.StatusCode.ALREADY_EXISTS, "ORDER_ALREADY_ACCRUED")
    preview = points.PreviewAccrual(pb.PreviewAccrualRequest(store_path=STORE, tier_id="gold", paid_time=ts(THURSDAY),
                                                             lines=[pb.OrderLine(line_id="1", paid_fen=1000_00)]))
    assert preview.points == 1000  # 1500 capped at 1000 per order by the gold rule


def test_rules_with_a_taken_priority_or_no_sense_are_refused(points):
    taken = pb.CreateRuleRequest(request_id=rid(), rule=pb.Rule(name="又一个", org_path="hq", priority=10,
                                                                 points_per_yuan_bp=5_000))
    assert refusal(points.CreateRule, taken)[:2] == (grpc.StatusCode.ALREADY_EXISTS, "RULE_PRIORITY_TAKEN")
    nonsense = pb.CreateRuleRequest(request_id=rid(), rule=pb.Rule(
        name="x", org_path="hq", priority=99, points_per_yuan_bp=10_000, multiplier_bp=20_000, weekdays=[8],
        start_time=ts(THURSDAY), end_time=ts(WEDNESDAY)))
    assert refusal(points.CreateRule, nonsense)[2] == {
        "rule.points_per_yuan_bp": "RULE_KIND_INVALID", "rule.weekdays": "WEEKDAY_INVALID",
        "rule.end_time": "WINDOW_REVERSED"}
    assert [r.priority for r in points.ListRules(pb.ListRulesRequest(org_path="hq/east")).rules] == [30, 20, 10]


def test_offset_hold_capture_release_and_quote(points):
    member = new_id("m")
    grant(points, member, 500)
    quote = points.QuoteOffset(pb.QuoteOffsetRequest(member_id=member, store_path=STORE, payable_fen=800))
    assert (quote.max_points, quote.max_offset_fen, quote.points_per_yuan) == (400, 400, 100)  # at most half
    points.SetOffsetPolicy(pb.SetOffsetPolicyRequest(request_id=rid(), policy=pb.OffsetPolicy(
        org_path="hq/east", points_per_yuan=10, max_share_bp=10_000)))
    quote = points.QuoteOffset(pb.QuoteOffsetRequest(member_id=member, store_path=STORE, payable_fen=100_00))
    assert (quote.max_points, quote.max_offset_fen) == (500, 50_00)
    first = hold(points, member, 300)
    assert balance(points, member).available_points == 200 and balance(points, member).held_points == 300
    assert refusal(hold, points, member, 201)[1] == "INSUFFICIENT_POINTS"
    captured = points.Capture(pb.CaptureRequest(request_id=rid(), hold_id=first.hold_id, points=250))
    assert captured.hold.state == pb.HOLD_STATE_CAPTURED and captured.balance.available_points == 250
    assert refusal(points.Capture, pb.CaptureRequest(request_id=rid(), hold_id=first.hold_id, points=1))[1] == "HOLD_ALREADY_CAPTURED"
    second = hold(points, member, 100)
    too_much = pb.CaptureRequest(request_id=rid(), hold_id=second.hold_id, points=101)
    assert refusal(points.Capture, too_much)[2] == {"points": "CAPTURE_EXCEEDS_HOLD"}
    points.Release(pb.ReleaseRequest(request_id=rid(), hold_id=second.hold_id))
    after = balance(points, member)
    assert (after.available_points, after.held_points) == (250, 0)
    kinds = [m.kind for m in points.ListHistory(pb.ListHistoryRequest(member_id=member)).movements]
    assert kinds == [pb.MOVEMENT_KIND_SPEND, pb.MOVEMENT_KIND_GRANT]


def test_a_lapsed_hold_gives_its_points_back(points):
    member = new_id("m")
    grant(points, member, 100)
    lapsing = hold(points, member, 100, ttl_s=1)
    time.sleep(1.2)
    assert refusal(points.Capture, pb.CaptureRequest(request_id=rid(), hold_id=lapsing.hold_id, points=100))[1] == "HOLD_EXPIRED"
    deadline = time.monotonic() + 5
    while balance(points, member).held_points and time.monotonic() < deadline:
        time.sleep(0.2)
    assert balance(points, member).available_points == 100


def test_expiry_takes_lots_past_their_date_once(points):
    member = new_id("m")
    grant(points, member, 70)
    grant(points, member, 30)
    engine = make_sync_engine(points.url, "points")
    with engine.begin() as db:  # the first lot's date has come
        first = db.execute(lots.select().where(lots.c.member_id == member).order_by(lots.c.lot_id)).first()
        db.execute(update(lots).where(lots.c.lot_id == first.lot_id).values(
            expire_time=datetime.now(timezone.utc) - timedelta(seconds=1)))
    engine.dispose()
    request = pb.RunExpiryRequest(request_id=rid())
    run = points.RunExpiry(request)
    assert run.expired_lots >= 1 and run.expired_points >= 70
    assert points.RunExpiry(request) == run  # a replay reports the same run
    assert points.RunExpiry(pb.RunExpiryRequest(request_id=rid())).expired_lots == 0  # nothing twice
    assert balance(points, member).available_points == 30
    assert points.ListHistory(pb.ListHistoryRequest(member_id=member)).movements[0].delta_points == -70


def test_fifty_concurrent_holds_never_spend_a_point_twice(points):
    member = new_id("m")
    grant(points, member, 10 * 30)

    def attempt(_):
        try:
            hold(points, member, 30)
            return "ok"
        except grpc.RpcError as error:
            return refusal_of(error, "points.huiyuan")[1]

    with ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(attempt, range(50)))
    assert outcomes.count("ok") == 10 and outcomes.count("INSUFFICIENT_POINTS") == 40
    after = balance(points, member)
    assert (after.available_points, after.held_points) == (0, 300)


def test_bad_input_names_every_bad_field(points):
    bad = pb.HoldRequest(request_id="", member_id="x", points=-1, ttl=Duration(seconds=0), store_path="hq")
    assert refusal(points.Hold, bad)[2] == {"request_id": "REQUEST_ID_INVALID", "member_id": "MEMBER_ID_INVALID",
                                            "points": "POINTS_INVALID", "ttl": "TTL_OUT_OF_RANGE",
                                            "store_path": "STORE_PATH_INVALID"}
    no_lines = pb.AccrueRequest(request_id=rid(), member_id=new_id("m"), order_id="o", store_path=STORE)
    assert refusal(points.Accrue, no_lines)[2] == {"lines": "LINES_REQUIRED"}
    purchase = pb.GrantRequest(request_id=rid(), member_id=new_id("m"), points=5, source=pb.LOT_SOURCE_PURCHASE)
    assert refusal(points.Grant, purchase)[2] == {"source": "SOURCE_INVALID"}
