"""TierProgrammeService and ValueScoreService: the gRPC face of use_cases/loyalty.py."""

from datetime import date, timedelta

from huiyuan.database import Idempotency
from huiyuan.member.v1 import loyalty_pb2 as pb, loyalty_pb2_grpc
from huiyuan.runtime import pagination
from huiyuan.runtime.clock import today, utcnow
from huiyuan.runtime.convert import calendar_date, calendar_day
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.requests import check_actor, check_org_path, check_request_id
from huiyuan.runtime.server import ServiceContext
from services.member.domain import loyalty as rules
from services.member.domain.value_score import COMPONENTS, check_weights
from services.member.servicers.convert import timestamp
from services.member.use_cases import loyalty

MEASURES = {
    pb.TIER_MEASURE_SPEND: rules.Measure.SPEND,
    pb.TIER_MEASURE_POINTS_EARNED: rules.Measure.POINTS_EARNED,
    pb.TIER_MEASURE_VISITS: rules.Measure.VISITS,
    pb.TIER_MEASURE_TOP_UPS: rules.Measure.TOP_UPS,
    pb.TIER_MEASURE_VALUE_SCORE: rules.Measure.VALUE_SCORE,
}
WINDOWS = {
    pb.TIER_WINDOW_UNSPECIFIED: rules.Window.NONE,
    pb.TIER_WINDOW_ROLLING_DAYS: rules.Window.ROLLING_DAYS,
    pb.TIER_WINDOW_CALENDAR_YEAR: rules.Window.CALENDAR_YEAR,
}
DOWNGRADES = {
    pb.DOWNGRADE_RULE_ONE_LEVEL: rules.Downgrade.ONE_LEVEL,
    pb.DOWNGRADE_RULE_TO_QUALIFIED: rules.Downgrade.TO_QUALIFIED,
}


def _back(table: dict, value):
    return next(k for k, v in table.items() if v == value)


def _programme(v: Violations, m: pb.TierProgrammeVersion) -> rules.Programme | None:
    effective = calendar_date(m.effective_from) if m.HasField("effective_from") else None
    v.check(
        effective is not None, "version.effective_from", "EFFECTIVE_FROM_INVALID", "effective_from must be a real day"
    )
    measure = MEASURES.get(m.measure)
    v.check(measure is not None, "version.measure", "MEASURE_REQUIRED", "measure is required")
    window = WINDOWS.get(m.window)
    v.check(window is not None, "version.window", "WINDOW_INVALID", "window is not one of TierWindow")
    downgrade = DOWNGRADES.get(m.downgrade_rule)
    v.check(downgrade is not None, "version.downgrade_rule", "DOWNGRADE_RULE_REQUIRED", "downgrade_rule is required")
    if effective is None or measure is None or window is None or downgrade is None:
        return None
    return rules.Programme(
        "",
        effective,
        measure,
        window,
        m.window_days,
        m.term_months,
        m.grace_days,
        downgrade,
        m.notice_days,
        [rules.Rule(r.tier_id, r.upgrade_threshold, r.keep_threshold) for r in m.tier_rules],
        m.note.strip(),
    )


def _version(p: rules.Programme) -> pb.TierProgrammeVersion:
    return pb.TierProgrammeVersion(
        version_id=p.version_id,
        effective_from=calendar_day(p.effective_from),
        measure=_back(MEASURES, p.measure),
        window=_back(WINDOWS, p.window),
        window_days=p.window_days,
        term_months=p.term_months,
        grace_days=p.grace_days,
        downgrade_rule=_back(DOWNGRADES, p.downgrade),
        notice_days=p.notice_days,
        tier_rules=[
            pb.TierRule(tier_id=r.tier_id, upgrade_threshold=r.upgrade, keep_threshold=r.keep) for r in p.rules
        ],
        note=p.note,
        create_time=timestamp(p.create_time) if p.create_time else None,
    )


def _progress(x: rules.Progress) -> pb.TierProgress:
    return pb.TierProgress(
        member_id=x.member_id,
        tier_id=x.tier_id,
        version_id=x.programme.version_id,
        measure=_back(MEASURES, x.programme.measure),
        window_start=calendar_day(x.window_start) if x.window_start else None,
        measure_value=x.value,
        term_end=calendar_day(x.term_end) if x.term_end else None,
        keep_threshold=x.keep_threshold,
        keep_shortfall=x.keep_shortfall,
        downgrade_date=calendar_day(x.downgrade_date) if x.downgrade_date else None,
        next_tier_id=x.next_tier_id,
        next_threshold=x.next_threshold,
        next_shortfall=x.next_shortfall,
        floor_tier_id=x.floor_tier_id,
        floor_end=calendar_day(x.floor_end) if x.floor_end else None,
        message=";".join(x.messages),
    )


def _check_member_id(v: Violations, member_id: str) -> None:
    v.check(0 < len(member_id) <= 40, "member_id", "MEMBER_ID_REQUIRED", "member_id is required")


def _day(v: Violations, request, field: str, default: date) -> date:
    """An optional google.type.Date field: a real day, not after today (default: default)."""
    if not request.HasField(field):
        return default
    day = calendar_date(getattr(request, field))
    v.check(day is not None and day <= today(), field, "DATE_INVALID", f"{field} must be a real day, not after today")
    return day or default


class TierProgrammeServicer(loyalty_pb2_grpc.TierProgrammeServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.database = ctx.database
        self.idempotency = idempotency

    async def CreateTierProgrammeVersion(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        p = _programme(v, request.version)
        if p is not None:
            rules.check_programme(v, p, today())
        v.raise_if_any()
        assert p is not None

        async def work(tx):
            return pb.CreateTierProgrammeVersionResponse(
                version=_version(await loyalty.create_version(tx, p, utcnow()))
            )

        return await self.idempotency.run(request, pb.CreateTierProgrammeVersionResponse, work)

    async def ListTierProgrammeVersions(self, request, context):
        v = Violations()
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint()
        after = pagination.decode(request.page_token, fingerprint, v, shape=(str,))
        before = date.fromisoformat(after[0]) if after else None
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await loyalty.list_versions(tx, before, size + 1)
        page, token = pagination.next_page(found, size, lambda p: [p.effective_from.isoformat()], fingerprint)
        return pb.ListTierProgrammeVersionsResponse(versions=[_version(p) for p in page], next_page_token=token)

    async def GetMemberTierProgress(self, request, context):
        v = Violations()
        _check_member_id(v, request.member_id)
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await loyalty.progress_of(tx, request.member_id, today())
        return pb.GetMemberTierProgressResponse(progress=_progress(found))

    async def ListMembersAtRisk(self, request, context):
        v = Violations()
        check_org_path(v, request.org_path, "org_path")
        size = pagination.page_size(request.page_size, 100, 1000, v)
        fingerprint = pagination.fingerprint(request.org_path)
        after = pagination.decode(request.page_token, fingerprint, v, shape=(str,))
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await loyalty.members_at_risk(tx, request.org_path, today(), after[0] if after else "", size + 1)
        page, token = pagination.next_page(found, size, lambda x: [x.member_id], fingerprint)
        return pb.ListMembersAtRiskResponse(members=[_progress(x) for x in page], next_page_token=token)

    async def RunTierReevaluation(self, request, context):
        """Batches of their own transactions; the outcome is stored under the request_id
        so that a replay reports the same run."""
        v = Violations()
        check_request_id(v, request.request_id)
        day = _day(v, request, "business_date", today() - timedelta(days=1))
        v.raise_if_any()
        stored = await self.idempotency.stored(request, pb.RunTierReevaluationResponse)
        if stored is not None:
            return stored
        run = await loyalty.run_reevaluation(self.database, day, utcnow())
        response = pb.RunTierReevaluationResponse(
            business_date=calendar_day(day),
            evaluated=run.evaluated,
            terms_started=run.terms_started,
            renewed=run.renewed,
            downgraded=run.downgraded,
            upgraded=run.upgraded,
            in_grace=run.in_grace,
        )
        return await self.idempotency.remember(request, response)


def _weights_message(w: dict[str, int], when) -> pb.ValueScoreWeights:
    return pb.ValueScoreWeights(**{f"{c}_bp": w[c] for c in COMPONENTS}, update_time=timestamp(when) if when else None)


def _score(x: loyalty.Explained) -> pb.ValueScore:
    return pb.ValueScore(
        member_id=x.score.member_id,
        month=calendar_day(x.score.month),
        score=x.score.score,
        components=[
            pb.ValueScoreComponent(
                component=line.component,
                raw=line.raw,
                weight_bp=line.weight_bp,
                points=line.points,
                change=line.change,
                detail=line.detail,
            )
            for line in x.lines
        ],
        previous_score=x.previous.score if x.previous else 0,
        has_previous=x.previous is not None,
        compute_time=timestamp(x.compute_time),
    )


class ValueScoreServicer(loyalty_pb2_grpc.ValueScoreServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.database = ctx.database
        self.idempotency = idempotency

    async def SetValueScoreWeights(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        weights = {c: getattr(request.weights, f"{c}_bp") for c in COMPONENTS}
        check_weights(v, weights)
        v.raise_if_any()

        async def work(tx):
            w, when = await loyalty.set_weights(tx, weights, utcnow())
            return pb.SetValueScoreWeightsResponse(weights=_weights_message(w, when))

        return await self.idempotency.run(request, pb.SetValueScoreWeightsResponse, work)

    async def GetValueScoreWeights(self, request, context):
        async with self.database.reading() as tx:
            w, when = await loyalty.weights(tx)
        return pb.GetValueScoreWeightsResponse(weights=_weights_message(w, when))

    async def GetValueScore(self, request, context):
        v = Violations()
        _check_member_id(v, request.member_id)
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await loyalty.score_of_member(tx, request.member_id)
        return pb.GetValueScoreResponse(score=_score(found))

    async def ListValueScoreHistory(self, request, context):
        v = Violations()
        _check_member_id(v, request.member_id)
        size = pagination.page_size(request.page_size, 12, 120, v)
        fingerprint = pagination.fingerprint(request.member_id)
        after = pagination.decode(request.page_token, fingerprint, v, shape=(str,))
        before = date.fromisoformat(after[0]) if after else None
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await loyalty.history(tx, request.member_id, before, size + 1)
        page, token = pagination.next_page(found, size, lambda x: [x.score.month.isoformat()], fingerprint)
        return pb.ListValueScoreHistoryResponse(scores=[_score(x) for x in page], next_page_token=token)

    async def RecomputeValueScore(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        _check_member_id(v, request.member_id)
        v.raise_if_any()

        async def work(tx):
            return pb.RecomputeValueScoreResponse(
                score=_score(await loyalty.recompute_one(tx, request.member_id, utcnow()))
            )

        return await self.idempotency.run(request, pb.RecomputeValueScoreResponse, work)

    async def RunValueScoreRecompute(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        month = loyalty.month_of(_day(v, request, "month", today()))
        v.raise_if_any()
        stored = await self.idempotency.stored(request, pb.RunValueScoreRecomputeResponse)
        if stored is not None:
            return stored
        scored = await loyalty.run_value_scores(self.database, month, utcnow())
        response = pb.RunValueScoreRecomputeResponse(month=calendar_day(month), scored=scored)
        return await self.idempotency.remember(request, response)
