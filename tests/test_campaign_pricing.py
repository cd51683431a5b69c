"""The pricing engine alone: the calculation order, stacking, coupons, apportionment."""

from datetime import date, datetime, timedelta

from hypothesis import given, strategies as st

from huiyuan.runtime.business_time import CHAIN_ZONE
from services.campaign.domain.campaigns import Campaign, Kind, Step
from services.campaign.domain.coupons import CouponKind
from services.campaign.domain.pricing import Coupon, Line, Member, quote

WEDNESDAY = datetime(2026, 11, 25, 15, tzinfo=CHAIN_ZONE)
THURSDAY = WEDNESDAY + timedelta(days=1)
STORE = "hq/east/sh-001"
SILVER = Member("m_1", "silver", 9_500)


def lines():
    return [Line("1", "sku-tea", "tea", 2, 50_00), Line("2", "sku-cup", "ware", 1, 33_33)]


def priced(*, member=SILVER, at=THURSDAY, campaigns=(), coupons=(), the_lines=None, **kw):
    return quote(the_lines or lines(), member, STORE, at, list(campaigns), list(coupons), **kw)


def test_tier_price_rounds_each_line_half_up_to_the_fen():
    q = priced()
    assert [(line.line_id, line.discount_fen) for line in q.lines] == [("1", 5_00), ("2", 1_67)]
    assert (q.list_total_fen, q.discount_total_fen, q.payable_fen) == (133_33, 6_67, 126_66)
    assert [a.explanation for a in q.adjustments] == ["会员价"]


def test_a_better_tier_campaign_replaces_the_tier_rate_and_they_never_stack():
    gold_week = Campaign("c-tier", "银卡周 九折", Kind.TIER_DISCOUNT, tier_ids=["silver"], rate_bp=9_000)
    q = priced(campaigns=[gold_week])
    assert [(a.campaign_id, a.amount_fen) for a in q.adjustments] == [
        ("c-tier", 13_33)
    ]  # 10.00 + 3.33 (29.997 rounds to 30.00)


def test_member_day_applies_after_the_tier_price_unless_on_the_original():
    member_day = Campaign("c-wed", "会员日 八八折", Kind.MEMBER_DAY, weekdays=[3], rate_bp=8_800)
    assert len(priced(campaigns=[member_day]).adjustments) == 1  # not on Thursday
    on_discounted = priced(campaigns=[member_day], at=WEDNESDAY)
    assert [a.amount_fen for a in on_discounted.adjustments] == [6_67, 15_20]  # 88% of 126.66, per line
    member_day.on_original_price = True
    on_original = priced(campaigns=[member_day], at=WEDNESDAY)
    assert on_original.adjustments[1].amount_fen == 16_00  # 12% of 100.00 + 12% of 33.33 (rounded per line)


def test_limited_price_and_category_discount():
    deal = Campaign("c-deal", "限时价 茶 45元", Kind.LIMITED_PRICE, sku_prices_fen={"sku-tea": 45_00})
    ware = Campaign("c-ware", "器具 八折", Kind.CATEGORY_DISCOUNT, categories=["ware"], rate_bp=8_000)
    q = priced(member=Member(), campaigns=[deal, ware])
    assert [(line.line_id, line.payable_fen) for line in q.lines] == [("1", 90_00), ("2", 26_66)]  # 26.664


def test_stepped_threshold_reduction_is_spread_over_its_lines_to_the_fen():
    offer = Campaign(
        "c-mj", "满100减20 满200减50", Kind.THRESHOLD_REDUCTION, steps=[Step(100_00, 20_00), Step(200_00, 50_00)]
    )
    q = priced(member=Member(), campaigns=[offer])
    reduction = q.adjustments[0]
    assert reduction.amount_fen == 20_00 and reduction.line_shares == {"1": 15_00, "2": 5_00}
    big = priced(
        member=Member(), campaigns=[offer], the_lines=[Line("1", "a", "x", 3, 70_00), Line("2", "b", "x", 1, 1)]
    )
    assert big.adjustments[0].amount_fen == 50_00 and sum(big.adjustments[0].line_shares.values()) == 50_00


def test_threshold_discount_and_an_exclusive_group_keeps_only_the_best():
    nine = Campaign(
        "c-9", "满200打9折", Kind.THRESHOLD_DISCOUNT, steps=[Step(100_00, rate_bp=9_000)], exclusive_group="order"
    )
    twenty = Campaign(
        "c-20", "满100减20", Kind.THRESHOLD_REDUCTION, steps=[Step(100_00, 20_00)], exclusive_group="order"
    )
    q = priced(member=Member(), campaigns=[nine, twenty])
    assert [a.campaign_id for a in q.adjustments] == ["c-20"]  # 20.00 beats 13.33


def test_coupons_apply_in_order_and_unusable_ones_are_named_with_their_reason():
    coupons = [
        Coupon("EXPIRED1", reject_reason="COUPON_EXPIRED"),
        Coupon("TEN", CouponKind.FIXED, amount_fen=10_00),
        Coupon("TEA15", CouponKind.PERCENTAGE, rate_bp=8_500, cap_fen=10_00, categories=["tea"]),
        Coupon("BIG", CouponKind.FIXED, amount_fen=50_00, threshold_fen=500_00),
        Coupon("SOUTH", CouponKind.FIXED, amount_fen=5_00, store_paths=["hq/south"]),
    ]
    q = priced(member=Member(), coupons=coupons)
    assert [(a.coupon_code, a.amount_fen) for a in q.adjustments] == [("TEN", 10_00), ("TEA15", 10_00)]
    assert q.rejected_coupons == [
        ("BIG", "COUPON_THRESHOLD_NOT_MET"),
        ("EXPIRED1", "COUPON_EXPIRED"),
        ("SOUTH", "COUPON_NOT_VALID_AT_STORE"),
    ]
    assert q.payable_fen == 133_33 - 20_00


def test_at_most_max_discounts_and_never_below_zero():
    coupons = [Coupon(f"C{i}", CouponKind.FIXED, amount_fen=100_00) for i in range(3)]
    q = priced(member=Member(), coupons=coupons, max_discounts=2)
    assert q.payable_fen == 0 and all(line.payable_fen == 0 for line in q.lines)
    assert [reason for _, reason in q.rejected_coupons] == ["COUPON_NO_ELIGIBLE_LINES"]


def test_birthday_new_members_and_the_points_hint():
    birthday = Campaign("c-bd", "生日 八折", Kind.BIRTHDAY, rate_bp=8_000)
    newcomer = Campaign(
        "c-new",
        "新会员 九五折",
        Kind.CATEGORY_DISCOUNT,
        categories=["tea"],
        rate_bp=9_500,
        new_member_within=timedelta(days=30),
    )
    double = Campaign("c-x2", "双倍积分", Kind.POINTS_MULTIPLIER, rate_bp=20_000)
    fresh = Member("m_2", register_time=THURSDAY - timedelta(days=3), birthday=date(1990, 11, 26))
    q = priced(member=fresh, campaigns=[birthday, newcomer, double])
    assert {a.campaign_id for a in q.adjustments} == {"c-bd", "c-new"} and q.points_multiplier_bp == 20_000
    old = Member("m_3", register_time=THURSDAY - timedelta(days=300), birthday=date(1990, 1, 1))
    assert priced(member=old, campaigns=[birthday, newcomer, double]).adjustments == []


def test_the_greatest_points_multiplier_is_the_one_the_order_earns_under():
    double = Campaign("c-x2", "双倍积分", Kind.POINTS_MULTIPLIER, rate_bp=20_000)
    triple = Campaign("c-x3", "三倍积分日", Kind.POINTS_MULTIPLIER, rate_bp=30_000)
    q = priced(campaigns=[triple, double])
    assert (q.points_multiplier_bp, q.points_multiplier.campaign_id, q.points_multiplier.name) == (
        30_000,
        "c-x3",
        "三倍积分日",
    )
    assert priced(campaigns=[]).points_multiplier is None and priced(campaigns=[]).points_multiplier_bp == 10_000


def test_any_kind_may_keep_to_some_days_of_the_month():
    eighth = Campaign("c-8", "每月8日 茶9折", Kind.CATEGORY_DISCOUNT, categories=["tea"], rate_bp=9_000, month_days=[8])
    guest = Member("m_9")
    assert priced(member=guest, campaigns=[eighth]).adjustments == []  # THURSDAY is the 26th
    on_the_8th = THURSDAY.replace(day=8)
    assert [a.campaign_id for a in priced(member=guest, campaigns=[eighth], at=on_the_8th).adjustments] == ["c-8"]


@given(
    st.lists(st.tuples(st.integers(1, 5), st.integers(0, 100_00)), min_size=1, max_size=6),
    st.integers(5_000, 10_000),
    st.integers(0, 300_00),
    st.integers(0, 100_00),
)
def test_every_fen_is_accounted_for(raw_lines, tier_rate, threshold, reduction):
    the_lines = [Line(str(i), f"s{i}", "x", qty, price) for i, (qty, price) in enumerate(raw_lines)]
    offer = Campaign("c", "满减", Kind.THRESHOLD_REDUCTION, steps=[Step(threshold, min(reduction, threshold))])
    q = quote(
        the_lines,
        Member(tier_price_rate_bp=tier_rate),
        STORE,
        THURSDAY,
        [offer],
        [Coupon("X", CouponKind.FIXED, amount_fen=reduction)],
    )
    for a in q.adjustments:
        assert sum(a.line_shares.values()) == a.amount_fen > 0
    assert all(line.payable_fen >= 0 for line in q.lines)
    assert q.payable_fen == q.list_total_fen - sum(a.amount_fen for a in q.adjustments)


COUPONS = [
    Coupon("A5", CouponKind.FIXED, amount_fen=5_00),
    Coupon("B15", CouponKind.PERCENTAGE, rate_bp=8_500, cap_fen=12_00),
    Coupon("C30", CouponKind.FIXED, amount_fen=30_00, threshold_fen=100_00),
    Coupon("D9", CouponKind.PERCENTAGE, rate_bp=9_000, categories=["tea"]),
]


@given(st.permutations(COUPONS), st.integers(1, 4))
def test_the_order_coupons_are_given_in_does_not_change_the_price(coupons, max_discounts):
    reference = priced(member=Member(), coupons=COUPONS, max_discounts=max_discounts)
    shuffled = priced(member=Member(), coupons=coupons, max_discounts=max_discounts)
    assert [(a.coupon_code, a.amount_fen, a.line_shares) for a in shuffled.adjustments] == [
        (a.coupon_code, a.amount_fen, a.line_shares) for a in reference.adjustments
    ]
    assert shuffled.payable_fen == reference.payable_fen and shuffled.rejected_coupons == reference.rejected_coupons


def test_the_domain_texts_member_day_and_a_tier_discount_with_a_coupon():
    # 会员日全场8.8折 on a 10.00 x 3 order for a silver member (9.5折), then a 满20减5 coupon:
    # tier 30.00 -> 28.50; member day on that 28.50 x 0.88 = 25.08; coupon 5.00 -> 20.08
    member_day = Campaign("c-88", "会员日 8.8折", Kind.MEMBER_DAY, weekdays=[3], rate_bp=8_800)
    q = priced(
        at=WEDNESDAY,
        campaigns=[member_day],
        the_lines=[Line("1", "s", "x", 3, 10_00)],
        coupons=[Coupon("M20-5", CouponKind.FIXED, amount_fen=5_00, threshold_fen=20_00)],
    )
    assert [a.amount_fen for a in q.adjustments] == [1_50, 3_42, 5_00] and q.payable_fen == 20_08
