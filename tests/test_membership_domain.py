"""Paid membership's term arithmetic (services/member/domain/memberships.py): term ends
across month ends and leap years, stacking, the Asia/Shanghai midnight, what is earned
by a day and what a refund gives back."""

from datetime import UTC, date, datetime

import pytest

from huiyuan.runtime.errors import Violations
from services.member.domain.memberships import (
    BIRTHDAY_COUPONS,
    BIRTHDAY_POINTS,
    MONTH,
    MONTHLY_COUPONS,
    PLAN,
    QUARTER,
    SERVICE_QUOTA,
    TIER,
    TILL,
    YEAR,
    Benefit,
    Plan,
    Term,
    add_months,
    benefit_month,
    birthday_week_year,
    business_day,
    check_benefits,
    check_plan,
    earned_fen,
    entitlements,
    grants_due,
    next_term,
    refund_of,
)


def plan(term=MONTH, trial_days=0, price=3_000):
    return Plan("plan_x", "PLUS", price, term, trial_days, "")


def term_of(anchor, start, end, price=3_000, refund_end=None, refunded=0):
    return Term(
        "t",
        "m",
        "plan_x",
        TILL,
        price,
        anchor,
        start,
        end,
        (end - start).days,
        "",
        "",
        "",
        "hq",
        datetime.now(UTC),
        refunded_fen=refunded,
        refund_end_day=refund_end,
    )


@pytest.mark.parametrize(
    "day, months, expected",
    [
        (date(2027, 1, 31), 1, date(2027, 2, 28)),  # February lacks the 31st: its last day
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # a leap year
        (date(2027, 1, 31), 2, date(2027, 3, 31)),  # counted from the anchor, not from 2/28
        (date(2027, 3, 31), 1, date(2027, 4, 30)),
        (date(2027, 1, 15), 1, date(2027, 2, 15)),
        (date(2027, 11, 30), 3, date(2028, 2, 29)),  # a quarter across a year end, into a leap February
        (date(2027, 12, 31), 12, date(2028, 12, 31)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),  # a year from a leap day
    ],
)
def test_months_later_on_the_same_day_or_the_months_last(day, months, expected):
    assert add_months(day, months) == expected


@pytest.mark.parametrize(
    "now_utc, expected_start, expected_end",
    [
        # 15:59:59 UTC is 23:59:59 in Shanghai on 1/31: a month from 1/31
        (datetime(2027, 1, 31, 15, 59, 59, tzinfo=UTC), date(2027, 1, 31), date(2027, 2, 28)),
        # 16:00 UTC is already 2/1 in Shanghai
        (datetime(2027, 1, 31, 16, 0, 0, tzinfo=UTC), date(2027, 2, 1), date(2027, 3, 1)),
        # 12/31 16:00 UTC: New Year's day in Shanghai
        (datetime(2027, 12, 31, 16, 0, 0, tzinfo=UTC), date(2028, 1, 1), date(2028, 2, 1)),
    ],
)
def test_a_term_starts_on_the_business_day_it_is_bought(now_utc, expected_start, expected_end):
    anchor, start, end = next_term(plan(), False, None, now_utc)
    assert (anchor, start, end) == (expected_start, expected_start, expected_end)


def test_terms_stack_from_the_runs_first_day():
    now = datetime(2027, 1, 31, 4, tzinfo=UTC)  # 1/31 noon in Shanghai
    first = term_of(*next_term(plan(), False, None, now))
    assert (first.start_day, first.end_day) == (date(2027, 1, 31), date(2027, 2, 28))
    second = term_of(*next_term(plan(), False, first, now))  # bought the same day: stacks
    assert (second.anchor_day, second.start_day, second.end_day) == (
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 31),
    )
    third = term_of(*next_term(plan(QUARTER), False, second, now))
    assert (third.start_day, third.end_day) == (date(2027, 3, 31), date(2027, 6, 30))
    year = term_of(*next_term(plan(YEAR), False, third, now))
    assert (year.start_day, year.end_day) == (date(2027, 6, 30), date(2028, 6, 30))


def test_a_term_that_ended_starts_a_new_run():
    old = term_of(date(2026, 11, 30), date(2026, 11, 30), date(2026, 12, 30))
    now = datetime(2027, 1, 31, 4, tzinfo=UTC)
    assert next_term(plan(), False, old, now) == (date(2027, 1, 31), date(2027, 1, 31), date(2027, 2, 28))


def test_a_trial_runs_whole_days_and_the_next_term_counts_from_its_end():
    now = datetime(2027, 1, 10, 4, tzinfo=UTC)
    trial = term_of(*next_term(plan(trial_days=7), True, None, now))
    assert (trial.start_day, trial.end_day) == (date(2027, 1, 10), date(2027, 1, 17))
    paid = next_term(plan(), False, trial, now)
    assert paid == (date(2027, 1, 17), date(2027, 1, 17), date(2027, 2, 17))


def test_revenue_is_earned_by_the_day_rounded_down():
    t = term_of(date(2027, 2, 1), date(2027, 2, 1), date(2027, 3, 1), price=1_000)  # 28 days, ¥10
    assert earned_fen(t, date(2027, 1, 31)) == 0
    assert earned_fen(t, date(2027, 2, 1)) == 1_000 * 1 // 28 == 35
    assert earned_fen(t, date(2027, 2, 14)) == 500
    assert earned_fen(t, date(2027, 2, 28)) == 1_000
    assert earned_fen(t, date(2027, 3, 5)) == 1_000


@pytest.mark.parametrize(
    "now_utc, refunded, new_end",
    [
        # bought 2/1 for 28 days at ¥10; refunded on 2/10 (Shanghai): 2/1..2/10 used, 18 days back
        (datetime(2027, 2, 10, 4, tzinfo=UTC), 1_000 * 18 // 28, date(2027, 2, 11)),
        # 2/10 23:30 Shanghai is still 2/10
        (datetime(2027, 2, 10, 15, 30, tzinfo=UTC), 642, date(2027, 2, 11)),
        # 2/10 16:00 UTC is 2/11 in Shanghai: a day less
        (datetime(2027, 2, 10, 16, 0, tzinfo=UTC), 1_000 * 17 // 28, date(2027, 2, 12)),
        # before it starts: all of it
        (datetime(2027, 1, 20, 4, tzinfo=UTC), 1_000, date(2027, 2, 1)),
        # on its last day: nothing
        (datetime(2027, 2, 28, 4, tzinfo=UTC), 0, date(2027, 3, 1)),
    ],
)
def test_a_refund_gives_back_the_unused_whole_days_rounded_down(now_utc, refunded, new_end):
    t = term_of(date(2027, 2, 1), date(2027, 2, 1), date(2027, 3, 1), price=1_000)
    assert refund_of(t, now_utc) == (refunded, new_end)


def test_after_a_refund_what_it_kept_is_earned_by_its_new_end():
    t = term_of(
        date(2027, 2, 1), date(2027, 2, 1), date(2027, 3, 1), price=1_000, refund_end=date(2027, 2, 11), refunded=642
    )
    assert earned_fen(t, date(2027, 2, 10)) == 358
    assert earned_fen(t, date(2027, 2, 5)) == 358 * 5 // 10


def test_the_benefit_month_starts_on_the_runs_day_of_the_month():
    assert benefit_month(date(2027, 1, 31), date(2027, 2, 27)) == (date(2027, 1, 31), date(2027, 2, 28))
    assert benefit_month(date(2027, 1, 31), date(2027, 2, 28)) == (date(2027, 2, 28), date(2027, 3, 31))
    assert benefit_month(date(2027, 1, 15), date(2027, 1, 15)) == (date(2027, 1, 15), date(2027, 2, 15))
    assert benefit_month(date(2027, 12, 20), date(2028, 1, 5)) == (date(2027, 12, 20), date(2028, 1, 20))


def test_business_day_is_shanghais():
    assert business_day(datetime(2027, 3, 1, 15, 59, tzinfo=UTC)) == date(2027, 3, 1)
    assert business_day(datetime(2027, 3, 1, 16, 0, tzinfo=UTC)) == date(2027, 3, 2)


@pytest.mark.parametrize(
    "fields, reasons",
    [
        (dict(price_fen=0), ["PLAN_PRICE_OUT_OF_RANGE"]),
        (dict(price_fen=-100), ["PLAN_PRICE_OUT_OF_RANGE"]),
        (dict(term=""), ["PLAN_TERM_REQUIRED"]),
        (dict(trial_days=-1), ["TRIAL_DAYS_OUT_OF_RANGE"]),
        (dict(auto_renewal=True), ["AUTO_RENEWAL_NOT_SUPPORTED"]),
        (dict(benefits=[Benefit("car-wash", SERVICE_QUOTA, "免费洗车", -1)]), ["BENEFIT_QUANTITY_OUT_OF_RANGE"]),
        (dict(benefits=[Benefit("car-wash", SERVICE_QUOTA, "免费洗车", 0)]), ["BENEFIT_QUANTITY_OUT_OF_RANGE"]),
        (
            dict(benefits=[Benefit("a", SERVICE_QUOTA, "x", 1), Benefit("a", SERVICE_QUOTA, "y", 1)]),
            ["BENEFIT_CODE_REPEATED"],
        ),
        (dict(benefits=[Benefit("a", "", "x", 1)]), ["BENEFIT_KIND_REQUIRED"]),
        (dict(benefits=[Benefit("c", MONTHLY_COUPONS, "月券", 2)]), ["BENEFIT_TEMPLATE_REQUIRED"]),
        (dict(benefits=[Benefit("c", MONTHLY_COUPONS, "月券", -2, "tpl_x")]), ["BENEFIT_QUANTITY_OUT_OF_RANGE"]),
        (dict(benefits=[Benefit("b", BIRTHDAY_POINTS, "生日积分", 0, "", 0)]), ["BENEFIT_POINTS_OUT_OF_RANGE"]),
        (dict(benefits=[Benefit("b", SERVICE_QUOTA, "洗车", 1, "", 5)]), ["BENEFIT_FIELD_NOT_READ"]),
        (dict(price_fen=0, term=""), ["PLAN_PRICE_OUT_OF_RANGE", "PLAN_TERM_REQUIRED"]),
    ],
)
def test_bad_plans_are_refused_field_by_field(fields, reasons):
    args = dict(name="PLUS 月卡", price_fen=1_500, term=MONTH, trial_days=0, auto_renewal=False, benefits=[])
    args.update(fields)
    v = Violations()
    check_plan(v, **args)
    assert [x.reason for x in v.items] == reasons


@pytest.mark.parametrize(
    "today, birthday, year",
    [
        (date(2027, 3, 15), "1990-03-17", 2027),  # Monday of the birthday's week
        (date(2027, 3, 21), "1990-03-17", 2027),  # its Sunday
        (date(2027, 3, 14), "1990-03-17", None),  # the Sunday before
        (date(2027, 3, 22), "1990-03-17", None),  # the Monday after
        (date(2026, 12, 28), "0000-01-01", 2027),  # 2027-01-01 is a Friday: its week began in 2026
        (date(2027, 2, 28), "1992-02-29", 2027),  # no 2/29 in 2027: 2/28 (a Sunday)
        (date(2028, 2, 29), "1992-02-29", 2028),
        (date(2027, 3, 15), None, None),
    ],
)
def test_the_birthday_week_runs_monday_to_sunday_around_the_birthday(today, birthday, year):
    assert birthday_week_year(today, birthday) == year


def test_grants_due_are_keyed_once_a_benefit_month_and_once_a_birthday_year():
    p = Plan(
        "plan_x",
        "PLUS",
        3_000,
        MONTH,
        0,
        "",
        [
            Benefit("wash", SERVICE_QUOTA, "洗车", 2),
            Benefit("monthly", MONTHLY_COUPONS, "月券", 2, "tpl_m"),
            Benefit("bday", BIRTHDAY_COUPONS, "生日券", 1, "tpl_b"),
            Benefit("bday-points", BIRTHDAY_POINTS, "生日积分", 0, "", 500),
        ],
    )
    t = term_of(date(2027, 1, 31), date(2027, 1, 31), date(2027, 4, 30))
    first = grants_due(
        "m", "1990-02-26", entitlements(t, p, "", [], date(2027, 2, 27)), date(2027, 2, 27)
    )  # in the birthday week; month from 1/31
    assert [g.grant_key for g in first] == [
        "monthly:m:monthly:2027-01-31",
        "birthday:m:bday:2027",
        "birthday:m:bday-points:2027",
    ]
    assert [(g.quantity, g.points) for g in first] == [(2, 0), (1, 0), (0, 500)]
    later = grants_due(
        "m", "1990-02-26", entitlements(t, p, "", [], date(2027, 2, 28)), date(2027, 2, 28)
    )  # a new benefit month, same birthday week
    assert [g.grant_key for g in later] == [
        "monthly:m:monthly:2027-02-28",
        "birthday:m:bday:2027",
        "birthday:m:bday-points:2027",
    ]


def test_a_tier_s_benefits_count_by_calendar_month_beside_the_plan_s():
    """A plan's month runs from its run's day (1/31: 2/28 to 3/31); a tier's is the
    calendar month in business time. Both held: both listed, each keyed apart."""
    p = Plan("plan_x", "PLUS", 3_000, MONTH, 0, "", [Benefit("wash", SERVICE_QUOTA, "洗车", 2)])
    t = term_of(date(2027, 1, 31), date(2027, 1, 31), date(2027, 4, 30))
    tier = [Benefit("wash", SERVICE_QUOTA, "洗车", 3), Benefit("monthly", MONTHLY_COUPONS, "月券", 2, "tpl_m")]
    held = entitlements(t, p, "tier_gold", tier, date(2027, 3, 5))
    assert [(e.source, e.source_id, e.benefit.quantity, e.period_start, e.period_end) for e in held] == [
        (PLAN, "plan_x", 2, date(2027, 2, 28), date(2027, 3, 31)),
        (TIER, "tier_gold", 3, date(2027, 3, 1), date(2027, 4, 1)),
        (TIER, "tier_gold", 2, date(2027, 3, 1), date(2027, 4, 1)),
    ]
    assert [e.source for e in entitlements(None, None, "tier_gold", tier, date(2027, 12, 31))] == [TIER, TIER]
    assert entitlements(None, None, "", [], date(2027, 12, 31)) == []
    assert [g.grant_key for g in grants_due("m", None, held, date(2027, 3, 5))] == ["tier-monthly:m:monthly:2027-03-01"]
    gift = [Benefit("bday", BIRTHDAY_POINTS, "生日积分", 0, "", 300)]
    in_week = entitlements(t, p, "tier_gold", gift, date(2027, 3, 5))
    keys = [g.grant_key for g in grants_due("m", "1990-03-07", in_week, date(2027, 3, 5))]
    assert keys == ["tier-birthday:m:bday:2027"]  # the plan's wash is used at the till, not issued
    assert grants_due("m", "1990-03-20", in_week, date(2027, 3, 5)) == []  # not the birthday week
    assert entitlements(None, None, "tier_gold", tier, date(2028, 1, 1))[0].period_start == date(2028, 1, 1)


def test_bad_tier_benefits_are_refused_as_a_plan_s():
    v = Violations()
    check_benefits(
        v,
        [
            Benefit("wash", SERVICE_QUOTA, "洗车", -1),
            Benefit("c", MONTHLY_COUPONS, "月券", 1),
            Benefit("wash", SERVICE_QUOTA, "洗车", 1),
        ],
        "tier.entitlements",
    )
    assert {x.field: x.reason for x in v.items} == {
        "tier.entitlements[0].quantity": "BENEFIT_QUANTITY_OUT_OF_RANGE",
        "tier.entitlements[1].coupon_template_id": "BENEFIT_TEMPLATE_REQUIRED",
        "tier.entitlements[2].code": "BENEFIT_CODE_REPEATED",
    }
