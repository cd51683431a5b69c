"""Members climb tiers by spend: the member service through its stubs, on SQLite and on
PostgreSQL. A module of its own: the tiers are the whole chain's, and these tests set
the ladder."""

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf import field_mask_pb2

from huiyuan.member.v1 import member_pb2, tier_pb2
from tests.support import ACTOR, STORE, Stubs, ensure_org, refusal, rid

OK = grpc.StatusCode
YUAN = 100


@pytest.fixture(scope="module")
def stubs(member_service):
    s = Stubs(member_service.channel)
    ensure_org(s)
    return s


@pytest.fixture(scope="module")
def ladder(stubs):
    """普通 (by assignment), 银卡 at ¥1,000 of spend, 金卡 at ¥5,000 of spend or ¥2,000 of
    top-ups, and 员工 by hand only."""
    made = {}
    for name, rank, spend, top_ups in [
        ("普通会员", 1, 0, 0),
        ("银卡", 2, 1_000 * YUAN, 0),
        ("金卡", 3, 5_000 * YUAN, 2_000 * YUAN),
        ("员工", 9, 0, 0),
    ]:
        made[name] = stubs.tier.CreateTier(
            tier_pb2.CreateTierRequest(
                request_id=rid(),
                actor=ACTOR,
                tier=tier_pb2.Tier(
                    name=name,
                    rank=rank,
                    price_rate_bp=10000,
                    points_multiplier_bp=10000,
                    upgrade_spend_fen=spend,
                    upgrade_top_up_fen=top_ups,
                ),
            )
        ).tier
    return made


def visit(stubs, member, amount_fen, order_id=None, request_id=None):
    return stubs.member.RecordVisit(
        member_pb2.RecordVisitRequest(
            request_id=request_id or rid(),
            member_id=member.member_id,
            store_path=STORE,
            order_id=order_id or rid(),
            amount_fen=amount_fen,
            actor=ACTOR,
        )
    )


def tier_of(stubs, member) -> str:
    return stubs.member.LookupMember(member_pb2.LookupMemberRequest(member_id=member.member_id)).tier.name


def history(stubs, member):
    return stubs.tier.ListTierHistory(tier_pb2.ListTierHistoryRequest(member_id=member.member_id)).tier_changes


def test_the_visit_that_reaches_a_tiers_spend_moves_the_member_up(stubs, ladder):
    member = stubs.register("爬升")
    first = visit(stubs, member, 600 * YUAN)
    assert not first.HasField("tier_change") and tier_of(stubs, member) == ""
    order = rid()
    second = visit(stubs, member, 400 * YUAN, order_id=order)  # ¥1,000 in all: 银卡
    assert second.tier_reached.name == "银卡" and second.tier_change.to_tier_id == ladder["银卡"].tier_id
    assert second.tier_change.operator_id == "system:tier-climb" and "¥1,000.00" in second.tier_change.reason
    assert tier_of(stubs, member) == "银卡"
    again = visit(stubs, member, 400 * YUAN, order_id=order)  # the same order, another request: nothing new
    assert not again.HasField("tier_change") and again.stats.total_spend_fen == 1_000 * YUAN
    big = visit(stubs, member, 9_000 * YUAN)  # straight past nothing to 金卡
    assert big.tier_reached.name == "金卡"
    assert [(h.from_tier_id, h.to_tier_id) for h in history(stubs, member)] == [
        (ladder["银卡"].tier_id, ladder["金卡"].tier_id),
        ("", ladder["银卡"].tier_id),
    ]


def test_past_two_tiers_in_one_visit_the_member_lands_on_the_best(stubs, ladder):
    member = stubs.register("一步到位")
    assert visit(stubs, member, 6_000 * YUAN).tier_reached.name == "金卡"
    assert len(history(stubs, member)) == 1


def test_a_replay_answers_the_same_climb_and_moves_nothing_again(stubs, ladder):
    member = stubs.register("重放")
    request_id, order = rid(), rid()
    first = visit(stubs, member, 1_000 * YUAN, order_id=order, request_id=request_id)
    assert visit(stubs, member, 1_000 * YUAN, order_id=order, request_id=request_id) == first
    assert len(history(stubs, member)) == 1


def test_a_tier_given_by_hand_stays_whatever_the_spend(stubs, ladder):
    member = stubs.register("员工")
    stubs.tier.AssignTier(
        tier_pb2.AssignTierRequest(
            request_id=rid(), member_id=member.member_id, tier_id=ladder["员工"].tier_id, reason="入职", actor=ACTOR
        )
    )
    assert not visit(stubs, member, 10_000 * YUAN).HasField("tier_change")
    assert tier_of(stubs, member) == "员工"


def test_a_ladder_out_of_order_is_refused_and_writes_nothing(stubs, ladder):
    before = stubs.tier.ListTiers(tier_pb2.ListTiersRequest()).tiers
    code, reason, _ = refusal(
        stubs.tier.CreateTier,
        tier_pb2.CreateTierRequest(
            request_id=rid(),
            tier=tier_pb2.Tier(
                name="钻石", rank=4, price_rate_bp=9000, points_multiplier_bp=20000, upgrade_spend_fen=3_000 * YUAN
            ),
        ),
    )
    assert (code, reason) == (OK.FAILED_PRECONDITION, "UPGRADE_SPEND_OUT_OF_ORDER")
    code, reason, _ = refusal(
        stubs.tier.UpdateTier,
        tier_pb2.UpdateTierRequest(
            request_id=rid(),
            tier=tier_pb2.Tier(tier_id=ladder["银卡"].tier_id, upgrade_spend_fen=5_000 * YUAN),
            update_mask=field_mask_pb2.FieldMask(paths=["upgrade_spend_fen"]),
        ),
    )
    assert (code, reason) == (OK.FAILED_PRECONDITION, "UPGRADE_SPEND_OUT_OF_ORDER")
    code, _, violations = refusal(
        stubs.tier.CreateTier,
        tier_pb2.CreateTierRequest(
            request_id=rid(),
            tier=tier_pb2.Tier(
                name="钻石", rank=4, price_rate_bp=9000, points_multiplier_bp=20000, upgrade_spend_fen=-1
            ),
        ),
    )
    assert (code, violations) == (OK.INVALID_ARGUMENT, {"tier.upgrade_spend_fen": "AMOUNT_OUT_OF_RANGE"})
    assert stubs.tier.ListTiers(tier_pb2.ListTiersRequest()).tiers == before


def test_a_lower_spend_set_later_lifts_a_member_at_their_next_visit(stubs, ladder):
    member = stubs.register("门槛下调")
    visit(stubs, member, 3_000 * YUAN)  # 银卡
    stubs.tier.UpdateTier(
        tier_pb2.UpdateTierRequest(
            request_id=rid(),
            tier=tier_pb2.Tier(tier_id=ladder["金卡"].tier_id, upgrade_spend_fen=3_000 * YUAN),
            update_mask=field_mask_pb2.FieldMask(paths=["upgrade_spend_fen"]),
        )
    )
    try:
        assert tier_of(stubs, member) == "银卡"  # nothing moves until they come back
        assert visit(stubs, member, 1).tier_reached.name == "金卡"
    finally:
        stubs.tier.UpdateTier(
            tier_pb2.UpdateTierRequest(
                request_id=rid(),
                tier=tier_pb2.Tier(tier_id=ladder["金卡"].tier_id, upgrade_spend_fen=5_000 * YUAN),
                update_mask=field_mask_pb2.FieldMask(paths=["upgrade_spend_fen"]),
            )
        )


def test_visits_at_many_tills_at_once_move_the_member_up_once(stubs, ladder):
    """Eight orders of ¥200 at once: the one that reaches ¥1,000 moves the member up,
    whichever it is, and only it; every fen of spend is counted."""
    for _ in range(3):
        member = stubs.register("同时")
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: visit(stubs, member, 200 * YUAN), range(8)))
        assert sum(a.HasField("tier_change") for a in answers) == 1
        assert sorted(a.stats.total_spend_fen for a in answers) == [200 * YUAN * n for n in range(1, 9)]
        assert len(history(stubs, member)) == 1 and tier_of(stubs, member) == "银卡"


def give_back(stubs, member, order_id, amount_fen, return_id=None):
    return stubs.member.RecordReturn(
        member_pb2.RecordReturnRequest(
            request_id=rid(),
            member_id=member.member_id,
            order_id=order_id,
            return_id=return_id or rid(),
            amount_fen=amount_fen,
            actor=ACTOR,
        )
    )


def test_a_return_takes_its_spend_back_and_undoes_a_climb_it_no_longer_pays_for(stubs, ladder):
    member = stubs.register("退货")
    order = rid()
    assert visit(stubs, member, 1_200 * YUAN, order_id=order).tier_reached.name == "银卡"
    kept = give_back(stubs, member, order, 200 * YUAN)  # ¥1,000 left: still 银卡
    assert kept.stats.total_spend_fen == 1_000 * YUAN and not kept.HasField("tier_change")
    return_id = rid()
    fell = give_back(stubs, member, order, 1, return_id=return_id)  # a fen short
    assert fell.tier_change.from_tier_id == ladder["银卡"].tier_id and fell.tier_change.to_tier_id == ""
    assert fell.tier_change.operator_id == "system:tier-return" and tier_of(stubs, member) == ""
    again = give_back(stubs, member, order, 1, return_id=return_id)  # the same return, another request
    assert again.stats.total_spend_fen == 1_000 * YUAN - 1 and not again.HasField("tier_change")
    assert visit(stubs, member, 1).tier_reached.name == "银卡"  # paid for again: climbs again
    assert len(history(stubs, member)) == 3


def test_a_return_leaves_a_tier_given_by_hand(stubs, ladder):
    member = stubs.register("员工退货")
    stubs.tier.AssignTier(
        tier_pb2.AssignTierRequest(
            request_id=rid(), member_id=member.member_id, tier_id=ladder["银卡"].tier_id, reason="补偿", actor=ACTOR
        )
    )
    order = rid()
    assert visit(stubs, member, 6_000 * YUAN, order_id=order).tier_reached.name == "金卡"
    fell = give_back(stubs, member, order, 6_000 * YUAN)  # undoes the climb to 金卡, not the 银卡 HQ gave
    assert fell.tier_change.to_tier_id == ladder["银卡"].tier_id and tier_of(stubs, member) == "银卡"


def test_a_return_of_more_than_the_visit_or_of_no_visit_is_refused_and_writes_nothing(stubs, ladder):
    member, other = stubs.register("多退"), stubs.register("别人")
    order = rid()
    visit(stubs, member, 500 * YUAN, order_id=order)
    return_id = rid()
    give_back(stubs, member, order, 300 * YUAN, return_id=return_id)
    code, reason, _ = refusal(give_back, stubs, member, order, 200 * YUAN + 1)
    assert (code, reason) == (OK.FAILED_PRECONDITION, "RETURN_EXCEEDS_VISIT")
    for who, of in ((member, rid()), (other, order)):  # no such order; another member's order
        assert refusal(give_back, stubs, who, of, 1)[:2] == (OK.NOT_FOUND, "VISIT_NOT_FOUND")
    elsewhere = rid()
    visit(stubs, member, 100 * YUAN, order_id=elsewhere)
    assert refusal(give_back, stubs, member, elsewhere, 1, return_id=return_id)[:2] == (
        OK.FAILED_PRECONDITION,
        "RETURN_ALREADY_RECORDED",
    )  # that return was of the first order
    code, _, violations = refusal(
        stubs.member.RecordReturn,
        member_pb2.RecordReturnRequest(
            request_id=rid(), member_id=member.member_id, order_id=order, return_id="", amount_fen=0
        ),
    )
    assert (code, set(violations)) == (OK.INVALID_ARGUMENT, {"return_id", "amount_fen"})
    stats = stubs.member.GetVisitStats(member_pb2.GetVisitStatsRequest(member_id=member.member_id)).stats
    assert (stats.visit_count, stats.total_spend_fen) == (2, 300 * YUAN)


def top_up(stubs, member, amount_fen, top_up_id=None, request_id=None):
    return stubs.tier.RecordTopUp(
        tier_pb2.RecordTopUpRequest(
            request_id=request_id or rid(),
            member_id=member.member_id,
            top_up_id=top_up_id or rid(),
            store_path=STORE,
            amount_fen=amount_fen,
            actor=ACTOR,
        )
    )


def refunded(stubs, top_up_id):
    return stubs.tier.RecordTopUpRefund(
        tier_pb2.RecordTopUpRefundRequest(request_id=rid(), top_up_id=top_up_id, actor=ACTOR)
    )


def test_top_ups_that_reach_a_tier_move_the_member_up_and_a_refund_takes_it_back(stubs, ladder):
    member = stubs.register("充值会员")
    first, second = rid(), rid()
    assert top_up(stubs, member, 1_500 * YUAN, first).top_up_total_fen == 1_500 * YUAN
    assert tier_of(stubs, member) == ""
    climbed = top_up(stubs, member, 500 * YUAN, second)  # 充值满 2000 元: 金卡, past 银卡 (which names no top-ups)
    assert climbed.tier_reached.name == "金卡" and climbed.tier_change.operator_id == "system:tier-climb"
    assert climbed.tier_change.reason == "累计充值 ¥2,000.00,达到金卡(充值满 ¥2,000.00)"
    again = top_up(stubs, member, 500 * YUAN, second)  # the same top-up, another request: nothing new
    assert again.top_up_total_fen == 2_000 * YUAN and not again.HasField("tier_change")
    fell = refunded(stubs, first)
    assert (fell.member_id, fell.top_up_total_fen) == (member.member_id, 500 * YUAN)
    assert fell.tier_change.to_tier_id == "" and fell.tier_change.operator_id == "system:tier-return"
    assert (
        fell.tier_change.reason
        == "充值退款后累计消费 ¥0.00,累计充值 ¥500.00,不足金卡(消费满 ¥5,000.00或充值满 ¥2,000.00)"
    )
    assert tier_of(stubs, member) == ""
    twice = refunded(stubs, first)  # refunded already: nothing new
    assert twice.top_up_total_fen == 500 * YUAN and not twice.HasField("tier_change")
    assert len(history(stubs, member)) == 2


def test_a_tier_the_spend_pays_for_stays_when_the_top_up_that_reached_it_is_refunded(stubs, ladder):
    member = stubs.register("既充又买")
    loaded = rid()
    assert top_up(stubs, member, 2_000 * YUAN, loaded).tier_reached.name == "金卡"
    visit(stubs, member, 5_000 * YUAN)  # the spend reaches 金卡 too
    assert not refunded(stubs, loaded).HasField("tier_change") and tier_of(stubs, member) == "金卡"


def test_top_ups_at_many_tills_at_once_move_the_member_up_once(stubs, ladder):
    member = stubs.register("同时充值")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: top_up(stubs, member, 250 * YUAN), range(8)))
    assert sum(a.HasField("tier_change") for a in answers) == 1 and tier_of(stubs, member) == "金卡"
    assert sorted(a.top_up_total_fen for a in answers) == [250 * YUAN * n for n in range(1, 9)]


def test_bad_or_foreign_top_ups_are_refused_and_write_nothing(stubs, ladder):
    member, other = stubs.register("充值出错"), stubs.register("别人的充值")
    loaded = rid()
    top_up(stubs, member, 100 * YUAN, loaded)
    assert refusal(top_up, stubs, other, 100 * YUAN, loaded)[:2] == (OK.FAILED_PRECONDITION, "TOP_UP_ALREADY_RECORDED")
    assert refusal(refunded, stubs, rid())[:2] == (OK.NOT_FOUND, "TOP_UP_NOT_RECORDED")  # a company's batch, say
    code, _, violations = refusal(
        stubs.tier.RecordTopUp,
        tier_pb2.RecordTopUpRequest(
            request_id=rid(), member_id=other.member_id, top_up_id="", store_path="", amount_fen=0
        ),
    )
    assert (code, set(violations)) == (OK.INVALID_ARGUMENT, {"top_up_id", "store_path", "amount_fen"})
    assert refusal(top_up, stubs, member_pb2.Member(member_id="m_nobody"), 1)[:2] == (OK.NOT_FOUND, "MEMBER_NOT_FOUND")
    assert top_up(stubs, other, 1).top_up_total_fen == 1  # nothing of the refusals counts
    code, reason, _ = refusal(
        stubs.tier.CreateTier,
        tier_pb2.CreateTierRequest(
            request_id=rid(),
            tier=tier_pb2.Tier(
                name="钻石", rank=4, price_rate_bp=9000, points_multiplier_bp=20000, upgrade_top_up_fen=1_000 * YUAN
            ),
        ),
    )
    assert (code, reason) == (OK.FAILED_PRECONDITION, "UPGRADE_TOP_UP_OUT_OF_ORDER")
