"""MembershipPlanService and BenefitService: the gRPC face of paid membership and its
benefits (use_cases/memberships.py)."""

from datetime import date

from google.type import date_pb2

from huiyuan.database import Idempotency
from huiyuan.member.v1 import membership_pb2 as pb, membership_pb2_grpc
from huiyuan.runtime import pagination
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.convert import calendar_date, calendar_day, timestamp
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.requests import check_actor, check_org_path, check_request_id
from huiyuan.runtime.server import ServiceContext
from services.member.domain import memberships as rules
from services.member.domain.fields import check_text
from services.member.domain.memberships import Benefit, Plan, Term
from services.member.use_cases import membership_tiers, memberships

TERMS = {pb.PLAN_TERM_MONTH: rules.MONTH, pb.PLAN_TERM_QUARTER: rules.QUARTER, pb.PLAN_TERM_YEAR: rules.YEAR}
TERM_ENUMS = {v: k for k, v in TERMS.items()}
KINDS = {
    pb.BENEFIT_KIND_SERVICE_QUOTA: rules.SERVICE_QUOTA,
    pb.BENEFIT_KIND_MONTHLY_COUPONS: rules.MONTHLY_COUPONS,
    pb.BENEFIT_KIND_BIRTHDAY_COUPONS: rules.BIRTHDAY_COUPONS,
    pb.BENEFIT_KIND_BIRTHDAY_POINTS: rules.BIRTHDAY_POINTS,
}
KIND_ENUMS = {v: k for k, v in KINDS.items()}
SOURCES = {rules.TILL: pb.TERM_SOURCE_TILL, rules.ONLINE: pb.TERM_SOURCE_ONLINE, rules.TRIAL: pb.TERM_SOURCE_TRIAL}
MAX_REFERENCE = 100
MAX_ID = 64


def plan_message(p: Plan) -> pb.MembershipPlan:
    return pb.MembershipPlan(
        plan_id=p.plan_id,
        name=p.name,
        price_fen=p.price_fen,
        term=TERM_ENUMS[p.term],
        trial_days=p.trial_days,
        tier_id=p.tier_id,
        benefits=[benefit_message(b) for b in p.benefits],
        renewal=pb.RENEWAL_MODE_MANUAL,
        create_time=timestamp(p.create_time) if p.create_time else None,
    )


def benefit_of(b: pb.Benefit) -> Benefit:
    """A plan's or a tier's benefit as asked for (an unknown kind "": refused by the check)."""
    return Benefit(b.code, KINDS.get(b.kind, ""), b.name.strip(), b.quantity, b.coupon_template_id, b.points)


def benefit_message(b: Benefit) -> pb.Benefit:
    return pb.Benefit(
        code=b.code,
        kind=KIND_ENUMS[b.kind],
        name=b.name,
        quantity=b.quantity,
        coupon_template_id=b.coupon_template_id,
        points=b.points,
    )


def grant_message(row) -> pb.BenefitGrant:
    return pb.BenefitGrant(
        grant_key=row.grant_key,
        member_id=row.member_id,
        kind=KIND_ENUMS[row.kind],
        coupon_template_id=row.coupon_template_id,
        quantity=row.quantity,
        points=row.points,
        due_date=calendar_day(row.due_day),
        issue_time=timestamp(row.issue_time) if row.issue_time else None,
    )


def term_message(t: Term) -> pb.MembershipTerm:
    return pb.MembershipTerm(
        term_id=t.term_id,
        member_id=t.member_id,
        plan_id=t.plan_id,
        source=SOURCES[t.source],
        price_fen=t.price_fen,
        start_date=calendar_day(t.start_day),
        end_date=calendar_day(t.effective_end),
        start_time=timestamp(t.start_time),
        end_time=timestamp(t.end_time),
        payment_reference=t.payment_reference,
        order_id=t.order_id,
        line_id=t.line_id,
        store_path=t.store_path,
        refunded_fen=t.refunded_fen,
        refund_time=timestamp(t.refund_time) if t.refund_time else None,
        days=t.days,
    )


def use_message(row) -> pb.BenefitUse:
    return pb.BenefitUse(
        use_id=row.use_id if hasattr(row, "use_id") else row["use_id"],
        member_id=_get(row, "member_id"),
        benefit_code=_get(row, "benefit_code"),
        plan_id=_get(row, "plan_id"),
        store_path=_get(row, "store_path"),
        use_time=timestamp(_get(row, "use_time")),
        undo_time=timestamp(_get(row, "undo_time")) if _get(row, "undo_time") else None,
        period_start_date=calendar_day(_get(row, "period_start")),
        tier_id=_get(row, "tier_id") or "",
    )


def _get(row, name: str):
    return row[name] if isinstance(row, dict) else getattr(row, name)


def _check_id(v: Violations, value: str, field: str, reason: str, required: bool = True) -> None:
    if required:
        v.check(bool(value), field, reason, f"{field} is required")
    v.check(len(value) <= MAX_ID, field, f"{field.upper().replace('.', '_')}_TOO_LONG", f"{field}: at most {MAX_ID}")


def _check_date(v: Violations, value: date_pb2.Date, field: str, has: bool):
    day = calendar_date(value) if has else None
    v.check(day is not None, field, "DATE_INVALID", f"{field} must be a full calendar day")
    return day


def _check_period(v: Violations, request) -> tuple[date | None, date | None]:
    """A request's org_path (optional) and its period of business days, start_date to
    end_date, at most 367 days."""
    check_org_path(v, request.org_path, "org_path", required=False)
    first = _check_date(v, request.start_date, "start_date", request.HasField("start_date"))
    last = _check_date(v, request.end_date, "end_date", request.HasField("end_date"))
    if first and last:
        v.check(first <= last, "end_date", "PERIOD_INVALID", "end_date must not be before start_date")
        v.check((last - first).days <= 366, "end_date", "PERIOD_TOO_LONG", "at most 367 days")
    return first, last


class MembershipPlanServicer(membership_pb2_grpc.MembershipPlanServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.database = ctx.database
        self.idempotency = idempotency

    async def CreatePlan(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        p = request.plan
        benefits = [benefit_of(b) for b in p.benefits]
        rules.check_plan(
            v,
            p.name,
            p.price_fen,
            TERMS.get(p.term, ""),
            p.trial_days,
            p.renewal == pb.RENEWAL_MODE_AUTO,
            benefits,
        )
        v.check(
            p.renewal in (pb.RENEWAL_MODE_UNSPECIFIED, pb.RENEWAL_MODE_MANUAL, pb.RENEWAL_MODE_AUTO),
            "plan.renewal",
            "RENEWAL_MODE_INVALID",
            "renewal must be MANUAL",
        )
        _check_id(v, p.tier_id, "plan.tier_id", "TIER_ID_INVALID", required=False)
        v.raise_if_any()
        plan = Plan(
            "",
            p.name.strip(),
            p.price_fen,
            TERMS[p.term],
            p.trial_days,
            p.tier_id,
            benefits,
        )

        async def work(tx):
            return pb.CreatePlanResponse(plan=plan_message(await memberships.create_plan(tx, plan, utcnow())))

        created = await self.idempotency.run(request, pb.CreatePlanResponse, work)
        membership_tiers.plan_created(self.database)  # its tier applies at the next lookup here
        return created

    async def GetPlan(self, request, context):
        v = Violations()
        _check_id(v, request.plan_id, "plan_id", "PLAN_ID_REQUIRED")
        v.raise_if_any()
        async with self.database.reading() as tx:
            return pb.GetPlanResponse(plan=plan_message(await memberships.require_plan(tx, request.plan_id)))

    async def ListPlans(self, request, context):
        v = Violations()
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint()
        after = pagination.decode(request.page_token, fingerprint, v, shape=(str,))
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await memberships.list_plans(tx, after[0] if after else None, size + 1)
        page, token = pagination.next_page(found, size, lambda p: [p.plan_id], fingerprint)
        return pb.ListPlansResponse(plans=[plan_message(p) for p in page], next_page_token=token)

    async def PurchaseMembership(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        _check_id(v, request.member_id, "member_id", "MEMBER_ID_REQUIRED")
        _check_id(v, request.plan_id, "plan_id", "PLAN_ID_REQUIRED")
        check_org_path(v, request.store_path, "store_path")
        ways = [bool(request.payment_reference), bool(request.order_id or request.line_id), request.trial]
        v.check(
            sum(ways) == 1,
            "payment_reference",
            "PAYMENT_REQUIRED",
            "exactly one of payment_reference, order_id with line_id, or trial",
        )
        v.check(
            len(request.payment_reference) <= MAX_REFERENCE,
            "payment_reference",
            "PAYMENT_REFERENCE_TOO_LONG",
            f"payment_reference: at most {MAX_REFERENCE} characters",
        )
        if request.order_id or request.line_id:
            _check_id(v, request.order_id, "order_id", "ORDER_ID_REQUIRED")
            _check_id(v, request.line_id, "line_id", "LINE_ID_REQUIRED")
        if request.trial:
            v.check(request.paid_fen == 0, "paid_fen", "TRIAL_IS_FREE", "a trial is paid nothing")
        else:
            v.check(
                0 < request.paid_fen <= rules.MAX_PRICE_FEN,
                "paid_fen",
                "PAID_AMOUNT_OUT_OF_RANGE",
                "paid_fen must be above zero",
            )
        v.raise_if_any()
        if request.trial:
            payment = memberships.Payment(rules.TRIAL)
        elif request.payment_reference:
            payment = memberships.Payment(rules.ONLINE, reference=request.payment_reference)
        else:
            payment = memberships.Payment(rules.TILL, order_id=request.order_id, line_id=request.line_id)

        async def work(tx):
            term = await memberships.purchase(
                tx, request.member_id, request.plan_id, payment, request.paid_fen, request.store_path, utcnow()
            )
            return pb.PurchaseMembershipResponse(term=term_message(term))

        return await self.idempotency.run(request, pb.PurchaseMembershipResponse, work)

    async def ListMembershipTerms(self, request, context):
        v = Violations()
        _check_id(v, request.member_id, "member_id", "MEMBER_ID_REQUIRED")
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.member_id)
        after = pagination.decode(request.page_token, fingerprint, v, shape=(str,))
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await memberships.terms_of(tx, request.member_id, after[0] if after else None, size + 1)
        page, token = pagination.next_page(found, size, lambda t: [t.term_id], fingerprint)
        return pb.ListMembershipTermsResponse(terms=[term_message(t) for t in page], next_page_token=token)

    async def RefundMembership(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        operator, _ = check_actor(v, request)
        _check_id(v, request.member_id, "member_id", "MEMBER_ID_REQUIRED")
        reason = check_text(v, request.reason, "reason", 200, required=True)
        _check_id(v, request.term_id, "term_id", "TERM_ID_INVALID", required=False)
        v.raise_if_any()

        async def work(tx):
            terms = await memberships.refund(tx, request.member_id, reason, operator, utcnow(), request.term_id)
            return pb.RefundMembershipResponse(
                terms=[term_message(t) for t in terms], refunded_fen=sum(t.refunded_fen for t in terms)
            )

        return await self.idempotency.run(request, pb.RefundMembershipResponse, work)

    async def GetUnearnedRevenue(self, request, context):
        v = Violations()
        day = _check_date(v, request.as_of_date, "as_of_date", request.HasField("as_of_date"))
        check_org_path(v, request.org_path, "org_path", required=False)
        v.raise_if_any()
        assert day is not None
        async with self.database.reading() as tx:
            found = await memberships.unearned(tx, day, request.org_path)
        return pb.GetUnearnedRevenueResponse(
            sold_fen=found.sold_fen, earned_fen=found.earned_fen, unearned_fen=found.unearned_fen, terms=found.terms
        )


class BenefitServicer(membership_pb2_grpc.BenefitServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.database = ctx.database
        self.idempotency = idempotency

    async def ListMemberBenefits(self, request, context):
        v = Violations()
        _check_id(v, request.member_id, "member_id", "MEMBER_ID_REQUIRED")
        v.raise_if_any()
        async with self.database.reading() as tx:
            held = await memberships.member_benefits(tx, request.member_id, utcnow())
        return pb.ListMemberBenefitsResponse(
            benefits=[
                pb.MemberBenefit(
                    benefit=benefit_message(h.benefit),
                    plan_id=h.entitlement.source_id if h.entitlement.source == rules.PLAN else "",
                    tier_id=h.entitlement.source_id if h.entitlement.source == rules.TIER else "",
                    used=h.used,
                    left=h.left,
                    period_start_date=calendar_day(h.entitlement.period_start),
                    period_end_date=calendar_day(h.entitlement.period_end),
                )
                for h in held
            ]
        )

    async def ConsumeBenefit(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        operator, _ = check_actor(v, request, required=False)
        _check_id(v, request.member_id, "member_id", "MEMBER_ID_REQUIRED")
        v.check(
            bool(rules.CODE.match(request.benefit_code)),
            "benefit_code",
            "BENEFIT_CODE_INVALID",
            "benefit_code: a-z, 0-9 and '-', 1 to 40",
        )
        check_org_path(v, request.store_path, "store_path")
        v.raise_if_any()

        async def work(tx):
            use, left = await memberships.consume(
                tx, request.member_id, request.benefit_code, request.store_path, operator, utcnow()
            )
            return pb.ConsumeBenefitResponse(use=use_message(use), left=left)

        return await self.idempotency.run(request, pb.ConsumeBenefitResponse, work)

    async def UndoBenefitUse(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        _check_id(v, request.use_id, "use_id", "USE_ID_REQUIRED")
        v.raise_if_any()

        async def work(tx):
            return pb.UndoBenefitUseResponse(use=use_message(await memberships.undo(tx, request.use_id, utcnow())))

        return await self.idempotency.run(request, pb.UndoBenefitUseResponse, work)

    async def ListBenefitUses(self, request, context):
        v = Violations()
        _check_id(v, request.member_id, "member_id", "MEMBER_ID_REQUIRED")
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.member_id)
        before = pagination.decode(request.page_token, fingerprint, v, shape=(str,))
        v.raise_if_any()
        async with self.database.reading() as tx:
            rows = await memberships.uses_of(tx, request.member_id, before[0] if before else None, size + 1)
        page, token = pagination.next_page(rows, size, lambda r: [r.use_id], fingerprint)
        return pb.ListBenefitUsesResponse(uses=[use_message(r) for r in page], next_page_token=token)

    async def SummarizeBenefitUses(self, request, context):
        v = Violations()
        first, last = _check_period(v, request)
        v.raise_if_any()
        assert first is not None and last is not None
        async with self.database.reading() as tx:
            counts = await memberships.use_counts(tx, request.org_path, first, last)
        return pb.SummarizeBenefitUsesResponse(
            counts=[pb.BenefitUseCount(benefit_code=c, uses=u, members=m) for c, u, m in counts]
        )

    async def ListMemberBenefitUseCounts(self, request, context):
        v = Violations()
        first, last = _check_period(v, request)
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.org_path, str(first), str(last), request.benefit_code)
        after = pagination.decode(request.page_token, fingerprint, v, shape=(str, str))
        v.raise_if_any()
        assert first is not None and last is not None
        async with self.database.reading() as tx:
            rows = await memberships.member_use_counts(
                tx, request.org_path, first, last, request.benefit_code, tuple(after) if after else None, size + 1
            )
        page, token = pagination.next_page(rows, size, lambda r: [r.member_id, r.benefit_code], fingerprint)
        return pb.ListMemberBenefitUseCountsResponse(
            counts=[
                pb.MemberBenefitUseCount(
                    member_id=r.member_id,
                    benefit_code=r.benefit_code,
                    uses=int(r.uses),
                    last_use_time=timestamp(r.last_use_time),
                )
                for r in page
            ],
            next_page_token=token,
        )

    async def PlanBenefitGrants(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        day = _check_date(v, request.as_of_date, "as_of_date", request.HasField("as_of_date"))
        _check_id(v, request.after_member_id, "after_member_id", "MEMBER_ID_INVALID", required=False)
        size = pagination.page_size(request.page_size, 1000, 5000, v)
        v.raise_if_any()
        assert day is not None

        async def work(tx):
            planned, last = await memberships.plan_grants(tx, day, request.after_member_id, size, utcnow())
            return pb.PlanBenefitGrantsResponse(planned=planned, next_member_id=last)

        return await self.idempotency.run(request, pb.PlanBenefitGrantsResponse, work)

    async def ListPendingBenefitGrants(self, request, context):
        v = Violations()
        size = pagination.page_size(request.page_size, 500, 5000, v)
        fingerprint = pagination.fingerprint()
        after = pagination.decode(request.page_token, fingerprint, v, shape=(str,))
        v.raise_if_any()
        async with self.database.reading() as tx:
            rows = await memberships.pending_grants(tx, after[0] if after else None, size + 1)
        page, token = pagination.next_page(rows, size, lambda r: [r.grant_key], fingerprint)
        return pb.ListPendingBenefitGrantsResponse(grants=[grant_message(r) for r in page], next_page_token=token)

    async def CompleteBenefitGrant(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(0 < len(request.grant_key) <= 200, "grant_key", "GRANT_KEY_REQUIRED", "grant_key: 1 to 200 characters")
        v.raise_if_any()

        async def work(tx):
            row = await memberships.complete_grant(tx, request.grant_key, utcnow())
            return pb.CompleteBenefitGrantResponse(grant=grant_message(row))

        return await self.idempotency.run(request, pb.CompleteBenefitGrantResponse, work)
