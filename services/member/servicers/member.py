"""MemberService: the gRPC face of members (use_cases/members.py), their import and
export (use_cases/imports.py) and their visits (use_cases/visits.py)."""

from datetime import timedelta

from huiyuan.database import Idempotency
from huiyuan.member.v1 import member_pb2, member_pb2_grpc
from huiyuan.runtime import clock, files, pagination
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.convert import calendar_date, timestamp
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.requests import check_actor, check_mask, check_org_path, check_request_id
from huiyuan.runtime.server import ServiceContext
from services.member.domain import care
from services.member.domain.attributes import (
    ATTRIBUTE_KEY,
    AttributeDefinition,
    AttributeType,
)
from services.member.domain.cards import CARD_NUMBER
from services.member.domain.fields import MAX_NAME, check_name
from services.member.domain.members import (
    UPDATABLE_MEMBER_FIELDS,
    Channel,
    MemberQuery,
    check_tag,
    normalise_phone,
)
from services.member.domain.qr import QR_TTL_DEFAULT, QR_TTL_MIN, verify_qr_token
from services.member.domain.reports import MAX_CASHIER_ID
from services.member.domain.tiers import MAX_SPEND_FEN
from services.member.domain.visits import check_visit_time
from services.member.servicers import convert
from services.member.use_cases import homes, imports, members, reports, visits

MAX_FIND_KEYS = 1_000  # FindMembers: a file's rows are asked for in pages of this many


def _member_query(v: Violations, f: member_pb2.MemberFilter) -> MemberQuery:
    check_org_path(v, f.org_path, "filter.org_path", required=False)
    channel = convert.enum_name(member_pb2.RegistrationChannel, "REGISTRATION_CHANNEL", f.channel)
    v.check(f.channel == 0 or channel is not None, "filter.channel", "CHANNEL_INVALID", "unknown channel")
    v.check(len(f.name_contains) <= MAX_NAME, "filter.name_contains", "TOO_LONG", "name_contains is too long")
    v.check(
        f.phone_suffix == "" or (f.phone_suffix.isdigit() and len(f.phone_suffix) <= 11),
        "filter.phone_suffix",
        "PHONE_SUFFIX_INVALID",
        "phone_suffix must be 1 to 11 digits",
    )
    tag = check_tag(v, f.tag, "filter.tag") if f.tag else ""
    birthday_in = _day_span(v, f.birthday_in, "filter.birthday_in") if f.HasField("birthday_in") else None
    anniversary_in = _day_span(v, f.anniversary_in, "filter.anniversary_in") if f.HasField("anniversary_in") else None
    return MemberQuery(
        org_path=f.org_path,
        tier_id=f.tier_id,
        channel=Channel(channel) if channel else None,
        name_contains=f.name_contains.strip(),
        phone_suffix=f.phone_suffix,
        registered_after=convert.from_timestamp(f.registered_after) if f.HasField("registered_after") else None,
        registered_before=convert.from_timestamp(f.registered_before) if f.HasField("registered_before") else None,
        tag=tag,
        birthday_in=birthday_in,
        anniversary_in=anniversary_in,
        no_visit_since=convert.from_timestamp(f.no_visit_since) if f.HasField("no_visit_since") else None,
    )


def _day_span(v: Violations, span: member_pb2.DaySpan, field_path: str) -> care.DaySpan | None:
    return care.check_span(
        v, (span.first_day.month, span.first_day.day), (span.last_day.month, span.last_day.day), field_path
    )


class MemberServicer(member_pb2_grpc.MemberServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.database = ctx.database
        self.idempotency = idempotency
        self.qr_secret = ctx.settings.qr_secret
        self.qr_lifetime = timedelta(seconds=ctx.settings.qr_lifetime_s)  # the longest a QR code is good for
        if self.qr_lifetime < QR_TTL_MIN:
            raise SystemExit(f"HUIYUAN_QR_LIFETIME_S must be at least {QR_TTL_MIN.seconds} s")

    async def RegisterMember(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        _, org_path = check_actor(v, request)
        channel = convert.enum_name(member_pb2.RegistrationChannel, "REGISTRATION_CHANNEL", request.channel)
        v.check(
            channel is not None,
            "channel",
            "CHANNEL_REQUIRED",
            "channel must be STORE, CALL_CENTRE, WEB, QR_SELF_SERVICE or BULK_IMPORT",
        )
        v.check(
            len(request.cashier_id) <= MAX_CASHIER_ID,
            "cashier_id",
            "CASHIER_ID_TOO_LONG",
            f"cashier_id is at most {MAX_CASHIER_ID} characters",
        )
        values, definitions = await members.checked_profile(
            self.database, v, convert.profile_input(request.member), "member."
        )
        v.raise_if_any()
        now = utcnow()

        async def work(tx):
            new = await members.register(tx, values, Channel(channel), org_path, now, request.cashier_id)
            return member_pb2.RegisterMemberResponse(member=convert.member(new, definitions))

        return await self.idempotency.run(request, member_pb2.RegisterMemberResponse, work)

    async def GetMember(self, request, context):
        async with self.database.reading() as tx:
            member, definitions = await members.get_member(tx, request.member_id)
        return member_pb2.GetMemberResponse(member=convert.member(member, definitions))

    async def FindMembers(self, request, context):
        v = Violations()
        keys = len(request.member_ids) + len(request.phones)
        v.check(keys > 0, "member_ids", "KEYS_REQUIRED", "give member_ids or phones")
        v.check(
            keys <= MAX_FIND_KEYS,
            "member_ids",
            "TOO_MANY_KEYS",
            f"at most {MAX_FIND_KEYS} member_ids and phones in all per call",
        )
        v.raise_if_any()
        async with self.database.reading() as tx:
            found, definitions = await members.find(tx, request.member_ids, request.phones)
        return member_pb2.FindMembersResponse(members={key: convert.member(m, definitions) for key, m in found.items()})

    async def UpdateMember(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(
            bool(request.member.member_id), "member.member_id", "MEMBER_ID_REQUIRED", "member.member_id is required"
        )
        paths = check_mask(v, request, UPDATABLE_MEMBER_FIELDS, prefixes=("attributes.",))
        profile = convert.profile_input(request.member)
        one_keys = {p.split(".", 1)[1] for p in paths if p.startswith("attributes.")}
        if one_keys:  # attributes.<key>: only those keys (a key absent from the request is removed)
            profile.attributes = {k: val for k, val in profile.attributes.items() if k in one_keys}
        values, definitions = await members.checked_profile(self.database, v, profile, "member.", partial=set(paths))
        v.raise_if_any()

        async def work(tx):
            updated = await members.update_member(tx, request.member.member_id, values, one_keys)
            return member_pb2.UpdateMemberResponse(member=convert.member(updated, definitions))

        return await self.idempotency.run(request, member_pb2.UpdateMemberResponse, work)

    async def LookupMember(self, request, context):
        v = Violations()
        key = request.WhichOneof("key")
        v.check(key is not None, "key", "LOOKUP_KEY_REQUIRED", "give member_id, phone, card_number or qr_token")
        phone = ""
        if key == "phone":
            phone = normalise_phone(request.phone) or ""
            v.check(bool(phone), "phone", "PHONE_INVALID", "phone must be a mainland China mobile number")
        if key == "card_number":
            v.check(
                bool(CARD_NUMBER.match(request.card_number)),
                "card_number",
                "CARD_NUMBER_INVALID",
                "card_number must be 8 to 20 digits",
            )
        purpose = request.purpose
        v.check(purpose in member_pb2.LookupPurpose.values(), "purpose", "PURPOSE_INVALID", "unknown purpose")
        v.check(request.view in member_pb2.MemberView.values(), "view", "VIEW_INVALID", "unknown view")
        v.raise_if_any()
        now = utcnow()
        qr_member = (
            verify_qr_token(request.qr_token, self.qr_secret, now, self.qr_lifetime) if key == "qr_token" else ""
        )
        found, definitions = await members.lookup_for_till(
            self.database,
            member_id=request.member_id if key == "member_id" else "",
            phone=phone,
            card_number=request.card_number if key == "card_number" else "",
            qr_member_id=qr_member,
            for_payment=purpose == member_pb2.LOOKUP_PURPOSE_PAYMENT,
            now=now,
            counter_view=request.view == member_pb2.MEMBER_VIEW_COUNTER,
        )
        return member_pb2.LookupMemberResponse(
            member=convert.member(found.member, definitions),
            presented_card=convert.card(found.presented_card) if found.presented_card else None,
            cards=[convert.card(c) for c in found.cards],
            tier=convert.tier(found.tier) if found.tier else None,
        )

    async def ListMembers(self, request, context):
        v = Violations()
        query = _member_query(v, request.filter)
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.filter.SerializeToString(deterministic=True).hex())
        before = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        async with self.database.reading() as tx:
            found, definitions = await members.list_members(tx, query, before[0] if before else None, size + 1)
        page, token = pagination.next_page(found, size, lambda m: [m.member_id], fingerprint)
        return member_pb2.ListMembersResponse(
            members=[convert.member(m, definitions) for m in page], next_page_token=token
        )

    async def IssueQrToken(self, request, context):
        v = Violations()
        ttl = request.ttl.ToTimedelta() if request.HasField("ttl") else min(QR_TTL_DEFAULT, self.qr_lifetime)
        v.check(
            QR_TTL_MIN <= ttl <= self.qr_lifetime,
            "ttl",
            "TTL_OUT_OF_RANGE",
            f"ttl must be {QR_TTL_MIN.seconds} s to {int(self.qr_lifetime.total_seconds())} s",
        )
        v.raise_if_any()
        async with self.database.reading() as tx:
            token, expire = await members.issue_qr_token(tx, request.member_id, ttl, self.qr_secret, utcnow())
        return member_pb2.IssueQrTokenResponse(qr_token=token, expire_time=convert.timestamp(expire))

    async def CreateAttributeDefinition(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        d = request.attribute_definition
        v.check(
            bool(ATTRIBUTE_KEY.match(d.key)),
            "attribute_definition.key",
            "ATTRIBUTE_KEY_INVALID",
            "key must be 1 to 32 lower-case letters, digits or '_', starting with a letter",
        )
        display = check_name(v, d.display_name, "attribute_definition.display_name")
        kind = convert.enum_name(member_pb2.AttributeType, "ATTRIBUTE_TYPE", d.type)
        v.check(kind is not None, "attribute_definition.type", "ATTRIBUTE_TYPE_REQUIRED", "type is required")
        choices = [c.strip() for c in d.choices]
        v.check(
            (kind == "CHOICE") == bool(choices) and all(choices) and len(set(choices)) == len(choices),
            "attribute_definition.choices",
            "CHOICES_INVALID",
            "a CHOICE attribute lists distinct choices; others none",
        )
        v.raise_if_any()
        definition = AttributeDefinition(d.key, display, AttributeType(kind), choices, d.required)

        async def work(tx):
            created = await members.create_attribute_definition(tx, definition)
            return member_pb2.CreateAttributeDefinitionResponse(
                attribute_definition=convert.attribute_definition(created)
            )

        return await self.idempotency.run(request, member_pb2.CreateAttributeDefinitionResponse, work)

    async def ListAttributeDefinitions(self, request, context):
        v = Violations()
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint()
        after = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await members.list_attribute_definitions(tx, after[0] if after else None, size + 1)
        page, token = pagination.next_page(found, size, lambda d: [d.key], fingerprint)
        return member_pb2.ListAttributeDefinitionsResponse(
            attribute_definitions=[convert.attribute_definition(d) for d in page], next_page_token=token
        )

    async def ImportMembers(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        _, org_path = check_actor(v, request)
        xlsx = files.check_format(v, request.format)
        v.check(bool(request.content), "content", "CONTENT_REQUIRED", "content is empty")
        v.raise_if_any()

        async def work(tx):
            result = await imports.import_members(tx, request.content, xlsx, org_path, utcnow())
            return member_pb2.ImportMembersResponse(
                total_rows=result.total_rows,
                imported_rows=result.imported_rows,
                existing_rows=result.existing_rows,
                rejected_rows=result.rejected_rows,
                rejects=[
                    member_pb2.ImportReject(row_number=r.row_number, field=r.field, reason=r.reason, message=r.message)
                    for r in result.rejects
                ],
            )

        return await self.idempotency.run(request, member_pb2.ImportMembersResponse, work)

    async def ExportMembers(self, request, context):
        v = Violations()
        query = _member_query(v, request.filter)
        xlsx = files.check_format(v, request.format)
        v.raise_if_any()
        name = files.export_name("members", request.filter.org_path, xlsx=xlsx)
        async with imports.exporting(self.database, query) as rows:
            writer = files.FileWriter(name, imports.EXPORT_COLUMNS, xlsx, "会员")  # its temporary file once reading
            async for file_name, chunk in writer.stream(rows):
                yield member_pb2.ExportMembersResponse(file_name=file_name, chunk=chunk)

    async def RecordVisit(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        check_org_path(v, request.store_path, "store_path")
        _check_order_id(v, request.order_id)
        v.check(
            0 <= request.amount_fen <= MAX_SPEND_FEN,
            "amount_fen",
            "AMOUNT_OUT_OF_RANGE",
            "amount_fen must be 0 to 10^12",
        )
        now = utcnow()
        when = convert.from_timestamp(request.visit_time) if request.HasField("visit_time") else now
        check_visit_time(v, when, now)
        v.raise_if_any()

        async def work(tx):
            visit = await visits.record_visit(
                tx, request.member_id, request.store_path, request.order_id, request.amount_fen, when
            )
            return member_pb2.RecordVisitResponse(
                stats=convert.visit_stats(visit.stats), **convert.climb(visit.climbed, visit.tier_reached)
            )

        return await self.idempotency.run(request, member_pb2.RecordVisitResponse, work)

    async def RecordReturn(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        _check_order_id(v, request.order_id)
        v.check(
            0 < len(request.return_id) <= 64,
            "return_id",
            "RETURN_ID_INVALID",
            "return_id is required, at most 64 characters",
        )
        v.check(
            0 < request.amount_fen <= MAX_SPEND_FEN,
            "amount_fen",
            "AMOUNT_OUT_OF_RANGE",
            "amount_fen must be 1 to 10^12",
        )
        v.raise_if_any()

        async def work(tx):
            returned = await visits.record_return(
                tx, request.member_id, request.order_id, request.return_id, request.amount_fen, utcnow()
            )
            return member_pb2.RecordReturnResponse(
                stats=convert.visit_stats(returned.stats),
                tier_change=convert.tier_change(returned.fell) if returned.fell else None,
            )

        return await self.idempotency.run(request, member_pb2.RecordReturnResponse, work)

    async def GetVisitStats(self, request, context):
        async with self.database.reading() as tx:
            stats = await visits.visit_stats_of(tx, request.member_id)
        return member_pb2.GetVisitStatsResponse(stats=convert.visit_stats(stats))

    async def SummarizeMembers(self, request, context):
        v = Violations()
        check_org_path(v, request.org_path, "org_path")
        as_of = calendar_date(request.as_of) if request.HasField("as_of") else clock.today()
        v.check(as_of is not None, "as_of", "DAY_INVALID", "as_of must be a real day")
        v.raise_if_any()
        async with self.database.reading() as tx:
            summary = await reports.summarize(tx, request.org_path, as_of)
        return _summary(summary)

    async def ListPendingHomeChanges(self, request, context):
        v = Violations()
        size = pagination.page_size(request.page_size, 500, 5000, v)
        fingerprint = pagination.fingerprint()
        after = pagination.decode(request.page_token, fingerprint, v, shape=(int,))
        v.raise_if_any()
        async with self.database.reading() as tx:
            rows = await homes.pending(tx, after[0] if after else None, size + 1)
        page, token = pagination.next_page(rows, size, lambda r: [r.change_id], fingerprint)
        return member_pb2.ListPendingHomeChangesResponse(
            changes=[
                member_pb2.HomeChange(
                    change_id=r.change_id,
                    member_id=r.member_id,
                    home_store_path=r.home_store_path,
                    change_time=timestamp(r.change_time),
                )
                for r in page
            ],
            next_page_token=token,
        )

    async def CompleteHomeChanges(self, request, context):
        v = Violations()
        v.check(
            0 < len(request.change_ids) <= homes.MAX_COMPLETED,
            "change_ids",
            "CHANGE_IDS_COUNT",
            f"1 to {homes.MAX_COMPLETED} change ids.",
        )
        v.raise_if_any()
        async with self.database.transaction() as tx:
            completed = await homes.complete(tx, list(request.change_ids))
        return member_pb2.CompleteHomeChangesResponse(completed=completed)


def _summary(s) -> member_pb2.SummarizeMembersResponse:
    def ranges(found):
        return [
            member_pb2.QuintileRange(score=q.score, min_value=q.min_value, max_value=q.max_value, members=q.members)
            for q in found
        ]

    return member_pb2.SummarizeMembersResponse(
        members=s.members,
        never_visited=s.never_visited,
        quiet_members=s.quiet_members,
        birthday_members_next_30_days=s.birthday_members,
        rfm_cells=[
            member_pb2.RfmCell(
                recency_score=c.recency_score,
                frequency_score=c.frequency_score,
                monetary_score=c.monetary_score,
                members=c.members,
            )
            for c in s.cells
        ],
        recency_quintiles=ranges(s.recency),
        frequency_quintiles=ranges(s.frequency),
        monetary_quintiles=ranges(s.monetary),
    )


def _check_order_id(v: Violations, order_id: str) -> None:
    v.check(0 < len(order_id) <= 64, "order_id", "ORDER_ID_INVALID", "order_id is required, at most 64 characters")
