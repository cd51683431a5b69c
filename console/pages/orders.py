"""订单: the orders under the person's node, newest first, paged by the gateway's tokens
and searched by state (待处理: the orders that need attention), member, store or till,
and business days; an order found by its id; its receipt; an order that needs attention
settled with a reason (SettleOrder, audited with the person); lines of it refunded
(Refund: a store manager's, at the store - the gateway says who may, the console only
which form to show)."""

from datetime import date
from urllib.parse import urlencode

import grpc
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from console.app import page
from console.client import Refusal
from console.pages.common import (
    DAY_OUT_OF_RANGE,
    form_id,
    form_request_id,
    gateway,
    in_chain_zone,
    local_time,
    posted,
    refused_form,
    role_name,
    signed_in,
    token,
)
from console.pages.reports import nodes_under
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2
from huiyuan.runtime.words import chinese

STATES = {
    "": pb.ORDER_STATE_UNSPECIFIED,
    "paid": pb.ORDER_STATE_PAID,
    "attention": pb.ORDER_STATE_NEEDS_ATTENTION,
    "refunded": pb.ORDER_STATE_REFUNDED,
    "partly_refunded": pb.ORDER_STATE_PARTLY_REFUNDED,
    "refused": pb.ORDER_STATE_REFUSED,
}
REFUNDABLE = (pb.ORDER_STATE_PAID, pb.ORDER_STATE_PARTLY_REFUNDED)
SEARCHED = ("state", "order_id", "member", "node", "start", "end")


def state_word(state: int) -> str:
    name = pb.OrderState.Name(state)
    return chinese(name, name)


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


async def _member_id(request: Request, me, text: str) -> str | None:
    """The member a search names: an id, a card (found at the gateway), or a phone (the
    members under the person's node whose phone it is); None if none is found."""
    gw, session = gateway(request), token(request)
    if text.startswith("m_"):
        return text
    try:
        if text.isdigit() and len(text) > 11:
            card = await gw.call(gw.gateway.LookupMember, pb.LookupMemberRequest(card_number=text), session)
            return card.member.member_id
        if text.isdigit() and len(text) == 11:
            found = await gw.call(
                gw.member.ListMembers,
                member_pb2.ListMembersRequest(
                    filter=member_pb2.MemberFilter(org_path=me.org_path, phone_suffix=text), page_size=1
                ),
                session,
            )
            return found.members[0].member_id if found.members else None
    except Refusal as refusal:
        if refusal.reason in ("MEMBER_NOT_FOUND", "CARD_NOT_FOUND", "OUT_OF_SCOPE"):
            return None
        raise
    return None


async def list_orders(request: Request) -> Response:
    me = await signed_in(request)
    asked = {k: request.query_params.get(k, "").strip()[:64] for k in SEARCHED}
    if asked["state"] not in STATES:
        asked["state"] = ""
    if asked["order_id"]:  # an order named: its receipt, if the gateway shows it
        return RedirectResponse(f"/orders/{asked['order_id'][:40]}", status_code=303)
    nodes = await nodes_under(request, me)
    ask = pb.ListOrdersRequest(
        org_path=asked["node"] or me.org_path,
        state=STATES[asked["state"]],
        page_size=20,
        page_token=request.query_params.get("page_token", "")[:1024],
    )
    fields: dict[str, str] = {}
    if asked["member"]:
        member_id = await _member_id(request, me, asked["member"])
        if member_id is None:
            fields["member"] = "未找到会员（会员编号、卡号或 11 位手机号）。"
        else:
            ask.member_id = member_id
    start, end = _day(asked["start"]), _day(asked["end"])
    if asked["start"] and start is None:
        fields["start"] = "日期格式为 YYYY-MM-DD。"
    if asked["end"] and end is None:
        fields["end"] = "日期格式为 YYYY-MM-DD。"
    for name, day in (("start", start), ("end", end)):
        stamp = in_chain_zone(request, day, end=name == "end") if day else None  # the end day included
        if day and stamp is None:
            fields[name] = DAY_OUT_OF_RANGE
        elif stamp is not None:
            (ask.end_time if name == "end" else ask.start_time).CopyFrom(stamp)
    orders: list = []
    next_token, error, status = "", "", 200
    if fields:
        error, status = "请改正标出的内容。", 400
    else:
        gw = gateway(request)
        try:
            answer = await gw.call(gw.gateway.ListOrders, ask, token(request))
            orders = [(o, state_word(o.state), local_time(request, o.create_time)) for o in answer.orders]
            next_token = answer.next_page_token
        except Refusal as refusal:
            if refusal.code != grpc.StatusCode.INVALID_ARGUMENT:
                raise  # out of scope: the refusal's page
            fields = {
                {"org_path": "node", "start_time": "start", "end_time": "end", "member_id": "member"}.get(k, k): v
                for k, v in refusal.fields.items()
            }
            error, status = refusal.message, 400
    kept = {k: v for k, v in asked.items() if v and k != "order_id"}
    return page(
        request,
        "orders.html",
        {
            "orders": orders,
            "asked": asked,
            "fields": fields,
            "error": error,
            "nodes": nodes,
            "states": {k: state_word(v) if k else "全部" for k, v in STATES.items()},
            "tab_query": {k: urlencode({**kept, "state": k}) for k in STATES},
            "next_query": urlencode({**kept, "page_token": next_token}) if next_token else "",
        },
        status,
    )


async def _order_page(
    request: Request,
    order_id: str,
    error: str = "",
    status: int = 200,
    fields=None,
    refunded=None,
    quantities=None,
    reason: str = "",
) -> Response:
    me = await signed_in(request)
    gw = gateway(request)
    found = await gw.call(gw.gateway.GetOrder, pb.GetOrderRequest(order_id=order_id), token(request))
    tenders = [(chinese(pb.TenderKind.Name(t.kind), pb.TenderKind.Name(t.kind)), t) for t in found.receipt.tenders]
    back = []
    if refunded is not None:
        back = [(chinese(pb.TenderKind.Name(t.kind), pb.TenderKind.Name(t.kind)), t) for t in refunded.tenders]
    unknown = hasattr(request.state, "kept_request_id")  # a form sent whose outcome is unknown
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
            "fields": fields or {},
            # 退货 is a store manager's, at the store (the gateway refuses anyone else)
            # (and after an unknown outcome, the form again to send, though the order may be refunded now)
            "may_refund": (found.state in REFUNDABLE or unknown) and role_name(me) == "STORE_MANAGER",
            "outcome_unknown": unknown,  # the form as it was sent, its lines not disabled
            "refunded": refunded,
            "refunded_tenders": back,
            "quantities": quantities or {},  # a refused refund's form, as it was filled
            "refund_reason": reason,
            "new_request_id": form_id,
        },
        status,
    )


async def order(request: Request) -> Response:
    return await _order_page(request, request.path_params["order_id"][:40])


async def settle(request: Request) -> Response:
    _, form = await posted(request)
    order_id = request.path_params["order_id"][:40]
    gw = gateway(request)
    ask = pb.SettleOrderRequest(
        request_id=form_request_id(form), order_id=order_id, reason=str(form.get("reason", "")).strip()
    )
    try:
        await gw.call(gw.gateway.SettleOrder, ask, token(request))
    except Refusal as refusal:
        return await _order_page(request, order_id, refused_form(request, refusal, form), 400, fields=refusal.fields)
    return RedirectResponse(f"/orders/{order_id}", status_code=303)


async def refund(request: Request) -> Response:
    """Lines returned (qty_<line_id>: units of each), or the whole order when none is
    named; the gateway's answer - what went back to each tender, points - shown once.
    The form's request_id makes a second send the same refund, answered again."""
    _, form = await posted(request)
    order_id = request.path_params["order_id"][:40]
    quantities: dict[str, str] = {}
    lines: list[pb.RefundLine] = []
    fields: dict[str, str] = {}
    for key, value in form.multi_items():
        if not key.startswith("qty_") or not str(value).strip():
            continue
        line_id = key.removeprefix("qty_")[:64]
        quantities[line_id] = str(value).strip()[:6]
        if not quantities[line_id].isdigit():
            fields[f"qty_{line_id}"] = "数量须为整数。"
        elif int(quantities[line_id]) > 0:
            lines.append(pb.RefundLine(line_id=line_id, quantity=int(quantities[line_id])))
    whole = form.get("whole") == "yes"
    if not lines and not whole and not fields:
        fields["lines"] = "请填写要退的商品数量，或选择整单退款。"
    reason = str(form.get("reason", "")).strip()[:200]
    if fields:
        return await _order_page(
            request, order_id, "请改正标出的内容。", 400, fields=fields, quantities=quantities, reason=reason
        )
    ask = pb.RefundRequest(
        request_id=form_request_id(form), order_id=order_id, lines=[] if whole else lines, reason=reason
    )
    gw = gateway(request)
    try:
        answer = await gw.call(gw.gateway.Refund, ask, token(request))
    except Refusal as refusal:
        shown = {_refund_field(name, ask): text for name, text in refusal.fields.items()}
        return await _order_page(
            request,
            order_id,
            refused_form(request, refusal, form),
            400,
            fields=shown,
            quantities=quantities,
            reason=reason,
        )
    return await _order_page(request, order_id, refunded=answer)


def _refund_field(path: str, ask: pb.RefundRequest) -> str:
    """The form's field for a field the gateway names: lines[1].quantity is the second
    line sent, whose input is qty_<its line id>."""
    if path.startswith("lines[") and "]" in path:
        index = path[len("lines[") : path.index("]")]
        if index.isdigit() and int(index) < len(ask.lines):
            return f"qty_{ask.lines[int(index)].line_id}"
    return path.split(".")[0]


ROUTES = [
    Route("/orders", list_orders, methods=["GET"]),
    Route("/orders/{order_id}", order, methods=["GET"]),
    Route("/orders/{order_id}/settle", settle, methods=["POST"]),
    Route("/orders/{order_id}/refund", refund, methods=["POST"]),
]
