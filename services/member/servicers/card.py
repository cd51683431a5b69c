"""CardService: the gRPC face of card types and cards (use_cases/cards.py)."""

from datetime import datetime

from huiyuan.database import Idempotency
from huiyuan.member.v1 import card_pb2, card_pb2_grpc
from huiyuan.runtime import pagination
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.requests import check_actor, check_org_path, check_request_id, check_scope
from huiyuan.runtime.server import ServiceContext
from services.member.domain.cards import (
    CARD_NUMBER,
    CardAction,
    check_capabilities,
    check_card_form,
)
from services.member.domain.fields import check_name, check_text
from services.member.servicers import convert
from services.member.use_cases import cards


def _check_card_number(v: Violations, number: str, field: str, required: bool = True) -> None:
    if number or required:
        v.check(bool(CARD_NUMBER.match(number)), field, "CARD_NUMBER_INVALID", f"{field} must be 8 to 20 digits")


class CardServicer(card_pb2_grpc.CardServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.database = ctx.database
        self.idempotency = idempotency

    async def CreateCardType(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        t = request.card_type
        name = check_name(v, t.name, "card_type.name")
        check_scope(v, t.org_path, "card_type.org_path")
        capabilities = [convert.enum_name(card_pb2.CardCapability, "CARD_CAPABILITY", c) for c in t.capabilities]
        if v.check(
            None not in capabilities,
            "card_type.capabilities",
            "CAPABILITIES_INVALID",
            "capabilities are STORED_VALUE, POINTS, DISCOUNT and TIMES",
        ):
            capabilities = check_capabilities(v, capabilities, "card_type.capabilities")
        form = convert.enum_name(card_pb2.CardForm, "CARD_FORM", t.form)
        if v.check(
            form is not None, "card_type.form", "CARD_FORM_REQUIRED", "form must be INDIVIDUAL, ASSOCIATED or GROUP"
        ):
            check_card_form(v, form, "card_type.form")
        v.check(
            0 <= t.validity_days <= 36500,
            "card_type.validity_days",
            "VALIDITY_OUT_OF_RANGE",
            "validity_days must be 0 (never expires) to 36500",
        )
        v.raise_if_any()

        async def work(tx):
            created = await cards.create_card_type(
                tx, name, t.org_path, sorted(set(capabilities)), form, t.default_tier_id, t.validity_days
            )
            return card_pb2.CreateCardTypeResponse(card_type=convert.card_type(created))

        return await self.idempotency.run(request, card_pb2.CreateCardTypeResponse, work)

    async def GetCardType(self, request, context):
        async with self.database.reading() as tx:
            return card_pb2.GetCardTypeResponse(
                card_type=convert.card_type(await cards.require_card_type(tx, request.card_type_id))
            )

    async def ListCardTypes(self, request, context):
        v = Violations()
        check_org_path(v, request.usable_at_path, "usable_at_path", required=False)
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.usable_at_path)
        after = pagination.decode(request.page_token, fingerprint, v, shape=(str, str, str))
        v.raise_if_any()
        async with self.database.reading() as tx:
            types = await cards.list_card_types(tx, request.usable_at_path, after, size + 1)
        page, token = pagination.next_page(types, size, lambda t: [t.org_path, t.name, t.card_type_id], fingerprint)
        return card_pb2.ListCardTypesResponse(card_types=[convert.card_type(t) for t in page], next_page_token=token)

    async def IssueCard(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        operator, org_path = check_actor(v, request)
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        v.check(bool(request.card_type_id), "card_type_id", "CARD_TYPE_ID_REQUIRED", "card_type_id is required")
        _check_card_number(v, request.card_number, "card_number", required=False)
        v.raise_if_any()

        async def work(tx):
            card = await cards.issue_card(
                tx, request.member_id, request.card_type_id, request.card_number, operator, org_path
            )
            return card_pb2.IssueCardResponse(card=convert.card(card))

        return await self.idempotency.run(request, card_pb2.IssueCardResponse, work)

    async def GetCard(self, request, context):
        v = Violations()
        _check_card_number(v, request.card_number, "card_number")
        v.raise_if_any()
        async with self.database.reading() as tx:
            return card_pb2.GetCardResponse(card=convert.card(await cards.require_card(tx, request.card_number)))

    async def ListCards(self, request, context):
        v = Violations()
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.member_id)
        after = pagination.decode(request.page_token, fingerprint, v, shape=(datetime, str))
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await cards.cards_of(tx, request.member_id, after, size + 1)
        page, token = pagination.next_page(found, size, lambda c: [c.issue_time, c.card_number], fingerprint)
        return card_pb2.ListCardsResponse(cards=[convert.card(c) for c in page], next_page_token=token)

    async def ListCardEvents(self, request, context):
        v = Violations()
        _check_card_number(v, request.card_number, "card_number")
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.card_number)
        after = pagination.decode(request.page_token, fingerprint, v, shape=(int,))
        v.raise_if_any()
        async with self.database.reading() as tx:
            rows = await cards.card_events_of(tx, request.card_number, after[0] if after else None, size + 1)
        page, token = pagination.next_page(rows, size, lambda event: [event.event_id], fingerprint)
        return card_pb2.ListCardEventsResponse(card_events=[convert.card_event(e) for e in page], next_page_token=token)

    async def _change(self, request, action: CardAction, response_type):
        v = Violations()
        check_request_id(v, request.request_id)
        operator, org_path = check_actor(v, request)
        _check_card_number(v, request.card_number, "card_number")
        reason = check_text(v, request.reason, "reason", required=True)
        v.raise_if_any()

        async def work(tx):
            card = await cards.change_state(tx, request.card_number, action, reason, operator, org_path)
            return response_type(card=convert.card(card))

        return await self.idempotency.run(request, response_type, work)

    async def ReportCardLost(self, request, context):
        return await self._change(request, CardAction.REPORT_LOST, card_pb2.ReportCardLostResponse)

    async def CancelCardLoss(self, request, context):
        return await self._change(request, CardAction.CANCEL_LOSS, card_pb2.CancelCardLossResponse)

    async def FreezeCard(self, request, context):
        return await self._change(request, CardAction.FREEZE, card_pb2.FreezeCardResponse)

    async def UnfreezeCard(self, request, context):
        return await self._change(request, CardAction.UNFREEZE, card_pb2.UnfreezeCardResponse)

    async def CancelCard(self, request, context):
        return await self._change(request, CardAction.CANCEL, card_pb2.CancelCardResponse)

    async def ReplaceCard(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        operator, org_path = check_actor(v, request)
        _check_card_number(v, request.card_number, "card_number")
        _check_card_number(v, request.new_card_number, "new_card_number", required=False)
        reason = check_text(v, request.reason, "reason", required=True)
        v.raise_if_any()

        async def work(tx):
            old, new = await cards.replace_card(
                tx, request.card_number, request.new_card_number, reason, operator, org_path
            )
            return card_pb2.ReplaceCardResponse(old_card=convert.card(old), new_card=convert.card(new))

        return await self.idempotency.run(request, card_pb2.ReplaceCardResponse, work)
