"""The gateway's facts for the reports: an order paid and a refund done, read off their
protobufs into gateway/domain/reports.py's Sale and Return, whose contributions are
recorded with the fact (in the transaction that finishes it) or recomputed by the
rebuild from the rows - the same translation either way."""

from collections.abc import AsyncIterator

from gateway.domain import reports
from gateway.storage import sales_facts
from gateway.storage.tables import ROLLUPS
from huiyuan.campaign.v1 import campaign_pb2
from huiyuan.database import Transaction
from huiyuan.gateway.v1 import gateway_pb2 as pb, saga_log_pb2
from huiyuan.runtime.money import split_proportionally
from huiyuan.runtime.rollups import Contribution

TENDER_NAMES = {k: pb.TenderKind.Name(k).removeprefix("TENDER_KIND_") for k in pb.TenderKind.values()}


def sale(
    org_path: str,
    create_time,
    request: pb.CheckoutRequest,
    decision: saga_log_pb2.CheckoutDecision,
    receipt: pb.Receipt,
) -> reports.Sale:
    categories = {x.line_id: x.category for x in request.lines}
    member_price = campaign = coupon = 0
    for a in decision.quote.adjustments:
        if a.coupon_code:
            coupon += a.amount_fen
        elif a.kind == campaign_pb2.CAMPAIGN_KIND_TIER_DISCOUNT:
            member_price += a.amount_fen
        else:
            campaign += a.amount_fen
    tenders: dict[str, int] = {}
    for t in receipt.tenders:
        name = TENDER_NAMES[t.kind]
        tenders[name] = tenders.get(name, 0) + t.amount_fen
    if receipt.points_offset_fen:
        tenders[reports.POINTS_TENDER] = receipt.points_offset_fen
    return reports.Sale(
        path=org_path,
        made=create_time,
        cashier=request.cashier_id,
        tier=decision.lookup.tier.tier_id,
        lines=tuple(reports.Line(categories.get(x.line_id, ""), x.quantity, x.payable_fen) for x in receipt.items),
        gross_fen=receipt.list_total_fen,
        member_price_fen=member_price,
        campaign_fen=campaign,
        coupon_fen=coupon,
        points_offset_fen=receipt.points_offset_fen,
        stored_value_fen=receipt.stored_value_paid_fen,
        tenders=tenders,
    )


def returned(
    order_path: str,
    refund_time,
    cashier_id: str,
    returned_lines: dict[str, int],
    order_request: pb.CheckoutRequest,
    decision: saga_log_pb2.CheckoutDecision,
    receipt: pb.Receipt,
    answer: pb.RefundResponse,
) -> reports.Return:
    """A refund done, with the order it returns goods of. Its value (the returned goods'
    part of the order's net, points offset included) is split over the returned lines by
    their payable, to the fen."""
    categories = {x.line_id: x.category for x in order_request.lines}
    items = {x.line_id: x for x in receipt.items}
    chosen = [(line_id, units) for line_id, units in returned_lines.items() if line_id in items]
    weights = [items[i].payable_fen * units // max(items[i].quantity, 1) for i, units in chosen]
    parts = split_proportionally(answer.spend_returned_fen, weights) if chosen else []
    money = answer.stored_value_fen + sum(t.amount_fen for t in answer.tenders)
    tenders: dict[str, int] = {}
    if answer.stored_value_fen:
        tenders["STORED_VALUE"] = answer.stored_value_fen
    for t in answer.tenders:
        name = TENDER_NAMES[t.kind]
        tenders[name] = tenders.get(name, 0) + t.amount_fen
    if answer.spend_returned_fen > money:
        tenders[reports.POINTS_TENDER] = answer.spend_returned_fen - money
    return reports.Return(
        path=order_path,
        made=refund_time,
        cashier=cashier_id,
        order_cashier=order_request.cashier_id,
        tier=decision.lookup.tier.tier_id,
        lines=tuple(
            reports.Line(categories.get(line_id, ""), units, fen) for (line_id, units), fen in zip(chosen, parts)
        ),
        value_fen=answer.spend_returned_fen,
        tenders=tenders,
    )


async def record_sale(tx: Transaction, fact: reports.Sale) -> None:
    await ROLLUPS.record(tx, reports.sale_contributions(fact))


async def record_return(tx: Transaction, fact: reports.Return) -> None:
    await ROLLUPS.record(tx, reports.return_contributions(fact))


async def all_facts(tx) -> AsyncIterator[list[Contribution]]:
    """Every sale and return there is, as contributions, batch by batch (the rebuild)."""
    async for batch in sales_facts.sold_orders(tx):
        yield [
            c
            for o in batch
            for c in reports.sale_contributions(
                sale(
                    o.org_path,
                    o.create_time,
                    pb.CheckoutRequest.FromString(o.request),
                    saga_log_pb2.CheckoutDecision.FromString(o.decision),
                    pb.CheckoutResponse.FromString(o.response).receipt,
                )
            )
        ]
    async for batch in sales_facts.done_refunds(tx):
        yield [
            c
            for r in batch
            for c in reports.return_contributions(
                returned(
                    r.org_path,
                    r.create_time,
                    r.cashier_id,
                    r.lines,
                    pb.CheckoutRequest.FromString(r.request),
                    saga_log_pb2.CheckoutDecision.FromString(r.decision),
                    pb.CheckoutResponse.FromString(r.order_response).receipt,
                    pb.RefundResponse.FromString(r.response),
                )
            )
        ]
