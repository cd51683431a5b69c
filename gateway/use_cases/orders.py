"""Orders as the back office reads and lists them: state, receipt, refusal, and the
steps a service refused - of the checkout and of its refunds - with how each was
settled."""

from gateway.domain.callers import Caller, denied
from gateway.domain.orders import not_in_scope, units_returned
from gateway.domain.sagas import refused_step, settled_step
from gateway.storage import orders, refunds, saga_log
from huiyuan.database import Database, Transaction
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.runtime import pagination
from huiyuan.runtime.convert import timestamp


async def order_in_scope(tx: Transaction, caller: Caller, order_id: str, for_update: bool = False):
    """The order's row, or NOT_FOUND if there is none in the caller's scope."""
    row = await orders.get(tx, order_id, for_update)
    if row is None or not caller.covers(row.store_path):
        raise not_in_scope(order_id)
    return row


async def order_view(tx: Transaction, row) -> pb.Order:
    return (await _views(tx, [row]))[0]


async def _views(tx: Transaction, rows) -> list[pb.Order]:
    if not rows:
        return []
    # Each saga logs under its own id: an order's checkout under the order id, a refund under the refund id.
    owner = {row.order_id: row.order_id for row in rows}
    refunded: dict[str, list[dict[str, int]]] = {row.order_id: [] for row in rows}  # each refund's lines, by order
    for refund_id, order_id, lines in await refunds.of_orders(tx, list(owner)):
        owner[refund_id] = order_id
        refunded[order_id].append(lines)
    returned = {order_id: units_returned(lines) for order_id, lines in refunded.items()}
    logged: dict[str, dict[tuple[str, str], bytes]] = {row.order_id: {} for row in rows}
    for saga_id, step, payload in await saga_log.refused_and_settled(tx, list(owner)):
        logged[owner[saga_id]][saga_id, step] = payload
    views = []
    for row in rows:
        view = pb.Order(
            order_id=row.order_id,
            store_path=row.store_path,
            member_id=row.member_id,
            state=pb.OrderState.Value(f"ORDER_STATE_{row.state}"),
            create_time=timestamp(row.create_time),
        )
        if row.response is not None:
            answer = pb.CheckoutResponse.FromString(row.response)
            view.refusal_reason = answer.refusal_reason
            if answer.HasField("receipt"):
                view.receipt.CopyFrom(answer.receipt)
                for item in view.receipt.items:
                    item.returned_quantity = returned[row.order_id].get(item.line_id, 0)
        steps = logged[row.order_id]
        for saga_id, key in sorted(k for k in steps if k[1].startswith(refused_step(""))):
            settled = steps.get((saga_id, settled_step(key.removeprefix(refused_step("")))))
            view.refused_steps.append(pb.RefusedStep.FromString(settled or steps[saga_id, key]))
        views.append(view)
    return views


async def get_order(database: Database, caller: Caller, order_id: str) -> pb.Order:
    async with database.reading() as tx:
        return await order_view(tx, await order_in_scope(tx, caller, order_id))


async def list_orders(
    database: Database, caller: Caller, node: str, wanted, size: int, before, fingerprint: str
) -> pb.ListOrdersResponse:
    """The orders under node that wanted selects (checks.OrderFilter; both checked:
    servicers/checks.py), newest first, a page."""
    if not caller.covers(node):
        raise denied()
    async with database.reading() as tx:
        rows = await orders.page(
            tx,
            node,
            wanted.state,
            before[0] if before else None,
            size + 1,
            member_id=wanted.member_id,
            start=wanted.start,
            end=wanted.end,
        )
        page, token = pagination.next_page(rows, size, lambda row: [row.order_id], fingerprint)
        return pb.ListOrdersResponse(orders=await _views(tx, page), next_page_token=token)
