"""营销 - 次卡: the count-card plans on the person's node's line (paged by the gateway's
tokens), a new one (so many uses for a price, valid so many days) and one taken off sale
now. Through the gateway's pass-through routes (HQ, the regions and marketing change
them); the wallet judges the plan and the gateway the node."""

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
from console.pages.forms import (
    by_table,
    day_note,
    fen,
    form_request_id,
    local_time,
    page_token,
    shown_day,
    shown_fields,
    values_of,
    whole,
    words,
)
from console.pages.reports import nodes_under
from huiyuan.wallet.v1 import count_card_pb2 as ccpb

FIELDS = ("name", "org_path", "uses", "price", "valid_days", "skus", "start", "end")
TEXTS = {
    "USES_INVALID": "次数须在 1 到 1000 之间。",
    "PRICE_INVALID": "售价须大于 0。",
    "VALID_DAYS_INVALID": "有效天数不能为负数。",
    "SKUS_INVALID": "服务项目填写有误。",
    "SKUS_REPEATED": "服务项目不能重复。",
    "DATES_REVERSED": "停售日期须晚于开售日期。",
}
NAMES = by_table({"price_fen": "price", "start_time": "start", "end_time": "end"})


async def _page(request: Request, values: dict, fields: dict, error: str, status: int = 200) -> Response:
    me = await signed_in(request)
    gw = gateway(request)
    show_ended = request.query_params.get("ended") == "1"
    answer = await gw.call(
        gw.count_cards.ListCountCardPlans,
        ccpb.ListCountCardPlansRequest(
            org_path=me.org_path, show_ended=show_ended, page_size=20, page_token=page_token(request)
        ),
        token(request),
    )
    plans = [(p, shown_day(request, p.start_time), shown_day(request, p.end_time, end=True)) for p in answer.plans]
    may_change = may_configure_marketing(me)
    return page(
        request,
        "count_card_plans.html",
        {
            "plans": plans,
            "next_token": answer.next_page_token,
            "show_ended": show_ended,
            "may_change": may_change,
            "nodes": await nodes_under(request, me) if may_change else [],
            "values": values or {"org_path": me.org_path, "valid_days": "365"},
            "fields": fields,
            "error": error,
            "new_id": form_id,  # a request id per form rendered: the form sent twice is done once
        },
        status,
    )


async def plans(request: Request) -> Response:
    return await _page(request, {}, {}, "")


async def create(request: Request) -> Response:
    _, form = await posted(request)
    values = values_of(form, FIELDS)
    fields: dict[str, str] = {}
    plan = ccpb.CountCardPlan(name=values["name"], org_path=values["org_path"], skus=words(values["skus"]))
    uses, price, valid_days = whole(values["uses"]), fen(values["price"]), whole(values["valid_days"] or "0")
    if uses is None:
        fields["uses"] = "请填写次数（整数）。"
    if price is None:
        fields["price"] = "请填写售价（元）。"
    if valid_days is None:
        fields["valid_days"] = "有效天数为整数，0 为长期。"
    for name, end in (("start", False), ("end", True)):
        if values[name]:
            stamp = local_time(request, values[name], end)
            if stamp is None:
                fields[name] = day_note(values[name])
            else:
                (plan.end_time if end else plan.start_time).CopyFrom(stamp)
    if fields:
        return await _page(request, values, fields, "请改正标出的内容。", 400)
    assert uses is not None and price is not None and valid_days is not None
    plan.uses, plan.price_fen, plan.valid_days = uses, price, valid_days
    gw = gateway(request)
    try:
        await gw.call(
            gw.count_cards.CreateCountCardPlan,
            ccpb.CreateCountCardPlanRequest(request_id=form_request_id(form), plan=plan),
            token(request),
        )
    except Refusal as refusal:
        return await _page(
            request, values, shown_fields(refusal, "plan.", NAMES, TEXTS), refused_form(request, refusal, form), 400
        )
    return RedirectResponse("/count-card-plans", status_code=303)


async def end(request: Request) -> Response:
    _, form = await posted(request)
    gw = gateway(request)
    ask = ccpb.EndCountCardPlanRequest(request_id=form_request_id(form), plan_id=str(form.get("plan_id", ""))[:40])
    try:
        await gw.call(gw.count_cards.EndCountCardPlan, ask, token(request))
    except Refusal as refusal:
        return await _page(request, {}, {}, refused_form(request, refusal, form, ask.plan_id), 400)
    return RedirectResponse("/count-card-plans", status_code=303)


ROUTES = [
    Route("/count-card-plans", plans, methods=["GET"]),
    Route("/count-card-plans", create, methods=["POST"]),
    Route("/count-card-plans/end", end, methods=["POST"]),
]
