"""营销 - 积分礼品: the gifts of the points mall offered under the person's node (paged by
the gateway's tokens), a new one, and its stock added to or written off with a reason.
Through the gateway's pass-through routes (HQ, the regions and marketing change them);
the points service judges the gift and the gateway the node."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from console.app import page
from console.client import Refusal
from console.pages.common import (
    form_id,
    gateway,
    may_configure_marketing,
    posted,
    refused_form,
    signed_in,
    token,
)
from console.pages.forms import by_table, form_request_id, page_token, shown_fields, values_of, whole
from console.pages.reports import nodes_under
from huiyuan.points.v1 import points_pb2 as ppb

FIELDS = ("name", "org_path", "points", "stock", "per_member_limit")
TEXTS = {
    "POINTS_INVALID": "所需积分须为正整数。",
    "STOCK_INVALID": "库存不能为负数。",
    "LIMIT_INVALID": "每人限兑不能为负数。",
    "DELTA_INVALID": "数量不能为 0：入库为正，报损为负。",
    "STOCK_SHORT": "库存不足，无法报损这么多。",
}
NAMES = by_table({})


async def _page(request: Request, values: dict, fields: dict, error: str, status: int = 200) -> Response:
    me = await signed_in(request)
    gw = gateway(request)
    answer = await gw.call(
        gw.points.ListGifts,
        ppb.ListGiftsRequest(org_path=me.org_path, page_size=20, page_token=page_token(request)),
        token(request),
    )
    may_change = may_configure_marketing(me)
    return page(
        request,
        "gifts.html",
        {
            "gifts": answer.gifts,
            "next_token": answer.next_page_token,
            "may_change": may_change,
            "nodes": await nodes_under(request, me) if may_change else [],
            "values": values or {"org_path": me.org_path, "stock": "0", "per_member_limit": "0"},
            "fields": fields,
            "error": error,
            "new_id": form_id,  # a request id per form rendered: the form sent twice is done once
        },
        status,
    )


async def gifts(request: Request) -> Response:
    return await _page(request, {}, {}, "")


async def create(request: Request) -> Response:
    _, form = await posted(request)
    values = values_of(form, FIELDS)
    fields: dict[str, str] = {}
    gift = ppb.Gift(name=values["name"], org_path=values["org_path"])
    for name, text in (
        ("points", "请填写所需积分（整数）。"),
        ("stock", "库存为整数。"),
        ("per_member_limit", "每人限兑为整数，0 为不限。"),
    ):
        value = whole(values[name] or "0")
        if value is None:
            fields[name] = text
        else:
            setattr(gift, name, value)
    if fields:
        return await _page(request, values, fields, "请改正标出的内容。", 400)
    gw = gateway(request)
    try:
        await gw.call(
            gw.points.CreateGift, ppb.CreateGiftRequest(request_id=form_request_id(form), gift=gift), token(request)
        )
    except Refusal as refusal:
        return await _page(
            request, values, shown_fields(refusal, "gift.", NAMES, TEXTS), refused_form(request, refusal, form), 400
        )
    return RedirectResponse("/gifts", status_code=303)


async def adjust_stock(request: Request) -> Response:
    _, form = await posted(request)
    delta = whole(str(form.get("delta", "")))
    if delta is None:
        return await _page(request, {}, {}, "请填写数量：入库为正，报损为负。", 400)
    ask = ppb.AdjustGiftStockRequest(
        request_id=form_request_id(form),
        gift_id=str(form.get("gift_id", ""))[:40],
        delta=delta,
        reason=str(form.get("reason", "")).strip()[:200],
    )
    gw = gateway(request)
    try:
        await gw.call(gw.points.AdjustGiftStock, ask, token(request))
    except Refusal as refusal:
        worded = shown_fields(refusal, "", NAMES, TEXTS | {"TEXT_REQUIRED": "请填写原因。"})
        return await _page(
            request, {}, {}, " ".join([refused_form(request, refusal, form, ask.gift_id), *worded.values()]), 400
        )
    return RedirectResponse("/gifts", status_code=303)


ROUTES = [
    Route("/gifts", gifts, methods=["GET"]),
    Route("/gifts", create, methods=["POST"]),
    Route("/gifts/stock", adjust_stock, methods=["POST"]),
]
