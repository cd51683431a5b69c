"""Paid membership through the member service's stubs, on SQLite and PostgreSQL:
plans, online purchases (idempotent by request and by payment), stacked terms, the
trial, quotas used to the limit and refused past it, a manager's pro-rata refund, the
revenue not yet earned, and the tier a term gives."""

from datetime import date, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from huiyuan.member.v1 import member_pb2, membership_pb2 as pb, membership_pb2_grpc, tier_pb2
from huiyuan.runtime.business_time import day_start
from huiyuan.runtime.clock import today
from huiyuan.runtime.convert import calendar_day
from huiyuan.runtime.errors import FailedPrecondition
from services.member.domain.memberships import add_months
from services.member.use_cases import memberships
from tests.support import ACTOR, STORE, Stubs, ensure_org, refusal, rid

OK = grpc.StatusCode


class Plans:
    def __init__(self, channel):
        self.plans = membership_pb2_grpc.MembershipPlanServiceStub(channel)
        self.benefits = membership_pb2_grpc.BenefitServiceStub(channel)


@pytest.fixture(scope="module")
def stubs(member_service):
    s = Stubs(member_service.channel)
    ensure_org(s)
    return s


@pytest.fixture(scope="module")
def m(member_service):
    return Plans(member_service.channel)


@pytest.fixture(scope="module")
def plus(stubs, m):
    tier = stubs.tier.CreateTier(
        tier_pb2.CreateTierRequest(
            request_id=rid(),
            actor=ACTOR,
            tier=tier_pb2.Tier(name="PLUS会员", rank=40, price_rate_bp=9_500, points_multiplier_bp=20_000),
        )
    ).tier
    return m.plans.CreatePlan(
        pb.CreatePlanRequest(
            request_id=rid(),
            actor=ACTOR,
            plan=pb.MembershipPlan(
                name="PLUS 月卡",
                price_fen=1_500,
                term=pb.PLAN_TERM_MONTH,
                trial_days=7,
                tier_id=tier.tier_id,
                benefits=[pb.Benefit(code="car-wash", kind=pb.BENEFIT_KIND_SERVICE_QUOTA, name="免费洗车", quantity=2)],
            ),
        )
    ).plan


def day(d) -> date:
    return date(d.year, d.month, d.day)


def buy(m, member, plan, reference=None, paid=None, request_id=None):
    return m.plans.PurchaseMembership(
        pb.PurchaseMembershipRequest(
            request_id=request_id or rid(),
            member_id=member.member_id,
            plan_id=plan.plan_id,
            payment_reference=reference or rid(),
            paid_fen=plan.price_fen if paid is None else paid,
            store_path=STORE,
            actor=ACTOR,
        )
    ).term


def test_bad_plans_are_refused_with_field_violations_and_nothing_written(m):
    before = m.plans.ListPlans(pb.ListPlansRequest()).plans
    for plan, field, reason in [
        (
            pb.MembershipPlan(name="零价", price_fen=0, term=pb.PLAN_TERM_MONTH),
            "plan.price_fen",
            "PLAN_PRICE_OUT_OF_RANGE",
        ),
        (
            pb.MembershipPlan(name="负价", price_fen=-1, term=pb.PLAN_TERM_MONTH),
            "plan.price_fen",
            "PLAN_PRICE_OUT_OF_RANGE",
        ),
        (pb.MembershipPlan(name="无期", price_fen=100), "plan.term", "PLAN_TERM_REQUIRED"),
        (
            pb.MembershipPlan(name="自动", price_fen=100, term=pb.PLAN_TERM_YEAR, renewal=pb.RENEWAL_MODE_AUTO),
            "plan.renewal",
            "AUTO_RENEWAL_NOT_SUPPORTED",
        ),
        (
            pb.MembershipPlan(
                name="负配额",
                price_fen=100,
                term=pb.PLAN_TERM_MONTH,
                benefits=[pb.Benefit(code="wash", kind=pb.BENEFIT_KIND_SERVICE_QUOTA, name="洗车", quantity=-1)],
            ),
            "plan.benefits[0].quantity",
            "BENEFIT_QUANTITY_OUT_OF_RANGE",
        ),
    ]:
        code, why, violations = refusal(m.plans.CreatePlan, pb.CreatePlanRequest(request_id=rid(), plan=plan))
        assert code == OK.INVALID_ARGUMENT and violations[field] == reason and why == reason
    assert m.plans.ListPlans(pb.ListPlansRequest()).plans == before


def test_an_online_purchase_is_idempotent_by_request_and_by_payment_and_terms_stack(stubs, m, plus):
    member = stubs.register("在线买")
    reference, request_id = rid(), rid()
    first = buy(m, member, plus, reference, request_id=request_id)
    start = day(first.start_date)
    assert start == today() or start == today() - timedelta(days=1)  # a Shanghai midnight between
    assert day(first.end_date) == add_months(start, 1) and first.days == (add_months(start, 1) - start).days
    assert first.price_fen == 1_500 and first.source == pb.TERM_SOURCE_ONLINE
    assert buy(m, member, plus, reference, request_id=request_id) == first  # the same request
    assert buy(m, member, plus, reference) == first  # the same payment, another request: the same term
    code, reason, _ = refusal(buy, m, member, plus, paid=1_400)
    assert (code, reason) == (OK.FAILED_PRECONDITION, "PAID_AMOUNT_NOT_PLAN_PRICE")
    other = stubs.register("别人的单")
    code, reason, _ = refusal(buy, m, other, plus, reference)
    assert reason == "PAYMENT_REFERENCE_OF_ANOTHER_MEMBER"
    second = buy(m, member, plus)
    assert second.start_date == first.end_date and day(second.end_date) == add_months(start, 2)
    terms = m.plans.ListMembershipTerms(pb.ListMembershipTermsRequest(member_id=member.member_id)).terms
    assert [t.term_id for t in terms] == [first.term_id, second.term_id]


def test_a_trial_once_per_member(stubs, m, plus):
    member = stubs.register("试用")
    trial = m.plans.PurchaseMembership(
        pb.PurchaseMembershipRequest(
            request_id=rid(), member_id=member.member_id, plan_id=plus.plan_id, trial=True, store_path=STORE
        )
    ).term
    assert trial.days == 7 and trial.price_fen == 0 and trial.source == pb.TERM_SOURCE_TRIAL
    code, reason, _ = refusal(
        m.plans.PurchaseMembership,
        pb.PurchaseMembershipRequest(
            request_id=rid(), member_id=member.member_id, plan_id=plus.plan_id, trial=True, store_path=STORE
        ),
    )
    assert (code, reason) == (OK.FAILED_PRECONDITION, "TRIAL_ALREADY_USED")
    paid = buy(m, member, plus)  # stacks on the trial's 7 days
    assert paid.start_date == trial.end_date


def test_the_quota_is_used_to_its_limit_refused_past_it_and_a_use_undone_the_same_day(stubs, m, plus):
    member = stubs.register("洗车")
    code, reason, _ = refusal(
        m.benefits.ConsumeBenefit,
        pb.ConsumeBenefitRequest(
            request_id=rid(), member_id=member.member_id, benefit_code="car-wash", store_path=STORE
        ),
    )
    assert (code, reason) == (OK.FAILED_PRECONDITION, "NO_MEMBERSHIP_IN_FORCE")
    buy(m, member, plus)

    def wash(request_id=None):
        return m.benefits.ConsumeBenefit(
            pb.ConsumeBenefitRequest(
                request_id=request_id or rid(),
                member_id=member.member_id,
                benefit_code="car-wash",
                store_path=STORE,
                actor=ACTOR,
            )
        )

    first_id = rid()
    first = wash(first_id)
    assert first.left == 1 and wash(first_id) == first  # a replay uses nothing more
    assert wash().left == 0
    code, reason, _ = refusal(wash)
    assert (code, reason) == (OK.FAILED_PRECONDITION, "BENEFIT_QUOTA_EXHAUSTED")
    held = m.benefits.ListMemberBenefits(pb.ListMemberBenefitsRequest(member_id=member.member_id)).benefits
    assert [(h.benefit.code, h.used, h.left) for h in held] == [("car-wash", 2, 0)]
    undone = m.benefits.UndoBenefitUse(pb.UndoBenefitUseRequest(request_id=rid(), use_id=first.use.use_id))
    assert undone.use.HasField("undo_time")
    assert wash().left == 0  # the one given back, used again
    code, reason, _ = refusal(
        m.benefits.ConsumeBenefit,
        pb.ConsumeBenefitRequest(
            request_id=rid(), member_id=member.member_id, benefit_code="massage", store_path=STORE
        ),
    )
    assert reason == "BENEFIT_NOT_ENTITLED"
    uses = m.benefits.ListBenefitUses(pb.ListBenefitUsesRequest(member_id=member.member_id)).uses
    assert len(uses) == 3 and sum(not u.HasField("undo_time") for u in uses) == 2
    counts = m.benefits.SummarizeBenefitUses(
        pb.SummarizeBenefitUsesRequest(
            org_path="hq", start_date=calendar_day(today() - timedelta(days=1)), end_date=calendar_day(today())
        )
    ).counts
    mine = {c.benefit_code: c for c in counts}
    assert mine["car-wash"].uses >= 2 and mine["car-wash"].members >= 1

    # per member: this member's two uses not undone, and the pages add up to the summary
    period = dict(org_path="hq", start_date=calendar_day(today() - timedelta(days=1)), end_date=calendar_day(today()))
    counted, token, pages = [], "", 0
    while True:
        page = m.benefits.ListMemberBenefitUseCounts(
            pb.ListMemberBenefitUseCountsRequest(benefit_code="car-wash", page_size=1, page_token=token, **period)
        )
        counted += page.counts
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == len(counted) >= 1
    ours = [c for c in counted if c.member_id == member.member_id]
    assert [(c.benefit_code, c.uses) for c in ours] == [("car-wash", 2)] and ours[0].HasField("last_use_time")
    assert sum(c.uses for c in counted) == mine["car-wash"].uses
    assert [c.member_id for c in counted] == sorted(c.member_id for c in counted)
    for request, found in [
        (
            pb.ListMemberBenefitUseCountsRequest(
                start_date=calendar_day(today()), end_date=calendar_day(today() - timedelta(days=1))
            ),
            {"end_date": "PERIOD_INVALID"},
        ),
        (pb.ListMemberBenefitUseCountsRequest(end_date=calendar_day(today())), {"start_date": "DATE_INVALID"}),
        (
            pb.ListMemberBenefitUseCountsRequest(page_token="nonsense", **period),
            {"page_token": "PAGE_TOKEN_INVALID"},
        ),
    ]:
        code, _, violations = refusal(m.benefits.ListMemberBenefitUseCounts, request)
        assert (code, violations) == (OK.INVALID_ARGUMENT, found), request


def test_a_manager_refunds_the_unused_whole_days_and_the_unearned_revenue_follows(stubs, m, plus):
    member = stubs.register("退费")
    first = buy(m, member, plus)
    second = buy(m, member, plus)
    start = day(first.start_date)
    as_of = today()
    before = m.plans.GetUnearnedRevenue(pb.GetUnearnedRevenueRequest(as_of_date=calendar_day(as_of), org_path=STORE))
    refunded = m.plans.RefundMembership(
        pb.RefundMembershipRequest(request_id=rid(), member_id=member.member_id, reason="会员申请退费", actor=ACTOR)
    )
    used = (as_of - start).days + 1  # today counts as used
    back_first = 1_500 * (first.days - used) // first.days
    assert [t.refunded_fen for t in refunded.terms] == [back_first, 1_500]
    assert refunded.refunded_fen == back_first + 1_500
    assert day(refunded.terms[0].end_date) == as_of + timedelta(days=1)
    assert refunded.terms[1].end_date == second.start_date  # never started: all of it
    after = m.plans.GetUnearnedRevenue(pb.GetUnearnedRevenueRequest(as_of_date=calendar_day(as_of), org_path=STORE))
    # the first kept its used days and is all earned by tonight; the second is gone
    earned_before = 1_500 * used // first.days
    assert before.unearned_fen - after.unearned_fen == (3_000 - earned_before)
    code, reason, _ = refusal(
        m.plans.RefundMembership,
        pb.RefundMembershipRequest(request_id=rid(), member_id=member.member_id, reason="再退", actor=ACTOR),
    )
    assert (code, reason) == (OK.FAILED_PRECONDITION, "NO_MEMBERSHIP_TO_REFUND")


def test_a_term_in_force_gives_its_plans_tier_at_the_till(stubs, m, plus):
    member = stubs.register("升级")
    assert stubs.member.LookupMember(member_pb2.LookupMemberRequest(member_id=member.member_id)).tier.name == ""
    buy(m, member, plus)
    found = stubs.member.LookupMember(member_pb2.LookupMemberRequest(member_id=member.member_id))
    assert found.tier.name == "PLUS会员" and found.tier.price_rate_bp == 9_500


# ------------------------------------------------------------------ a tier's benefits


def wash_benefit(code="car-wash", quantity=2) -> pb.Benefit:
    return pb.Benefit(code=code, kind=pb.BENEFIT_KIND_SERVICE_QUOTA, name="免费洗车", quantity=quantity)


@pytest.fixture(scope="module")
def gold(stubs):
    """A tier granting 2 free car washes a calendar month and 3 coupons a month."""
    return stubs.tier.CreateTier(
        tier_pb2.CreateTierRequest(
            request_id=rid(),
            actor=ACTOR,
            tier=tier_pb2.Tier(
                name="洗车金卡",
                rank=70,
                price_rate_bp=9_800,
                points_multiplier_bp=10_000,
                entitlements=[
                    wash_benefit(),
                    pb.Benefit(
                        code="gold-coupons",
                        kind=pb.BENEFIT_KIND_MONTHLY_COUPONS,
                        name="金卡月券",
                        quantity=3,
                        coupon_template_id="tpl-gold",
                    ),
                ],
            ),
        )
    ).tier


@pytest.fixture(scope="module")
def plain(stubs):
    return stubs.tier.CreateTier(
        tier_pb2.CreateTierRequest(
            request_id=rid(), actor=ACTOR, tier=tier_pb2.Tier(name="普卡", rank=65, price_rate_bp=10_000)
        )
    ).tier


def assign(stubs, member, tier):
    stubs.tier.AssignTier(
        tier_pb2.AssignTierRequest(
            request_id=rid(), member_id=member.member_id, tier_id=tier.tier_id, reason="测试", actor=ACTOR
        )
    )


def metadata_of(call, *args):
    with pytest.raises(grpc.RpcError) as caught:
        call(*args)
    status = rpc_status.from_call(caught.value)
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return caught.value.code(), info.reason, dict(info.metadata)
    raise AssertionError("no ErrorInfo")


def wash_request(member, request_id=None, code="car-wash") -> pb.ConsumeBenefitRequest:
    return pb.ConsumeBenefitRequest(
        request_id=request_id or rid(), member_id=member.member_id, benefit_code=code, store_path=STORE, actor=ACTOR
    )


def test_bad_tier_benefits_are_refused_with_field_violations_and_nothing_written(stubs, gold):
    before = stubs.tier.ListTiers(tier_pb2.ListTiersRequest(page_size=500)).tiers
    coupons = dict(code="c", kind=pb.BENEFIT_KIND_MONTHLY_COUPONS, name="月券", quantity=1)
    for benefit, field, reason in [
        (wash_benefit(quantity=-1), "tier.entitlements[0].quantity", "BENEFIT_QUANTITY_OUT_OF_RANGE"),
        (wash_benefit(quantity=0), "tier.entitlements[0].quantity", "BENEFIT_QUANTITY_OUT_OF_RANGE"),
        (pb.Benefit(**coupons), "tier.entitlements[0].coupon_template_id", "BENEFIT_TEMPLATE_REQUIRED"),
        (pb.Benefit(code="w", name="洗车", quantity=1), "tier.entitlements[0].kind", "BENEFIT_KIND_REQUIRED"),
    ]:
        tier = tier_pb2.Tier(name="坏权益", rank=80, price_rate_bp=10_000, entitlements=[benefit])
        code, _, violations = refusal(
            stubs.tier.CreateTier, tier_pb2.CreateTierRequest(request_id=rid(), actor=ACTOR, tier=tier)
        )
        assert code == OK.INVALID_ARGUMENT and violations.get(field) == reason, (benefit, violations)
        tier.tier_id = gold.tier_id
        code, _, violations = refusal(
            stubs.tier.UpdateTier,
            tier_pb2.UpdateTierRequest(
                request_id=rid(), actor=ACTOR, tier=tier, update_mask=field_mask_pb2.FieldMask(paths=["entitlements"])
            ),
        )
        assert code == OK.INVALID_ARGUMENT and violations == {field: reason}
    assert stubs.tier.ListTiers(tier_pb2.ListTiersRequest(page_size=500)).tiers == before
    assert [b.code for b in gold.entitlements] == ["car-wash", "gold-coupons"]


def test_a_tier_s_quota_by_calendar_month_ended_by_a_downgrade(stubs, m, gold, plain, member_service):
    member = stubs.register("金卡洗车")
    code, reason, _ = refusal(m.benefits.ConsumeBenefit, wash_request(member))
    assert (code, reason) == (OK.FAILED_PRECONDITION, "NO_MEMBERSHIP_IN_FORCE")
    assign(stubs, member, gold)
    first_id = rid()
    first = m.benefits.ConsumeBenefit(wash_request(member, first_id))
    assert first.left == 1 and first.use.tier_id == gold.tier_id and first.use.plan_id == ""
    assert m.benefits.ConsumeBenefit(wash_request(member, first_id)) == first  # a replay uses nothing more
    assert m.benefits.ConsumeBenefit(wash_request(member)).left == 0
    code, reason, meta = metadata_of(m.benefits.ConsumeBenefit, wash_request(member))
    month_start = today().replace(day=1)
    next_month = add_months(month_start, 1)
    assert (code, reason) == (OK.FAILED_PRECONDITION, "BENEFIT_QUOTA_EXHAUSTED")
    assert meta == {"quantity": "2", "used": "2", "left": "0", "period_end": next_month.isoformat()}
    held = m.benefits.ListMemberBenefits(pb.ListMemberBenefitsRequest(member_id=member.member_id)).benefits
    assert [(h.benefit.code, h.tier_id, h.plan_id, h.used, h.left) for h in held] == [
        ("car-wash", gold.tier_id, "", 2, 0),
        ("gold-coupons", gold.tier_id, "", 0, 0),
    ]
    assert day(held[0].period_start_date) == month_start and day(held[0].period_end_date) == next_month

    # the next calendar month (business time): 2 again, the third refused
    async def consume_at(moment):
        async with member_service.app.context.database.transaction() as tx:
            return await memberships.consume(tx, member.member_id, "car-wash", STORE, "test", moment)

    later = day_start(next_month) + timedelta(hours=10)
    assert [member_service.run(consume_at(later))[1] for _ in range(2)] == [1, 0]
    with pytest.raises(FailedPrecondition) as exhausted:
        member_service.run(consume_at(later))
    assert exhausted.value.reason == "BENEFIT_QUOTA_EXHAUSTED"

    # counted per member, as a plan's uses are
    period = dict(org_path="hq", start_date=calendar_day(today() - timedelta(days=1)), end_date=calendar_day(today()))
    counts = m.benefits.ListMemberBenefitUseCounts(
        pb.ListMemberBenefitUseCountsRequest(benefit_code="car-wash", page_size=500, **period)
    ).counts
    assert [(c.benefit_code, c.uses) for c in counts if c.member_id == member.member_id] == [("car-wash", 2)]

    # moved down: the tier's benefits end at once
    assign(stubs, member, plain)
    code, reason, _ = refusal(m.benefits.ConsumeBenefit, wash_request(member))
    assert (code, reason) == (OK.FAILED_PRECONDITION, "NO_MEMBERSHIP_IN_FORCE")
    assert m.benefits.ListMemberBenefits(pb.ListMemberBenefitsRequest(member_id=member.member_id)).benefits == []


def test_a_plan_and_a_tier_granting_the_same_service_give_both_quotas(stubs, m, plus, gold):
    member = stubs.register("双份洗车")
    buy(m, member, plus)
    assign(stubs, member, gold)
    uses = [m.benefits.ConsumeBenefit(wash_request(member)) for _ in range(4)]
    assert [u.left for u in uses] == [3, 2, 1, 0]
    assert [(u.use.plan_id, u.use.tier_id) for u in uses] == [(plus.plan_id, "")] * 2 + [("", gold.tier_id)] * 2
    code, reason, meta = metadata_of(m.benefits.ConsumeBenefit, wash_request(member))
    assert (code, reason, meta["quantity"], meta["used"]) == (
        OK.FAILED_PRECONDITION,
        "BENEFIT_QUOTA_EXHAUSTED",
        "4",
        "4",
    )
    held = m.benefits.ListMemberBenefits(pb.ListMemberBenefitsRequest(member_id=member.member_id)).benefits
    washes = [(h.plan_id, h.tier_id, h.used, h.left) for h in held if h.benefit.code == "car-wash"]
    assert washes == [(plus.plan_id, "", 2, 0), ("", gold.tier_id, 2, 0)]
    # an undone tier use gives the tier's quota back
    m.benefits.UndoBenefitUse(pb.UndoBenefitUseRequest(request_id=rid(), use_id=uses[3].use.use_id))
    again = m.benefits.ConsumeBenefit(wash_request(member))
    assert (again.left, again.use.tier_id) == (0, gold.tier_id)


def test_a_tier_s_monthly_coupons_are_planned_once_however_often_the_job_runs(stubs, m, gold, plain):
    member = stubs.register("金卡月券")
    assign(stubs, member, gold)
    as_of = calendar_day(today())

    def run():
        planned, after = 0, ""
        while True:
            page = m.benefits.PlanBenefitGrants(
                pb.PlanBenefitGrantsRequest(request_id=rid(), as_of_date=as_of, after_member_id=after, page_size=2)
            )
            planned += page.planned
            after = page.next_member_id
            if not after:
                return planned

    assert run() >= 1
    key = f"tier-monthly:{member.member_id}:gold-coupons:{today().replace(day=1).isoformat()}"

    def pending():
        return [
            g
            for g in m.benefits.ListPendingBenefitGrants(pb.ListPendingBenefitGrantsRequest(page_size=5000)).grants
            if g.member_id == member.member_id
        ]

    mine = pending()
    assert [(g.grant_key, g.coupon_template_id, g.quantity) for g in mine] == [(key, "tpl-gold", 3)]
    assert run() == 0 and pending() == mine  # run again: nothing more
    m.benefits.CompleteBenefitGrant(pb.CompleteBenefitGrantRequest(request_id=rid(), grant_key=key))
    assign(stubs, member, plain)  # moved down: the coupons issued stay, nothing more is due
    assert run() == 0 and pending() == []


def test_a_tier_given_benefits_by_an_update_grants_them_from_then(stubs, m):
    silver = stubs.tier.CreateTier(
        tier_pb2.CreateTierRequest(
            request_id=rid(), actor=ACTOR, tier=tier_pb2.Tier(name="洗车银卡", rank=66, price_rate_bp=10_000)
        )
    ).tier
    member = stubs.register("银卡洗车")
    assign(stubs, member, silver)
    code, reason, _ = refusal(m.benefits.ConsumeBenefit, wash_request(member, code="silver-wash"))
    assert (code, reason) == (OK.FAILED_PRECONDITION, "NO_MEMBERSHIP_IN_FORCE")
    silver.entitlements.append(wash_benefit("silver-wash", 1))
    updated = stubs.tier.UpdateTier(
        tier_pb2.UpdateTierRequest(
            request_id=rid(),
            actor=ACTOR,
            tier=silver,
            update_mask=field_mask_pb2.FieldMask(paths=["entitlements"]),
        )
    ).tier
    assert [(b.code, b.quantity) for b in updated.entitlements] == [("silver-wash", 1)]
    assert m.benefits.ConsumeBenefit(wash_request(member, code="silver-wash")).left == 0
    code, reason, _ = refusal(m.benefits.ConsumeBenefit, wash_request(member, code="car-wash"))
    assert (code, reason) == (OK.FAILED_PRECONDITION, "BENEFIT_NOT_ENTITLED")


def test_a_term_in_force_whose_plan_grants_nothing_is_not_entitled_not_without_membership(stubs, m):
    """A member with a term in force of a plan of no benefits, and no tier: a benefit is
    BENEFIT_NOT_ENTITLED (they hold a membership; it does not grant that), not
    NO_MEMBERSHIP_IN_FORCE."""
    bare = m.plans.CreatePlan(
        pb.CreatePlanRequest(
            request_id=rid(),
            actor=ACTOR,
            plan=pb.MembershipPlan(name="基础月卡", price_fen=500, term=pb.PLAN_TERM_MONTH),
        )
    ).plan
    member = stubs.register("基础")
    wash = pb.ConsumeBenefitRequest(
        request_id=rid(), member_id=member.member_id, benefit_code="car-wash", store_path=STORE
    )
    assert refusal(m.benefits.ConsumeBenefit, wash)[:2] == (OK.FAILED_PRECONDITION, "NO_MEMBERSHIP_IN_FORCE")
    buy(m, member, bare)
    wash.request_id = rid()
    assert refusal(m.benefits.ConsumeBenefit, wash)[:2] == (OK.FAILED_PRECONDITION, "BENEFIT_NOT_ENTITLED")
