"""CountCardService: checks the request's shape, runs one use case
(use_cases/count_cards.py, count_card_plans.py) in one transaction, translates. The
rules are in domain/count_cards.py."""

from huiyuan.database import Idempotency
from huiyuan.runtime import pagination
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.convert import enum_name, enum_value, from_timestamp, timestamp
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.ids import is_id, new_id
from huiyuan.runtime.requests import (
    check_actor,
    check_request_id,
    check_store_path,
    check_text,
    check_till_or_office_view,
)
from huiyuan.runtime.server import ServiceContext
from huiyuan.runtime.validity import check_ending
from huiyuan.wallet.v1 import count_card_pb2 as pb, count_card_pb2_grpc, wallet_pb2
from services.wallet.domain import count_cards as rules
from services.wallet.domain.postings import MAX_MEMO
from services.wallet.domain.top_ups import Tender
from services.wallet.use_cases import count_card_plans, count_cards

PLAN, CARD, ENTRY = "ccp", "cc", "cce"  # id prefixes


class CountCardServicer(count_card_pb2_grpc.CountCardServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.database = ctx.database
        self.idempotency = idempotency

    async def CreateCountCardPlan(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        given = request.plan
        plan = rules.Plan(
            "",
            given.name,
            given.org_path,
            given.uses,
            given.price_fen,
            given.valid_days,
            tuple(given.skus),
            from_timestamp(given.start_time) if given.HasField("start_time") else None,
            from_timestamp(given.end_time) if given.HasField("end_time") else None,
        )
        rules.check_plan(v, plan)
        _, actor_path = check_actor(v, request)
        v.raise_if_any()
        rules.check_may_manage(plan.org_path, actor_path)

        async def work(tx):
            plan.plan_id = new_id(PLAN)
            return pb.CreateCountCardPlanResponse(plan=_plan(await count_card_plans.create_plan(tx, plan, utcnow())))

        return await self.idempotency.run(request, pb.CreateCountCardPlanResponse, work)

    async def GetCountCardPlan(self, request, context):
        v = Violations()
        _id(v, request.plan_id, "plan_id", PLAN)
        v.raise_if_any()
        async with self.database.reading() as tx:
            return pb.GetCountCardPlanResponse(plan=_plan(await count_card_plans.plan_by_id(tx, request.plan_id)))

    async def ListCountCardPlans(self, request, context):
        v = Violations()
        check_till_or_office_view(v, request)
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.store_path, request.org_path, request.show_ended)
        after = pagination.decode(request.page_token, fingerprint, v, shape=(str, str))
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await count_card_plans.plans(
                tx, store_path=request.store_path, org_path=request.org_path, show_ended=request.show_ended, at=utcnow()
            )
        page, token = pagination.page_in_memory(found, size, after, lambda p: (p.name, p.plan_id), fingerprint)
        return pb.ListCountCardPlansResponse(plans=[_plan(p) for p in page], next_page_token=token)

    async def EndCountCardPlan(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        _id(v, request.plan_id, "plan_id", PLAN)
        ending = check_ending(v, request, utcnow())
        v.raise_if_any()

        async def work(tx):
            ended = await count_card_plans.end_plan(tx, request.plan_id, ending, utcnow())
            return pb.EndCountCardPlanResponse(plan=_plan(ended))

        return await self.idempotency.run(request, pb.EndCountCardPlanResponse, work)

    async def SellCountCard(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        _id(v, request.member_id, "member_id", "m")
        _id(v, request.plan_id, "plan_id", PLAN)
        check_store_path(v, request.store_path, "store_path")
        tender = enum_name(wallet_pb2.Tender, "TENDER", request.tender)
        v.check(
            tender in rules.SOLD_WITH,
            "tender",
            "TENDER_INVALID",
            "a count card is paid at the till: tender must be CASH, BANK_CARD, WECHAT_PAY or ALIPAY",
        )
        reference = check_text(v, request.tender_reference, "tender_reference", 64)
        operator, _ = check_actor(v, request)
        v.raise_if_any()

        async def work(tx):
            now = utcnow()
            card = await count_cards.sell(
                tx,
                plan_id=request.plan_id,
                card_id=new_id(CARD),
                entry_id=new_id(ENTRY),
                member_id=request.member_id,
                store_path=request.store_path,
                tender=Tender(tender),
                tender_reference=reference,
                operator_id=operator,
                now=now,
            )
            return pb.SellCountCardResponse(card=_card(card, now))

        return await self.idempotency.run(request, pb.SellCountCardResponse, work)

    async def GetCountCard(self, request, context):
        v = Violations()
        _id(v, request.card_id, "card_id", CARD)
        v.raise_if_any()
        async with self.database.reading() as tx:
            return pb.GetCountCardResponse(card=_card(await count_cards.card_by_id(tx, request.card_id), utcnow()))

    async def ListCountCards(self, request, context):
        v = Violations()
        _id(v, request.member_id, "member_id", "m")
        if request.usable_at_store_path:
            check_store_path(v, request.usable_at_store_path, "usable_at_store_path")
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.member_id, request.usable_at_store_path)
        after = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        now = utcnow()
        async with self.database.reading() as tx:
            found = await count_cards.cards_of(tx, request.member_id, request.usable_at_store_path, now)
        page, token = pagination.page_in_memory(  # newest first
            found, size, after, lambda c: (c.card_id,), fingerprint, reverse=True
        )
        return pb.ListCountCardsResponse(cards=[_card(c, now) for c in page], next_page_token=token)

    async def UseCountCard(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        _id(v, request.card_id, "card_id", CARD)
        uses = request.uses or 1
        v.check(0 < uses <= rules.MAX_USES, "uses", "USES_INVALID", f"uses must be 1 to {rules.MAX_USES}")
        sku = check_text(v, request.sku, "sku", rules.MAX_SKU)
        check_store_path(v, request.store_path, "store_path")
        operator, _ = check_actor(v, request)
        v.raise_if_any()

        async def work(tx):
            now = utcnow()
            entry, card = await count_cards.use(
                tx,
                card_id=request.card_id,
                entry_id=new_id(ENTRY),
                uses=uses,
                sku=sku,
                store_path=request.store_path,
                operator_id=operator,
                now=now,
            )
            return pb.UseCountCardResponse(use=_entry(entry), card=_card(card, now))

        return await self.idempotency.run(request, pb.UseCountCardResponse, work)

    async def GetCountCardUse(self, request, context):
        v = Violations()
        _id(v, request.use_id, "use_id", ENTRY)
        v.raise_if_any()
        async with self.database.reading() as tx:
            return pb.GetCountCardUseResponse(use=_entry(await count_cards.use_by_id(tx, request.use_id)))

    async def UndoCountCardUse(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        _id(v, request.use_id, "use_id", ENTRY)
        reason = check_text(v, request.reason, "reason", MAX_MEMO, required=True)
        operator, _ = check_actor(v, request)
        v.raise_if_any()

        async def work(tx):
            now = utcnow()
            entry, card = await count_cards.undo_use(
                tx, use_id=request.use_id, entry_id=new_id(ENTRY), reason=reason, operator_id=operator, now=now
            )
            return pb.UndoCountCardUseResponse(undo=_entry(entry), card=_card(card, now))

        return await self.idempotency.run(request, pb.UndoCountCardUseResponse, work)

    async def RefundCountCard(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        _id(v, request.card_id, "card_id", CARD)
        reason = check_text(v, request.reason, "reason", MAX_MEMO, required=True)
        operator, _ = check_actor(v, request)
        v.raise_if_any()

        async def work(tx):
            now = utcnow()
            refund_fen, card = await count_cards.refund(
                tx, card_id=request.card_id, entry_id=new_id(ENTRY), reason=reason, operator_id=operator, now=now
            )
            return pb.RefundCountCardResponse(
                refund_fen=refund_fen,
                tender=_tender(card.tender),
                tender_reference=card.tender_reference,
                card=_card(card, now),
            )

        return await self.idempotency.run(request, pb.RefundCountCardResponse, work)

    async def ListCountCardEntries(self, request, context):
        v = Violations()
        _id(v, request.card_id, "card_id", CARD)
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.card_id)
        before = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await count_cards.entries_of(tx, request.card_id, before[0] if before else None, size + 1)
        page, token = pagination.next_page(found, size, lambda e: [e.entry_id], fingerprint)
        return pb.ListCountCardEntriesResponse(entries=[_entry(e) for e in page], next_page_token=token)


def _id(v: Violations, value: str, field: str, prefix: str) -> None:
    v.check(is_id(value, prefix), field, f"{field.upper()}_INVALID", f"{field} must be an id such as {prefix}_01J...")


def _tender(tender: Tender) -> int:
    return enum_value(wallet_pb2.Tender, "TENDER", tender.value)


def _plan(p: rules.Plan) -> pb.CountCardPlan:
    return pb.CountCardPlan(
        plan_id=p.plan_id,
        name=p.name,
        org_path=p.org_path,
        uses=p.uses,
        price_fen=p.price,
        valid_days=p.valid_days,
        skus=p.skus,
        start_time=timestamp(p.start_time),
        end_time=timestamp(p.end_time),
        ended_by=p.ended_by,
    )


def _card(c: rules.Card, now) -> pb.CountCard:
    return pb.CountCard(
        card_id=c.card_id,
        member_id=c.member_id,
        plan_id=c.plan_id,
        name=c.name,
        org_path=c.org_path,
        skus=c.skus,
        uses_total=c.uses_total,
        uses_left=c.uses_left,
        price_fen=c.price,
        value_left_fen=c.value_left,
        sold_store_path=c.sold_store_path,
        tender=_tender(c.tender),
        tender_reference=c.tender_reference,
        expire_time=timestamp(c.expire_time),
        state=enum_value(pb.CountCardState, "COUNT_CARD_STATE", c.state(now).value),
        create_time=timestamp(c.create_time),
        refund_time=timestamp(c.refund_time),
    )


def _entry(e: rules.Entry) -> pb.CountCardEntry:
    return pb.CountCardEntry(
        entry_id=e.entry_id,
        card_id=e.card_id,
        member_id=e.member_id,
        kind=enum_value(pb.CountCardEntryKind, "COUNT_CARD_ENTRY_KIND", e.kind.value),
        uses_delta=e.uses_delta,
        value_delta_fen=e.value_delta,
        uses_left_after=e.uses_left_after,
        value_left_after_fen=e.value_left_after,
        store_path=e.store_path,
        sold_store_path=e.sold_store_path,
        sku=e.sku,
        operator_id=e.operator_id,
        memo=e.memo,
        undoes_entry_id=e.undoes_entry_id,
        undone_by_entry_id=e.undone_by_entry_id,
        post_time=timestamp(e.post_time),
    )
