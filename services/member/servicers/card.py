from datetime import datetime

from huiyuan.member.v1 import card_pb2, card_pb2_grpc
from huiyuan.runtime import pagination
from huiyuan.runtime.errors import Violations
from huiyuan.database.idempotency import Idempotency, check_request_id
from huiyuan.runtime.requests import check_actor, check_org_path, check_scope
from huiyuan.runtime.server import ServiceContext
from services.member import cards, convert, domain, storage
from services.member.members import require_member


def _check_card_number(v: Violations, number: str, field: str, required: bool = True) -> None:
    if number or required:
        v.check(bool(domain.CARD_NUMBER.match(number)), field, "CARD_NUMBER_INVALID", f"{field} must be 8 to 20 digits")


class CardServicer(card_pb2_grpc.CardServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.sessions = ctx.sessions
        self.idempotency = idempotency

    async def CreateCardType(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        t = request.card_type
        name = domain.check_name(v, t.name, "card_type.name")
        check_scope(v, t.org_path, "card_type.org_path")
        capabilities = [convert.enum_name(card_pb2.CardCapability, "CARD_CAPABILITY", c) for c in t.capabilities]
        if v.check(None not in capabilities, "card_type.capabilities", "CAPABILITIES_INVALID",
                   "capabilities are STORED_VALUE, POINTS, DISCOUNT and TIMES"):
            capabilities = domain.check_capabilities(v, capabilities, "card_type.capabilities")
        form = convert.enum_name(card_pb2.CardForm, "CARD_FORM", t.form)
        if v.check(form is not None, "card_type.form", "CARD_FORM_REQUIRED", "form must be INDIVIDUAL, ASSOCIATED or GROUP"):
            domain.check_card_form(v, form, "card_type.form")
        v.check(0 <= t.validity_days <= 36500, "card_type.validity_days", "VALIDITY_OUT_OF_RANGE",
                "validity_days must be 0 (never expires) to 36500")
        v.raise_if_any()
        values = {"name": name, "org_path": t.org_path, "capabilities": sorted(set(capabilities)), "form": form,
                  "default_tier_id": t.default_tier_id, "validity_days": t.validity_days}

        async def work(session):
            return card_pb2.CreateCardTypeResponse(card_type=convert.card_type(await cards.create_card_type(session, values)))

        return await self.idempotency.run(request, card_pb2.CreateCardTypeResponse, work)

    async def GetCardType(self, request, context):
        async with self.sessions() as session:
            return card_pb2.GetCardTypeResponse(card_type=convert.card_type(await cards.require_card_type(session, request.card_type_id)))

    async def ListCardTypes(self, request, context):
        v = Violations()
        check_org_path(v, request.usable_at_path, "usable_at_path", required=False)
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.usable_at_path)
        after = pagination.decode(request.page_token, fingerprint, v, shape=(str, str, str))
        v.raise_if_any()
        async with self.sessions() as session:
            types = await cards.list_card_types(session, request.usable_at_path, after, size + 1)
        page, token = pagination.next_page(
            types, size, lambda t: [t["org_path"], t["name"], t["card_type_id"]], fingerprint)
        return card_pb2.ListCardTypesResponse(card_types=[convert.card_type(t) for t in page], next_page_token=token)

    async def IssueCard(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        operator, org_path = check_actor(v, request)
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        v.check(bool(request.card_type_id), "card_type_id", "CARD_TYPE_ID_REQUIRED", "card_type_id is required")
        _check_card_number(v, request.card_number, "card_number", required=False)
        v.raise_if_any()

        async def work(session):
            card = await cards.issue_card(session, request.member_id, request.card_type_id, request.card_number,
                                          operator, org_path)
            return card_pb2.IssueCardResponse(card=convert.card(card))

        return await self.idempotency.run(request, card_pb2.IssueCardResponse, work)

    async def GetCard(self, request, context):
        v = Violations()
        _check_card_number(v, request.card_number, "card_number")
        v.raise_if_any()
        async with self.sessions() as session:
            return card_pb2.GetCardResponse(card=convert.card(await cards.require_card(session, request.card_number)))

    async def ListCards(self, request, context):
        v = Violations()
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.member_id)
        after = pagination.decode(request.page_token, fingerprint, v, shape=(datetime, str))
        v.raise_if_any()
        async with self.sessions() as session:
            await require_member(session, request.member_id)
            found = await storage.cards_of(session, request.member_id, after, size + 1)
        page, token = pagination.next_page(found, size, lambda c: [c.issue_time, c.card_number], fingerprint)
        return card_pb2.ListCardsResponse(cards=[convert.card(c) for c in page], next_page_token=token)

    async def ListCardEvents(self, request, context):
        v = Violations()
        _check_card_number(v, request.card_number, "card_number")
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.card_number)
        after = pagination.decode(request.page_token, fingerprint, v, shape=(int,))
        v.raise_if_any()
        async with self.sessions() as session:
            rows = await cards.card_events_of(session, request.card_number, after[0] if after else None, size + 1)
        page, token = pagination.next_page(rows, size, lambda row: [row[0]], fingerprint)
        return card_pb2.ListCardEventsResponse(card_events=[convert.card_event(r) for _, r in page],
                                               next_page_token=token)

    async def _change(self, method, request, action: domain.CardAction, response_type):
        v = Violations()
        check_request_id(v, request.request_id)
        operator, org_path = check_actor(v, request)
        _check_card_number(v, request.card_number, "card_number")
        reason = domain.check_text(v, request.reason, "reason", required=True)
        v.raise_if_any()

        async def work(session):
            card = await cards.change_state(session, request.card_number, action, reason, operator, org_path)
            return response_type(card=convert.card(card))

        return await self.idempotency.run(request, response_type, work, method)

    async def ReportCardLost(self, request, context):
        return await self._change("ReportCardLost", request, domain.CardAction.REPORT_LOST, card_pb2.ReportCardLostResponse)

    async def CancelCardLoss(self, request, context):
        return await self._change("CancelCardLoss", request, domain.CardAction.CANCEL_LOSS, card_pb2.CancelCardLossResponse)

    async def FreezeCard(self, request, context):
        return await self._change("FreezeCard", request, domain.CardAction.FREEZE, card_pb2.FreezeCardResponse)

    async def UnfreezeCard(self, request, context):
        return await self._change("UnfreezeCard", request, domain.CardAction.UNFREEZE, card_pb2.UnfreezeCardResponse)

    async def CancelCard(self, request, context):
        return await self._change("CancelCard", request, domain.CardAction.CANCEL, card_pb2.CancelCardResponse)

    async def ReplaceCard(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        operator, org_path = check_actor(v, request)
        _check_card_number(v, request.card_number, "card_number")
        _check_card_number(v, request.new_card_number, "new_card_number", required=False)
        reason = domain.check_text(v, request.reason, "reason", required=True)
        v.raise_if_any()

        async def work(session):
            old, new = await cards.replace_card(session, request.card_number, request.new_card_number, reason, operator, org_path)
            return card_pb2.ReplaceCardResponse(old_card=convert.card(old), new_card=convert.card(new))

        return await self.idempotency.run(request, card_pb2.ReplaceCardResponse, work)
