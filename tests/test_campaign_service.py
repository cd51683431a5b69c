"""The campaign service through its generated stub, on SQLite and on PostgreSQL."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from huiyuan.campaign.v1 import campaign_pb2 as pb, campaign_pb2_grpc
from huiyuan.runtime.ids import new_id
from services.campaign.storage import templates
from tests.support import refusal, refusal_of, rid

STORE = "hq/east/sh-001"
WEDNESDAY = datetime(2026, 11, 25, 7, tzinfo=UTC)  # 15:00 in Shanghai


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@pytest.fixture(scope="module")
def campaign(campaign_service):
    return campaign_pb2_grpc.CampaignServiceStub(campaign_service.channel)


def create(campaign, **fields):
    return campaign.CreateCampaign(pb.CreateCampaignRequest(request_id=rid(), campaign=pb.Campaign(**fields))).campaign


def activate(campaign, campaign_id):
    return campaign.SetCampaignStatus(
        pb.SetCampaignStatusRequest(request_id=rid(), campaign_id=campaign_id, status=pb.CAMPAIGN_STATUS_ACTIVE)
    ).campaign


def order(store=STORE, at=WEDNESDAY, codes=()):
    return pb.QuoteRequest(
        member=pb.MemberContext(member_id="m_1", tier_id="silver", tier_price_rate_bp=9_500),
        store_path=store,
        at_time=ts(at),
        coupon_codes=list(codes),
        lines=[
            pb.OrderLine(line_id="1", sku="tea", category="tea", quantity=2, unit_price_fen=50_00),
            pb.OrderLine(line_id="2", sku="cup", category="ware", quantity=1, unit_price_fen=33_33),
        ],
    )


def test_a_campaign_prices_orders_only_while_active_and_simulate_tries_a_draft(campaign):
    offer = create(
        campaign,
        name="华东 满100减20",
        kind=pb.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
        org_path="hq/east",
        steps=[pb.ThresholdStep(threshold_fen=100_00, reduction_fen=20_00)],
    )
    assert offer.status == pb.CAMPAIGN_STATUS_DRAFT
    before = campaign.Quote(order())
    assert [a.explanation for a in before.adjustments] == ["会员价"] and before.payable_fen == 126_66
    simulated = campaign.Simulate(pb.SimulateRequest(campaign_id=offer.campaign_id, order=order())).quote
    assert simulated.payable_fen == 106_66 and simulated.adjustments[1].campaign_id == offer.campaign_id
    activate(campaign, offer.campaign_id)
    live = campaign.Quote(order())
    assert live.payable_fen == 106_66 and sum(s.amount_fen for s in live.adjustments[1].line_shares) == 20_00
    assert campaign.Quote(order(store="hq/south/gz-001")).payable_fen == 126_66  # outside its scope
    listed = campaign.ListCampaigns(
        pb.ListCampaignsRequest(org_path="hq/east/sh-001", status=pb.CAMPAIGN_STATUS_ACTIVE)
    )
    assert offer.campaign_id in [c.campaign_id for c in listed.campaigns]
    campaign.SetCampaignStatus(
        pb.SetCampaignStatusRequest(request_id=rid(), campaign_id=offer.campaign_id, status=pb.CAMPAIGN_STATUS_ENDED)
    )
    again = pb.SetCampaignStatusRequest(
        request_id=rid(), campaign_id=offer.campaign_id, status=pb.CAMPAIGN_STATUS_ACTIVE
    )
    assert refusal(campaign.SetCampaignStatus, again)[1] == "STATUS_TRANSITION_INVALID"
    assert campaign.Quote(order()).payable_fen == 126_66


def test_a_campaign_rescheduled_prices_within_its_new_schedule_and_an_ended_one_stays(campaign):
    offer = create(
        campaign,
        name="饼干半价",
        kind=pb.CAMPAIGN_KIND_CATEGORY_DISCOUNT,
        org_path=STORE,
        rate_bp=5_000,
        categories=["biscuit"],
        start_time=ts(WEDNESDAY + timedelta(days=30)),
    )
    activate(campaign, offer.campaign_id)
    biscuits = pb.QuoteRequest(
        store_path=STORE,
        at_time=ts(WEDNESDAY),
        lines=[pb.OrderLine(line_id="1", sku="biscuit-1", category="biscuit", quantity=1, unit_price_fen=10_00)],
    )

    def discount():
        quoted = campaign.Quote(biscuits)
        return sum(a.amount_fen for a in quoted.adjustments if a.campaign_id == offer.campaign_id)

    assert discount() == 0  # not started yet
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)  # not over: it may move again
    moved = campaign.RescheduleCampaign(
        pb.RescheduleCampaignRequest(
            request_id=rid(),
            campaign_id=offer.campaign_id,
            start_time=ts(WEDNESDAY - timedelta(days=1)),
            end_time=ts(until),
        )
    ).campaign
    assert (moved.start_time, moved.end_time, moved.status) == (
        ts(WEDNESDAY - timedelta(days=1)),
        ts(until),
        pb.CAMPAIGN_STATUS_ACTIVE,
    )
    assert moved.rate_bp == 5_000 and list(moved.categories) == ["biscuit"]  # its terms stay
    assert discount() == 5_00
    reversed_ = pb.RescheduleCampaignRequest(
        request_id=rid(), campaign_id=offer.campaign_id, start_time=ts(WEDNESDAY), end_time=ts(WEDNESDAY)
    )
    assert refusal(campaign.RescheduleCampaign, reversed_)[2] == {"end_time": "SCHEDULE_REVERSED"}
    unbounded = campaign.RescheduleCampaign(
        pb.RescheduleCampaignRequest(request_id=rid(), campaign_id=offer.campaign_id)
    )
    assert not unbounded.campaign.HasField("start_time") and not unbounded.campaign.HasField("end_time")
    assert discount() == 5_00
    campaign.SetCampaignStatus(
        pb.SetCampaignStatusRequest(request_id=rid(), campaign_id=offer.campaign_id, status=pb.CAMPAIGN_STATUS_ENDED)
    )
    late = pb.RescheduleCampaignRequest(request_id=rid(), campaign_id=offer.campaign_id, end_time=ts(WEDNESDAY))
    assert refusal(campaign.RescheduleCampaign, late)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "CAMPAIGN_ENDED")
    missing = pb.RescheduleCampaignRequest(request_id=rid(), campaign_id="c_" + "0" * 26)
    assert refusal(campaign.RescheduleCampaign, missing)[:2] == (grpc.StatusCode.NOT_FOUND, "CAMPAIGN_NOT_FOUND")


def test_a_campaign_whose_end_time_has_passed_is_over_and_not_reopened_by_a_reschedule(campaign):
    """Active, not set ENDED, but its end_time passed: RescheduleCampaign is refused
    CAMPAIGN_ENDED (a new end would bring a finished campaign back), and it stays as it was."""
    over = create(
        campaign,
        name="上周特价",
        kind=pb.CAMPAIGN_KIND_CATEGORY_DISCOUNT,
        org_path=STORE,
        rate_bp=8_000,
        categories=["biscuit"],
        start_time=ts(datetime.now(UTC) - timedelta(days=10)),
        end_time=ts(datetime.now(UTC) - timedelta(days=3)),
    )
    activate(campaign, over.campaign_id)
    for end in (None, datetime.now(UTC) + timedelta(days=7)):
        again = pb.RescheduleCampaignRequest(request_id=rid(), campaign_id=over.campaign_id)
        if end is not None:
            again.end_time.CopyFrom(ts(end))
        code, reason, _ = refusal(campaign.RescheduleCampaign, again)
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CAMPAIGN_ENDED")
    kept = campaign.GetCampaign(pb.GetCampaignRequest(campaign_id=over.campaign_id)).campaign
    assert kept.end_time == over.end_time and kept.status == pb.CAMPAIGN_STATUS_ACTIVE


def test_unknown_coupons_are_named_and_the_order_is_priced_without_them(campaign):
    quoted = campaign.Quote(order(codes=["NOPE-1"]))
    assert [(r.coupon_code, r.reason) for r in quoted.rejected_coupons] == [("NOPE-1", "COUPON_NOT_FOUND")]
    assert quoted.payable_fen == campaign.Quote(order()).payable_fen


def test_campaigns_that_make_no_sense_are_refused(campaign):
    bad = pb.CreateCampaignRequest(
        request_id=rid(),
        campaign=pb.Campaign(
            name="",
            kind=pb.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
            org_path="hq",
            steps=[pb.ThresholdStep(threshold_fen=50_00, reduction_fen=80_00)],
            start_time=ts(WEDNESDAY),
            end_time=ts(WEDNESDAY - timedelta(days=1)),
        ),
    )
    assert refusal(campaign.CreateCampaign, bad)[2] == {
        "campaign.name": "NAME_REQUIRED",
        "campaign.steps[0].reduction_fen": "THRESHOLD_BELOW_REDUCTION",
        "campaign.end_time": "SCHEDULE_REVERSED",
    }
    over = pb.CreateCampaignRequest(
        request_id=rid(),
        campaign=pb.Campaign(
            name="120%", kind=pb.CAMPAIGN_KIND_MEMBER_DAY, org_path="hq", rate_bp=12_000, weekdays=[3]
        ),
    )
    assert refusal(campaign.CreateCampaign, over)[2] == {"campaign.rate_bp": "RATE_INVALID"}
    create(
        campaign,
        name="满减A",
        kind=pb.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
        org_path="hq",
        exclusive_group="g1",
        steps=[pb.ThresholdStep(threshold_fen=100_00, reduction_fen=10_00)],
    )
    mixed = pb.CreateCampaignRequest(
        request_id=rid(),
        campaign=pb.Campaign(
            name="会员日B",
            kind=pb.CAMPAIGN_KIND_MEMBER_DAY,
            org_path="hq",
            rate_bp=9_000,
            weekdays=[3],
            exclusive_group="g1",
        ),
    )
    assert refusal(campaign.CreateCampaign, mixed)[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "EXCLUSIVE_GROUP_CONFLICT",
    )
    no_lines = pb.QuoteRequest(store_path=STORE)
    assert refusal(campaign.Quote, no_lines)[2] == {"lines": "LINES_REQUIRED"}
    assert refusal(campaign.GetCampaign, pb.GetCampaignRequest(campaign_id="c_nope"))[1] == "CAMPAIGN_NOT_FOUND"


def template(campaign, **fields):
    fields.setdefault("valid_days", 30)
    return campaign.CreateCouponTemplate(
        pb.CreateCouponTemplateRequest(request_id=rid(), template=pb.CouponTemplate(org_path="hq", **fields))
    ).template


def issue(campaign, template_id, *members):
    return campaign.IssueCoupons(
        pb.IssueCouponsRequest(request_id=rid(), template_id=template_id, member_ids=list(members))
    ).coupons


def test_coupons_from_quote_to_redemption_with_stats(campaign):
    backing = create(campaign, name="券活动", kind=pb.CAMPAIGN_KIND_COUPONS, org_path="hq", budget_fen=100_00)
    ten_off = template(
        campaign,
        name="满50减10",
        kind=pb.COUPON_KIND_FIXED,
        amount_fen=10_00,
        threshold_fen=50_00,
        campaign_id=backing.campaign_id,
    )
    (mine,) = issue(campaign, ten_off.template_id, "m_" + "1" * 26)
    (other,) = issue(campaign, ten_off.template_id, "m_" + "2" * 26)
    # priced now: a coupon is valid from its issue (a fixed day in the past would find it not yet valid)
    request = order(at=datetime.now(UTC), codes=[mine.coupon_code, other.coupon_code])
    request.member.member_id = "m_" + "1" * 26
    quoted = campaign.Quote(request)
    assert [(a.coupon_code, a.amount_fen, a.explanation) for a in quoted.adjustments if a.coupon_code] == [
        (mine.coupon_code, 10_00, f"满50减10 {mine.coupon_code}")
    ]  # the receipt names the coupon
    assert [(r.coupon_code, r.reason) for r in quoted.rejected_coupons] == [(other.coupon_code, "COUPON_NOT_OWNED")]
    reserve = pb.ReserveCouponsRequest(
        request_id=rid(),
        member_id=request.member.member_id,
        coupon_codes=[mine.coupon_code],
        order_id="o-1",
        store_path=STORE,
        ttl={"seconds": 60},
        adjustments=[a for a in quoted.adjustments if a.coupon_code],
    )
    reservation = campaign.ReserveCoupons(reserve)
    assert {r.coupon_code: r.reason for r in campaign.Quote(request).rejected_coupons} == {
        mine.coupon_code: "COUPON_RESERVED",
        other.coupon_code: "COUPON_NOT_OWNED",
    }
    campaign.RedeemCoupons(pb.RedeemCouponsRequest(request_id=rid(), reservation_id=reservation.reservation_id))
    listed = campaign.ListMemberCoupons(pb.ListMemberCouponsRequest(member_id=request.member.member_id))
    assert [c.state for c in listed.coupons] == [pb.COUPON_STATE_REDEEMED]
    stats = campaign.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=backing.campaign_id))
    assert (stats.orders, stats.discount_fen, stats.budget_left_fen, stats.coupons_issued, stats.coupons_redeemed) == (
        1,
        10_00,
        90_00,
        2,
        1,
    )
    again = pb.ReserveCouponsRequest(
        request_id=rid(),
        member_id=request.member.member_id,
        coupon_codes=[mine.coupon_code],
        order_id="o-2",
        store_path=STORE,
        ttl={"seconds": 60},
    )
    assert refusal(campaign.ReserveCoupons, again)[1] == "COUPON_ALREADY_USED"
    release = pb.ReleaseCouponsRequest(request_id=rid(), reservation_id=reservation.reservation_id)
    assert refusal(campaign.ReleaseCoupons, release)[1] == "RESERVATION_REDEEMED"


def test_returned_goods_give_their_discount_back_to_the_budget_never_more(campaign):
    backing = create(campaign, name="退货预算", kind=pb.CAMPAIGN_KIND_COUPONS, org_path="hq", budget_fen=100_00)
    eight = template(
        campaign, name="8元券", kind=pb.COUPON_KIND_FIXED, amount_fen=8_00, campaign_id=backing.campaign_id
    )
    member = "m_" + "4" * 26
    (coupon,) = issue(campaign, eight.template_id, member)
    used = pb.Adjustment(coupon_code=coupon.coupon_code, amount_fen=8_00)
    before_redeem = pb.ReturnDiscountsRequest(request_id=rid(), order_id="o-ret", adjustments=[used])
    assert refusal(campaign.ReturnDiscounts, before_redeem)[:2] == (grpc.StatusCode.NOT_FOUND, "RESERVATION_NOT_FOUND")
    held = campaign.ReserveCoupons(
        pb.ReserveCouponsRequest(
            request_id=rid(),
            member_id=member,
            coupon_codes=[coupon.coupon_code],
            order_id="o-ret",
            store_path=STORE,
            ttl={"seconds": 60},
            adjustments=[used],
        )
    )
    before_redeem.request_id = rid()
    assert refusal(campaign.ReturnDiscounts, before_redeem)[1] == "RESERVATION_NOT_REDEEMED"
    campaign.RedeemCoupons(pb.RedeemCouponsRequest(request_id=rid(), reservation_id=held.reservation_id))

    def stats():
        s = campaign.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=backing.campaign_id))
        return s.orders, s.discount_fen, s.budget_left_fen, s.coupons_redeemed

    assert stats() == (1, 8_00, 92_00, 1)
    part = pb.ReturnDiscountsRequest(
        request_id=rid(), order_id="o-ret", adjustments=[pb.Adjustment(coupon_code=coupon.coupon_code, amount_fen=3_00)]
    )
    back = campaign.ReturnDiscounts(part)
    assert [(r.campaign_id, r.amount_fen) for r in back.returns] == [(backing.campaign_id, 3_00)]
    assert campaign.ReturnDiscounts(part) == back and stats() == (1, 5_00, 95_00, 1)  # a replay moves nothing
    too_much = pb.ReturnDiscountsRequest(
        request_id=rid(), order_id="o-ret", adjustments=[pb.Adjustment(coupon_code=coupon.coupon_code, amount_fen=5_01)]
    )
    assert refusal(campaign.ReturnDiscounts, too_much)[1] == "RETURN_EXCEEDS_DISCOUNT"
    assert stats() == (1, 5_00, 95_00, 1)  # the refusal wrote nothing
    rest = pb.ReturnDiscountsRequest(
        request_id=rid(), order_id="o-ret", adjustments=[pb.Adjustment(coupon_code=coupon.coupon_code, amount_fen=5_00)]
    )
    campaign.ReturnDiscounts(rest)
    assert stats() == (0, 0, 100_00, 1)  # all given back: no longer an order; the coupon stays used
    listed = campaign.ListMemberCoupons(pb.ListMemberCouponsRequest(member_id=member)).coupons
    assert [c.state for c in listed] == [pb.COUPON_STATE_REDEEMED]
    bad = pb.ReturnDiscountsRequest(
        request_id="", adjustments=[pb.Adjustment(campaign_id="c", coupon_code="X", amount_fen=0)]
    )
    assert refusal(campaign.ReturnDiscounts, bad)[2] == {
        "request_id": "REQUEST_ID_INVALID",
        "order_id": "ORDER_ID_REQUIRED",
        "adjustments[0].amount_fen": "AMOUNT_INVALID",
        "adjustments[0]": "ADJUSTMENT_INVALID",
    }


def test_an_order_returned_in_full_no_longer_counts_against_the_member_s_limit(campaign):
    once = create(
        campaign,
        name="每人限一次 会员日",
        kind=pb.CAMPAIGN_KIND_MEMBER_DAY,
        org_path="hq",
        rate_bp=9_000,
        weekdays=[1, 2, 3, 4, 5, 6, 7],
        per_member_limit=1,
        per_store_daily_limit=1,
        budget_fen=100_00,
    )
    activate(campaign, once.campaign_id)
    member, order_id = "m_" + "5" * 26, rid()
    discount = [pb.Adjustment(campaign_id=once.campaign_id, amount_fen=10_00)]

    def reserve():
        return campaign.ReserveCoupons(
            pb.ReserveCouponsRequest(
                request_id=rid(),
                member_id=member,
                order_id=order_id,
                store_path=STORE,
                ttl={"seconds": 60},
                adjustments=discount,
            )
        )

    campaign.RedeemCoupons(pb.RedeemCouponsRequest(request_id=rid(), reservation_id=reserve().reservation_id))
    with pytest.raises(grpc.RpcError) as caught:
        reserve()
    assert refusal_of(caught.value, "campaign.huiyuan")[1] == "MEMBER_LIMIT_REACHED"

    def give_back(fen):
        campaign.ReturnDiscounts(
            pb.ReturnDiscountsRequest(
                request_id=rid(),
                order_id=order_id,
                adjustments=[pb.Adjustment(campaign_id=once.campaign_id, amount_fen=fen)],
            )
        )

    give_back(4_00)  # some goods back: the offer was still enjoyed
    with pytest.raises(grpc.RpcError) as caught:
        reserve()
    assert refusal_of(caught.value, "campaign.huiyuan")[1] == "MEMBER_LIMIT_REACHED"
    give_back(6_00)  # the rest back: as if the order had never been
    assert reserve().reservation_id
    campaign.SetCampaignStatus(
        pb.SetCampaignStatusRequest(request_id=rid(), campaign_id=once.campaign_id, status=pb.CAMPAIGN_STATUS_ENDED)
    )


def test_quotes_price_coupons_of_many_templates_whatever_the_templates_kept(campaign, monkeypatch):
    """A quote reads a coupon's terms from its template once per service (they never
    change); past the templates it keeps, it starts again and still prices each."""
    member = "m_" + "7" * 26
    five = template(campaign, name="5元券", kind=pb.COUPON_KIND_FIXED, amount_fen=5_00)
    tenth = template(campaign, name="9折券", kind=pb.COUPON_KIND_PERCENTAGE, rate_bp=9_000, cap_fen=3_00)
    codes = [issue(campaign, t.template_id, member)[0].coupon_code for t in (five, tenth)]
    request = order(at=datetime.now(UTC), codes=codes)
    request.member.member_id = member
    first = campaign.Quote(request)
    assert (
        sorted(a.amount_fen for a in first.adjustments if a.coupon_code) == [3_00, 5_00] and not first.rejected_coupons
    )
    monkeypatch.setattr(templates, "_QUOTED_TEMPLATES_MAX", 1)  # the service runs in this process
    assert campaign.Quote(request) == first
    assert campaign.Quote(request) == first


def test_a_released_or_lapsed_reservation_gives_coupons_and_budget_back(campaign):
    backing = create(campaign, name="预算", kind=pb.CAMPAIGN_KIND_COUPONS, org_path="hq", budget_fen=50_00)
    five = template(campaign, name="5元券", kind=pb.COUPON_KIND_FIXED, amount_fen=5_00, campaign_id=backing.campaign_id)
    member = "m_" + "3" * 26
    (coupon,) = issue(campaign, five.template_id, member)
    held = campaign.ReserveCoupons(
        pb.ReserveCouponsRequest(
            request_id=rid(),
            member_id=member,
            coupon_codes=[coupon.coupon_code],
            order_id="o-3",
            store_path=STORE,
            ttl={"seconds": 1},
            adjustments=[pb.Adjustment(coupon_code=coupon.coupon_code, amount_fen=5_00)],
        )
    )
    assert (
        campaign.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=backing.campaign_id)).budget_left_fen == 45_00
    )
    deadline = time.monotonic() + 6
    while (
        time.monotonic() < deadline
        and campaign.ListMemberCoupons(pb.ListMemberCouponsRequest(member_id=member)).coupons[0].state
        != pb.COUPON_STATE_AVAILABLE
    ):
        time.sleep(0.2)
    assert (
        campaign.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=backing.campaign_id)).budget_left_fen == 50_00
    )
    late = pb.RedeemCouponsRequest(request_id=rid(), reservation_id=held.reservation_id)
    assert refusal(campaign.RedeemCoupons, late)[1] == "RESERVATION_EXPIRED"


def test_a_budget_is_never_overspent_under_concurrency(campaign):
    day = create(
        campaign,
        name="会员日 预算100元",
        kind=pb.CAMPAIGN_KIND_MEMBER_DAY,
        org_path="hq",
        rate_bp=9_000,
        weekdays=[1, 2, 3, 4, 5, 6, 7],
        budget_fen=100_00,
        per_member_limit=1,
    )
    activate(campaign, day.campaign_id)

    def attempt(i):
        try:
            campaign.ReserveCoupons(
                pb.ReserveCouponsRequest(
                    request_id=rid(),
                    member_id=f"m_{i:026d}",
                    order_id=f"o-{i}",
                    store_path=STORE,
                    ttl={"seconds": 60},
                    adjustments=[pb.Adjustment(campaign_id=day.campaign_id, amount_fen=10_00)],
                )
            )
            return "ok"
        except grpc.RpcError as error:
            return refusal_of(error, "campaign.huiyuan")[1]

    with ThreadPoolExecutor(30) as pool:
        outcomes = list(pool.map(attempt, range(30)))
    assert outcomes.count("ok") == 10 and outcomes.count("BUDGET_EXHAUSTED") == 20
    assert campaign.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=day.campaign_id)).budget_left_fen == 0
    twice = pb.ReserveCouponsRequest(
        request_id=rid(),
        member_id=f"m_{0:026d}",
        order_id="o-again",
        store_path=STORE,
        ttl={"seconds": 60},
        adjustments=[pb.Adjustment(campaign_id=day.campaign_id, amount_fen=1)],
    )
    assert refusal(campaign.ReserveCoupons, twice)[1] in ("MEMBER_LIMIT_REACHED", "BUDGET_EXHAUSTED")
    campaign.SetCampaignStatus(
        pb.SetCampaignStatusRequest(request_id=rid(), campaign_id=day.campaign_id, status=pb.CAMPAIGN_STATUS_ENDED)
    )


def test_member_and_store_limits_hold_under_concurrency(campaign):
    """The limits are counted under the stats row's lock, taken last in the transaction:
    twenty concurrent reservations of one member, and of one store, never pass a limit."""
    offer = create(
        campaign,
        name="限次 会员日",
        kind=pb.CAMPAIGN_KIND_MEMBER_DAY,
        org_path="hq",
        rate_bp=9_500,
        weekdays=[1, 2, 3, 4, 5, 6, 7],
        per_member_limit=2,
        per_store_daily_limit=5,
        budget_fen=100_00,
    )
    activate(campaign, offer.campaign_id)

    def attempt(member_id, store):
        try:
            campaign.ReserveCoupons(
                pb.ReserveCouponsRequest(
                    request_id=rid(),
                    member_id=member_id,
                    order_id=rid(),
                    store_path=store,
                    ttl={"seconds": 60},
                    adjustments=[pb.Adjustment(campaign_id=offer.campaign_id, amount_fen=1_00)],
                )
            )
            return "ok"
        except grpc.RpcError as error:
            return refusal_of(error, "campaign.huiyuan")[1]

    one_member = "m_" + "7" * 26
    with ThreadPoolExecutor(20) as pool:
        same_member = list(pool.map(lambda i: attempt(one_member, f"hq/east/sh-{i:03d}"), range(20)))
        same_store = list(pool.map(lambda i: attempt(f"m_{900 + i:026d}", "hq/south/gz-009"), range(20)))
    assert same_member.count("ok") == 2 and same_member.count("MEMBER_LIMIT_REACHED") == 18
    assert same_store.count("ok") == 5 and same_store.count("STORE_DAILY_LIMIT_REACHED") == 15
    stats = campaign.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=offer.campaign_id))
    assert stats.budget_left_fen == 93_00  # seven reservations of 1.00 hold the budget
    campaign.SetCampaignStatus(
        pb.SetCampaignStatusRequest(request_id=rid(), campaign_id=offer.campaign_id, status=pb.CAMPAIGN_STATUS_ENDED)
    )


def test_the_stats_of_a_campaign_with_no_budget_stay_exact_under_concurrency(campaign):
    """With no budget or limit to check, a reservation, a redemption and a release add
    to the stats row without waiting for it (it goes out with COMMIT): thirty at once
    lose nothing and count nothing twice."""
    offer = create(
        campaign,
        name="不限量 会员日",
        kind=pb.CAMPAIGN_KIND_MEMBER_DAY,
        org_path="hq",
        rate_bp=9_500,
        weekdays=[1, 2, 3, 4, 5, 6, 7],
    )
    activate(campaign, offer.campaign_id)
    assert campaign.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=offer.campaign_id)).orders == 0

    def checkout(i):
        held = campaign.ReserveCoupons(
            pb.ReserveCouponsRequest(
                request_id=rid(),
                member_id=f"m_{7_000 + i:026d}",
                order_id=rid(),
                store_path=STORE,
                ttl={"seconds": 60},
                adjustments=[pb.Adjustment(campaign_id=offer.campaign_id, amount_fen=100 + i)],
            )
        )
        end = campaign.RedeemCoupons if i % 3 else campaign.ReleaseCoupons  # a third given back
        request_type = pb.RedeemCouponsRequest if i % 3 else pb.ReleaseCouponsRequest
        end(request_type(request_id=rid(), reservation_id=held.reservation_id))

    with ThreadPoolExecutor(30) as pool:
        list(pool.map(checkout, range(30)))
    stats = campaign.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=offer.campaign_id))
    redeemed = [100 + i for i in range(30) if i % 3]
    assert (stats.orders, stats.discount_fen) == (len(redeemed), sum(redeemed))


def test_a_campaign_made_before_stats_rows_came_with_campaigns_gets_its_row(database_url, tmp_path, request):
    """Migration 0007: a campaign whose stats row was still to be made on its first use."""
    import sqlalchemy as sa

    from huiyuan.database import engines as db, migrate
    from services.campaign.app import SPEC
    from tests.conftest import database_of_its_own

    url = database_of_its_own(database_url, tmp_path, request, "campaign")
    migrate.upgrade(SPEC.migrations_dir, url, "campaign", "0006")
    engine = db.make_sync_engine(url, "campaign")
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO campaigns (campaign_id, kind, status, org_path, exclusive_group, body, create_time, "
                    "update_time) VALUES ('c_old', 'MEMBER_DAY', 'ACTIVE', 'hq', '', '{}', :now, :now)"
                ),
                {"now": datetime.now(UTC)},
            )
        migrate.upgrade(SPEC.migrations_dir, url, "campaign")
        with engine.connect() as connection:
            assert connection.execute(
                sa.text("SELECT orders, discount_fen FROM campaign_stats WHERE campaign_id = 'c_old'")
            ).all() == [(0, 0)]
    finally:
        engine.dispose()


def test_a_batch_gives_each_member_one_coupon_however_its_pages_fall(campaign):
    """A bulk issue sent in pages under one batch_id: a page sent again with a new
    request_id, pages that overlap, and pages racing each other give each member one
    coupon of the batch, counted once in the campaign's stats; another batch gives more."""
    backing = create(campaign, name="群发券活动", kind=pb.CAMPAIGN_KIND_COUPONS, org_path="hq")
    gift = template(
        campaign, name="群发5元", kind=pb.COUPON_KIND_FIXED, amount_fen=5_00, campaign_id=backing.campaign_id
    )
    members = [f"m_{5_000 + i:026d}" for i in range(40)]

    def page(batch, member_ids):
        return campaign.IssueCoupons(
            pb.IssueCouponsRequest(
                request_id=rid(), template_id=gift.template_id, member_ids=member_ids, batch_id=batch
            )
        )

    first = page("batch-1", members[:10])
    assert sorted(c.member_id for c in first.coupons) == members[:10] and not first.already_issued_member_ids
    overlapping = page("batch-1", members[5:15])
    assert sorted(c.member_id for c in overlapping.coupons) == members[10:15]
    assert list(overlapping.already_issued_member_ids) == members[5:10]
    with ThreadPoolExecutor(8) as pool:  # eight pages of the rest, each overlapping its neighbours
        raced = list(pool.map(lambda i: page("batch-1", members[15 + 3 * i : 15 + 3 * i + 6]), range(8)))
    assert sorted(c.member_id for r in raced for c in r.coupons) == members[15:]
    again = page("batch-2", members[:3])  # another batch is another issue
    assert len(again.coupons) == 3
    held = {m: len(campaign.ListMemberCoupons(pb.ListMemberCouponsRequest(member_id=m)).coupons) for m in members}
    assert held == {m: 2 if m in members[:3] else 1 for m in members}
    stats = campaign.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=backing.campaign_id))
    assert stats.coupons_issued == 43
    bad = pb.IssueCouponsRequest(request_id=rid(), template_id=gift.template_id, member_ids=members[:1], batch_id="a b")
    assert refusal(campaign.IssueCoupons, bad)[2] == {"batch_id": "BATCH_ID_INVALID"}


def test_a_template_reads_back_as_it_was_made(campaign):
    made = template(
        campaign, name="满50减5", kind=pb.COUPON_KIND_FIXED, amount_fen=5_00, threshold_fen=50_00, categories=["tea"]
    )
    capped = template(
        campaign,
        name="9折券",
        kind=pb.COUPON_KIND_PERCENTAGE,
        rate_bp=9_000,
        cap_fen=20_00,
        valid_days=0,
        valid_from_time={"seconds": 1_800_000_000},
        valid_until_time={"seconds": 1_900_000_000},
    )
    for t in (made, capped):
        assert campaign.GetCouponTemplate(pb.GetCouponTemplateRequest(template_id=t.template_id)).template == t
    assert refusal(campaign.GetCouponTemplate, pb.GetCouponTemplateRequest(template_id="ct_" + "0" * 26))[:2] == (
        grpc.StatusCode.NOT_FOUND,
        "TEMPLATE_NOT_FOUND",
    )
    assert refusal(campaign.GetCouponTemplate, pb.GetCouponTemplateRequest(template_id="x"))[2] == {
        "template_id": "TEMPLATE_ID_INVALID"
    }


def test_templates_are_listed_on_a_node_s_line_oldest_first_a_page_at_a_time(campaign):
    def make(name, org_path):
        return campaign.CreateCouponTemplate(
            pb.CreateCouponTemplateRequest(
                request_id=rid(),
                template=pb.CouponTemplate(
                    name=name, kind=pb.COUPON_KIND_FIXED, amount_fen=1_00, valid_days=7, org_path=org_path
                ),
            )
        ).template

    chain, east, store, south = (
        make("全国券", "hq"),
        make("华东券", "hq/east"),
        make("店券", "hq/east/sh-001"),
        make("华南券", "hq/south"),
    )

    def listed(org_path, size=50):
        found, token = [], ""
        while True:
            answer = campaign.ListCouponTemplates(
                pb.ListCouponTemplatesRequest(org_path=org_path, page_size=size, page_token=token)
            )
            found += [t.template_id for t in answer.templates]
            token = answer.next_page_token
            if not token:
                return found

    mine = {t.template_id for t in (chain, east, store, south)}
    on_line = [t for t in listed("hq/east", size=1) if t in mine]
    assert on_line == [chain.template_id, east.template_id, store.template_id]  # above, own, below; not the south
    assert [t for t in listed("") if t in mine] == [t.template_id for t in (chain, east, store, south)]
    assert [t for t in listed("hq/south") if t in mine] == [chain.template_id, south.template_id]
    first = campaign.ListCouponTemplates(pb.ListCouponTemplatesRequest(org_path="hq/east/sh-001", page_size=500))
    assert next(t for t in first.templates if t.template_id == store.template_id) == store  # as it was made
    assert refusal(campaign.ListCouponTemplates, pb.ListCouponTemplatesRequest(org_path="Bad Path"))[2] == {
        "org_path": "ORG_PATH_INVALID"
    }


def test_bad_templates_are_refused(campaign):
    bad = pb.CreateCouponTemplateRequest(
        request_id=rid(),
        template=pb.CouponTemplate(
            name="坏券", kind=pb.COUPON_KIND_FIXED, amount_fen=30_00, threshold_fen=20_00, org_path="hq"
        ),
    )
    assert refusal(campaign.CreateCouponTemplate, bad)[2] == {
        "template.threshold_fen": "THRESHOLD_BELOW_REDUCTION",
        "template.valid_days": "VALIDITY_INVALID",
    }
    percent = pb.CreateCouponTemplateRequest(
        request_id=rid(),
        template=pb.CouponTemplate(
            name="110%", kind=pb.COUPON_KIND_PERCENTAGE, rate_bp=11_000, valid_days=7, org_path="hq"
        ),
    )
    assert refusal(campaign.CreateCouponTemplate, percent)[2] == {"template.rate_bp": "RATE_INVALID"}


def test_a_till_lists_only_the_coupons_usable_there_now_with_their_names_and_terms(campaign):
    member = new_id("m")
    now = datetime.now(UTC)

    def made(name, org_path="hq", valid_from=None, valid_until=None, **fields):
        fixed = (
            {"valid_from_time": ts(valid_from), "valid_until_time": ts(valid_until)}
            if valid_until
            else {"valid_days": 30}
        )
        made = campaign.CreateCouponTemplate(
            pb.CreateCouponTemplateRequest(
                request_id=rid(), template=pb.CouponTemplate(name=name, org_path=org_path, **fixed, **fields)
            )
        ).template
        return issue(campaign, made.template_id, member)[0]

    five = made("5元券", kind=pb.COUPON_KIND_FIXED, amount_fen=5_00)
    tea = made(
        "茶饮券",
        kind=pb.COUPON_KIND_PERCENTAGE,
        rate_bp=8_850,
        cap_fen=20_00,
        threshold_fen=100_00,
        categories=["tea", "juice"],
    )
    assert (five.name, five.terms, tea.terms) == ("5元券", "减¥5.00", "满¥100.00打8.85折 最多减¥20.00 限tea、juice")
    made("南区券", org_path="hq/south", kind=pb.COUPON_KIND_FIXED, amount_fen=3_00)
    made("杭州店券", org_path="hq/east/hz-002", kind=pb.COUPON_KIND_FIXED, amount_fen=3_00)  # another east store
    made(
        "下周券",
        kind=pb.COUPON_KIND_FIXED,
        amount_fen=3_00,
        valid_from=now + timedelta(days=1),
        valid_until=now + timedelta(days=8),
    )
    made(
        "过期券",
        kind=pb.COUPON_KIND_FIXED,
        amount_fen=3_00,
        valid_from=now - timedelta(days=8),
        valid_until=now - timedelta(days=1),
    )  # lapsed; the sweeper has not marked it yet
    held = made("已占券", kind=pb.COUPON_KIND_FIXED, amount_fen=3_00)
    campaign.ReserveCoupons(
        pb.ReserveCouponsRequest(
            request_id=rid(),
            member_id=member,
            coupon_codes=[held.coupon_code],
            order_id="o-held",
            store_path=STORE,
            ttl={"seconds": 60},
        )
    )
    assert len(campaign.ListMemberCoupons(pb.ListMemberCouponsRequest(member_id=member)).coupons) == 7

    here = pb.ListMemberCouponsRequest(member_id=member, usable_at_store_path=STORE)
    listed = campaign.ListMemberCoupons(here).coupons
    assert [(c.coupon_code, c.name, c.terms) for c in listed] == [
        (tea.coupon_code, "茶饮券", tea.terms),
        (five.coupon_code, "5元券", "减¥5.00"),
    ]
    paged, token = [], ""
    while True:  # one coupon a page: the filter never skips one across pages
        page = campaign.ListMemberCoupons(
            pb.ListMemberCouponsRequest(member_id=member, usable_at_store_path=STORE, page_size=1, page_token=token)
        )
        paged += [c.coupon_code for c in page.coupons]
        if not (token := page.next_page_token):
            break
    assert paged == [c.coupon_code for c in listed]
    south = campaign.ListMemberCoupons(
        pb.ListMemberCouponsRequest(member_id=member, usable_at_store_path="hq/south/gz-001")
    )
    assert {c.name for c in south.coupons} == {"5元券", "茶饮券", "南区券"}

    def under(node):  # a back office's view: usable now at some store under its node
        listed = campaign.ListMemberCoupons(pb.ListMemberCouponsRequest(member_id=member, usable_under_org_path=node))
        return {c.name for c in listed.coupons}

    assert under("hq/east") == {"5元券", "茶饮券", "杭州店券"}
    assert under("hq/south") == {"5元券", "茶饮券", "南区券"}
    assert under("hq") == {"5元券", "茶饮券", "南区券", "杭州店券"}
    bad = pb.ListMemberCouponsRequest(member_id=member, usable_at_store_path="hq", state=pb.COUPON_STATE_REDEEMED)
    assert refusal(campaign.ListMemberCoupons, bad)[2] == {
        "usable_at_store_path": "STORE_PATH_INVALID",
        "state": "STATE_INVALID",
    }
    both = pb.ListMemberCouponsRequest(member_id=member, usable_at_store_path=STORE, usable_under_org_path="hq/east")
    assert refusal(campaign.ListMemberCoupons, both)[2] == {"usable_under_org_path": "USABLE_FILTERS_EXCLUSIVE"}
    bad = pb.ListMemberCouponsRequest(member_id=member, usable_under_org_path="east/", state=pb.COUPON_STATE_REDEEMED)
    assert refusal(campaign.ListMemberCoupons, bad)[2] == {
        "usable_under_org_path": "ORG_PATH_INVALID",
        "state": "STATE_INVALID",
    }


@pytest.mark.parametrize(
    "stamp", [Timestamp(seconds=10**12), Timestamp(nanos=-5)], ids=["year-33658", "nanos-negative"]
)
def test_a_time_outside_a_timestamp_s_range_is_invalid_argument_naming_its_field(campaign, stamp):
    """CreateCampaign, RescheduleCampaign and CreateCouponTemplate with a time outside
    years 1 to 9999 (or nanos below 0): INVALID_ARGUMENT, TIMESTAMP_OUT_OF_RANGE on that field (huiyuan/runtime/inbound.py, before the servicer)."""
    out = (grpc.StatusCode.INVALID_ARGUMENT, "TIMESTAMP_OUT_OF_RANGE")
    for field in ("start_time", "end_time"):
        made = pb.Campaign(name="超范围", kind=pb.CAMPAIGN_KIND_CATEGORY_DISCOUNT, org_path=STORE, rate_bp=9_000)
        made.categories.append("tea")
        getattr(made, field).CopyFrom(stamp)
        code, reason, fields = refusal(
            campaign.CreateCampaign, pb.CreateCampaignRequest(request_id=rid(), campaign=made)
        )
        assert (code, reason) == out and fields == {f"campaign.{field}": "TIMESTAMP_OUT_OF_RANGE"}
        moved = pb.RescheduleCampaignRequest(request_id=rid(), campaign_id="cp_none")
        getattr(moved, field).CopyFrom(stamp)
        code, reason, fields = refusal(campaign.RescheduleCampaign, moved)
        assert (code, reason) == out and fields == {field: "TIMESTAMP_OUT_OF_RANGE"}
    for field in ("valid_from_time", "valid_until_time"):
        template = pb.CouponTemplate(name="超范围券", kind=pb.COUPON_KIND_FIXED, amount_fen=5_00, org_path=STORE)
        getattr(template, field).CopyFrom(stamp)
        code, reason, fields = refusal(
            campaign.CreateCouponTemplate, pb.CreateCouponTemplateRequest(request_id=rid(), template=template)
        )
        assert (code, reason) == out and fields[f"template.{field}"] == "TIMESTAMP_OUT_OF_RANGE"
