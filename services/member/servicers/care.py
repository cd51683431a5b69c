"""CareService: the gRPC face of member care's contacts (use_cases/contacts.py)."""

from huiyuan.database import Idempotency
from huiyuan.member.v1 import care_pb2, care_pb2_grpc
from huiyuan.runtime import pagination
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.requests import check_actor, check_request_id
from huiyuan.runtime.server import ServiceContext
from services.member.domain import care
from services.member.domain.fields import check_text
from services.member.servicers import convert
from services.member.use_cases import contacts


class CareServicer(care_pb2_grpc.CareServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.database = ctx.database
        self.idempotency = idempotency

    async def RecordCareContact(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        operator, org_path = check_actor(v, request)
        c = request.contact
        v.check(bool(c.member_id), "contact.member_id", "MEMBER_ID_REQUIRED", "contact.member_id is required")
        channel = convert.enum_name(care_pb2.CareChannel, "CARE_CHANNEL", c.channel)
        v.check(channel is not None, "contact.channel", "CHANNEL_REQUIRED", "channel: PHONE, SMS, WECHAT or IN_STORE")
        topic = convert.enum_name(care_pb2.CareTopic, "CARE_TOPIC", c.topic)
        v.check(
            topic is not None, "contact.topic", "TOPIC_REQUIRED", "topic: BIRTHDAY, ANNIVERSARY, WIN_BACK or FOLLOW_UP"
        )
        note = check_text(v, c.note, "contact.note", limit=care.MAX_NOTE)
        v.raise_if_any()
        contact = care.CareContact(
            new_id("cc"),
            c.member_id,
            care.CareChannel(channel),
            care.CareTopic(topic),
            note,
            operator,
            org_path,
            utcnow(),
        )

        async def work(tx):
            return care_pb2.RecordCareContactResponse(
                contact=convert.care_contact(await contacts.record_contact(tx, contact))
            )

        return await self.idempotency.run(request, care_pb2.RecordCareContactResponse, work)

    async def ListCareContacts(self, request, context):
        v = Violations()
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.member_id)
        before = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await contacts.contacts_of(tx, request.member_id, before[0] if before else None, size + 1)
        page, token = pagination.next_page(found, size, lambda c: [c.contact_id], fingerprint)
        return care_pb2.ListCareContactsResponse(
            contacts=[convert.care_contact(c) for c in page], next_page_token=token
        )
