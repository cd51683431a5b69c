"""订单: the orders under the person's node, newest first, paged by the gateway's tokens
and filtered by state (待处理: the orders that need attention); an order's receipt; an
order that needs attention settled with a reason (SettleOrder, audited with the person)."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from console.app import page
from console.client import Refusal
from console.pages.common import gateway, posted, request_id, signed_in, token
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.runtime.words import chinese

STATES = {
    "": pb.ORDER_STATE_UNSPECIFIED,
    "paid": pb.ORDER_STATE_PAID,
    "attention": pb.ORDER_STATE_NEEDS_ATTENTION,
    "refunded": pb.ORDER_STATE_REFUNDED,
    "partly_refunded": pb.ORDER_STATE_PARTLY_REFUNDED,
    "refused": pb.ORDER_STATE_REFUSED,
}


def state_word(state: int) -> str:
    name = pb.OrderState.Name(state)
    return chinese(name, name)


async def list_orders(request: Request) -> Response:
    me = await signed_in(request)
    state = request.query_params.get("state", "")
    state = state if state in STATES else ""
    gw = gateway(request)
    answer = await gw.call(
        gw.gateway.ListOrders,
        pb.ListOrdersRequest(
            org_path=me.org_path,
            state=STATES[state],
            page_size=20,
            page_token=request.query_params.get("page_token", "")[:1024],
        ),
        token(request),
    )
    orders = [(o, state_word(o.state), o.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M")) for o in answer.orders]
    return page(
        request,
        "orders.html",
        {
            "orders": orders,
            "state": state,
            "states": {k: state_word(v) if k else "全部" for k, v in STATES.items()},
            "next_token": answer.next_page_token,
        },
    )


async def _order_page(request: Request, order_id: str, error: str = "", status: int = 200) -> Response:
    await signed_in(request)
    gw = gateway(request)
    found = await gw.call(gw.gateway.GetOrder, pb.GetOrderRequest(order_id=order_id), token(request))
    tenders = [(chinese(pb.TenderKind.Name(t.kind), pb.TenderKind.Name(t.kind)), t) for t in found.receipt.tenders]
    return page(
        request,
        "order.html",
        {
            "order_id": order_id,
            "found": found,
            "state": state_word(found.state),
            "needs_attention": found.state == pb.ORDER_STATE_NEEDS_ATTENTION,
            "tenders": tenders,
            "error": error,
        },
        status,
    )


async def order(request: Request) -> Response:
    return await _order_page(request, request.path_params["order_id"][:40])


async def settle(request: Request) -> Response:
    _, form = await posted(request)
    order_id = request.path_params["order_id"][:40]
    gw = gateway(request)
    ask = pb.SettleOrderRequest(request_id=request_id(), order_id=order_id, reason=str(form.get("reason", "")).strip())
    try:
        await gw.call(gw.gateway.SettleOrder, ask, token(request))
    except Refusal as refusal:
        return await _order_page(request, order_id, refusal.message, 400)
    return RedirectResponse(f"/orders/{order_id}", status_code=303)


ROUTES = [
    Route("/orders", list_orders, methods=["GET"]),
    Route("/orders/{order_id}", order, methods=["GET"]),
    Route("/orders/{order_id}/settle", settle, methods=["POST"]),
]
