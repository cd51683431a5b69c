"""Table tests of the tier programmes' rules and the value score (domain/loyalty.py,
domain/value_score.py), from the domain texts' examples: pure, no service."""

from datetime import date

import pytest

from huiyuan.runtime.business_time import day_start
from huiyuan.runtime.errors import Violations
from services.member.domain import loyalty as rules
from services.member.domain.loyalty import Downgrade, Measure, Outcome, Programme, Rule, Term, Window
from services.member.domain.value_score import DEFAULT_WEIGHTS, Inputs, check_weights, explain, score_of

YUAN = 100
RANKS = {"silver": 2, "gold": 3, "platinum": 4, "staff": 9}
NAMES = {"silver": "银卡", "gold": "金卡", "platinum": "铂金卡", "staff": "员工"}
LADDER = [
    Rule("silver", 1_000 * YUAN, 800 * YUAN),
    Rule("gold", 5_000 * YUAN, 3_000 * YUAN),
    Rule("platinum", 10_000 * YUAN, 8_000 * YUAN),
]


def programme(window_days=365, downgrade=Downgrade.ONE_LEVEL, grace=0, window=Window.ROLLING_DAYS, rules_=None):
    return Programme(
        "v1",
        date(2026, 1, 1),
        Measure.SPEND,
        window,
        window_days if window == Window.ROLLING_DAYS else 0,
        12,
        grace,
        downgrade,
        30,
        rules_ or LADDER,
    )


END = date(2026, 12, 6)


# A member who spent ¥3,200 in the last 12 months and ¥2,000 in the last 6, at the end
# of their term (the window is the programme's: 365 or 182 days).
@pytest.mark.parametrize(
    ("tier", "window_days", "downgrade", "spent", "outcome", "after"),
    [
        ("gold", 365, Downgrade.ONE_LEVEL, 3_200, Outcome.RENEW, "gold"),  # ¥3,200 >= keep ¥3,000
        ("gold", 182, Downgrade.ONE_LEVEL, 2_000, Outcome.DOWN, "silver"),
        ("gold", 182, Downgrade.TO_QUALIFIED, 2_000, Outcome.DOWN, "silver"),  # ¥2,000 keeps silver
        ("platinum", 365, Downgrade.ONE_LEVEL, 3_200, Outcome.DOWN, "gold"),
        ("platinum", 365, Downgrade.TO_QUALIFIED, 3_200, Outcome.DOWN, "gold"),  # keeps gold's ¥3,000
        ("platinum", 182, Downgrade.ONE_LEVEL, 2_000, Outcome.DOWN, "gold"),
        ("platinum", 182, Downgrade.TO_QUALIFIED, 2_000, Outcome.DOWN, "silver"),  # not gold's ¥3,000
        ("silver", 182, Downgrade.TO_QUALIFIED, 500, Outcome.DOWN, ""),  # below every keep: none
    ],
)
def test_a_member_at_the_end_of_their_term(tier, window_days, downgrade, spent, outcome, after):
    p = programme(window_days, downgrade)
    decision = rules.decide(p, RANKS, NAMES, tier, Term(tier, END), spent * YUAN, END)
    assert (decision.outcome, decision.tier_id) == (outcome, after)
    if outcome == Outcome.RENEW:
        assert decision.term_end == date(2027, 12, 6)  # the next term follows the last one
    if outcome == Outcome.DOWN:
        assert f"不足{NAMES[tier]}保级" in decision.reason
        assert decision.term_end == (date(2027, 12, 5) if after else None)  # a new term from the move


def test_the_tier_page_says_what_keeps_the_tier_exactly_in_fen():
    p = programme(182)
    shown = rules.progress(p, RANKS, NAMES, "m", "gold", Term("gold", END), 2_880 * YUAN, date(2026, 11, 20))
    assert shown.keep_shortfall == 120 * YUAN and shown.downgrade_date == END
    assert shown.messages[0] == "再消费 ¥120.00 即可保级"
    assert (shown.next_tier_id, shown.next_shortfall) == ("platinum", 7_120 * YUAN)
    assert shown.messages[1] == "再消费 ¥7,120.00 即可升级为铂金卡"
    kept = rules.progress(p, RANKS, NAMES, "m", "gold", Term("gold", END), 3_000 * YUAN, date(2026, 11, 20))
    assert kept.keep_shortfall == 0 and kept.downgrade_date is None and not kept.at_risk
    assert rules.at_risk_on(p, Term("gold", END), date(2026, 11, 6))  # 30 days' notice
    assert not rules.at_risk_on(p, Term("gold", END), date(2026, 11, 5))


def test_the_grace_period_delays_the_move_and_a_member_who_catches_up_keeps_the_tier():
    p = programme(182, grace=14)
    term = Term("gold", END)
    assert rules.decide(p, RANKS, NAMES, "gold", term, 2_000 * YUAN, END).outcome == Outcome.GRACE
    assert rules.decide(p, RANKS, NAMES, "gold", term, 2_000 * YUAN, date(2026, 12, 19)).outcome == Outcome.GRACE
    assert rules.decide(p, RANKS, NAMES, "gold", term, 2_000 * YUAN, date(2026, 12, 20)).outcome == Outcome.DOWN
    caught_up = rules.decide(p, RANKS, NAMES, "gold", term, 3_100 * YUAN, date(2026, 12, 15))
    assert caught_up.outcome == Outcome.RENEW and caught_up.term_end == date(2027, 12, 6)


def test_a_downgrade_across_a_year_end_counts_the_year_that_ended():
    """Calendar-year programme, term ending 31 December: the run of 31 December counts
    2026; a run late, on 2 January, still counts 2026 for the term that ended (2027 has
    hardly begun), and a member below the keep threshold in 2026 moves down on it."""
    p = programme(window=Window.CALENDAR_YEAR)
    term = Term("gold", date(2026, 12, 31))
    assert p.window_start(date(2026, 12, 31)) == date(2026, 1, 1)
    assert p.window_start(date(2027, 1, 2)) == date(2027, 1, 1)
    # the window's edge is midnight in Shanghai: 2025-12-31T16:00Z
    assert day_start(date(2026, 1, 1)).isoformat() == "2026-01-01T00:00:00+08:00"
    on_time = rules.decide(p, RANKS, NAMES, "gold", term, 3_200 * YUAN, date(2026, 12, 31))
    assert on_time.outcome == Outcome.RENEW and on_time.term_end == date(2027, 12, 31)
    late = rules.decide(p, RANKS, NAMES, "gold", term, 0, date(2027, 1, 2), value_at_end=3_200 * YUAN)
    assert late.outcome == Outcome.RENEW
    fell = rules.decide(p, RANKS, NAMES, "gold", term, 0, date(2027, 1, 2), value_at_end=2_000 * YUAN)
    assert (fell.outcome, fell.tier_id) == (Outcome.DOWN, "silver")
    assert fell.reason == "本年度消费 ¥0.00,不足金卡保级(需 ¥3,000.00)"


def test_a_tier_given_by_hand_is_kept_until_its_end_date():
    p = programme(182, downgrade=Downgrade.TO_QUALIFIED)
    given = Term("platinum", date(2027, 3, 31), None, "platinum", date(2027, 3, 31))
    assert rules.decide(p, RANKS, NAMES, "platinum", given, 0, date(2027, 3, 30)).outcome == Outcome.NONE
    assert rules.downgrade_date(p, given) == date(2027, 4, 1)  # the day after the end date
    assert rules.decide(p, RANKS, NAMES, "platinum", given, 0, date(2027, 3, 31)).outcome == Outcome.GRACE
    after = rules.decide(p, RANKS, NAMES, "platinum", given, 0, date(2027, 4, 1))
    assert (after.outcome, after.tier_id) == (Outcome.DOWN, "")
    # a floor below the tier: a gold member given silver until June falls no lower
    floored = Term("gold", END, None, "silver", date(2027, 6, 30))
    assert rules.decide(p, RANKS, NAMES, "gold", floored, 0, END).tier_id == "silver"
    # a staff tier outside the programme is never moved
    assert rules.decide(p, RANKS, NAMES, "staff", Term("staff", END), 0, END).outcome == Outcome.NONE


def test_a_decided_day_is_not_decided_again_and_a_term_is_started_for_a_tier_without_one():
    p = programme()
    done = Term("gold", END, evaluated_on=END)
    assert rules.decide(p, RANKS, NAMES, "gold", done, 0, END).outcome == Outcome.NONE
    started = rules.decide(p, RANKS, NAMES, "gold", None, 0, date(2026, 12, 7))
    assert (started.outcome, started.term_end) == (Outcome.START, date(2027, 12, 6))
    up = rules.decide(p, RANKS, NAMES, "silver", Term("silver", date(2027, 5, 1)), 6_000 * YUAN, END)
    assert (up.outcome, up.tier_id) == (Outcome.UP, "gold")


def test_climbs_and_the_returns_that_undo_them():
    p = programme()
    assert rules.climb_to(p, RANKS, "", 3_200 * YUAN).tier_id == "silver"
    assert rules.climb_to(p, RANKS, "gold", 6_000 * YUAN) is None
    assert rules.climb_to(p, RANKS, "staff", 20_000 * YUAN) is None  # staff outranks the programme
    climbs = [("silver", "gold"), ("", "silver")]
    assert rules.tier_after_return(p, RANKS, "gold", climbs, 4_000 * YUAN) == "silver"
    assert rules.tier_after_return(p, RANKS, "gold", climbs, 500 * YUAN) == ""
    assert rules.tier_after_return(p, RANKS, "gold", climbs, 5_000 * YUAN) == "gold"


def refused(p: Programme, today=date(2026, 1, 1)) -> set[tuple[str, str]]:
    v = Violations()
    rules.check_programme(v, p, today)
    if not v:
        rules.check_rules(v, p.rules, RANKS)
    return {(x.field, x.reason) for x in v.items}


def test_bad_programmes_are_refused_with_field_violations():
    good = programme()
    assert refused(good) == set()
    down = programme(rules_=[Rule("silver", 1_000, 800), Rule("gold", 900, 850)])
    assert ("version.tier_rules[1].upgrade_threshold", "THRESHOLDS_OUT_OF_ORDER") in refused(down)
    same = programme(rules_=[Rule("silver", 1_000, 800), Rule("gold", 1_000, 900)])  # both reached at once
    assert ("version.tier_rules[1].upgrade_threshold", "THRESHOLDS_OUT_OF_ORDER") in refused(same)
    keep_down = programme(rules_=[Rule("silver", 1_000, 800), Rule("gold", 5_000, 700)])
    assert ("version.tier_rules[1].keep_threshold", "THRESHOLDS_OUT_OF_ORDER") in refused(keep_down)
    keeps = programme(rules_=[Rule("silver", 1_000, 800), Rule("gold", 5_000, 5_100)])
    assert ("version.tier_rules[1].keep_threshold", "KEEP_ABOVE_UPGRADE") in refused(keeps)
    zero_term = programme()
    zero_term.term_months = 0
    assert ("version.term_months", "TERM_OUT_OF_RANGE") in refused(zero_term)
    too_long = programme(731)
    assert ("version.window_days", "WINDOW_LONGER_THAN_HISTORY") in refused(too_long)
    negative = programme(rules_=[Rule("silver", -1, -5)])
    assert ("version.tier_rules[0].upgrade_threshold", "THRESHOLD_OUT_OF_RANGE") in refused(negative)
    negative.grace_days = -1
    assert ("version.grace_days", "GRACE_OUT_OF_RANGE") in refused(negative)
    points = programme()
    points.measure = Measure.POINTS_EARNED
    assert ("version.measure", "MEASURE_NOT_AVAILABLE") in refused(points)
    past = programme()
    assert ("version.effective_from", "EFFECTIVE_FROM_IN_PAST") in refused(past, today=date(2026, 1, 2))


def test_versions_apply_from_their_day_and_terms_end_by_the_calendar():
    v1, v2 = programme(), programme()
    v2.effective_from = date(2026, 7, 1)
    assert rules.in_force([v1, v2], date(2026, 6, 30)) is v1
    assert rules.in_force([v1, v2], date(2026, 7, 1)) is v2
    assert rules.in_force([v2], date(2026, 6, 30)) is None
    assert rules.add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert programme().term_end(date(2024, 2, 29)) == date(2025, 2, 27)


def inputs(**changes) -> Inputs:
    base = dict(
        days_since_visit=3,
        visits=26,
        spend_fen=320_000,
        tenure_months=30,
        consent=True,
        birthday=True,
        gender=False,
        care_contact=False,
    )
    return Inputs(**{**base, **changes})


def test_the_value_score_adds_up_and_explains_what_moved_it():
    this = score_of("m", date(2026, 12, 1), inputs(), DEFAULT_WEIGHTS)
    assert this.raw == {"recency": 1000, "frequency": 500, "spend": 160, "tenure": 500, "engagement": 500}
    assert this.score == 200 + 100 + 32 + 100 + 100 == sum(this.points().values())
    before = score_of("m", date(2026, 11, 1), inputs(days_since_visit=200, spend_fen=100_000), DEFAULT_WEIGHTS)
    lines = {x.component: x for x in explain(this, before)}
    assert lines["recency"].change > 0 and lines["spend"].change > 0 and lines["tenure"].change == 0
    assert lines["spend"].detail == "近 12 个月消费 ¥3,200.00"
    assert (
        score_of("m", date(2026, 12, 1), inputs(days_since_visit=None, visits=0, spend_fen=-5), DEFAULT_WEIGHTS).raw[
            "recency"
        ]
        == 0
    )
    everything = inputs(visits=99, spend_fen=10**9, tenure_months=99, gender=True, care_contact=True)
    assert score_of("m", date(2026, 12, 1), everything, DEFAULT_WEIGHTS).score == 1000


def test_weights_are_non_negative_and_sum_to_10000():
    v = Violations()
    check_weights(v, {"recency": -1, "frequency": 5001, "spend": 5000, "tenure": 0, "engagement": 0})
    assert {(x.field, x.reason) for x in v.items} == {("weights.recency_bp", "WEIGHT_OUT_OF_RANGE")}
    v = Violations()
    check_weights(v, {"recency": 2000, "frequency": 2000, "spend": 2000, "tenure": 2000, "engagement": 1000})
    assert {x.reason for x in v.items} == {"WEIGHTS_NOT_10000"}
