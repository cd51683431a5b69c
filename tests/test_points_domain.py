"""Points rules alone: the accrual table from the chains' own texts, expiry, lots."""

from datetime import UTC, datetime

import pytest
from hypothesis import given, strategies as st

from huiyuan.runtime.business_time import CHAIN_ZONE
from huiyuan.runtime.errors import Violations
from services.points.domain import lots as lot_rules, rules as accrual_rules
from services.points.domain.lots import Expiry, ExpiryPolicy, Lot
from services.points.domain.rules import Line, Order, Rule

WEDNESDAY = datetime(2026, 11, 25, 15, tzinfo=CHAIN_ZONE)
THURSDAY = datetime(2026, 11, 26, 15, tzinfo=CHAIN_ZONE)

EVERY_YUAN = Rule("r-base", "消费1元积1分", "hq", priority=10, points_per_yuan_bp=10_000)
GOLD = Rule("r-gold", "金卡1.5倍积分", "hq", priority=20, points_per_yuan_bp=15_000, tier_ids=["gold"])
MEMBER_DAY = Rule("r-wed", "会员日双倍积分", "hq", priority=10, multiplier_bp=20_000, weekdays=[3])
TEA = Rule("r-tea", "茶叶2倍", "hq/east", priority=30, points_per_yuan_bp=20_000, categories=["tea"], cap_per_order=100)
RULES = [EVERY_YUAN, GOLD, MEMBER_DAY, TEA]


def order(*lines, tier="silver", at=THURSDAY, store="hq/east/sh-001", tier_multiplier_bp=10_000):
    return Order(
        store,
        tier,
        at,
        [Line(f"l{i}", category, fen) for i, (category, fen) in enumerate(lines, 1)],
        tier_multiplier_bp,
    )


@pytest.mark.parametrize(
    "case, the_order, expected",
    [
        ("1 yuan = 1 point, rounded down", order(("food", 128_99)), [(128, "r-base")]),
        ("member day (Wednesday) doubles", order(("food", 128_99), at=WEDNESDAY), [(257, "r-base")]),
        ("gold tier earns 1.5 per yuan", order(("food", 100_00), tier="gold"), [(150, "r-gold")]),
        ("gold on member day: 1.5 x 2", order(("food", 100_00), tier="gold", at=WEDNESDAY), [(300, "r-gold")]),
        ("tea in the east earns 2 per yuan", order(("tea", 30_00)), [(60, "r-tea")]),
        ("tea outside the east: the base rule", order(("tea", 30_00), store="hq/south/gz-001"), [(30, "r-base")]),
        (
            "the tea cap of 100 a order, lines scaled",
            order(("tea", 60_00), ("tea", 40_00), ("food", 10_00)),
            [(60, "r-tea"), (40, "r-tea"), (10, "r-base")],
        ),
        ("nothing under one yuan", order(("food", 99)), [(0, "r-base")]),
        ("a tier's own 1.2x scales the base", order(("food", 100_00), tier_multiplier_bp=12_000), [(120, "r-base")]),
        (
            "and member day's x2 as well",
            order(("food", 100_00), at=WEDNESDAY, tier_multiplier_bp=12_000),
            [(240, "r-base")],
        ),
        ("rounded down once, at the end", order(("food", 1_05), tier_multiplier_bp=15_000), [(1, "r-base")]),
    ],
)
def test_accrual_table(case, the_order, expected):
    got = [(a.points, a.rule_id) for a in accrual_rules.accrue(RULES, the_order)]
    assert got == expected, case


def test_a_cap_is_apportioned_without_a_point_too_many():
    capped = accrual_rules.accrue(RULES, order(("tea", 50_00), ("tea", 50_00), ("tea", 50_00)))
    assert [a.points for a in capped] == [34, 33, 33] and "capped at 100" in capped[0].explanation


def test_the_day_cap_counts_what_was_earned_earlier_today():
    rule = Rule("r", "每日上限", "hq", priority=1, points_per_yuan_bp=10_000, cap_per_day=500)
    assert accrual_rules.accrue([rule], order(("food", 300_00)), earned_today={"r": 400})[0].points == 100


def test_minimum_spend_and_month_days():
    big = Rule("r-big", "满200元 3倍", "hq", priority=50, points_per_yuan_bp=30_000, min_spend_fen=200_00)
    eighth = Rule("r-8", "每月8日 双倍", "hq", priority=5, multiplier_bp=20_000, month_days=[8])
    on_the_8th = datetime(2026, 12, 8, 10, tzinfo=CHAIN_ZONE)
    assert accrual_rules.accrue([EVERY_YUAN, big, eighth], order(("food", 199_99)))[0].points == 199
    assert accrual_rules.accrue([EVERY_YUAN, big, eighth], order(("food", 200_00), at=on_the_8th))[0].points == 1200


def test_explanations_name_the_rules():
    why = accrual_rules.accrue(RULES, order(("food", 100_00), at=WEDNESDAY))[0].explanation
    assert "消费1元积1分" in why and "会员日双倍积分" in why and "会员等级" not in why
    assert accrual_rules.accrue(RULES, order(("food", 100_00), tier_multiplier_bp=12_000))[0].explanation.endswith(
        "x 1.2 (会员等级)"
    )


def test_rules_that_make_no_sense_are_refused_field_by_field():
    v = Violations()
    bad = Rule(
        "",
        "",
        "hq",
        priority=-1,
        points_per_yuan_bp=10_000,
        multiplier_bp=20_000,
        weekdays=[0, 3],
        month_days=[32],
        start_time=THURSDAY,
        end_time=WEDNESDAY,
        cap_per_order=500,
        cap_per_day=100,
        expiry=Expiry(ExpiryPolicy.DAYS, 0),
    )
    accrual_rules.check_rule(v, bad)
    assert {x.reason for x in v.items} == {
        "NAME_REQUIRED",
        "PRIORITY_INVALID",
        "RULE_KIND_INVALID",
        "WEEKDAY_INVALID",
        "MONTH_DAY_INVALID",
        "WINDOW_AMBIGUOUS",
        "WINDOW_REVERSED",
        "CAPS_INCONSISTENT",
        "EXPIRY_PARAM_INVALID",
        "NOT_FOR_MULTIPLIER",
    }


def test_a_multiplier_rule_takes_no_caps_or_pending_days_of_its_own():
    """Its points are granted in the base rule's lot, under the base rule's caps: its own would be ignored."""
    v = Violations()
    accrual_rules.check_rule(
        v, Rule("", "双倍", "hq", priority=1, multiplier_bp=20_000, cap_per_order=10, cap_per_day=10, pending_days=7)
    )
    assert {(x.field, x.reason) for x in v.items} == {
        ("rule.cap_per_order", "NOT_FOR_MULTIPLIER"),
        ("rule.cap_per_day", "NOT_FOR_MULTIPLIER"),
        ("rule.pending_days", "NOT_FOR_MULTIPLIER"),
    }


def test_a_campaign_multiplier_stands_beside_the_rules_the_greater_applies():
    double = accrual_rules.CampaignMultiplier(20_000, "双倍积分周")
    triple = accrual_rules.CampaignMultiplier(30_000, "三倍积分日")

    def earned(campaign, at=THURSDAY, tier_multiplier_bp=10_000):
        placed = order(("food", 100_00), at=at, tier_multiplier_bp=tier_multiplier_bp)
        placed.campaign = campaign
        return accrual_rules.accrue(RULES, placed)[0]

    assert (earned(double).points, earned(double).explanation) == (
        200,
        "消费1元积1分: 100.00 yuan x 1 x 2 (双倍积分周)",
    )
    assert earned(double, at=WEDNESDAY).points == 200  # member day's x2 and the campaign's x2: one of them
    assert "会员日双倍积分" in earned(double, at=WEDNESDAY).explanation  # a tie: the rule's stands
    assert earned(triple, at=WEDNESDAY).points == 300 and "三倍积分日" in earned(triple, at=WEDNESDAY).explanation
    assert earned(double, tier_multiplier_bp=15_000).points == 300  # the tier's scales the result


def test_a_rule_scoped_to_a_terminal_applies_to_orders_paid_there():
    till = Rule("r-till", "自助机3倍", "hq/east/sh-001/pos-2", priority=90, points_per_yuan_bp=30_000)
    at_till = order(("food", 10_00))
    at_till.terminal_path = "hq/east/sh-001/pos-2"
    elsewhere = order(("food", 10_00))
    elsewhere.terminal_path = "hq/east/sh-001/pos-1"
    assert [(a.points, a.rule_id) for a in accrual_rules.accrue([EVERY_YUAN, till], at_till)] == [(30, "r-till")]
    assert [(a.points, a.rule_id) for a in accrual_rules.accrue([EVERY_YUAN, till], elsewhere)] == [(10, "r-base")]
    assert [(a.points, a.rule_id) for a in accrual_rules.accrue([EVERY_YUAN, till], order(("food", 10_00)))] == [
        (10, "r-base")
    ]


@pytest.mark.parametrize(
    "policy, param, granted, expires",
    [
        (
            ExpiryPolicy.DAYS,
            30,
            datetime(2026, 1, 1, 23, 30, tzinfo=CHAIN_ZONE),
            datetime(2026, 2, 1, tzinfo=CHAIN_ZONE),
        ),
        (
            ExpiryPolicy.END_OF_MONTH,
            0,
            datetime(2026, 2, 10, tzinfo=CHAIN_ZONE),
            datetime(2026, 3, 1, tzinfo=CHAIN_ZONE),
        ),
        (
            ExpiryPolicy.END_OF_MONTH,
            1,
            datetime(2026, 12, 10, tzinfo=CHAIN_ZONE),
            datetime(2027, 2, 1, tzinfo=CHAIN_ZONE),
        ),
        (ExpiryPolicy.END_OF_YEAR, 1, datetime(2026, 6, 1, tzinfo=CHAIN_ZONE), datetime(2028, 1, 1, tzinfo=CHAIN_ZONE)),
        # 23:30 on 31 Dec in Shanghai is still 2026 there, though 2026-12-31 15:30 UTC: the local year counts
        (
            ExpiryPolicy.END_OF_YEAR,
            0,
            datetime(2026, 12, 31, 15, 30, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=CHAIN_ZONE),
        ),
        # 00:30 on 1 Jan in Shanghai is already 2027, though it is 2026 in UTC
        (
            ExpiryPolicy.END_OF_YEAR,
            0,
            datetime(2026, 12, 31, 16, 30, tzinfo=UTC),
            datetime(2028, 1, 1, tzinfo=CHAIN_ZONE),
        ),
        (ExpiryPolicy.NEVER, 0, datetime(2026, 6, 1, tzinfo=CHAIN_ZONE), None),
    ],
)
def test_expiry_in_business_time(policy, param, granted, expires):
    assert Expiry(policy, param).expire_time(granted) == expires


def test_spending_takes_the_soonest_expiring_lots_first_and_a_capture_keeps_those():
    soon, later = datetime(2026, 12, 1, tzinfo=CHAIN_ZONE), datetime(2027, 6, 1, tzinfo=CHAIN_ZONE)
    lots = [Lot("a", 100, later), Lot("b", 50, None), Lot("c", 30, soon)]
    draws = lot_rules.draw(lots, 150)
    assert [(d.lot_id, d.points) for d in draws] == [("c", 30), ("a", 100), ("b", 20)]
    kept, back = lot_rules.keep(draws, 100)
    assert [(d.lot_id, d.points) for d in kept] == [("c", 30), ("a", 70)]
    assert [(d.lot_id, d.points) for d in back] == [("a", 30), ("b", 20)]


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=8), st.data())
def test_draws_never_take_a_lot_below_zero(sizes, data):
    lots = [Lot(f"l{i}", n, None) for i, n in enumerate(sizes)]
    wanted = data.draw(st.integers(0, sum(sizes)))
    draws = lot_rules.draw(lots, wanted)
    assert sum(d.points for d in draws) == wanted and all(lot.points_left >= 0 for lot in lots)
    kept, back = lot_rules.keep(draws, data.draw(st.integers(0, wanted)))
    assert sum(d.points for d in kept + back) == wanted
