from datetime import date, timedelta

from huiyuan.member.v1 import member_pb2, member_pb2_grpc
from huiyuan.runtime import files, pagination
from huiyuan.database.engines import READ_ONLY
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.ids import new_id
from huiyuan.database.idempotency import Idempotency, check_request_id
from huiyuan.runtime.requests import check_actor, check_mask, check_org_path
from huiyuan.runtime.server import ServiceContext
from services.member import care, convert, domain, imports, members, storage, visits
from services.member.org import require_org_node


MAX_FIND_KEYS = 1_000  # FindMembers: a file's rows are asked for in pages of this many


def _member_query(v: Violations, f: member_pb2.MemberFilter) -> members.MemberQuery:
    check_org_path(v, f.org_path, "filter.org_path", required=False)
    channel = convert.enum_name(member_pb2.RegistrationChannel, "REGISTRATION_CHANNEL", f.channel)
    v.check(f.channel == 0 or channel is not None, "filter.channel", "CHANNEL_INVALID", "unknown channel")
    v.check(len(f.name_contains) <= domain.MAX_NAME, "filter.name_contains", "TOO_LONG", "name_contains is too long")
    v.check(f.phone_suffix == "" or (f.phone_suffix.isdigit() and len(f.phone_suffix) <= 11), "filter.phone_suffix",
            "PHONE_SUFFIX_INVALID", "phone_suffix must be 1 to 11 digits")
    tag = domain.check_tag(v, f.tag, "filter.tag") if f.tag else ""
    birthday_in = _day_span(v, f.birthday_in, "filter.birthday_in") if f.HasField("birthday_in") else None
    anniversary_in = _day_span(v, f.anniversary_in, "filter.anniversary_in") if f.HasField("anniversary_in") else None
    return members.MemberQuery(
        org_path=f.org_path, tier_id=f.tier_id, channel=domain.Channel(channel) if channel else None,
        name_contains=f.name_contains.strip(), phone_suffix=f.phone_suffix,
        registered_after=convert.from_timestamp(f.registered_after) if f.HasField("registered_after") else None,
        registered_before=convert.from_timestamp(f.registered_before) if f.HasField("registered_before") else None,
        tag=tag, birthday_in=birthday_in, anniversary_in=anniversary_in,
        no_visit_since=convert.from_timestamp(f.no_visit_since) if f.HasField("no_visit_since") else None,
    )


def _day_span(v: Violations, span: member_pb2.DaySpan, field_path: str) -> care.DaySpan | None:
    return care.check_span(v, (span.first_day.month, span.first_day.day), (span.last_day.month, span.last_day.day),
                           field_path)


class MemberServicer(member_pb2_grpc.MemberServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.sessions = ctx.sessions
        self.engine = ctx.engine
        self.database = ctx.database
        self.idempotency = idempotency
        self.qr_secret = ctx.settings.qr_secret
        self.qr_lifetime = timedelta(seconds=ctx.settings.qr_lifetime_s)  # the longest a QR code is good for
        if self.qr_lifetime < domain.QR_TTL_MIN:
            raise SystemExit(f"HUIYUAN_QR_LIFETIME_S must be at least {domain.QR_TTL_MIN.seconds} s")

    async def _definitions(self):
        async with self.sessions() as session:
            return await storage.attribute_definitions_by_key(session)

    async def RegisterMember(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        operator, org_path = check_actor(v, request)
        channel = convert.enum_name(member_pb2.RegistrationChannel, "REGISTRATION_CHANNEL", request.channel)
        v.check(channel is not None, "channel", "CHANNEL_REQUIRED",
                "channel must be STORE, CALL_CENTRE, WEB, QR_SELF_SERVICE or BULK_IMPORT")
        definitions = await self._definitions()
        values = domain.check_profile(v, convert.profile_input(request.member), "member.", definitions, date.today())
        v.raise_if_any()
        now = utcnow()
        new = domain.Member(
            member_id=new_id("m"), channel=domain.Channel(channel), registered_org_path=org_path, tier_id="",
            create_time=now, update_time=now,
            **{**values, "gender": domain.Gender(values["gender"]),
               "home_store_path": values["home_store_path"] or domain.store_of(org_path)},
        )

        async def work(session):
            await require_org_node(session, org_path, "actor.org_path")
            if new.home_store_path:
                await require_org_node(session, new.home_store_path, "member.home_store_path")
            await members.register(session, new)
            return member_pb2.RegisterMemberResponse(member=convert.member(new, definitions))

        return await self.idempotency.run(request, member_pb2.RegisterMemberResponse, work)

    async def GetMember(self, request, context):
        async with self.database.reading() as db:
            member = await members.require_member(db, request.member_id)
            definitions = await storage.attribute_definitions_by_key(db, member.attributes.keys())
        return member_pb2.GetMemberResponse(member=convert.member(member, definitions))

    async def FindMembers(self, request, context):
        v = Violations()
        keys = len(request.member_ids) + len(request.phones)
        v.check(keys > 0, "member_ids", "KEYS_REQUIRED", "give member_ids or phones")
        v.check(keys <= MAX_FIND_KEYS, "member_ids", "TOO_MANY_KEYS",
                f"at most {MAX_FIND_KEYS} member_ids and phones in all per call")
        v.raise_if_any()
        async with self.database.reading() as db:
            found = await members.find(db, request.member_ids, request.phones)
            definitions = await storage.attribute_definitions_by_key(
                db, {key for m in found.values() for key in m.attributes})
        return member_pb2.FindMembersResponse(members={key: convert.member(m, definitions) for key, m in found.items()})

    async def UpdateMember(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(bool(request.member.member_id), "member.member_id", "MEMBER_ID_REQUIRED", "member.member_id is required")
        paths = check_mask(v, request, domain.UPDATABLE_MEMBER_FIELDS, prefixes=("attributes.",))
        definitions = await self._definitions()
        profile = convert.profile_input(request.member)
        one_keys = {p.split(".", 1)[1] for p in paths if p.startswith("attributes.")}
        if one_keys:  # attributes.<key>: only those keys (a key absent from the request is removed)
            profile.attributes = {k: val for k, val in profile.attributes.items() if k in one_keys}
        values = domain.check_profile(v, profile, "member.", definitions, date.today(), partial=set(paths))
        v.raise_if_any()
        member_id = request.member.member_id

        async def work(session):
            changes = dict(values)
            if one_keys:
                current = await members.require_member(session, member_id)
                merged = {k: val for k, val in current.attributes.items() if k not in one_keys}
                changes["attributes"] = {**merged, **values["attributes"]}
            if changes.get("home_store_path"):
                await require_org_node(session, changes["home_store_path"], "member.home_store_path")
            updated = await members.update_member(session, member_id, changes)
            return member_pb2.UpdateMemberResponse(member=convert.member(updated, definitions))

        return await self.idempotency.run(request, member_pb2.UpdateMemberResponse, work)

    async def LookupMember(self, request, context):
        v = Violations()
        key = request.WhichOneof("key")
        v.check(key is not None, "key", "LOOKUP_KEY_REQUIRED", "give member_id, phone, card_number or qr_token")
        phone = ""
        if key == "phone":
            phone = domain.normalise_phone(request.phone) or ""
            v.check(bool(phone), "phone", "PHONE_INVALID", "phone must be a mainland China mobile number")
        if key == "card_number":
            v.check(bool(domain.CARD_NUMBER.match(request.card_number)), "card_number", "CARD_NUMBER_INVALID",
                    "card_number must be 8 to 20 digits")
        purpose = request.purpose
        v.check(purpose in member_pb2.LookupPurpose.values(), "purpose", "PURPOSE_INVALID", "unknown purpose")
        v.check(request.view in member_pb2.MemberView.values(), "view", "VIEW_INVALID", "unknown view")
        v.raise_if_any()
        now = utcnow()
        qr_member = domain.verify_qr_token(request.qr_token, self.qr_secret, now, self.qr_lifetime) if key == "qr_token" else ""
        found = await members.lookup(
            self.database, member_id=request.member_id if key == "member_id" else "", phone=phone,
            card_number=request.card_number if key == "card_number" else "", qr_member_id=qr_member,
            for_payment=purpose == member_pb2.LOOKUP_PURPOSE_PAYMENT, now=now)
        definitions = {}
        if found.member.attributes:
            async with self.database.reading() as db:
                definitions = await storage.attribute_definitions_by_key(db, found.member.attributes.keys())
        member = convert.member(found.member, definitions)
        if request.view == member_pb2.MEMBER_VIEW_COUNTER:  # what a till needs, no more
            member.phone = domain.mask_phone(member.phone)
            member.ClearField("birthday")
            member.ClearField("anniversary")
        return member_pb2.LookupMemberResponse(
            member=member,
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
        async with self.database.reading() as db:
            found = await members.list_members(db, query, before[0] if before else None, size + 1)
            definitions = await storage.attribute_definitions_by_key(db, {k for m in found for k in m.attributes})
        page, token = pagination.next_page(found, size, lambda m: [m.member_id], fingerprint)
        return member_pb2.ListMembersResponse(members=[convert.member(m, definitions) for m in page],
                                              next_page_token=token)

    async def IssueQrToken(self, request, context):
        v = Violations()
        ttl = request.ttl.ToTimedelta() if request.HasField("ttl") else min(domain.QR_TTL_DEFAULT, self.qr_lifetime)
        v.check(domain.QR_TTL_MIN <= ttl <= self.qr_lifetime, "ttl", "TTL_OUT_OF_RANGE",
                f"ttl must be {domain.QR_TTL_MIN.seconds} s to {int(self.qr_lifetime.total_seconds())} s")
        v.raise_if_any()
        async with self.sessions() as session:
            await members.require_member(session, request.member_id)
        expire = utcnow() + ttl
        return member_pb2.IssueQrTokenResponse(
            qr_token=domain.sign_qr_token(request.member_id, expire, self.qr_secret), expire_time=convert.timestamp(expire))

    async def CreateAttributeDefinition(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        d = request.attribute_definition
        v.check(bool(domain.ATTRIBUTE_KEY.match(d.key)), "attribute_definition.key", "ATTRIBUTE_KEY_INVALID",
                "key must be 1 to 32 lower-case letters, digits or '_', starting with a letter")
        display = domain.check_name(v, d.display_name, "attribute_definition.display_name")
        kind = convert.enum_name(member_pb2.AttributeType, "ATTRIBUTE_TYPE", d.type)
        v.check(kind is not None, "attribute_definition.type", "ATTRIBUTE_TYPE_REQUIRED", "type is required")
        choices = [c.strip() for c in d.choices]
        v.check((kind == "CHOICE") == bool(choices) and all(choices) and len(set(choices)) == len(choices),
                "attribute_definition.choices", "CHOICES_INVALID", "a CHOICE attribute lists distinct choices; others none")
        v.raise_if_any()
        definition = domain.AttributeDefinition(d.key, display, domain.AttributeType(kind), choices, d.required)

        async def work(session):
            await members.create_attribute_definition(session, definition)
            return member_pb2.CreateAttributeDefinitionResponse(attribute_definition=convert.attribute_definition(definition))

        return await self.idempotency.run(request,
                                          member_pb2.CreateAttributeDefinitionResponse, work)

    async def ListAttributeDefinitions(self, request, context):
        v = Violations()
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint()
        after = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        async with self.sessions() as session:
            found = await storage.attribute_definitions_after(session, after[0] if after else None, size + 1)
        page, token = pagination.next_page(found, size, lambda d: [d.key], fingerprint)
        return member_pb2.ListAttributeDefinitionsResponse(
            attribute_definitions=[convert.attribute_definition(d) for d in page], next_page_token=token)

    async def ImportMembers(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        _, org_path = check_actor(v, request)
        xlsx = files.check_format(v, request.format)
        v.check(bool(request.content), "content", "CONTENT_REQUIRED", "content is empty")
        v.raise_if_any()

        async def work(session):
            await require_org_node(session, org_path, "actor.org_path")
            result = await imports.import_members(session, request.content, xlsx, org_path)
            return member_pb2.ImportMembersResponse(
                total_rows=result.total_rows, imported_rows=result.imported_rows, existing_rows=result.existing_rows,
                rejected_rows=result.rejected_rows,
                rejects=[member_pb2.ImportReject(row_number=r.row_number, field=r.field, reason=r.reason, message=r.message)
                         for r in result.rejects])

        return await self.idempotency.run(request, member_pb2.ImportMembersResponse, work)

    async def ExportMembers(self, request, context):
        v = Violations()
        query = _member_query(v, request.filter)
        xlsx = files.check_format(v, request.format)
        v.raise_if_any()
        name = files.export_name("members", request.filter.org_path, xlsx=xlsx)
        writer = files.FileWriter(name, imports.EXPORT_COLUMNS, xlsx, "会员")
        async with self.engine.connect() as connection:  # one snapshot (a stream needs a transaction)
            await connection.execution_options(**{READ_ONLY: True})  # on SQLite: no write lock meanwhile
            async for file_name, chunk in writer.stream(imports.export_rows(connection, query)):
                yield member_pb2.ExportMembersResponse(file_name=file_name, chunk=chunk)

    async def RecordVisit(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        check_org_path(v, request.store_path, "store_path")
        _check_order_id(v, request.order_id)
        v.check(0 <= request.amount_fen <= domain.MAX_SPEND_FEN, "amount_fen", "AMOUNT_OUT_OF_RANGE",
                "amount_fen must be 0 to 10^12")
        now = utcnow()
        when = convert.from_timestamp(request.visit_time) if request.HasField("visit_time") else now
        v.check(when <= now + timedelta(minutes=5), "visit_time", "VISIT_IN_FUTURE", "visit_time is in the future")
        v.raise_if_any()

        async def work(session):
            await require_org_node(session, request.store_path, "store_path")
            visit = await visits.record_visit(session, request.member_id, request.store_path, request.order_id,
                                              request.amount_fen, when)
            return member_pb2.RecordVisitResponse(stats=_visit_stats(visit.stats),
                                                  **convert.climb(visit.climbed, visit.tier_reached))

        return await self.idempotency.run(request, member_pb2.RecordVisitResponse, work)

    async def RecordReturn(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        _check_order_id(v, request.order_id)
        v.check(0 < len(request.return_id) <= 64, "return_id", "RETURN_ID_INVALID",
                "return_id is required, at most 64 characters")
        v.check(0 < request.amount_fen <= domain.MAX_SPEND_FEN, "amount_fen", "AMOUNT_OUT_OF_RANGE",
                "amount_fen must be 1 to 10^12")
        v.raise_if_any()

        async def work(session):
            returned = await visits.record_return(session, request.member_id, request.order_id, request.return_id,
                                                  request.amount_fen, utcnow())
            return member_pb2.RecordReturnResponse(
                stats=_visit_stats(returned.stats),
                tier_change=convert.tier_change(returned.fell) if returned.fell else None)

        return await self.idempotency.run(request, member_pb2.RecordReturnResponse, work)

    async def GetVisitStats(self, request, context):
        async with self.sessions() as session:
            stats = await visits.visit_stats_of(session, request.member_id)
        return member_pb2.GetVisitStatsResponse(stats=_visit_stats(stats))


def _check_order_id(v: Violations, order_id: str) -> None:
    v.check(0 < len(order_id) <= 64, "order_id", "ORDER_ID_INVALID", "order_id is required, at most 64 characters")


def _visit_stats(stats: visits.VisitStats) -> member_pb2.VisitStats:
    return member_pb2.VisitStats(
        member_id=stats.member_id, visit_count=stats.visit_count, total_spend_fen=stats.total_spend_fen,
        last_visit_time=convert.timestamp(stats.last_visit_time),
        stores=[member_pb2.StoreVisitStats(store_path=s.store_path, visit_count=s.visit_count,
                                           total_spend_fen=s.total_spend_fen, last_visit_time=convert.timestamp(s.last_visit_time))
                for s in stats.stores])
