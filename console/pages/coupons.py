"""营销 - 优惠券: the coupon templates on the person's node's line (paged by the
gateway's tokens), a new one (满减券 or 折扣券), and a template's coupons given to a saved
segment: counted first (the gateway's IssueSegmentCoupons with validate_only), then
issued with the count shown on the button. The issue's request id is chosen when the
count is shown, so the button pressed twice (or the page sent again after a lost
answer) gives no member a second coupon."""

import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from console.app import page
from console.client import ISSUE_TIMEOUT_S, TIMEOUT_S, Refusal
from console.pages.common import (
    form_id,
    gateway,
    may_configure_marketing,
    posted,
    refused_form,
    request_id,
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
    percent_bp,
    shown_day,
    shown_fields,
    values_of,
    whole,
    words,
)
from console.pages.reports import nodes_under
from huiyuan.campaign.v1 import campaign_pb2 as cpb
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import segment_pb2 as spb

FIELDS = ("name", "org_path", "kind", "amount", "rate", "cap", "threshold", "categories", "valid_days")
FIELDS += ("valid_from", "valid_until", "campaign_id")
TEXTS = {
    "AMOUNT_INVALID": "面额须大于 0。",
    "THRESHOLD_BELOW_REDUCTION": "使用门槛须不低于面额。",
    "RATE_INVALID": "折扣须在 1% 到 99.99% 之间（如 88 为八八折）。",
    "CAP_INVALID": "封顶金额不能为负数。",
    "THRESHOLD_INVALID": "使用门槛不能为负数。",
    "VALIDITY_INVALID": "请填写有效天数，或起止日期。",
    "VALIDITY_REVERSED": "结束日期须晚于开始日期。",
    "FIELD_NOT_FOR_VALIDITY": "有效天数与起止日期只填其一。",
}
NAMES = by_table(
    {
        "amount_fen": "amount",
        "rate_bp": "rate",
        "cap_fen": "cap",
        "threshold_fen": "threshold",
        "valid_from_time": "valid_from",
        "valid_until_time": "valid_until",
    }
)
TEMPLATE_ID = re.compile(r"[A-Za-z0-9_\-]{1,40}")


async def _new_page(request: Request, values: dict, fields: dict, error: str, status: int = 200) -> Response:
    me = await signed_in(request)
    may_change = may_configure_marketing(me)
    gw = gateway(request)
    listed = await gw.call(
        gw.campaign.ListCouponTemplates,
        cpb.ListCouponTemplatesRequest(org_path=me.org_path, page_size=20, page_token=page_token(request)),
        token(request),
    )
    budgets = await gw.call(  # the 发券活动 whose budget a new template may draw on
        gw.campaign.ListCampaigns, cpb.ListCampaignsRequest(org_path=me.org_path, page_size=200), token(request)
    )
    return page(
        request,
        "coupons.html",
        {
            "templates": listed.templates,
            "budgets": [
                c
                for c in budgets.campaigns
                if c.kind == cpb.CAMPAIGN_KIND_COUPONS and c.status != cpb.CAMPAIGN_STATUS_ENDED
            ],
            "next_token": listed.next_page_token,
            "may_change": may_change,
            "nodes": await nodes_under(request, me) if may_change else [],
            "values": values or {"org_path": me.org_path, "kind": "fixed", "valid_days": "30"},
            "fields": fields,
            "error": error,
            "new_id": form_id,  # a request id per form rendered: the form sent twice is done once
        },
        status,
    )


async def coupons(request: Request) -> Response:
    wanted = request.query_params.get("template_id", "").strip()
    if wanted:
        if TEMPLATE_ID.fullmatch(wanted):
            return RedirectResponse(f"/coupons/{wanted}", status_code=303)
        return await _new_page(request, {}, {}, "券模板编号格式不正确。", 400)
    return await _new_page(request, {}, {}, "")


async def create(request: Request) -> Response:
    _, form = await posted(request)
    values = values_of(form, FIELDS)
    fields: dict[str, str] = {}
    template = cpb.CouponTemplate(
        name=values["name"],
        org_path=values["org_path"],
        categories=words(values["categories"]),
        campaign_id=values["campaign_id"],
    )
    if values["kind"] == "percentage":
        template.kind = cpb.COUPON_KIND_PERCENTAGE
        rate, cap = percent_bp(values["rate"]), fen(values["cap"] or "0")
        if rate is None:
            fields["rate"] = "请填写折扣（%），如 88 为八八折。"
        else:
            template.rate_bp = rate
        if cap is None:
            fields["cap"] = "封顶为金额（元），不填为不封顶。"
        else:
            template.cap_fen = cap
    else:
        template.kind = cpb.COUPON_KIND_FIXED
        amount = fen(values["amount"])
        if amount is None:
            fields["amount"] = "请填写面额（元）。"
        else:
            template.amount_fen = amount
    threshold = fen(values["threshold"] or "0")
    if threshold is None:
        fields["threshold"] = "使用门槛为金额（元），不填为无门槛。"
    else:
        template.threshold_fen = threshold
    if values["valid_days"]:
        days = whole(values["valid_days"])
        if days is None:
            fields["valid_days"] = "有效天数为整数。"
        else:
            template.valid_days = days
    for name, end in (("valid_from", False), ("valid_until", True)):
        if values[name]:
            stamp = local_time(request, values[name], end)
            if stamp is None:
                fields[name] = day_note(values[name])
            else:
                (template.valid_until_time if end else template.valid_from_time).CopyFrom(stamp)
    if fields:
        return await _new_page(request, values, fields, "请改正标出的内容。", 400)
    gw = gateway(request)
    try:
        created = await gw.call(
            gw.campaign.CreateCouponTemplate,
            cpb.CreateCouponTemplateRequest(request_id=form_request_id(form), template=template),
            token(request),
        )
    except Refusal as refusal:
        shown = shown_fields(refusal, "template.", NAMES, TEXTS)
        return await _new_page(request, values, shown, refused_form(request, refusal, form), 400)
    return RedirectResponse(f"/coupons/{created.template.template_id}", status_code=303)


async def _detail(request: Request, template_id: str, extra: dict, status: int = 200) -> Response:
    me = await signed_in(request)
    gw, session = gateway(request), token(request)
    template = (
        await gw.call(gw.campaign.GetCouponTemplate, cpb.GetCouponTemplateRequest(template_id=template_id), session)
    ).template
    listed = await gw.call(
        gw.segments.ListSegments,
        spb.ListSegmentsRequest(org_path=me.org_path, page_size=50, page_token=page_token(request)),
        session,
    )
    context = {
        "template": template,
        "valid_from": shown_day(request, template.valid_from_time),
        "valid_until": shown_day(request, template.valid_until_time, end=True),
        "segments": [s for s in listed.segments if not s.HasField("delete_time")],
        "next_token": listed.next_page_token,
        "may_issue": may_configure_marketing(me),
        "chosen": "",
        "counted": None,  # the segment's count, before the issue
        "issued": None,  # the issue's answer
        "error": "",
        "new_id": form_id,
        **extra,
    }
    return page(request, "coupon.html", context, status)


async def detail(request: Request) -> Response:
    return await _detail(request, request.path_params["template_id"][:40], {})


async def _segment_issue(request: Request, template_id: str, segment_id: str, rid: str, count_only: bool):
    gw = gateway(request)
    return await gw.call(
        gw.gateway.IssueSegmentCoupons,
        pb.IssueSegmentCouponsRequest(
            request_id=rid, template_id=template_id, segment_id=segment_id, validate_only=count_only
        ),
        token(request),
        deadline_s=TIMEOUT_S if count_only else ISSUE_TIMEOUT_S,  # a large segment is issued in pages
    )


async def count(request: Request) -> Response:
    """The segment counted (nothing issued): the page then offers the issue, to as many."""
    _, form = await posted(request)
    template_id = request.path_params["template_id"][:40]
    segment_id = str(form.get("segment_id", ""))[:40]
    if not segment_id:
        return await _detail(request, template_id, {"error": "请选择会员分群。"}, 400)
    try:
        counted = await _segment_issue(request, template_id, segment_id, request_id(), True)
    except Refusal as refusal:
        return await _detail(request, template_id, {"chosen": segment_id, "error": refusal.message}, 400)
    return await _detail(request, template_id, {"chosen": segment_id, "counted": counted.member_count})


async def issue(request: Request) -> Response:
    _, form = await posted(request)
    template_id = request.path_params["template_id"][:40]
    segment_id = str(form.get("segment_id", ""))[:40]
    try:
        issued = await _segment_issue(request, template_id, segment_id, form_request_id(form), False)
    except Refusal as refusal:
        shown: dict = {"chosen": segment_id, "error": refused_form(request, refusal, form)}
        if not refusal.nothing_done:  # the issue form again, with its request_id, to finish the issue
            counted = whole(str(form.get("counted", "")))
            shown["counted"] = counted if counted and counted > 0 else 1
        return await _detail(request, template_id, shown, 400)
    return await _detail(request, template_id, {"chosen": segment_id, "issued": issued})


ROUTES = [
    Route("/coupons", coupons, methods=["GET"]),
    Route("/coupons", create, methods=["POST"]),
    Route("/coupons/{template_id}", detail, methods=["GET"]),
    Route("/coupons/{template_id}/count", count, methods=["POST"]),
    Route("/coupons/{template_id}/issue", issue, methods=["POST"]),
]
