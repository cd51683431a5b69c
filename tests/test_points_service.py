"""The points service through its generated stub, on SQLite and on PostgreSQL."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select, update

from huiyuan.database.engines import make_sync_engine
from huiyuan.points.v1 import points_pb2 as pb, points_pb2_grpc
from huiyuan.runtime.ids import new_id
from services.points.storage.tables import gift_stock_changes, lots
from tests.invariants import assert_points_held
from tests.support import refusal, refusal_of, rid

STORE = "hq/east/sh-001"
THURSDAY = datetime(2026, 11, 26, 7, tzinfo=UTC)  # 15:00 in Shanghai
WEDNESDAY = THURSDAY - timedelta(days=1)


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@pytest.fixture(scope="module")
def points(points_service):
    stub = points_pb2_grpc.PointsServiceStub(points_service.channel)
    stub.url = points_service.settings.database_url
    for priority, rule in [
        (10, pb.Rule(name="消费1元积1分", org_path="hq", priority=10, points_per_yuan_bp=10_000)),
        (20, pb.Rule(name="会员日双倍", org_path="hq", priority=20, multiplier_bp=20_000, weekdays=[3])),
        (
            30,
            pb.Rule(
                name="金卡1.5倍",
                org_path="hq",
                priority=30,
                points_per_yuan_bp=15_000,
                tier_ids=["gold"],
                cap_per_order=1000,
            ),
        ),
    ]:
        stub.CreateRule(pb.CreateRuleRequest(request_id=f"rule-{priority}", rule=rule))
    return stub


def grant(points, member, n):
    return points.Grant(pb.GrantRequest(request_id=rid(), member_id=member, points=n, source=pb.LOT_SOURCE_CAMPAIGN))


def hold(points, member, n, ttl_s=60):
    return points.Hold(
        pb.HoldRequest(request_id=rid(), member_id=member, points=n, ttl=Duration(seconds=ttl_s), store_path=STORE)
    ).hold


def balance(points, member):
    return points.GetBalance(pb.GetBalanceRequest(member_id=member)).balance


def test_accrue_explains_every_line_and_an_order_earns_once(points):
    member = new_id("m")
    request = pb.AccrueRequest(
        request_id=rid(),
        member_id=member,
        order_id=f"o-{rid()[:8]}",
        store_path=STORE,
        tier_id="silver",
        paid_time=ts(WEDNESDAY),
        lines=[
            pb.OrderLine(line_id="1", category="food", paid_fen=128_99),
            pb.OrderLine(line_id="2", category="tea", paid_fen=50),
        ],
    )
    done = points.Accrue(request)
    assert done.points == 258 and [line.points for line in done.lines] == [257, 1]  # 0.50 yuan x 2 = 1
    assert "会员日双倍" in done.lines[0].explanation and done.balance.available_points == 258
    assert points.Accrue(request) == done  # a replay
    again = pb.AccrueRequest()
    again.CopyFrom(request)
    again.request_id = rid()
    assert refusal(points.Accrue, again)[:2] == (grpc.StatusCode.ALREADY_EXISTS, "ORDER_ALREADY_ACCRUED")
    preview = points.PreviewAccrual(
        pb.PreviewAccrualRequest(
            store_path=STORE,
            tier_id="gold",
            paid_time=ts(THURSDAY),
            lines=[pb.OrderLine(line_id="1", paid_fen=1000_00)],
        )
    )
    assert preview.points == 1000  # 1500 capped at 1000 per order by the gold rule


def test_a_members_tier_multiplier_scales_what_the_rules_give(points):
    member = new_id("m")
    done = points.Accrue(
        pb.AccrueRequest(
            request_id=rid(),
            member_id=member,
            order_id=f"o-{rid()[:8]}",
            store_path=STORE,
            tier_id="silver",
            paid_time=ts(THURSDAY),
            tier_multiplier_bp=12_000,
            lines=[pb.OrderLine(line_id="1", category="food", paid_fen=100_00)],
        )
    )
    assert done.points == 120 and done.lines[0].explanation.endswith("x 1.2 (会员等级)")
    preview = points.PreviewAccrual(
        pb.PreviewAccrualRequest(
            store_path=STORE,
            tier_id="silver",
            paid_time=ts(WEDNESDAY),
            tier_multiplier_bp=12_000,
            lines=[pb.OrderLine(line_id="1", paid_fen=100_00)],
        )
    )
    assert preview.points == 240  # member day's x2 as well
    bad = pb.PreviewAccrualRequest(store_path=STORE, tier_multiplier_bp=100_001, lines=[pb.OrderLine(line_id="1")])
    assert refusal(points.PreviewAccrual, bad)[2] == {"tier_multiplier_bp": "MULTIPLIER_INVALID"}


def test_rules_with_a_taken_priority_or_no_sense_are_refused(points):
    taken = pb.CreateRuleRequest(
        request_id=rid(), rule=pb.Rule(name="又一个", org_path="hq", priority=10, points_per_yuan_bp=5_000)
    )
    assert refusal(points.CreateRule, taken)[:2] == (grpc.StatusCode.ALREADY_EXISTS, "RULE_PRIORITY_TAKEN")
    nonsense = pb.CreateRuleRequest(
        request_id=rid(),
        rule=pb.Rule(
            name="x",
            org_path="hq",
            priority=99,
            points_per_yuan_bp=10_000,
            multiplier_bp=20_000,
            weekdays=[8],
            start_time=ts(THURSDAY),
            end_time=ts(WEDNESDAY),
        ),
    )
    assert refusal(points.CreateRule, nonsense)[2] == {
        "rule.points_per_yuan_bp": "RULE_KIND_INVALID",
        "rule.weekdays": "WEEKDAY_INVALID",
        "rule.end_time": "WINDOW_REVERSED",
    }
    assert [r.priority for r in points.ListRules(pb.ListRulesRequest(org_path="hq/east")).rules] == [30, 20, 10]


def test_a_rule_ended_early_earns_nothing_from_its_end_and_what_it_gave_stands(points):
    north = {"operator_id": "north-ops", "org_path": "hq/north"}
    made = points.CreateRule(
        pb.CreateRuleRequest(
            request_id=rid(), rule=pb.Rule(name="华北三倍", org_path="hq/north", priority=40, points_per_yuan_bp=30_000)
        )
    ).rule
    store, order = "hq/north/bj-001", [pb.OrderLine(line_id="1", category="food", paid_fen=100_00)]
    member = new_id("m")
    earned = points.Accrue(
        pb.AccrueRequest(request_id=rid(), member_id=member, order_id=f"o-{rid()[:8]}", store_path=store, lines=order)
    )
    assert earned.lines[0].rule_id == made.rule_id

    # Ended at noon the day after tomorrow, Shanghai time: before it, the rule earns; after, the chain's 1 a yuan.
    noon = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0) + timedelta(days=2)
    end = pb.EndRuleRequest(request_id=rid(), rule_id=made.rule_id, end_time=ts(noon), actor=north)
    ended = points.EndRule(end).rule
    assert ended.end_time == ts(noon) and ended.ended_by == "north-ops" and ended.points_per_yuan_bp == 30_000
    assert points.EndRule(end).rule == ended  # a replay
    assert points.GetRule(pb.GetRuleRequest(rule_id=made.rule_id)).rule == ended

    def earns(at):
        return points.PreviewAccrual(pb.PreviewAccrualRequest(store_path=store, paid_time=ts(at), lines=order)).points

    assert earns(noon - timedelta(hours=1)) == 3 * earns(noon + timedelta(hours=1))
    later = pb.EndRuleRequest(
        request_id=rid(), rule_id=made.rule_id, end_time=ts(noon + timedelta(days=1)), actor=north
    )
    assert refusal(points.EndRule, later)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "END_TIME_NOT_EARLIER")
    elsewhere = pb.EndRuleRequest(
        request_id=rid(), rule_id=made.rule_id, actor={"operator_id": "s", "org_path": "hq/south"}
    )
    assert refusal(points.EndRule, elsewhere)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")

    now = points.EndRule(pb.EndRuleRequest(request_id=rid(), rule_id=made.rule_id, actor=north)).rule  # and now at once
    assert now.end_time.ToDatetime(UTC) <= datetime.now(UTC)
    assert refusal(points.EndRule, pb.EndRuleRequest(request_id=rid(), rule_id=made.rule_id, actor=north))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "RULE_ENDED",
    )
    listed = [r.rule_id for r in points.ListRules(pb.ListRulesRequest(org_path=store)).rules]
    assert made.rule_id not in listed and 10 in [r.priority for r in points.ListRules(pb.ListRulesRequest()).rules]
    assert made.rule_id in [
        r.rule_id for r in points.ListRules(pb.ListRulesRequest(org_path=store, show_ended=True)).rules
    ]
    assert balance(points, member).available_points == earned.points  # what it gave stands

    past = pb.EndRuleRequest(request_id=rid(), rule_id=made.rule_id, end_time=ts(datetime(2026, 1, 1, tzinfo=UTC)))
    assert refusal(points.EndRule, past)[2] == {"end_time": "END_TIME_PAST", "actor": "ACTOR_REQUIRED"}
    unknown = pb.EndRuleRequest(request_id=rid(), rule_id=new_id("pr"), actor=north)
    assert refusal(points.EndRule, unknown)[:2] == (grpc.StatusCode.NOT_FOUND, "RULE_NOT_FOUND")
    assert refusal(points.GetRule, pb.GetRuleRequest(rule_id="x"))[2] == {"rule_id": "RULE_ID_INVALID"}

    starts = noon + timedelta(days=7)  # a rule ended before it starts never applies: its window is empty
    future = points.CreateRule(
        pb.CreateRuleRequest(
            request_id=rid(),
            rule=pb.Rule(
                name="下周活动", org_path="hq/north", priority=41, points_per_yuan_bp=20_000, start_time=ts(starts)
            ),
        )
    ).rule
    cancelled = points.EndRule(pb.EndRuleRequest(request_id=rid(), rule_id=future.rule_id, actor=north)).rule
    assert cancelled.end_time == cancelled.start_time == ts(starts)
    assert earns(starts + timedelta(hours=1)) == earns(noon + timedelta(hours=1))


def test_offset_hold_capture_release_and_quote(points):
    member = new_id("m")
    grant(points, member, 500)
    quote = points.QuoteOffset(pb.QuoteOffsetRequest(member_id=member, store_path=STORE, payable_fen=800))
    assert (quote.max_points, quote.max_offset_fen, quote.points_per_yuan) == (400, 400, 100)  # at most half
    points.SetOffsetPolicy(
        pb.SetOffsetPolicyRequest(
            request_id=rid(), policy=pb.OffsetPolicy(org_path="hq/east", points_per_yuan=10, max_share_bp=10_000)
        )
    )
    quote = points.QuoteOffset(pb.QuoteOffsetRequest(member_id=member, store_path=STORE, payable_fen=100_00))
    assert (quote.max_points, quote.max_offset_fen) == (500, 50_00)
    first = hold(points, member, 300)
    assert balance(points, member).available_points == 200 and balance(points, member).held_points == 300
    assert refusal(hold, points, member, 201)[1] == "INSUFFICIENT_POINTS"
    captured = points.Capture(pb.CaptureRequest(request_id=rid(), hold_id=first.hold_id, points=250))
    assert captured.hold.state == pb.HOLD_STATE_CAPTURED and captured.balance.available_points == 250
    assert (
        refusal(points.Capture, pb.CaptureRequest(request_id=rid(), hold_id=first.hold_id, points=1))[1]
        == "HOLD_ALREADY_CAPTURED"
    )
    second = hold(points, member, 100)
    too_much = pb.CaptureRequest(request_id=rid(), hold_id=second.hold_id, points=101)
    assert refusal(points.Capture, too_much)[2] == {"points": "CAPTURE_EXCEEDS_HOLD"}
    unknown = pb.ReleaseRequest(request_id=rid(), hold_id="ph_" + "0" * 26)
    assert refusal(points.Release, unknown)[:2] == (grpc.StatusCode.NOT_FOUND, "HOLD_NOT_FOUND")
    points.Release(pb.ReleaseRequest(request_id=rid(), hold_id=second.hold_id))
    after = balance(points, member)
    assert (after.available_points, after.held_points) == (250, 0)
    kinds = [m.kind for m in points.ListHistory(pb.ListHistoryRequest(member_id=member)).movements]
    assert kinds == [pb.MOVEMENT_KIND_SPEND, pb.MOVEMENT_KIND_GRANT]
    assert_points_held(points.url)


def test_a_lapsed_hold_gives_its_points_back(points):
    member = new_id("m")
    grant(points, member, 100)
    lapsing = hold(points, member, 100, ttl_s=1)
    time.sleep(1.2)
    assert (
        refusal(points.Capture, pb.CaptureRequest(request_id=rid(), hold_id=lapsing.hold_id, points=100))[1]
        == "HOLD_EXPIRED"
    )
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
        db.execute(
            update(lots)
            .where(lots.c.lot_id == first.lot_id)
            .values(expire_time=datetime.now(UTC) - timedelta(seconds=1))
        )
    engine.dispose()
    request = pb.RunExpiryRequest(request_id=rid())
    run = points.RunExpiry(request)
    assert run.expired_lots >= 1 and run.expired_points >= 70
    assert points.RunExpiry(request) == run  # a replay reports the same run
    assert points.RunExpiry(pb.RunExpiryRequest(request_id=rid())).expired_lots == 0  # nothing twice
    assert balance(points, member).available_points == 30
    assert points.ListHistory(pb.ListHistoryRequest(member_id=member)).movements[0].delta_points == -70


def test_points_that_expire_before_they_can_be_spent_count_nowhere(points):
    """A lot still in its return window (pending) whose date comes first will never be
    spent: once its date has passed it is neither pending nor available, though the
    expiry job has not reached it yet."""
    member = new_id("m")
    grant(points, member, 40)
    grant(points, member, 60)
    now = datetime.now(UTC)
    engine = make_sync_engine(points.url, "points")
    with engine.begin() as db:
        first = db.execute(lots.select().where(lots.c.member_id == member).order_by(lots.c.lot_id)).first()
        db.execute(
            update(lots)
            .where(lots.c.lot_id == first.lot_id)
            .values(available_time=now + timedelta(days=10), expire_time=now + timedelta(days=5))
        )
    assert (balance(points, member).available_points, balance(points, member).pending_points) == (60, 40)
    with engine.begin() as db:
        db.execute(update(lots).where(lots.c.lot_id == first.lot_id).values(expire_time=now - timedelta(seconds=1)))
    engine.dispose()
    after = balance(points, member)
    assert (after.available_points, after.pending_points, after.expiring_soon_points) == (60, 0, 0)


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
    assert_points_held(points.url)


def test_a_new_members_first_grants_at_once_all_land(points):
    """Sign-up points and a campaign's gift arriving together for a member the service
    has never seen: each makes the member's row if it is missing. Before, the second
    failed on the row's key (INTERNAL on PostgreSQL)."""
    for _ in range(3):
        member = new_id("m")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: grant(points, member, 5), range(8)))
        assert balance(points, member).available_points == 40


def test_bad_input_names_every_bad_field(points):
    bad = pb.HoldRequest(request_id="", member_id="x", points=-1, ttl=Duration(seconds=0), store_path="hq")
    assert refusal(points.Hold, bad)[2] == {
        "request_id": "REQUEST_ID_INVALID",
        "member_id": "MEMBER_ID_INVALID",
        "points": "POINTS_INVALID",
        "ttl": "TTL_OUT_OF_RANGE",
        "store_path": "STORE_PATH_INVALID",
    }
    no_lines = pb.AccrueRequest(request_id=rid(), member_id=new_id("m"), order_id="o", store_path=STORE)
    assert refusal(points.Accrue, no_lines)[2] == {"lines": "LINES_REQUIRED"}
    purchase = pb.GrantRequest(request_id=rid(), member_id=new_id("m"), points=5, source=pb.LOT_SOURCE_PURCHASE)
    assert refusal(points.Grant, purchase)[2] == {"source": "SOURCE_INVALID"}


def _accrue(points, member, order_id, fen):
    return points.Accrue(
        pb.AccrueRequest(
            request_id=rid(),
            member_id=member,
            order_id=order_id,
            store_path=STORE,
            tier_id="silver",
            paid_time=ts(THURSDAY),
            lines=[pb.OrderLine(line_id="1", category="food", paid_fen=fen)],
        )
    )


def test_a_refund_takes_back_earned_points_in_proportion_and_a_shortfall_becomes_debt(points):
    member = new_id("m")
    _accrue(points, member, f"o1-{member}", 100_00)  # 100 points
    back = [
        points.Reverse(
            pb.ReverseRequest(request_id=rid(), member_id=member, order_id=f"o1-{member}", refunded_paid_fen=fen)
        )
        for fen in (33_33, 33_33, 33_34)
    ]
    assert [r.clawed_back_points for r in back] == [33, 33, 34] and back[-1].balance.available_points == 0
    more = pb.ReverseRequest(request_id=rid(), member_id=member, order_id=f"o1-{member}", refunded_paid_fen=1)
    assert refusal(points.Reverse, more)[1] == "REFUND_EXCEEDS_ORDER"
    _accrue(points, member, f"o2-{member}", 50_00)  # 50 points, then spent
    spend = hold(points, member, 50)
    points.Capture(pb.CaptureRequest(request_id=rid(), hold_id=spend.hold_id, points=50))
    owed = points.Reverse(
        pb.ReverseRequest(request_id=rid(), member_id=member, order_id=f"o2-{member}", refunded_paid_fen=50_00)
    )
    assert (owed.clawed_back_points, owed.new_debt_points, owed.balance.debt_points) == (50, 50, 50)
    paid_back = _accrue(points, member, f"o3-{member}", 80_00)
    assert paid_back.debt_paid_points == 50 and paid_back.balance.available_points == 30
    assert paid_back.balance.debt_points == 0


def test_points_spent_on_a_refunded_order_return_to_their_lots(points):
    member = new_id("m")
    grant(points, member, 100)
    spend = points.Hold(
        pb.HoldRequest(
            request_id=rid(),
            member_id=member,
            points=60,
            ttl=Duration(seconds=60),
            store_path=STORE,
            order_id=f"paid-{member}",
        )
    ).hold
    points.Capture(pb.CaptureRequest(request_id=rid(), hold_id=spend.hold_id, points=60))
    back = points.Reverse(
        pb.ReverseRequest(request_id=rid(), member_id=member, order_id=f"paid-{member}", returned_points=60)
    )
    assert (back.returned_points, back.balance.available_points) == (60, 100)
    unknown = pb.ReverseRequest(request_id=rid(), member_id=member, order_id="never", refunded_paid_fen=1)
    assert refusal(points.Reverse, unknown)[:2] == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")


def test_partial_returns_from_two_lots_never_overfill_one(points):
    member, order_id = new_id("m"), f"two-lots-{rid()[:8]}"
    grant(points, member, 40)
    grant(points, member, 20)
    spend = points.Hold(
        pb.HoldRequest(
            request_id=rid(), member_id=member, points=60, ttl=Duration(seconds=60), store_path=STORE, order_id=order_id
        )
    ).hold
    points.Capture(pb.CaptureRequest(request_id=rid(), hold_id=spend.hold_id, points=60))
    for returned in (30, 30):
        back = points.Reverse(
            pb.ReverseRequest(request_id=rid(), member_id=member, order_id=order_id, returned_points=returned)
        )
    assert back.balance.available_points == 60
    more = pb.ReverseRequest(request_id=rid(), member_id=member, order_id=order_id, returned_points=1)
    assert refusal(points.Reverse, more)[1] == "REFUND_EXCEEDS_ORDER"


def test_adjustments_need_a_reason_and_a_back_office(points):
    member = new_id("m")
    store_actor = {"operator_id": "c-1", "org_path": f"{STORE}/pos-1"}
    denied = pb.AdjustRequest(request_id=rid(), member_id=member, delta_points=10, reason="x", actor=store_actor)
    assert refusal(points.Adjust, denied)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "ADJUSTMENT_NOT_ALLOWED")
    region = {"operator_id": "east-ops", "org_path": "hq/east"}
    done = points.Adjust(
        pb.AdjustRequest(request_id=rid(), member_id=member, delta_points=40, reason="投诉补偿", actor=region)
    )
    assert done.balance.available_points == 40
    too_much = pb.AdjustRequest(request_id=rid(), member_id=member, delta_points=-41, reason="纠错", actor=region)
    assert refusal(points.Adjust, too_much)[1] == "INSUFFICIENT_POINTS"
    assert refusal(points.Adjust, pb.AdjustRequest(request_id=rid(), member_id=member, delta_points=5, actor=region))[
        2
    ] == {"reason": "REASON_REQUIRED"}


def test_the_last_ten_gifts_are_never_oversold(points):
    gift = points.CreateGift(
        pb.CreateGiftRequest(
            request_id=rid(), gift=pb.Gift(name="保温杯", points=100, stock=10, per_member_limit=1, org_path="hq")
        )
    ).gift
    members = [new_id("m") for _ in range(50)]
    for member in members:
        grant(points, member, 100)

    def attempt(member):
        try:
            points.RedeemGift(
                pb.RedeemGiftRequest(request_id=rid(), member_id=member, gift_id=gift.gift_id, store_path=STORE)
            )
            return "ok"
        except grpc.RpcError as error:
            return refusal_of(error, "points.huiyuan")[1]

    with ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(attempt, members))
    assert outcomes.count("ok") == 10 and outcomes.count("OUT_OF_STOCK") == 40
    assert [g.stock for g in points.ListGifts(pb.ListGiftsRequest()).gifts if g.gift_id == gift.gift_id] == [0]
    winners = [m for m, outcome in zip(members, outcomes) if outcome == "ok"]
    assert all(balance(points, m).available_points == 0 for m in winners)
    losers = [m for m, outcome in zip(members, outcomes) if outcome != "ok"]
    assert all(balance(points, m).available_points == 100 for m in losers)  # a refusal spends nothing


def test_per_member_limits_and_scope(points):
    member = new_id("m")
    grant(points, member, 1000)
    south_only = points.CreateGift(
        pb.CreateGiftRequest(
            request_id=rid(),
            gift=pb.Gift(name="华南限定", points=10, stock=100, per_member_limit=2, org_path="hq/south"),
        )
    ).gift
    elsewhere = pb.RedeemGiftRequest(request_id=rid(), member_id=member, gift_id=south_only.gift_id, store_path=STORE)
    assert refusal(points.RedeemGift, elsewhere)[1] == "GIFT_NOT_IN_SCOPE"
    gz = "hq/south/gz-001"
    points.RedeemGift(
        pb.RedeemGiftRequest(request_id=rid(), member_id=member, gift_id=south_only.gift_id, store_path=gz, quantity=2)
    )
    third = pb.RedeemGiftRequest(request_id=rid(), member_id=member, gift_id=south_only.gift_id, store_path=gz)
    assert refusal(points.RedeemGift, third)[1] == "REDEMPTION_LIMIT_REACHED"


def test_a_back_office_restocks_and_writes_off_gifts_of_its_scope_with_a_reason_on_record(points):
    west = {"operator_id": "west-ops", "org_path": "hq/west"}
    cup = points.CreateGift(
        pb.CreateGiftRequest(
            request_id=rid(), gift=pb.Gift(name="西区马克杯", points=50, stock=2, org_path="hq/west/cd-001")
        )
    ).gift
    restock = pb.AdjustGiftStockRequest(
        request_id=rid(), gift_id=cup.gift_id, delta=10, reason="到货 10 件", actor=west
    )
    assert points.AdjustGiftStock(restock).gift.stock == 12
    assert points.AdjustGiftStock(restock).gift.stock == 12  # a replay adds nothing
    broken = pb.AdjustGiftStockRequest(request_id=rid(), gift_id=cup.gift_id, delta=-3, reason="破损 3 件", actor=west)
    assert points.AdjustGiftStock(broken).gift.stock == 9
    too_many = pb.AdjustGiftStockRequest(request_id=rid(), gift_id=cup.gift_id, delta=-10, reason="盘亏", actor=west)
    assert refusal(points.AdjustGiftStock, too_many)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "STOCK_SHORT")
    assert points.GetGift(pb.GetGiftRequest(gift_id=cup.gift_id)).gift.stock == 9  # the refusal changed nothing
    elsewhere = pb.AdjustGiftStockRequest(
        request_id=rid(), gift_id=cup.gift_id, delta=1, reason="x", actor={"operator_id": "s", "org_path": "hq/south"}
    )
    assert refusal(points.AdjustGiftStock, elsewhere)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    assert refusal(points.AdjustGiftStock, pb.AdjustGiftStockRequest(request_id=rid(), gift_id="cup"))[2] == {
        "gift_id": "GIFT_ID_INVALID",
        "delta": "DELTA_INVALID",
        "reason": "REASON_REQUIRED",
        "actor": "ACTOR_REQUIRED",
    }
    assert refusal(points.GetGift, pb.GetGiftRequest(gift_id=new_id("g")))[:2] == (
        grpc.StatusCode.NOT_FOUND,
        "GIFT_NOT_FOUND",
    )
    engine = make_sync_engine(points.url, "points")
    with engine.connect() as db:
        recorded = db.execute(
            select(
                gift_stock_changes.c.delta,
                gift_stock_changes.c.stock_after,
                gift_stock_changes.c.reason,
                gift_stock_changes.c.operator_id,
            )
            .where(gift_stock_changes.c.gift_id == cup.gift_id)
            .order_by(gift_stock_changes.c.create_time)
        ).all()
    engine.dispose()
    assert [tuple(r) for r in recorded] == [(10, 12, "到货 10 件", "west-ops"), (-3, 9, "破损 3 件", "west-ops")]
    region_view = [g.gift_id for g in points.ListGifts(pb.ListGiftsRequest(org_path="hq/west")).gifts]
    assert cup.gift_id in region_view  # a store's gift, seen from its region
    assert cup.gift_id not in [
        g.gift_id for g in points.ListGifts(pb.ListGiftsRequest(org_path="hq/west/cd-002")).gifts
    ]


def test_members_with_points_about_to_expire_are_listed_for_reminders(points):
    member, westerner = new_id("m"), new_id("m")
    region = f"hq/r{rid()[:8]}"  # no other test's points were earned there
    grant(points, member, 25)
    points.Grant(
        pb.GrantRequest(
            request_id=rid(), member_id=member, points=7, source=pb.LOT_SOURCE_CAMPAIGN, store_path=f"{region}/s-1"
        )
    )
    points.Grant(
        pb.GrantRequest(
            request_id=rid(), member_id=westerner, points=9, source=pb.LOT_SOURCE_CAMPAIGN, store_path=f"{region}/s-2"
        )
    )
    engine = make_sync_engine(points.url, "points")
    with engine.begin() as db:
        db.execute(
            update(lots)
            .where(lots.c.member_id.in_([member, westerner]))
            .values(expire_time=datetime.now(UTC) + timedelta(days=3))
        )
    engine.dispose()

    def expiring(org_path=""):
        found, token = {}, ""
        while True:
            page = points.ListExpiringMembers(
                pb.ListExpiringMembersRequest(
                    within=Duration(seconds=7 * 86400), page_size=2, page_token=token, org_path=org_path
                )
            )
            found.update({m.member_id: m.points for m in page.members})
            if not (token := page.next_page_token):
                break
        return found

    everyone = expiring()
    assert (everyone[member], everyone[westerner]) == (32, 9)
    assert expiring(region) == {member: 7, westerner: 9}  # the points the region's stores gave
    assert expiring(f"{region}/s-2") == {westerner: 9}
    first = points.ListExpiringMembers(
        pb.ListExpiringMembersRequest(within=Duration(seconds=7 * 86400), page_size=1, org_path=region)
    )
    assert refusal(
        points.ListExpiringMembers,
        pb.ListExpiringMembersRequest(within=Duration(seconds=7 * 86400), page_token=first.next_page_token),
    )[2] == {"page_token": "PAGE_TOKEN_MISMATCH"}
    assert refusal(
        points.ListExpiringMembers, pb.ListExpiringMembersRequest(within=Duration(seconds=60), org_path="HQ/West")
    )[2] == {"within": "WINDOW_INVALID", "org_path": "ORG_PATH_INVALID"}
