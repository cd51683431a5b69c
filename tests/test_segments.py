"""Automatic tags and saved segments (issue 40, item 5), on SQLite and PostgreSQL: each
rule kind on a population built by hand, with visits either side of midnight in
Asia/Shanghai; the job run twice (nothing changes the second time) and killed half-way
(the next run finishes); hand-set tags untouched; segments counted, listed and
exported; bad input refused with field violations, nothing written.

The job is run as the daily loop runs it (use_cases/segments.run_rules) at a chosen
moment, NOW: 00:30 in Shanghai three days after today, so that windows end after the
visits recorded now and a window's first day starts at today's midnight."""

import csv
import io
import itertools
from datetime import timedelta

import grpc
import pytest
from google.protobuf import timestamp_pb2
from sqlalchemy import text

from huiyuan.common.v1 import file_pb2
from huiyuan.database import make_sync_engine
from huiyuan.member.v1 import member_pb2, org_pb2, segment_pb2 as pb, segment_pb2_grpc
from huiyuan.runtime.business_time import day_start
from huiyuan.runtime.clock import today
from services.member.use_cases import segments as job
from tests.support import ACTOR, STORE, Stubs, ensure_org, refusal, rid

OK = grpc.StatusCode
D0 = today()
MIDNIGHT = day_start(D0)  # today's first moment in Shanghai, in UTC
NOW = day_start(D0 + timedelta(days=3)) + timedelta(minutes=30)
_regions = itertools.count(1)


@pytest.fixture(scope="module")
def stubs(member_service):
    job.JOB_INTERVAL_S = 10**6  # the loop's pass at start only: these tests run the job themselves
    s = Stubs(member_service.channel)
    s.segments = segment_pb2_grpc.SegmentServiceStub(member_service.channel)
    s.service = member_service
    ensure_org(s)
    return s


def run(stubs, **options):
    return stubs.service.run(job.run_rules(stubs.service.app.context.database, NOW, **options), timeout=120)


def sql(stubs, statement: str, **params) -> None:
    url = stubs.service.settings.database_url
    engine = make_sync_engine(url, "member")
    with engine.begin() as connection:
        connection.execute(text(statement), params)
    engine.dispose()


def region(stubs) -> tuple[str, str]:
    """A region of its own with one store: (region, store)."""
    code = f"t{next(_regions)}x{rid()[:4]}"
    for parent, c, kind in [
        ("hq", code, org_pb2.ORG_NODE_KIND_REGION),
        (f"hq/{code}", "s1", org_pb2.ORG_NODE_KIND_STORE),
    ]:
        stubs.org.CreateOrgNode(
            org_pb2.CreateOrgNodeRequest(
                request_id=rid(),
                parent_path=parent,
                org_node=org_pb2.OrgNode(code=c, name=c, kind=kind, time_zone="Asia/Shanghai"),
            )
        )
    return f"hq/{code}", f"hq/{code}/s1"


def member(stubs, store, name="会员", registered_days_ago=0, **fields):
    m = stubs.register(name, home_store_path=store, **fields)
    if registered_days_ago:
        sql(
            stubs,
            "UPDATE members SET create_time = :t WHERE member_id = :m",
            t=MIDNIGHT - timedelta(days=registered_days_ago),
            m=m.member_id,
        )
    return m


def visit(stubs, m, store, when, amount_fen=1000):
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    stubs.member.RecordVisit(
        member_pb2.RecordVisitRequest(
            request_id=rid(),
            member_id=m.member_id,
            store_path=store,
            order_id=rid(),
            amount_fen=amount_fen,
            visit_time=stamp,
            actor=ACTOR,
        )
    )


def rule(stubs, org_path, tag, **kind):
    return stubs.segments.CreateTagRule(
        pb.CreateTagRuleRequest(request_id=rid(), tag_rule=pb.TagRule(org_path=org_path, tag=tag, **kind), actor=ACTOR)
    ).tag_rule


def tagged(stubs, tag, org_path) -> set[str]:
    found = stubs.member.ListMembers(
        member_pb2.ListMembersRequest(filter=member_pb2.MemberFilter(tag=tag, org_path=org_path), page_size=500)
    )
    return {m.member_id for m in found.members}


def auto_tags(stubs, m) -> list[str]:
    return list(stubs.member.GetMember(member_pb2.GetMemberRequest(member_id=m.member_id)).member.automatic_tags)


def test_visits_in_the_window_count_from_midnight_in_shanghai(stubs):
    node, store = region(stubs)
    two = member(stubs, store, "两次")
    visit(stubs, two, store, MIDNIGHT)  # 00:00 today in Shanghai: the window's first moment
    visit(stubs, two, store, MIDNIGHT + timedelta(seconds=1))
    one = member(stubs, store, "一次")
    visit(stubs, one, store, MIDNIGHT - timedelta(seconds=1))  # 23:59:59 yesterday: outside
    visit(stubs, one, store, MIDNIGHT)
    none = member(stubs, store, "没来")
    tag_hi, tag_lo, tag_le = f"高{node[-4:]}", f"低{node[-4:]}", f"少{node[-4:]}"
    rule(stubs, node, tag_hi, visits=pb.VisitsRule(window_days=4, min_visits=2))  # today and the 3 days after
    rule(stubs, node, tag_lo, visits=pb.VisitsRule(window_days=4, min_visits=1, max_visits=1))
    rule(stubs, node, tag_le, visits=pb.VisitsRule(window_days=4, max_visits=1))  # 0 or 1: the absent too
    run(stubs)
    assert tagged(stubs, tag_hi, node) == {two.member_id}
    assert tagged(stubs, tag_lo, node) == {one.member_id}
    assert tagged(stubs, tag_le, node) == {one.member_id, none.member_id}
    assert auto_tags(stubs, two) == [tag_hi]
    # a window one day longer takes in yesterday's 23:59:59
    wider = f"宽{node[-4:]}"
    rule(stubs, node, wider, visits=pb.VisitsRule(window_days=5, min_visits=2))
    run(stubs)
    assert tagged(stubs, wider, node) == {two.member_id, one.member_id}


def test_no_visit_for_n_days_takes_those_who_never_came_and_registered_before(stubs):
    node, store = region(stubs)
    quiet = member(stubs, store, "沉睡", registered_days_ago=30)
    visit(stubs, quiet, store, MIDNIGHT - timedelta(seconds=1))
    back = member(stubs, store, "回来", registered_days_ago=30)
    visit(stubs, back, store, MIDNIGHT)
    never = member(stubs, store, "从未", registered_days_ago=30)
    member(stubs, store, "新人")  # registered today: inside the 4 days
    tag = f"睡{node[-4:]}"
    rule(stubs, node, tag, dormant=pb.DormantRule(days=4))
    run(stubs)
    assert tagged(stubs, tag, node) == {quiet.member_id, never.member_id}


def test_spend_rank_takes_the_top_share_of_the_node_s_members(stubs):
    node, store = region(stubs)
    spent = {}
    for amount in (300, 200, 100, 0):
        m = member(stubs, store, f"花{amount}")
        if amount:
            visit(stubs, m, store, MIDNIGHT + timedelta(seconds=5), amount * 100)
        spent[amount] = m
    old = member(stubs, store, "以前多")
    visit(stubs, old, store, MIDNIGHT - timedelta(days=2), 10**7)  # before the window
    tag = f"值{node[-4:]}"
    rule(stubs, node, tag, spend_rank=pb.SpendRankRule(window_days=4, top_percent=40))  # 40% of 5: 2
    run(stubs)
    assert tagged(stubs, tag, node) == {spent[300].member_id, spent[200].member_id}
    # a member elsewhere is never ranked here
    other = member(stubs, "hq/south/gz-001", "南方")
    visit(stubs, other, "hq/south/gz-001", MIDNIGHT + timedelta(seconds=5), 10**6)
    run(stubs, rule_id=stubs.segments.ListTagRules(pb.ListTagRulesRequest(org_path=node)).tag_rules[-1].rule_id)
    assert other.member_id not in tagged(stubs, tag, "hq")


def test_an_rfm_cell_selects_as_summarize_members_scores(stubs):
    node, store = region(stubs)
    made = []
    for i in range(1, 6):  # spends 1..5 yuan: monetary scores 1..5
        m = member(stubs, store, f"rfm{i}")
        for _ in range(i):
            visit(stubs, m, store, MIDNIGHT - timedelta(days=6 - i), 100)
        made.append(m)
    member(stubs, store, "不来")  # never visited: no scores
    tag = f"R{node[-4:]}"
    rule(stubs, node, tag, rfm=pb.RfmRange(monetary=pb.ScoreRange(min=4, max=5)))
    run(stubs)
    assert tagged(stubs, tag, node) == {made[3].member_id, made[4].member_id}
    summary = stubs.member.SummarizeMembers(member_pb2.SummarizeMembersRequest(org_path=node))
    assert sum(c.members for c in summary.rfm_cells if c.monetary_score >= 4) == 2
    cell = f"C{node[-4:]}"  # recent and frequent, middle spend: scores r 3, f 3, m 3
    rule(
        stubs,
        node,
        cell,
        rfm=pb.RfmRange(
            recency=pb.ScoreRange(min=3, max=3),
            frequency=pb.ScoreRange(min=3, max=3),
            monetary=pb.ScoreRange(min=3, max=3),
        ),
    )
    run(stubs)
    wanted = [(c.recency_score, c.frequency_score, c.monetary_score) for c in summary.rfm_cells]
    assert (3, 3, 3) in wanted
    assert tagged(stubs, cell, node) == {made[2].member_id}


def test_rules_of_the_whole_chain_rank_every_member(stubs):
    """The root's rules read no member's home store (every member is under it): an RFM
    cell selects as SummarizeMembers scores the chain, and the spend rank takes the top
    share of every member, the region's big spender among them."""
    node, store = region(stubs)
    big = member(stubs, store, "全网第一")
    visit(stubs, big, store, MIDNIGHT + timedelta(seconds=5), 10**8)
    tag = f"全R{node[-4:]}"
    rule(stubs, "hq", tag, rfm=pb.RfmRange(monetary=pb.ScoreRange(min=5, max=5)))
    top = f"全值{node[-4:]}"
    rule(stubs, "hq", top, spend_rank=pb.SpendRankRule(window_days=4, top_percent=1))
    run(stubs)
    summary = stubs.member.SummarizeMembers(member_pb2.SummarizeMembersRequest(org_path="hq"))
    chosen = tagged(stubs, tag, "hq")
    assert len(chosen) == sum(c.members for c in summary.rfm_cells if c.monetary_score == 5)
    assert big.member_id in chosen
    assert big.member_id in tagged(stubs, top, "hq")


def test_birthday_month_this_month_or_a_given_one(stubs):
    node, store = region(stubs)
    month = (D0 + timedelta(days=3)).month  # NOW's business month
    other = month % 12 + 1
    now_born = member(stubs, store, "本月", birthday={"year": 1990, "month": month, "day": 1})
    no_year = member(stubs, store, "无年", birthday={"year": 0, "month": month, "day": 28})
    later = member(stubs, store, "下月", birthday={"year": 1990, "month": other, "day": 2})
    member(stubs, store, "无生日")
    this, given = f"本{node[-4:]}", f"定{node[-4:]}"
    rule(stubs, node, this, birthday_month=pb.BirthdayMonthRule())
    rule(stubs, node, given, birthday_month=pb.BirthdayMonthRule(month=other))
    run(stubs)
    assert tagged(stubs, this, node) == {now_born.member_id, no_year.member_id}
    assert tagged(stubs, given, node) == {later.member_id}


def test_a_second_run_changes_nothing_and_a_run_killed_half_way_is_finished(stubs):
    node, store = region(stubs)
    people = [member(stubs, store, f"批{i}") for i in range(7)]
    for m in people[::2]:  # yesterday: in today's window, not in NOW's
        visit(stubs, m, store, MIDNIGHT - timedelta(hours=1))
    for m in people[1::2]:
        visit(stubs, m, store, MIDNIGHT + timedelta(seconds=9))
    tag = f"批{node[-4:]}"
    made = rule(stubs, node, tag, visits=pb.VisitsRule(window_days=4, min_visits=1))
    assert len(tagged(stubs, tag, node)) == 7  # computed at once, for today
    with pytest.raises(job.Stopped):  # NOW's run, killed after its first batch of 2
        run(stubs, rule_id=made.rule_id, batch=2, stop_after=1)
    assert 3 < len(tagged(stubs, tag, node)) < 7
    finished = run(stubs, rule_id=made.rule_id, batch=2)
    assert tagged(stubs, tag, node) == {m.member_id for m in people[1::2]}
    assert finished.removed > 0
    again = run(stubs, rule_id=made.rule_id, batch=2)  # the day's run is done
    assert (again.added, again.removed, again.batches) == (0, 0, 0)
    # another day's run writes only what changed: nothing
    later = stubs.service.run(
        job.run_rules(stubs.service.app.context.database, NOW + timedelta(hours=1), rule_id=made.rule_id, batch=2)
    )
    assert (later.added, later.removed) == (0, 0)
    got = stubs.segments.GetTagRule(pb.GetTagRuleRequest(tag_rule_id=made.rule_id)).tag_rule
    assert got.member_count == 3 and got.HasField("last_run_time")


def test_hand_set_tags_stay_as_they_are(stubs):
    node, store = region(stubs)
    tag = f"手{node[-4:]}"
    by_hand_only = member(stubs, store, "手工", tags=[tag, "企业客户"])
    both = member(stubs, store, "两者", tags=[tag])
    visit(stubs, both, store, MIDNIGHT + timedelta(seconds=3))
    made = rule(stubs, node, tag, visits=pb.VisitsRule(window_days=4, min_visits=1))
    run(stubs)
    hand = stubs.member.GetMember(member_pb2.GetMemberRequest(member_id=by_hand_only.member_id)).member
    assert list(hand.tags) == [tag, "企业客户"] and list(hand.automatic_tags) == []
    assert auto_tags(stubs, both) == [tag]
    assert tagged(stubs, tag, node) == {by_hand_only.member_id, both.member_id}
    # the rule ended: its tag comes off, the hand-set ones stay
    stubs.segments.DeleteTagRule(pb.DeleteTagRuleRequest(request_id=rid(), tag_rule_id=made.rule_id))
    after = stubs.member.GetMember(member_pb2.GetMemberRequest(member_id=both.member_id)).member
    assert list(after.tags) == [tag] and list(after.automatic_tags) == []


def test_a_segment_counts_lists_and_exports_its_current_members(stubs):
    node, store = region(stubs)
    regular = member(stubs, store, "常客", registered_days_ago=5)
    for s in (1, 2):
        visit(stubs, regular, store, MIDNIGHT + timedelta(seconds=s), 5000)
    once = member(stubs, store, "一回")
    visit(stubs, once, store, MIDNIGHT + timedelta(seconds=3), 100)
    member(stubs, store, "无")
    tag = f"群{node[-4:]}"
    segment = stubs.segments.CreateSegment(
        pb.CreateSegmentRequest(
            request_id=rid(),
            segment=pb.Segment(
                org_path=node,
                name="近期常客",
                tag=tag,
                criteria=pb.SegmentCriteria(
                    visits=pb.VisitsCriterion(window_days=30, min_visits=2),
                    spend=pb.SpendCriterion(window_days=30, min_fen=5000),
                ),
            ),
        )
    ).segment
    assert segment.rule_id and segment.criteria.visits.min_visits == 2
    count = stubs.segments.CountSegment(pb.CountSegmentRequest(segment_id=segment.segment_id)).member_count
    assert count == 1
    ids = stubs.segments.ListSegmentMembers(pb.ListSegmentMembersRequest(segment_id=segment.segment_id)).member_ids
    assert list(ids) == [regular.member_id]
    assert tag in auto_tags(stubs, regular)  # kept as a tag right after it was saved
    chunks = list(
        stubs.segments.ExportSegment(
            pb.ExportSegmentRequest(segment_id=segment.segment_id, format=file_pb2.FILE_FORMAT_CSV)
        )
    )
    rows = list(csv.reader(io.StringIO(b"".join(c.chunk for c in chunks).decode("utf-8-sig"))))
    assert len(rows) == 2 and "常客" in rows[1]
    # evaluated when used: the member who comes again is in it now
    visit(stubs, once, store, MIDNIGHT + timedelta(seconds=4), 9000)
    assert stubs.segments.CountSegment(pb.CountSegmentRequest(segment_id=segment.segment_id)).member_count == 2
    # a change of the segment re-tags its members at once
    stubs.segments.UpdateSegment(
        pb.UpdateSegmentRequest(
            request_id=rid(),
            segment=pb.Segment(
                segment_id=segment.segment_id,
                name="近期常客",
                tag=tag,
                criteria=pb.SegmentCriteria(  # now those who spent under ¥100: `once` (¥91), not `regular` (¥100)
                    visits=pb.VisitsCriterion(window_days=30, min_visits=2),
                    spend=pb.SpendCriterion(window_days=30, max_fen=9999),
                ),
            ),
        )
    )
    assert tag not in auto_tags(stubs, regular)
    assert tag in auto_tags(stubs, once)
    stubs.segments.DeleteSegment(pb.DeleteSegmentRequest(request_id=rid(), segment_id=segment.segment_id))
    assert tag not in auto_tags(stubs, once)


def _plan(stubs) -> str:
    plan_id = f"plan_{rid()[:12]}"
    sql(
        stubs,
        "INSERT INTO membership_plans (plan_id, name, price_fen, term, trial_days, tier_id, benefits, create_time) "
        "VALUES (:p, :p, 3000, 'MONTH', 0, NULL, '[]', :t)",
        p=plan_id,
        t=MIDNIGHT,
    )
    return plan_id


def _term(stubs, m, plan_id, start, end, refund_end=None) -> None:
    """A term of days from today: [D0 + start, D0 + end), ended at D0 + refund_end if refunded."""
    sql(
        stubs,
        "INSERT INTO membership_terms (term_id, member_id, plan_id, source, price_fen, anchor_day, start_day, end_day, "
        "days, payment_key, payment_reference, order_id, line_id, store_path, create_time, refunded_fen, refund_time, "
        "refund_end_day, refund_reason, refund_operator) VALUES (:id, :m, :p, 'ONLINE', 3000, :s, :s, :e, :d, :id, "
        "'', '', '', :store, :t, 0, NULL, :r, '', '')",
        id=f"mt_{rid()}",
        m=m.member_id,
        p=plan_id,
        s=D0 + timedelta(days=start),
        e=D0 + timedelta(days=end),
        d=end - start,
        store=STORE,
        t=MIDNIGHT,
        r=D0 + timedelta(days=refund_end) if refund_end is not None else None,
    )


def _score(stubs, m, months_ago: int, score: int) -> None:
    month = (D0.replace(day=1) - timedelta(days=31 * months_ago)).replace(day=1)
    sql(
        stubs,
        "INSERT INTO value_scores (member_id, month, score, inputs, raw, weights, compute_time) "
        "VALUES (:m, :month, :score, '{}', '{}', '{}', :t)",
        m=m.member_id,
        month=month,
        score=score,
        t=MIDNIGHT,
    )


def test_paid_members_and_a_value_score_band_are_tagged_and_kept_so(stubs):
    """NOW's business day is D0 + 3: a term runs on it when it started by then and ends
    after it (after a refund, at its refund's end)."""
    node, store = region(stubs)
    plan, other_plan = _plan(stubs), _plan(stubs)
    cases = [  # name, terms (plan, start, end, refund end), expected by (any plan, the plan)
        ("在期", [(plan, -10, 20, None)], (True, True)),
        ("他方案", [(other_plan, 0, 30, None)], (True, False)),
        ("今日起", [(plan, 3, 33, None)], (True, True)),
        ("已到期", [(plan, -30, 3, None)], (False, False)),
        ("已退款", [(plan, -10, 20, 2)], (False, False)),
        ("未开始", [(plan, 4, 34, None)], (False, False)),
        ("续期", [(plan, -40, -10, None), (plan, -10, 20, None)], (True, True)),
        ("非会员", [], (False, False)),
    ]
    made = {}
    for name, terms, _ in cases:
        made[name] = member(stubs, store, name)
        for plan_id, start, end, refund_end in terms:
            _term(stubs, made[name], plan_id, start, end, refund_end)
    any_tag, plan_tag = f"付{node[-4:]}", f"方{node[-4:]}"
    rule(stubs, node, any_tag, paid_member=pb.PaidMemberRule())
    by_plan = rule(stubs, node, plan_tag, paid_member=pb.PaidMemberRule(plan_id=plan))
    assert by_plan.paid_member.plan_id == plan
    bands = [  # name, scores (months ago, score), expected by (700 to 1000, 700 and above, up to 299)
        ("高分", [(1, 300), (0, 800)], (True, True, False)),
        ("下滑", [(1, 900), (0, 300)], (False, False, False)),
        ("边界", [(0, 700)], (True, True, False)),
        ("差一分", [(0, 699)], (False, False, False)),
        ("零分", [(0, 0)], (False, False, True)),
        ("未评分", [], (False, False, False)),
    ]
    for name, scores, _ in bands:
        made[name] = member(stubs, store, name)
        for months_ago, score in scores:
            _score(stubs, made[name], months_ago, score)
    _term(stubs, made["边界"], plan, -1, 30)  # a paid member with a score of 700
    band_tags = [f"高{node[-4:]}", f"上{node[-4:]}", f"低{node[-4:]}"]
    rule(stubs, node, band_tags[0], value_score=pb.ValueScoreBand(min_score=700, max_score=1000))
    above = rule(stubs, node, band_tags[1], value_score=pb.ValueScoreBand(min_score=700))
    assert (above.value_score.min_score, above.value_score.max_score) == (700, 0)
    rule(stubs, node, band_tags[2], value_score=pb.ValueScoreBand(min_score=0, max_score=299))

    def expected():
        out = {t: set() for t in [any_tag, plan_tag, *band_tags]}
        for name, _, (by_any, by_the_plan) in cases:
            for tag, taken in ((any_tag, by_any), (plan_tag, by_the_plan)):
                if taken:
                    out[tag].add(made[name].member_id)
        for name, _, takes in bands:
            for tag, taken in zip(band_tags, takes, strict=True):
                if taken:
                    out[tag].add(made[name].member_id)
        out[any_tag].add(made["边界"].member_id)
        out[plan_tag].add(made["边界"].member_id)
        return out

    listed = stubs.segments.ListTagRules(pb.ListTagRulesRequest(page_size=500)).tag_rules
    mine = [r.rule_id for r in listed if r.tag in (any_tag, plan_tag, *band_tags)]

    def run_mine(moment):
        total = [0, 0]
        for rule_id in mine:
            found = stubs.service.run(job.run_rules(stubs.service.app.context.database, moment, rule_id=rule_id))
            total = [total[0] + found.added, total[1] + found.removed]
        return total

    run_mine(NOW)
    assert {t: tagged(stubs, t, node) for t in expected()} == expected()
    # a saved segment selects when it is used, today (D0), without a tag: paid members (of
    # any plan) whose latest score is 700 or more, and each criterion alone
    paid_today = {made[n].member_id for n in ["在期", "他方案", "已到期", "已退款", "续期", "边界"]}
    for criteria, wanted in [
        (pb.SegmentCriteria(paid_member=True), paid_today),
        (pb.SegmentCriteria(value_score=pb.ValueScoreBand(min_score=700)), expected()[band_tags[1]]),
        (
            pb.SegmentCriteria(paid_member=True, value_score=pb.ValueScoreBand(min_score=700)),
            {made["边界"].member_id},
        ),
    ]:
        segment = stubs.segments.CreateSegment(
            pb.CreateSegmentRequest(
                request_id=rid(), segment=pb.Segment(org_path=node, name="付费价值", criteria=criteria), actor=ACTOR
            )
        ).segment
        assert segment.criteria.paid_member == criteria.paid_member
        assert segment.criteria.value_score == criteria.value_score
        count = stubs.segments.CountSegment(pb.CountSegmentRequest(segment_id=segment.segment_id)).member_count
        assert count == len(wanted), criteria
    assert run_mine(NOW) == [0, 0]  # the day's runs are done
    # the next day (D0 + 4): the term not begun has begun, and nothing else changed
    assert run_mine(NOW + timedelta(days=1)) == [2, 0]
    assert {any_tag, plan_tag} <= set(auto_tags(stubs, made["未开始"]))
    # a new score: off both bands from 700, on the low one
    sql(stubs, "UPDATE value_scores SET score = 100 WHERE member_id = :m", m=made["高分"].member_id)
    assert run_mine(NOW + timedelta(days=2)) == [1, 2]
    assert band_tags[2] in auto_tags(stubs, made["高分"]) and band_tags[0] not in auto_tags(stubs, made["高分"])


def test_rules_on_paid_membership_and_the_value_score_refuse_bad_input(stubs):
    before = len(stubs.segments.ListTagRules(pb.ListTagRulesRequest(page_size=500)).tag_rules)
    for band, found in [
        (pb.ValueScoreBand(min_score=-1, max_score=10), {"tag_rule.value_score.min_score": "BOUND_OUT_OF_RANGE"}),
        (pb.ValueScoreBand(min_score=1, max_score=1001), {"tag_rule.value_score.max_score": "BOUND_OUT_OF_RANGE"}),
        (pb.ValueScoreBand(min_score=900, max_score=100), {"tag_rule.value_score.max_score": "BOUNDS_REVERSED"}),
        (pb.ValueScoreBand(), {"tag_rule.value_score": "RULE_SELECTS_EVERYONE"}),
    ]:
        code, _, violations = refusal(
            stubs.segments.CreateTagRule,
            pb.CreateTagRuleRequest(
                request_id=rid(), tag_rule=pb.TagRule(org_path="hq", tag="价值", value_score=band), actor=ACTOR
            ),
        )
        assert (code, violations) == (OK.INVALID_ARGUMENT, found), band
    code, reason, _ = refusal(
        stubs.segments.CreateTagRule,
        pb.CreateTagRuleRequest(
            request_id=rid(),
            tag_rule=pb.TagRule(org_path="hq", tag="付费", paid_member=pb.PaidMemberRule(plan_id="plan_none")),
            actor=ACTOR,
        ),
    )
    assert (code, reason) == (OK.NOT_FOUND, "PLAN_NOT_FOUND")
    segments_before = len(stubs.segments.ListSegments(pb.ListSegmentsRequest(page_size=500)).segments)
    code, reason, violations = refusal(  # a segment's band is checked as a rule's
        stubs.segments.CreateSegment,
        pb.CreateSegmentRequest(
            request_id=rid(),
            segment=pb.Segment(
                org_path="hq",
                name="价值",
                criteria=pb.SegmentCriteria(
                    paid_member=True, value_score=pb.ValueScoreBand(min_score=900, max_score=5)
                ),
            ),
        ),
    )
    assert violations == {"segment.criteria.value_score.max_score": "BOUNDS_REVERSED"}
    assert len(stubs.segments.ListSegments(pb.ListSegmentsRequest(page_size=500)).segments) == segments_before
    assert len(stubs.segments.ListTagRules(pb.ListTagRulesRequest(page_size=500)).tag_rules) == before


def test_bad_input_is_refused_field_by_field_and_nothing_is_written(stubs):
    rules_before = len(stubs.segments.ListTagRules(pb.ListTagRulesRequest(page_size=500)).tag_rules)
    segments_before = len(stubs.segments.ListSegments(pb.ListSegmentsRequest(page_size=500)).segments)
    code, reason, violations = refusal(
        stubs.segments.CreateTagRule,
        pb.CreateTagRuleRequest(
            request_id=rid(),
            tag_rule=pb.TagRule(
                org_path=STORE, tag="a,b", visits=pb.VisitsRule(window_days=5000, min_visits=5, max_visits=2)
            ),
        ),
    )
    assert code == OK.INVALID_ARGUMENT
    assert violations == {
        "tag_rule.org_path": "TAG_RULE_NODE_INVALID",
        "tag_rule.tag": "TAG_INVALID",
        "tag_rule.visits.window_days": "WINDOW_OUT_OF_RANGE",
        "tag_rule.visits.max_visits": "BOUNDS_REVERSED",
    }
    _, _, violations = refusal(
        stubs.segments.CreateTagRule,
        pb.CreateTagRuleRequest(
            request_id=rid(),
            tag_rule=pb.TagRule(org_path="hq", tag="x", spend_rank=pb.SpendRankRule(window_days=0, top_percent=101)),
        ),
    )
    assert violations == {
        "tag_rule.spend_rank.window_days": "WINDOW_OUT_OF_RANGE",
        "tag_rule.spend_rank.top_percent": "PERCENT_OUT_OF_RANGE",
    }
    _, _, violations = refusal(
        stubs.segments.CreateTagRule,
        pb.CreateTagRuleRequest(request_id=rid(), tag_rule=pb.TagRule(org_path="hq", tag="y", rfm=pb.RfmRange())),
    )
    assert violations == {"tag_rule.rfm": "RULE_SELECTS_EVERYONE"}
    _, _, violations = refusal(
        stubs.segments.CreateSegment,
        pb.CreateSegmentRequest(
            request_id=rid(),
            segment=pb.Segment(
                org_path="hq/east",
                name="",
                criteria=pb.SegmentCriteria(
                    filter=member_pb2.MemberFilter(org_path="hq/south"),
                    spend=pb.SpendCriterion(window_days=30, min_fen=-1),
                    rfm=pb.RfmRange(recency=pb.ScoreRange(min=4, max=2)),
                ),
            ),
        ),
    )
    assert violations == {
        "segment.name": "NAME_REQUIRED",
        "segment.criteria.filter.org_path": "FILTER_OUTSIDE_OWNER",
        "segment.criteria.spend.min_fen": "BOUND_OUT_OF_RANGE",
        "segment.criteria.rfm.recency": "SCORE_RANGE_INVALID",
    }
    tag = f"占{rid()[:6]}"
    rule(stubs, "hq/east", tag, dormant=pb.DormantRule(days=30))
    code, reason, _ = refusal(
        stubs.segments.CreateTagRule,
        pb.CreateTagRuleRequest(
            request_id=rid(), tag_rule=pb.TagRule(org_path="hq", tag=tag, dormant=pb.DormantRule(days=9))
        ),
    )
    assert (code, reason) == (OK.ALREADY_EXISTS, "TAG_RULE_EXISTS")
    assert len(stubs.segments.ListTagRules(pb.ListTagRulesRequest(page_size=500)).tag_rules) == rules_before + 1
    assert len(stubs.segments.ListSegments(pb.ListSegmentsRequest(page_size=500)).segments) == segments_before
