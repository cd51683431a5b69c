"""Tier programmes and the value score through the member service's stubs, on SQLite and
on PostgreSQL (issue 40; docs/loyalty.md). A module of its own: the programme is the
whole chain's. The jobs of days to come are run through the use case (the RPC takes no
day after today), on the service's own database."""

from datetime import UTC, date, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from huiyuan.member.v1 import loyalty_pb2 as pb, loyalty_pb2_grpc, member_pb2, tier_pb2
from huiyuan.runtime.clock import today, utcnow
from huiyuan.runtime.convert import calendar_day
from services.member.domain.loyalty import Downgrade, Measure, Programme, Window
from services.member.storage import loyalty as stored
from services.member.use_cases import loyalty
from tests.support import ACTOR, STORE, Stubs, ensure_org, refusal, rid

YUAN = 100


@pytest.fixture(scope="module")
def stubs(member_service):
    s = Stubs(member_service.channel)
    s.programme = loyalty_pb2_grpc.TierProgrammeServiceStub(member_service.channel)  # type: ignore[attr-defined]
    s.score = loyalty_pb2_grpc.ValueScoreServiceStub(member_service.channel)  # type: ignore[attr-defined]
    ensure_org(s)
    return s


@pytest.fixture(scope="module")
def ladder(stubs):
    made = {}
    for name, rank in [("银卡", 2), ("金卡", 3), ("员工", 9)]:
        made[name] = stubs.tier.CreateTier(
            tier_pb2.CreateTierRequest(
                request_id=rid(),
                actor=ACTOR,
                tier=tier_pb2.Tier(name=name, rank=rank, price_rate_bp=10000, points_multiplier_bp=10000),
            )
        ).tier
    return made


def version(ladder, **changes) -> pb.TierProgrammeVersion:
    fields = dict(
        effective_from=calendar_day(today()),
        measure=pb.TIER_MEASURE_SPEND,
        window=pb.TIER_WINDOW_ROLLING_DAYS,
        window_days=365,
        term_months=12,
        grace_days=0,
        downgrade_rule=pb.DOWNGRADE_RULE_TO_QUALIFIED,
        notice_days=30,
        tier_rules=[
            pb.TierRule(tier_id=ladder["银卡"].tier_id, upgrade_threshold=1_000 * YUAN, keep_threshold=800 * YUAN),
            pb.TierRule(tier_id=ladder["金卡"].tier_id, upgrade_threshold=5_000 * YUAN, keep_threshold=3_000 * YUAN),
        ],
        note="按近 12 个月消费定级",
    )
    fields.update(changes)
    return pb.TierProgrammeVersion(**fields)


@pytest.fixture(scope="module")
def programme(stubs, ladder):
    return stubs.programme.CreateTierProgrammeVersion(
        pb.CreateTierProgrammeVersionRequest(request_id=rid(), actor=ACTOR, version=version(ladder))
    ).version


def ago(days: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(utcnow() - timedelta(days=days))
    return stamp


def visit(stubs, member, amount_fen, days_ago=0):
    request = member_pb2.RecordVisitRequest(
        request_id=rid(),
        member_id=member.member_id,
        store_path=STORE,
        order_id=rid(),
        amount_fen=amount_fen,
        actor=ACTOR,
    )
    if days_ago:
        request.visit_time.CopyFrom(ago(days_ago))
    return stubs.member.RecordVisit(request)


def tier_of(stubs, member) -> str:
    return stubs.member.LookupMember(member_pb2.LookupMemberRequest(member_id=member.member_id)).tier.name


def history(stubs, member):
    return stubs.tier.ListTierHistory(tier_pb2.ListTierHistoryRequest(member_id=member.member_id)).tier_changes


def assign(stubs, member, tier, end: date | None = None):
    request = tier_pb2.AssignTierRequest(
        request_id=rid(), member_id=member.member_id, tier_id=tier.tier_id, reason="总部指定", actor=ACTOR
    )
    if end is not None:
        request.end_date.CopyFrom(calendar_day(end))
    return stubs.tier.AssignTier(request)


def progress(stubs, member):
    return stubs.programme.GetMemberTierProgress(pb.GetMemberTierProgressRequest(member_id=member.member_id)).progress


def run_job(member_service, day: date, **options):
    return member_service.run(loyalty.run_reevaluation(member_service.app.context.database, day, utcnow(), **options))


def set_term_end(member_service, member, tier, term_end: date):
    """The member's term on tier ends on term_end (as if reached a year before)."""

    async def write():
        async with member_service.app.context.database.transaction() as tx:
            await stored.save_terms(
                tx,
                [
                    {
                        "member_id": member.member_id,
                        "tier_id": tier.tier_id,
                        "term_end": term_end,
                        "evaluated_on": None,
                        "floor_tier_id": "",
                        "floor_end": None,
                    }
                ],
            )

    member_service.run(write())


def test_bad_programmes_are_refused_with_field_violations_and_nothing_is_written(stubs, ladder, programme):
    bad = version(
        ladder,
        effective_from=calendar_day(today() + timedelta(days=30)),
        window_days=800,
        term_months=0,
        grace_days=-1,
        tier_rules=[
            pb.TierRule(tier_id=ladder["银卡"].tier_id, upgrade_threshold=1_000, keep_threshold=-5),
            pb.TierRule(tier_id=ladder["金卡"].tier_id, upgrade_threshold=900, keep_threshold=2_000),
        ],
    )
    code, _, violations = refusal(
        stubs.programme.CreateTierProgrammeVersion,
        pb.CreateTierProgrammeVersionRequest(request_id=rid(), version=bad),
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations == {
        "version.window_days": "WINDOW_LONGER_THAN_HISTORY",
        "version.term_months": "TERM_OUT_OF_RANGE",
        "version.grace_days": "GRACE_OUT_OF_RANGE",
        "version.tier_rules[0].keep_threshold": "THRESHOLD_OUT_OF_RANGE",
        "version.tier_rules[1].keep_threshold": "KEEP_ABOVE_UPGRADE",
    }
    down = version(
        ladder,
        effective_from=calendar_day(today() + timedelta(days=30)),
        tier_rules=[
            pb.TierRule(tier_id=ladder["银卡"].tier_id, upgrade_threshold=1_000, keep_threshold=800),
            pb.TierRule(tier_id=ladder["金卡"].tier_id, upgrade_threshold=900, keep_threshold=850),
        ],
    )
    code, _, violations = refusal(
        stubs.programme.CreateTierProgrammeVersion, pb.CreateTierProgrammeVersionRequest(request_id=rid(), version=down)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations == {"version.tier_rules[1].upgrade_threshold": "THRESHOLDS_OUT_OF_ORDER"}
    points = version(ladder, measure=pb.TIER_MEASURE_POINTS_EARNED, effective_from=calendar_day(today() + timedelta(1)))
    _, _, violations = refusal(
        stubs.programme.CreateTierProgrammeVersion,
        pb.CreateTierProgrammeVersionRequest(request_id=rid(), version=points),
    )
    assert violations == {"version.measure": "MEASURE_NOT_AVAILABLE"}
    past = version(ladder, effective_from=calendar_day(today() - timedelta(days=1)))
    _, _, violations = refusal(
        stubs.programme.CreateTierProgrammeVersion, pb.CreateTierProgrammeVersionRequest(request_id=rid(), version=past)
    )
    assert violations == {"version.effective_from": "EFFECTIVE_FROM_IN_PAST"}
    code, reason, _ = refusal(
        stubs.programme.CreateTierProgrammeVersion,
        pb.CreateTierProgrammeVersionRequest(request_id=rid(), version=version(ladder)),
    )
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "PROGRAMME_VERSION_EXISTS")
    listed = stubs.programme.ListTierProgrammeVersions(pb.ListTierProgrammeVersionsRequest()).versions
    assert [v.version_id for v in listed] == [programme.version_id]
    assert [r.tier_id for r in listed[0].tier_rules] == [ladder["银卡"].tier_id, ladder["金卡"].tier_id]


def test_members_climb_by_the_programme_s_window(stubs, ladder, programme):
    """¥3,200 in the last 12 months (¥1,200 200 days ago, ¥2,000 in the last 6 months),
    and ¥9,000 400 days ago that the window does not count."""
    member = stubs.register("窗口")
    visit(stubs, member, 9_000 * YUAN, days_ago=400)
    assert tier_of(stubs, member) == ""  # a year and more ago: not in the window
    first = visit(stubs, member, 1_200 * YUAN, days_ago=200)
    assert first.tier_reached.name == "银卡"
    assert first.tier_change.reason == "近 365 天消费 ¥1,200.00,达到银卡(满 ¥1,000.00)"
    visit(stubs, member, 2_000 * YUAN, days_ago=90)
    shown = progress(stubs, member)
    assert (shown.measure_value, shown.next_tier_id, shown.next_shortfall) == (
        3_200 * YUAN,
        ladder["金卡"].tier_id,
        1_800 * YUAN,
    )
    assert shown.term_end == calendar_day(date(today().year + 1, today().month, today().day) - timedelta(days=1))
    assert shown.keep_shortfall == 0 and not shown.HasField("downgrade_date")
    assert shown.message == "再消费 ¥1,800.00 即可升级为金卡"
    assert visit(stubs, member, 1_800 * YUAN).tier_reached.name == "金卡"


def test_a_hand_given_tier_is_kept_to_its_end_date_then_the_member_moves_down(stubs, ladder, programme, member_service):
    kept, falls = stubs.register("保级"), stubs.register("降级")
    visit(stubs, kept, 3_200 * YUAN, days_ago=100)
    visit(stubs, falls, 2_000 * YUAN, days_ago=100)
    for member in (kept, falls):
        assign(stubs, member, ladder["金卡"], end=today())
        assert tier_of(stubs, member) == "金卡"
    shown = progress(stubs, falls)
    assert shown.floor_tier_id == ladder["金卡"].tier_id and shown.floor_end == calendar_day(today())
    assert shown.downgrade_date == calendar_day(today() + timedelta(days=1))  # the day after the end date
    assert shown.keep_shortfall == 1_000 * YUAN and shown.message.startswith("再消费 ¥1,000.00 即可保级")
    at_risk = stubs.programme.ListMembersAtRisk(pb.ListMembersAtRiskRequest(org_path="hq/east")).members
    assert falls.member_id in [m.member_id for m in at_risk] and kept.member_id not in [m.member_id for m in at_risk]
    assert stubs.programme.ListMembersAtRisk(pb.ListMembersAtRiskRequest(org_path="hq/west")).members == []

    first = stubs.programme.RunTierReevaluation(
        pb.RunTierReevaluationRequest(request_id=rid(), business_date=calendar_day(today()))
    )
    assert first.renewed >= 1 and first.in_grace >= 1 and first.downgraded == 0
    assert tier_of(stubs, kept) == "金卡" and tier_of(stubs, falls) == "金卡"  # given by hand until today
    assert progress(stubs, kept).term_end == calendar_day(
        date(today().year + 1, today().month, today().day)
    )  # the next term follows the given one

    tomorrow = today() + timedelta(days=1)
    run = run_job(member_service, tomorrow)
    assert run.downgraded >= 1
    assert tier_of(stubs, falls) == "银卡"  # ¥2,000 keeps 银卡 (to the tier qualified for)
    assert history(stubs, falls)[0].reason == "近 365 天消费 ¥2,000.00,不足金卡保级(需 ¥3,000.00)"
    before = [len(history(stubs, m)) for m in (kept, falls)]
    again = run_job(member_service, tomorrow)  # run twice: nothing changes the second time
    assert (again.downgraded, again.evaluated) == (run.downgraded, run.evaluated)
    assert [len(history(stubs, m)) for m in (kept, falls)] == before


def test_the_reevaluation_resumes_after_it_was_stopped_half_way(stubs, ladder, programme, member_service):
    day = today() + timedelta(days=3)
    members = [stubs.register(f"续跑{i}") for i in range(7)]
    for i, member in enumerate(members):
        visit(stubs, member, (900 if i % 2 else 100) * YUAN, days_ago=10)
        assign(stubs, member, ladder["金卡"])
        set_term_end(member_service, member, ladder["金卡"], day - timedelta(days=1))
    # batches of 3 members, each run killed after one batch, until one decided some
    stopped = run_job(member_service, day, batch=3, stop_after=1)
    while stopped.evaluated == 0:
        stopped = run_job(member_service, day, batch=3, stop_after=1)
    assert 0 < stopped.evaluated < 7 and not stopped.done
    finished = run_job(member_service, day, batch=3)
    assert finished.evaluated == 7 and finished.downgraded == 7
    assert [tier_of(stubs, m) for m in members] == ["" if i % 2 == 0 else "银卡" for i in range(7)]
    assert all(len(history(stubs, m)) == 2 for m in members)  # assigned, then moved once
    assert run_job(member_service, day).evaluated == 7  # done: the same run, nothing more
    assert all(len(history(stubs, m)) == 2 for m in members)


def test_a_calendar_year_counts_business_days_in_shanghai(stubs, member_service):
    member = stubs.register("跨年")
    for moment in (datetime(2025, 12, 31, 15, 30, tzinfo=UTC), datetime(2025, 12, 31, 16, 30, tzinfo=UTC)):
        stamp = Timestamp()
        stamp.FromDatetime(moment)
        stubs.member.RecordVisit(
            member_pb2.RecordVisitRequest(
                request_id=rid(),
                member_id=member.member_id,
                store_path=STORE,
                order_id=rid(),
                amount_fen=(100 if moment.hour == 15 else 200) * YUAN,
                visit_time=stamp,
            )
        )
    year = Programme("", date(2025, 1, 1), Measure.SPEND, Window.CALENDAR_YEAR, 0, 12, 0, Downgrade.ONE_LEVEL, 0, [])

    async def count(day):
        async with member_service.app.context.database.reading() as tx:
            return await loyalty.measure_of(tx, year, member.member_id, day)

    # 23:30 on 31 December in Shanghai is 2025's; 00:30 on 1 January is 2026's
    assert member_service.run(count(date(2025, 12, 31))) == 100 * YUAN
    assert member_service.run(count(date(2026, 1, 1))) == 200 * YUAN


def test_the_value_score_explains_itself_and_its_monthly_run_is_idempotent(stubs, member_service):
    code, _, violations = refusal(
        stubs.score.SetValueScoreWeights,
        pb.SetValueScoreWeightsRequest(
            request_id=rid(), weights=pb.ValueScoreWeights(recency_bp=-1, frequency_bp=5000, spend_bp=5001)
        ),
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations == {"weights.recency_bp": "WEIGHT_OUT_OF_RANGE"}
    set_ = stubs.score.SetValueScoreWeights(
        pb.SetValueScoreWeightsRequest(
            request_id=rid(),
            weights=pb.ValueScoreWeights(
                recency_bp=2000, frequency_bp=2000, spend_bp=3000, tenure_bp=1000, engagement_bp=2000
            ),
        )
    )
    assert set_.weights.spend_bp == 3000
    assert stubs.score.GetValueScoreWeights(pb.GetValueScoreWeightsRequest()).weights.spend_bp == 3000
    member = stubs.register("价值分", marketing_consent=True)
    code, reason, _ = refusal(stubs.score.GetValueScore, pb.GetValueScoreRequest(member_id=member.member_id))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "VALUE_SCORE_NOT_FOUND")
    visit(stubs, member, 3_200 * YUAN, days_ago=3)
    score = stubs.score.RecomputeValueScore(
        pb.RecomputeValueScoreRequest(request_id=rid(), member_id=member.member_id)
    ).score
    parts = {c.component: c for c in score.components}
    assert parts["recency"].raw == 1000 and parts["spend"].detail == "近 12 个月消费 ¥3,200.00"
    assert parts["spend"].points == 160 * 3000 // 10000
    assert parts["engagement"].raw == 300  # marketing consent only
    assert score.score == sum(c.points for c in score.components)
    assert stubs.score.GetValueScore(pb.GetValueScoreRequest(member_id=member.member_id)).score == score

    month = date(today().year, today().month, 1)
    database = member_service.app.context.database
    # next month's run (as the 1st will run it), stopped after a batch and run again,
    # scores every member once; a third run changes nothing
    nxt = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    partial = member_service.run(loyalty.run_value_scores(database, nxt, utcnow(), batch=2, stop_after=1))
    assert partial == 2
    total = member_service.run(loyalty.run_value_scores(database, nxt, utcnow(), batch=2))
    assert total > 2
    assert total == member_service.run(loyalty.run_value_scores(database, nxt, utcnow(), batch=2))
    request = pb.RunValueScoreRecomputeRequest(request_id=rid(), month=calendar_day(month))
    first = stubs.score.RunValueScoreRecompute(request)
    assert stubs.score.RunValueScoreRecompute(request) == first  # a replay
    assert stubs.score.RunValueScoreRecompute(pb.RunValueScoreRecomputeRequest(request_id=rid())).scored == first.scored
    assert first.scored == 0  # every member of this month's start was scored (none: they are all new)
    scores = stubs.score.ListValueScoreHistory(pb.ListValueScoreHistoryRequest(member_id=member.member_id)).scores
    assert [s.month for s in scores] == [calendar_day(nxt), calendar_day(month)]
    assert scores[0].has_previous and scores[0].previous_score == scores[1].score == score.score
    spend = {c.component: c for c in scores[0].components}["spend"]
    assert spend.change == 0 and spend.points == parts["spend"].points  # the same 12 months' spend


def test_the_monthly_run_scores_as_the_rule_does_member_by_member(stubs, member_service):
    """On PostgreSQL the monthly run scores a span in one statement; its scores, inputs
    and components are the domain rule's (value_score.score_of) for every member."""
    from google.type.date_pb2 import Date

    made = [
        stubs.register("价值分一", marketing_consent=True, gender=member_pb2.GENDER_FEMALE),
        stubs.register("价值分二", birthday=Date(year=1990, month=2, day=28)),
        stubs.register("价值分三", marketing_consent=True, birthday=Date(year=1988, month=12, day=31)),
        stubs.register("价值分四"),
    ]
    for days_ago, amount in [(1, 40_000 * YUAN), (20, 120 * YUAN), (200, 35 * YUAN), (364, 1 * YUAN)]:
        visit(stubs, made[0], amount, days_ago=days_ago)
    visit(stubs, made[1], 900 * YUAN, days_ago=40)
    for days_ago in range(2, 120, 2):
        visit(stubs, made[2], 10 * YUAN, days_ago=days_ago)
    order = rid()
    stubs.member.RecordVisit(
        member_pb2.RecordVisitRequest(
            request_id=rid(), member_id=made[1].member_id, store_path=STORE, order_id=order, amount_fen=500 * YUAN
        )
    )
    for amount in (150 * YUAN, 50 * YUAN):  # two returns of one order: the visit counted once
        stubs.member.RecordReturn(
            member_pb2.RecordReturnRequest(
                request_id=rid(), member_id=made[1].member_id, order_id=order, return_id=rid(), amount_fen=amount
            )
        )
    database = member_service.app.context.database
    month = date(today().year, today().month, 1)
    later = date(month.year + (month.month >= 11), (month.month + 1) % 12 + 1, 1)  # two months on: none scored
    ids = [m.member_id for m in made]
    member_service.run(loyalty.run_value_scores(database, later, utcnow(), batch=3))

    async def both():
        async with database.reading() as tx:
            w, _ = await loyalty.weights(tx)
            expected = await loyalty._scores(tx, ids, later, later - timedelta(days=1), w)
            kept = {m: (await stored.scores_of(tx, m, None, 1))[0][0] for m in ids}
            return {s.member_id: s for s in expected}, kept

    expected, kept = member_service.run(both())
    assert kept == expected
    assert kept[made[0].member_id].raw["spend"] == 1000 and kept[made[3].member_id].inputs.days_since_visit is None
    assert kept[made[1].member_id].inputs.spend_fen == 1_200 * YUAN
    assert kept[made[1].member_id].inputs.visits == 2
