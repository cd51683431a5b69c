"""SegmentService: the gRPC face of automatic tags and saved segments
(use_cases/segments.py)."""

from huiyuan.database import Idempotency
from huiyuan.member.v1 import segment_pb2 as pb, segment_pb2_grpc
from huiyuan.runtime import files, pagination
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.requests import check_actor, check_org_path, check_request_id, is_under
from huiyuan.runtime.server import ServiceContext
from services.member.domain import segments as rules
from services.member.domain.fields import check_name
from services.member.domain.members import check_tag
from services.member.domain.segments import Criteria, RuleKind, Segment, TagRule, Window
from services.member.servicers import convert
from services.member.servicers.member import _member_query
from services.member.use_cases import segments

_KINDS = {
    "visits": RuleKind.VISITS,
    "dormant": RuleKind.DORMANT,
    "spend_rank": RuleKind.SPEND_RANK,
    "rfm": RuleKind.RFM,
    "birthday_month": RuleKind.BIRTHDAY_MONTH,
    "paid_member": RuleKind.PAID_MEMBER,
    "value_score": RuleKind.VALUE_SCORE_BAND,
}


def _rfm(v: Violations, r: pb.RfmRange, field_path: str) -> rules.Rfm:
    return rules.Rfm(
        rules.check_score_range(v, r.recency.min, r.recency.max, f"{field_path}.recency"),
        rules.check_score_range(v, r.frequency.min, r.frequency.max, f"{field_path}.frequency"),
        rules.check_score_range(v, r.monetary.min, r.monetary.max, f"{field_path}.monetary"),
    )


def _rule_input(v: Violations, r: pb.TagRule) -> tuple[str, str, RuleKind | None, dict]:
    org_path = check_org_path(v, r.org_path, "tag_rule.org_path")
    if org_path:
        rules.check_rule_node(v, org_path, "tag_rule.org_path")
    tag = check_tag(v, r.tag, "tag_rule.tag")
    which = r.WhichOneof("kind")
    params: dict = {}
    if which is None:
        v.add(
            "tag_rule.kind",
            "RULE_KIND_REQUIRED",
            "give one kind: visits, dormant, spend_rank, rfm, birthday_month, paid_member, value_score",
        )
        return org_path, tag, None, params
    at = f"tag_rule.{which}"
    if which == "segment_id":
        v.add(at, "RULE_KIND_NOT_SUPPORTED", "a segment's tag is set with the segment (CreateSegment's tag)")
        return org_path, tag, None, params
    if which == "visits":
        params = rules.visits_params(v, r.visits.window_days, r.visits.min_visits, r.visits.max_visits, at)
    elif which == "dormant":
        params = rules.dormant_params(v, r.dormant.days, at)
    elif which == "spend_rank":
        params = rules.spend_rank_params(v, r.spend_rank.window_days, r.spend_rank.top_percent, at)
    elif which == "rfm":
        params = rules.rfm_params(_rfm(v, r.rfm, at), v, at)
    elif which == "birthday_month":
        params = rules.birthday_month_params(v, r.birthday_month.month, at)
    elif which == "paid_member":
        params = rules.paid_member_params(r.paid_member.plan_id)
    elif which == "value_score":
        params = rules.value_score_params(v, r.value_score.min_score, r.value_score.max_score, at)
    return org_path, tag, _KINDS[which], params


def _tag_rule(rule: TagRule) -> pb.TagRule:
    p = rule.params
    message = pb.TagRule(
        rule_id=rule.rule_id,
        org_path=rule.org_path,
        tag=rule.tag,
        member_count=rule.member_count,
        create_time=convert.timestamp(rule.create_time),
        deleted=not rule.live,
    )
    if rule.last_run_time:
        message.last_run_time.CopyFrom(convert.timestamp(rule.last_run_time))
    if rule.kind == RuleKind.VISITS:
        message.visits.CopyFrom(
            pb.VisitsRule(window_days=p["window_days"], min_visits=p["min_visits"], max_visits=p["max_visits"])
        )
    elif rule.kind == RuleKind.DORMANT:
        message.dormant.CopyFrom(pb.DormantRule(days=p["days"]))
    elif rule.kind == RuleKind.SPEND_RANK:
        message.spend_rank.CopyFrom(pb.SpendRankRule(window_days=p["window_days"], top_percent=p["top_percent"]))
    elif rule.kind == RuleKind.RFM:
        message.rfm.CopyFrom(_rfm_message(rules.rfm_from_list(p["rfm"])))
    elif rule.kind == RuleKind.BIRTHDAY_MONTH:
        message.birthday_month.CopyFrom(pb.BirthdayMonthRule(month=p["month"]))
    elif rule.kind == RuleKind.PAID_MEMBER:
        message.paid_member.CopyFrom(pb.PaidMemberRule(plan_id=p["plan_id"]))
    elif rule.kind == RuleKind.VALUE_SCORE_BAND:
        message.value_score.CopyFrom(pb.ValueScoreBand(min_score=p["min_score"], max_score=p["max_score"]))
    else:
        message.segment_id = rule.segment_id
    return message


def _rfm_message(rfm: rules.Rfm) -> pb.RfmRange:
    def one(s: rules.ScoreRange) -> pb.ScoreRange:
        return pb.ScoreRange(min=s.low, max=s.high)

    return pb.RfmRange(recency=one(rfm.recency), frequency=one(rfm.frequency), monetary=one(rfm.monetary))


def _criteria(v: Violations, c: pb.SegmentCriteria, owner: str) -> Criteria:
    inner = Violations()
    query = _member_query(inner, c.filter)
    for item in inner.items:  # the filter's checks name "filter.<field>"
        v.add(f"segment.criteria.{item.field}", item.reason, item.description)
    if query.org_path and owner:
        v.check(
            is_under(query.org_path, owner),
            "segment.criteria.filter.org_path",
            "FILTER_OUTSIDE_OWNER",
            "the filter's org_path must lie under the segment's owner",
        )
    at = "segment.criteria"
    visits = spend = None
    if c.HasField("visits"):
        rules.check_window(v, c.visits.window_days, f"{at}.visits.window_days")
        rules.check_bounds(
            v, c.visits.min_visits, c.visits.max_visits, rules.MAX_VISITS, f"{at}.visits", "min_visits", "max_visits"
        )
        visits = Window(c.visits.window_days, c.visits.min_visits, c.visits.max_visits)
    if c.HasField("spend"):
        rules.check_window(v, c.spend.window_days, f"{at}.spend.window_days")
        rules.check_bounds(
            v, c.spend.min_fen, c.spend.max_fen, rules.MAX_SPEND_FEN, f"{at}.spend", "min_fen", "max_fen"
        )
        spend = Window(c.spend.window_days, c.spend.min_fen, c.spend.max_fen)
    rfm = _rfm(v, c.rfm, f"{at}.rfm") if c.HasField("rfm") else None
    tags = [check_tag(v, t, f"{at}.automatic_tags[{i}]") for i, t in enumerate(c.automatic_tags)]
    v.check(
        len(tags) <= rules.MAX_AUTOMATIC_TAGS,
        f"{at}.automatic_tags",
        "TOO_MANY_TAGS",
        f"at most {rules.MAX_AUTOMATIC_TAGS} automatic tags",
    )
    band = None
    if c.HasField("value_score"):
        kept = rules.value_score_params(v, c.value_score.min_score, c.value_score.max_score, f"{at}.value_score")
        band = (kept["min_score"], kept["max_score"])
    return Criteria(
        query=query,
        visits=visits,
        spend=spend,
        rfm=rfm,
        automatic_tags=list(dict.fromkeys(tags)),
        paid_member=c.paid_member,
        value_score=band,
    )


def _segment_input(v: Violations, s: pb.Segment, owner: str) -> tuple[str, Criteria, str]:
    name = check_name(v, s.name, "segment.name")
    criteria = _criteria(v, s.criteria, owner)
    tag = check_tag(v, s.tag, "segment.tag") if s.tag else ""
    return name, criteria, tag


def _segment(s: Segment) -> pb.Segment:
    c = rules.criteria_from_dict(s.criteria)
    criteria = pb.SegmentCriteria(automatic_tags=c.automatic_tags)
    stored_filter = s.criteria.get("filter_message")
    if stored_filter:
        criteria.filter.ParseFromString(bytes.fromhex(stored_filter))
    if c.visits:
        criteria.visits.CopyFrom(
            pb.VisitsCriterion(window_days=c.visits.window_days, min_visits=c.visits.low, max_visits=c.visits.high)
        )
    if c.spend:
        criteria.spend.CopyFrom(
            pb.SpendCriterion(window_days=c.spend.window_days, min_fen=c.spend.low, max_fen=c.spend.high)
        )
    if c.rfm:
        criteria.rfm.CopyFrom(_rfm_message(c.rfm))
    criteria.paid_member = c.paid_member
    if c.value_score:
        criteria.value_score.CopyFrom(pb.ValueScoreBand(min_score=c.value_score[0], max_score=c.value_score[1]))
    message = pb.Segment(
        segment_id=s.segment_id,
        org_path=s.org_path,
        name=s.name,
        criteria=criteria,
        tag=s.tag,
        rule_id=s.rule_id,
        create_time=convert.timestamp(s.create_time),
        update_time=convert.timestamp(s.update_time),
    )
    if s.delete_time:
        message.delete_time.CopyFrom(convert.timestamp(s.delete_time))
    return message


def _with_filter(criteria: Criteria, request_criteria: pb.SegmentCriteria) -> dict:
    """The criteria as kept, with the filter as the caller gave it (to answer it back)."""
    kept = rules.criteria_to_dict(criteria)
    kept["filter_message"] = request_criteria.filter.SerializeToString(deterministic=True).hex()
    return kept


class SegmentServicer(segment_pb2_grpc.SegmentServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.database = ctx.database
        self.idempotency = idempotency

    async def CreateTagRule(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        org_path, tag, kind, params = _rule_input(v, request.tag_rule)
        v.raise_if_any()
        assert kind is not None
        now = utcnow()

        async def work(tx):
            rule = await segments.create_rule(tx, org_path, tag, kind, params, now)
            return pb.CreateTagRuleResponse(tag_rule=_tag_rule(rule))

        answer = await self.idempotency.run(request, pb.CreateTagRuleResponse, work)
        await segments.refresh(self.database, [answer.tag_rule.rule_id], utcnow())
        async with self.database.reading() as tx:
            return pb.CreateTagRuleResponse(
                tag_rule=_tag_rule(await segments.require_rule(tx, answer.tag_rule.rule_id))
            )

    async def GetTagRule(self, request, context):
        async with self.database.reading() as tx:
            rule = await segments.require_rule(tx, request.tag_rule_id)
        return pb.GetTagRuleResponse(tag_rule=_tag_rule(rule))

    async def ListTagRules(self, request, context):
        v = Violations()
        check_org_path(v, request.org_path, "org_path", required=False)
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.org_path)
        after = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await segments.list_rules(tx, request.org_path, after[0] if after else None, size + 1)
        page, token = pagination.next_page(found, size, lambda r: [r.rule_id], fingerprint)
        return pb.ListTagRulesResponse(tag_rules=[_tag_rule(r) for r in page], next_page_token=token)

    async def DeleteTagRule(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(bool(request.tag_rule_id), "tag_rule_id", "TAG_RULE_ID_REQUIRED", "tag_rule_id is required")
        v.raise_if_any()

        async def work(tx):
            await segments.delete_rule(tx, request.tag_rule_id)
            return pb.DeleteTagRuleResponse()

        answer = await self.idempotency.run(request, pb.DeleteTagRuleResponse, work)
        await segments.refresh(self.database, [request.tag_rule_id], utcnow())
        return answer

    async def RunTagRules(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.raise_if_any()
        # the job commits in batches of its own; the request_id answers a replay
        done = await self.idempotency.stored(request, pb.RunTagRulesResponse)
        if done is not None:
            return done
        result = await segments.run_rules(self.database, utcnow(), rule_id=request.tag_rule_id)
        answer = pb.RunTagRulesResponse(rules=result.rules, tags_added=result.added, tags_removed=result.removed)
        return await self.idempotency.remember(request, answer)

    async def CreateSegment(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        owner = check_org_path(v, request.segment.org_path, "segment.org_path")
        name, criteria, tag = _segment_input(v, request.segment, owner)
        v.raise_if_any()
        kept = _with_filter(criteria, request.segment.criteria)
        now = utcnow()

        async def work(tx):
            segment = await segments.create_segment(tx, owner, name, kept, tag, now)
            return pb.CreateSegmentResponse(segment=_segment(segment))

        answer = await self.idempotency.run(request, pb.CreateSegmentResponse, work)
        if answer.segment.rule_id:
            await segments.refresh(self.database, [answer.segment.rule_id], utcnow())
        return answer

    async def GetSegment(self, request, context):
        async with self.database.reading() as tx:
            segment = await segments.require_segment(tx, request.segment_id, usable=False)
        return pb.GetSegmentResponse(segment=_segment(segment))

    async def ListSegments(self, request, context):
        v = Violations()
        check_org_path(v, request.org_path, "org_path", required=False)
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.org_path)
        after = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await segments.list_segments(tx, request.org_path, after[0] if after else None, size + 1)
        page, token = pagination.next_page(found, size, lambda s: [s.segment_id], fingerprint)
        return pb.ListSegmentsResponse(segments=[_segment(s) for s in page], next_page_token=token)

    async def UpdateSegment(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(bool(request.segment.segment_id), "segment.segment_id", "SEGMENT_ID_REQUIRED", "segment_id is required")
        async with self.database.reading() as tx:
            current = (
                await segments.require_segment(tx, request.segment.segment_id) if request.segment.segment_id else None
            )
        name, criteria, tag = _segment_input(v, request.segment, current.org_path if current else "")
        v.raise_if_any()
        kept = _with_filter(criteria, request.segment.criteria)
        now = utcnow()
        to_run: list[str] = []

        async def work(tx):
            segment, rule_ids = await segments.update_segment(tx, request.segment.segment_id, name, kept, tag, now)
            to_run.extend(rule_ids)
            return pb.UpdateSegmentResponse(segment=_segment(segment))

        answer = await self.idempotency.run(request, pb.UpdateSegmentResponse, work)
        await segments.refresh(self.database, to_run, utcnow())
        return answer

    async def DeleteSegment(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(bool(request.segment_id), "segment_id", "SEGMENT_ID_REQUIRED", "segment_id is required")
        v.raise_if_any()
        to_run: list[str] = []
        now = utcnow()

        async def work(tx):
            rule_id = await segments.delete_segment(tx, request.segment_id, now)
            to_run.extend([rule_id] if rule_id else [])
            return pb.DeleteSegmentResponse()

        answer = await self.idempotency.run(request, pb.DeleteSegmentResponse, work)
        await segments.refresh(self.database, to_run, utcnow())
        return answer

    async def CountSegment(self, request, context):
        async with self.database.reading() as tx:
            count = await segments.count_segment(tx, request.segment_id, utcnow())
        return pb.CountSegmentResponse(member_count=count)

    async def ListSegmentMembers(self, request, context):
        v = Violations()
        size = pagination.page_size(request.page_size, 500, 5_000, v)
        fingerprint = pagination.fingerprint(request.segment_id)
        before = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await segments.segment_member_ids(
                tx, request.segment_id, before[0] if before else None, size + 1, utcnow()
            )
        page, token = pagination.next_page(found, size, lambda i: [i], fingerprint)
        return pb.ListSegmentMembersResponse(member_ids=page, next_page_token=token)

    async def ExportSegment(self, request, context):
        v = Violations()
        xlsx = files.check_format(v, request.format)
        v.raise_if_any()
        name = files.export_name("segment", xlsx=xlsx)
        async with segments.exporting(self.database, request.segment_id, utcnow()) as rows:
            # made once the segment is found: an XLSX writer holds a temporary file until it is closed
            writer = files.FileWriter(name, segments.EXPORT_COLUMNS, xlsx, "分群")
            async for file_name, chunk in writer.stream(rows):
                yield pb.ExportSegmentResponse(file_name=file_name, chunk=chunk)
