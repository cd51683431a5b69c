"""A paid membership (付费会员) through the gateway, every figure checked: HQ defines a
plan; a till sells a term as a line of a checkout paid partly with stored value; a
second checkout renews it (the terms stack); the plan's tier prices the next order;
the car-wash quota is used to its limit and refused past it; the revenue not yet
earned; a manager refunds both lines, each giving back its unused whole days."""

from datetime import date, timedelta

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2, membership_pb2 as mp, membership_pb2_grpc, tier_pb2, tier_pb2_grpc
from huiyuan.runtime.clock import today
from huiyuan.runtime.convert import calendar_day
from huiyuan.runtime.money import split_proportionally
from services.member.domain.memberships import add_months
from tests.support import STORE, Stubs, card_type, new_phone, refusal_of, rid
from tests.test_gateway import as_, chain, issue  # noqa: F401 - chain is the fixture these tests share

PRICE = 30_00


def day(d) -> date:
    return date(d.year, d.month, d.day)


@pytest.fixture(scope="module")
def setup(chain, member_service):
    stub, hq_key = chain
    stub.hq_key = hq_key
    hq = as_(hq_key)
    tiers = tier_pb2_grpc.TierServiceStub(stub.channel)
    plus_tier = tiers.CreateTier(
        tier_pb2.CreateTierRequest(
            request_id=rid(),
            tier=tier_pb2.Tier(name="PLUS会员", rank=70, price_rate_bp=9_500, points_multiplier_bp=10_000),
        ),
        metadata=hq,
    ).tier
    plans = membership_pb2_grpc.MembershipPlanServiceStub(stub.channel)
    benefits = membership_pb2_grpc.BenefitServiceStub(stub.channel)
    plan = plans.CreatePlan(
        mp.CreatePlanRequest(
            request_id=rid(),
            plan=mp.MembershipPlan(
                name="PLUS 月卡",
                price_fen=PRICE,
                term=mp.PLAN_TERM_MONTH,
                tier_id=plus_tier.tier_id,
                benefits=[mp.Benefit(code="car-wash", kind=mp.BENEFIT_KIND_SERVICE_QUOTA, name="免费洗车", quantity=2)],
            ),
        ),
        metadata=hq,
    ).plan
    terminal = issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key
    manager = issue(stub, hq_key, STORE, pb.ROLE_STORE_MANAGER).api_key
    registered = stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(),
            member=member_pb2.Member(name="PLUS会员", phone=new_phone()),
            card_type_id=card_type(Stubs(member_service.channel)),
        ),
        metadata=as_(terminal),
    )
    stub.TopUp(
        pb.TopUpRequest(
            request_id=rid(), member_id=registered.member.member_id, amount_fen=20_00, tender=pb.TENDER_KIND_CASH
        ),
        metadata=as_(terminal),
    )
    return stub, plans, benefits, plan, terminal, manager, registered.member.member_id, registered.card.card_number


def checkout(stub, terminal, member_id, card, lines, tenders):
    return stub.Checkout(
        pb.CheckoutRequest(request_id=rid(), member_id=member_id, card_number=card, lines=lines, tenders=tenders),
        metadata=as_(terminal),
    )


def test_a_plan_bought_at_the_till_renewed_used_and_refunded_pro_rata(setup):
    stub, plans, benefits, plan, terminal, manager, member_id, card = setup

    def plan_line(line_id, price=PRICE):
        return pb.CheckoutLine(
            line_id=line_id, sku="plus-month", quantity=1, unit_price_fen=price, membership_plan_id=plan.plan_id
        )

    # The till's price is not the plan's: refused, saying the price; nothing charged.
    with pytest.raises(grpc.RpcError) as caught:
        checkout(
            stub,
            terminal,
            member_id,
            card,
            [plan_line("p", 25_00)],
            [pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=25_00)],
        )
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "PLAN_PRICE_MISMATCH")

    # Bought: the plan (¥30) and a wash sponge (¥10), ¥20 from stored value and ¥20 in cash.
    first = checkout(
        stub,
        terminal,
        member_id,
        card,
        [plan_line("plan"), pb.CheckoutLine(line_id="sponge", sku="sponge", quantity=1, unit_price_fen=10_00)],
        [
            pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=20_00),
            pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=20_00),
        ],
    )
    r = first.receipt
    assert first.state == pb.ORDER_STATE_PAID
    assert (r.list_total_fen, r.discount_total_fen, r.stored_value_paid_fen, r.stored_value_left_fen) == (
        40_00,
        0,
        20_00,
        0,
    )
    hq_terms = plans.ListMembershipTerms(
        mp.ListMembershipTermsRequest(member_id=member_id), metadata=as_(manager)
    ).terms
    assert len(hq_terms) == 1
    term1 = hq_terms[0]
    start = day(term1.start_date)
    assert start in (today(), today() - timedelta(days=1))  # a Shanghai midnight may pass between
    assert day(term1.end_date) == add_months(start, 1) and term1.days == (add_months(start, 1) - start).days
    assert (term1.source, term1.price_fen, term1.order_id, term1.line_id) == (
        mp.TERM_SOURCE_TILL,
        PRICE,
        first.order_id,
        "plan",
    )
    assert f"付费会员有效期至 {(add_months(start, 1) - timedelta(days=1)).isoformat()}" in r.lines

    # Renewed, in cash: the second term starts when the first ends.
    second = checkout(
        stub, terminal, member_id, card, [plan_line("plan")], [pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=PRICE)]
    )
    term2 = plans.ListMembershipTerms(mp.ListMembershipTermsRequest(member_id=member_id), metadata=as_(manager)).terms[
        1
    ]
    assert term2.start_date == term1.end_date and day(term2.end_date) == add_months(start, 2)
    assert term2.order_id == second.order_id

    # The plan's tier prices the member's next order: 九五折.
    goods = checkout(
        stub,
        terminal,
        member_id,
        card,
        [pb.CheckoutLine(line_id="1", sku="wax", quantity=1, unit_price_fen=10_00)],
        [pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=9_50)],
    )
    assert (goods.receipt.list_total_fen, goods.receipt.discount_total_fen) == (10_00, 50)

    # The car-wash quota at the till: two, then refused with what is left.
    def wash():
        return benefits.ConsumeBenefit(
            mp.ConsumeBenefitRequest(request_id=rid(), member_id=member_id, benefit_code="car-wash", store_path=STORE),
            metadata=as_(terminal),
        )

    assert [wash().left, wash().left] == [1, 0]
    with pytest.raises(grpc.RpcError) as caught:
        wash()
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "BENEFIT_QUOTA_EXHAUSTED")
    info = error_details_pb2.ErrorInfo()
    next(d for d in rpc_status.from_call(caught.value).details if d.Is(info.DESCRIPTOR)).Unpack(info)
    assert (info.metadata["quantity"], info.metadata["used"], info.metadata["left"]) == ("2", "2", "0")
    held = benefits.ListMemberBenefits(mp.ListMemberBenefitsRequest(member_id=member_id), metadata=as_(terminal))
    assert [(b.benefit.code, b.used, b.left) for b in held.benefits] == [("car-wash", 2, 0)]

    # Unearned tonight: term 1 has earned its first day(s), term 2 nothing.
    as_of = today()
    used1 = (as_of - start).days + 1
    unearned = plans.GetUnearnedRevenue(
        mp.GetUnearnedRevenueRequest(as_of_date=calendar_day(as_of), org_path=STORE), metadata=as_(manager)
    )
    assert (unearned.sold_fen, unearned.earned_fen, unearned.unearned_fen, unearned.terms) == (
        2 * PRICE,
        PRICE * used1 // term1.days,
        2 * PRICE - PRICE * used1 // term1.days,
        2,
    )

    # The finance report's liability shows it (付费会员未摊销收入).
    liability = stub.RunReport(
        pb.RunReportRequest(
            report=pb.REPORT_KIND_LIABILITY,
            org_path=STORE,
            period=pb.ReportPeriod(kind=pb.PERIOD_KIND_DAY, day=calendar_day(as_of)),
        ),
        metadata=as_(manager),
    )
    paid = next(t for t in liability.tables if t.name == "paid_membership")
    rows = {r.cells[0].text: r.cells[1].money_fen for r in paid.rows}
    assert paid.title == "付费会员未摊销收入"
    assert rows == {"期初未摊销": 0, "期末未摊销": unearned.unearned_fen}  # sold today: nothing the night before

    # A manager refunds the first order's plan line: its unused whole days, rounded down,
    # back to the tenders in the shares they paid (half stored value, half cash).
    back = PRICE * (term1.days - used1) // term1.days
    refund = stub.Refund(
        pb.RefundRequest(
            request_id=rid(),
            order_id=first.order_id,
            lines=[pb.RefundLine(line_id="plan", quantity=1)],
            reason="会员申请退费",
        ),
        metadata=as_(manager),
    )
    cash_back = sum(t.amount_fen for t in refund.tenders)
    assert refund.stored_value_fen + cash_back == back
    assert sorted([refund.stored_value_fen, cash_back]) == sorted(split_proportionally(back, [20_00, 20_00]))
    assert refund.state == pb.ORDER_STATE_PARTLY_REFUNDED
    terms = plans.ListMembershipTerms(mp.ListMembershipTermsRequest(member_id=member_id), metadata=as_(manager)).terms
    assert (terms[0].refunded_fen, day(terms[0].end_date)) == (back, as_of + timedelta(days=1))
    assert (terms[1].refunded_fen, terms[1].start_date) == (0, term2.start_date)  # later terms keep their days
    after = plans.GetUnearnedRevenue(
        mp.GetUnearnedRevenueRequest(as_of_date=calendar_day(as_of), org_path=STORE), metadata=as_(manager)
    )
    assert (after.unearned_fen, after.sold_fen) == (PRICE, PRICE)  # term 1 is all earned by tonight
    found = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    assert found.stored_value_available_fen == refund.stored_value_fen

    # The renewal's line: a term not begun gives back all of it, in cash.
    whole = stub.Refund(
        pb.RefundRequest(request_id=rid(), order_id=second.order_id, reason="不续了"), metadata=as_(manager)
    )
    assert ([t.amount_fen for t in whole.tenders], whole.state) == ([PRICE], pb.ORDER_STATE_REFUNDED)
    final = plans.GetUnearnedRevenue(
        mp.GetUnearnedRevenueRequest(as_of_date=calendar_day(as_of), org_path=STORE), metadata=as_(manager)
    )
    assert final.unearned_fen == 0
    # Refunding the line again is refused by the order: nothing left to return.
    with pytest.raises(grpc.RpcError) as caught:
        stub.Refund(
            pb.RefundRequest(
                request_id=rid(), order_id=first.order_id, lines=[pb.RefundLine(line_id="plan", quantity=1)]
            ),
            metadata=as_(manager),
        )
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "REFUND_EXCEEDS_ORDER")


def test_monthly_coupons_and_the_birthday_gift_are_issued_once_however_often_the_job_runs(setup, member_service):
    from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
    from huiyuan.gateway.v1 import benefit_jobs_pb2 as jobs, benefit_jobs_pb2_grpc

    stub, plans, benefits, _, terminal, manager, _, _ = setup
    hq_key = stub.hq_key
    hq = as_(hq_key)
    campaigns = campaign_pb2_grpc.CampaignServiceStub(stub.channel)
    template = campaigns.CreateCouponTemplate(
        campaign_pb2.CreateCouponTemplateRequest(
            request_id=rid(),
            template=campaign_pb2.CouponTemplate(
                name="PLUS 月券", kind=campaign_pb2.COUPON_KIND_FIXED, amount_fen=10_00, valid_days=30, org_path="hq"
            ),
        ),
        metadata=hq,
    ).template
    plan = plans.CreatePlan(
        mp.CreatePlanRequest(
            request_id=rid(),
            plan=mp.MembershipPlan(
                name="PLUS 年卡",
                price_fen=99_00,
                term=mp.PLAN_TERM_YEAR,
                benefits=[
                    mp.Benefit(
                        code="monthly",
                        kind=mp.BENEFIT_KIND_MONTHLY_COUPONS,
                        name="每月券",
                        quantity=2,
                        coupon_template_id=template.template_id,
                    ),
                    mp.Benefit(code="bday", kind=mp.BENEFIT_KIND_BIRTHDAY_POINTS, name="生日积分", points=500),
                ],
            ),
        ),
        metadata=hq,
    ).plan
    now = today()
    born = stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(),
            member=member_pb2.Member(
                name="寿星",
                phone=new_phone(),
                birthday=calendar_day(date(1992, now.month, now.day)),  # a leap year
            ),
            card_type_id=card_type(Stubs(member_service.channel)),
        ),
        metadata=as_(terminal),
    )
    member_id = born.member.member_id
    plans.PurchaseMembership(  # online, through HQ's integration
        mp.PurchaseMembershipRequest(
            request_id=rid(),
            member_id=member_id,
            plan_id=plan.plan_id,
            payment_reference=f"wx-{rid()}",
            paid_fen=99_00,
            store_path="hq",
        ),
        metadata=hq,
    )
    # A run killed after planning: the grants are recorded, nothing issued yet.
    planned = benefits_direct(member_service).PlanBenefitGrants(
        mp.PlanBenefitGrantsRequest(request_id=rid(), as_of_date=calendar_day(now))
    )
    assert planned.planned == 2  # this benefit month's coupons; the birthday (today) week's points
    job = benefit_jobs_pb2_grpc.BenefitJobServiceStub(stub.channel)
    first = job.RunBenefitGrants(
        jobs.RunBenefitGrantsRequest(request_id=rid(), as_of_date=calendar_day(now)), metadata=hq
    )
    assert first.refused == 0 and first.issued == planned.planned  # the next run issues what was left
    found = stub.LookupMember(pb.LookupMemberRequest(card_number=born.card.card_number), metadata=as_(terminal))
    assert sum(c.name == "PLUS 月券" for c in found.usable_coupons) == 2
    birthday_points = 500
    assert found.points_available == birthday_points
    again = job.RunBenefitGrants(
        jobs.RunBenefitGrantsRequest(request_id=rid(), as_of_date=calendar_day(now)), metadata=hq
    )
    assert (again.planned, again.issued, again.refused) == (0, 0, 0)
    after = stub.LookupMember(pb.LookupMemberRequest(card_number=born.card.card_number), metadata=as_(terminal))
    assert sum(c.name == "PLUS 月券" for c in after.usable_coupons) == 2 and after.points_available == birthday_points
    with pytest.raises(grpc.RpcError) as caught:  # HQ's alone
        job.RunBenefitGrants(jobs.RunBenefitGrantsRequest(request_id=rid()), metadata=as_(manager))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def benefits_direct(member_service):
    return membership_pb2_grpc.BenefitServiceStub(member_service.channel)


def test_a_tier_s_quota_and_monthly_coupons_through_the_gateway(setup, member_service):
    """HQ gives a tier 2 free car washes and 2 coupons a month: a member of it washes
    twice at the till and is refused the third; the job issues the coupons once however
    often it runs; moved down, the member washes no more and keeps the coupons."""
    from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
    from huiyuan.gateway.v1 import benefit_jobs_pb2 as jobs, benefit_jobs_pb2_grpc

    stub, _, benefits, _, terminal, _, _, _ = setup
    hq = as_(stub.hq_key)
    template = (
        campaign_pb2_grpc.CampaignServiceStub(stub.channel)
        .CreateCouponTemplate(
            campaign_pb2.CreateCouponTemplateRequest(
                request_id=rid(),
                template=campaign_pb2.CouponTemplate(
                    name="金卡月券", kind=campaign_pb2.COUPON_KIND_FIXED, amount_fen=5_00, valid_days=30, org_path="hq"
                ),
            ),
            metadata=hq,
        )
        .template
    )
    tiers = tier_pb2_grpc.TierServiceStub(stub.channel)

    def tier(name, rank, entitlements=()):
        return tiers.CreateTier(
            tier_pb2.CreateTierRequest(
                request_id=rid(),
                tier=tier_pb2.Tier(name=name, rank=rank, price_rate_bp=10_000, entitlements=list(entitlements)),
            ),
            metadata=hq,
        ).tier

    gold = tier(
        "洗车金卡",
        71,
        [
            mp.Benefit(code="tier-wash", kind=mp.BENEFIT_KIND_SERVICE_QUOTA, name="金卡洗车", quantity=2),
            mp.Benefit(
                code="tier-coupons",
                kind=mp.BENEFIT_KIND_MONTHLY_COUPONS,
                name="金卡月券",
                quantity=2,
                coupon_template_id=template.template_id,
            ),
        ],
    )
    plain = tier("普通卡", 5)
    registered = stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(),
            member=member_pb2.Member(name="金卡会员", phone=new_phone()),
            card_type_id=card_type(Stubs(member_service.channel)),
        ),
        metadata=as_(terminal),
    )
    member_id, card = registered.member.member_id, registered.card.card_number

    def assign(to):
        tiers.AssignTier(
            tier_pb2.AssignTierRequest(request_id=rid(), member_id=member_id, tier_id=to.tier_id, reason="测试"),
            metadata=hq,
        )

    def wash():
        return benefits.ConsumeBenefit(
            mp.ConsumeBenefitRequest(request_id=rid(), member_id=member_id, benefit_code="tier-wash", store_path=STORE),
            metadata=as_(terminal),
        )

    assign(gold)
    assert [(u.left, u.use.tier_id) for u in (wash(), wash())] == [(1, gold.tier_id), (0, gold.tier_id)]
    with pytest.raises(grpc.RpcError) as caught:
        wash()
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "BENEFIT_QUOTA_EXHAUSTED")

    job = benefit_jobs_pb2_grpc.BenefitJobServiceStub(stub.channel)
    now = calendar_day(today())
    first = job.RunBenefitGrants(jobs.RunBenefitGrantsRequest(request_id=rid(), as_of_date=now), metadata=hq)
    assert first.refused == 0 and first.issued >= 1

    def coupons():
        found = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
        return sum(c.name == "金卡月券" for c in found.usable_coupons)

    assert coupons() == 2
    again = job.RunBenefitGrants(jobs.RunBenefitGrantsRequest(request_id=rid(), as_of_date=now), metadata=hq)
    assert (again.planned, again.issued, again.refused) == (0, 0, 0) and coupons() == 2

    assign(plain)  # moved down: no more washes, the coupons stay
    with pytest.raises(grpc.RpcError) as caught:
        wash()
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "NO_MEMBERSHIP_IN_FORCE")
    assert coupons() == 2
