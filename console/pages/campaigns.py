"""营销 - 活动: the campaigns that apply under the person's node (paged by the gateway's
tokens), a new one (满减 or 满折) as a draft, a sample order priced with it as if it were
live (Simulate), then published, paused or ended. Creating and changing go through the
gateway's pass-through routes: the gateway checks the role and the node, and records
the person in its audit trail."""

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from console.app import page
from console.client import Refusal
from console.pages.common import (
    FIRST_DAY,
    LAST_DAY,
    form_id,
    gateway,
    may_configure_marketing,
    posted,
    refused_form,
    signed_in,
    token,
)
from console.pages.forms import (
    day_list,
    day_note,
    form_request_id,
    percent_bp,
    shown_day,
    shown_fields,
    times_bp,
    whole,
    words,
)
from console.pages.reports import nodes_under
from huiyuan.campaign.v1 import campaign_pb2 as cpb
from huiyuan.member.v1 import org_pb2, tier_pb2

STATUS_WORDS = {
    cpb.CAMPAIGN_STATUS_DRAFT: "草稿",
    cpb.CAMPAIGN_STATUS_ACTIVE: "进行中",
    cpb.CAMPAIGN_STATUS_PAUSED: "已暂停",
    cpb.CAMPAIGN_STATUS_ENDED: "已结束",
}
KIND_WORDS = {
    cpb.CAMPAIGN_KIND_TIER_DISCOUNT: "等级折扣",
    cpb.CAMPAIGN_KIND_CATEGORY_DISCOUNT: "品类折扣",
    cpb.CAMPAIGN_KIND_MEMBER_DAY: "会员日",
    cpb.CAMPAIGN_KIND_LIMITED_PRICE: "限时价",
    cpb.CAMPAIGN_KIND_THRESHOLD_REDUCTION: "满减",
    cpb.CAMPAIGN_KIND_THRESHOLD_DISCOUNT: "满折",
    cpb.CAMPAIGN_KIND_BIRTHDAY: "生日优惠",
    cpb.CAMPAIGN_KIND_NEW_MEMBER_GIFT: "新会员礼",
    cpb.CAMPAIGN_KIND_POINTS_MULTIPLIER: "积分倍数",
    cpb.CAMPAIGN_KIND_COUPONS: "发券活动",
}
STATUS_ACTIONS = {
    "publish": cpb.CAMPAIGN_STATUS_ACTIVE,
    "pause": cpb.CAMPAIGN_STATUS_PAUSED,
    "end": cpb.CAMPAIGN_STATUS_ENDED,
}
YUAN = re.compile(r"\d{1,9}(\.\d{1,2})?")


def fen(text: str) -> int | None:
    text = text.strip()
    if not YUAN.fullmatch(text):
        return None
    whole, _, cents = text.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


def _words() -> dict:
    return {"status_words": STATUS_WORDS, "kind_words": KIND_WORDS}


async def list_campaigns(request: Request) -> Response:
    me = await signed_in(request)
    gw = gateway(request)
    answer = await gw.call(
        gw.campaign.ListCampaigns,
        cpb.ListCampaignsRequest(
            org_path=me.org_path, page_size=20, page_token=request.query_params.get("page_token", "")[:1024]
        ),
        token(request),
    )
    return page(
        request,
        "campaigns.html",
        {
            "campaigns": answer.campaigns,
            "next_token": answer.next_page_token,
            "may_create": may_configure_marketing(me),
            **_words(),
        },
    )


# The kinds a campaign may be made as, by the form's value.
KINDS = {
    "reduction": cpb.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
    "discount": cpb.CAMPAIGN_KIND_THRESHOLD_DISCOUNT,
    "category": cpb.CAMPAIGN_KIND_CATEGORY_DISCOUNT,
    "tier": cpb.CAMPAIGN_KIND_TIER_DISCOUNT,
    "member_day": cpb.CAMPAIGN_KIND_MEMBER_DAY,
    "birthday": cpb.CAMPAIGN_KIND_BIRTHDAY,
    "limited_price": cpb.CAMPAIGN_KIND_LIMITED_PRICE,
    "points_multiplier": cpb.CAMPAIGN_KIND_POINTS_MULTIPLIER,
    "new_member_gift": cpb.CAMPAIGN_KIND_NEW_MEMBER_GIFT,
    "coupons": cpb.CAMPAIGN_KIND_COUPONS,
}
# The campaign service's reasons, as these forms word them (others: console.client.FIELD_WORDS).
TEXTS = {
    "SCHEDULE_REVERSED": "结束日期须晚于开始日期。",
    "CATEGORIES_REQUIRED": "品类折扣须填写品类。",
    "MEMBER_DAY_INVALID": "会员日填写星期或每月日期，二者取一。",
    "WEEKDAY_INVALID": "星期为 1（周一）到 7（周日）。",
    "MONTH_DAY_INVALID": "日期为 1 到 31。",
    "SKU_PRICES_INVALID": "请填写商品与限时价（不能为负）。",
    "MULTIPLIER_INVALID": "积分倍数须大于 1 且不超过 10。",
    "COUPON_TEMPLATE_REQUIRED": "新会员礼须填写赠送的券模板。",
    "TEMPLATE_OUT_OF_SCOPE": "该券模板的可用范围须覆盖活动范围。",
    "FIELD_NOT_FOR_KIND": "此类型的活动不使用这一项。",
}
# What each kind reads of the form beside name, org_path and its dates (the campaign
# service refuses a field its kind does not read, FIELD_NOT_FOR_KIND: none is sent).
LIMITED = {"budget", "per_member_limit"}
READS = {
    "reduction": {"threshold", "amount", "categories", "weekdays"} | LIMITED,
    "discount": {"threshold", "amount", "categories", "weekdays"} | LIMITED,
    "category": {"rate", "categories", "weekdays"} | LIMITED,
    "tier": {"rate", "tier_ids", "categories", "weekdays"} | LIMITED,
    "member_day": {"rate", "categories", "weekdays", "month_days"} | LIMITED,
    "birthday": {"rate", "categories"} | LIMITED,
    "limited_price": {"sku_prices", "weekdays"} | LIMITED,
    "points_multiplier": {"multiplier", "tier_ids", "weekdays"},
    "new_member_gift": {"coupon_template_id"},
    "coupons": LIMITED,
}
FORM_FIELDS = ("name", "org_path", "kind", "threshold", "amount", "rate", "categories", "weekdays", "month_days")
FORM_FIELDS += ("sku_prices", "multiplier", "coupon_template_id", "budget", "per_member_limit", "start", "end")


async def _new_page(request: Request, me, values: dict, fields: dict, error: str, status: int = 200) -> Response:
    nodes = [n for n in await nodes_under(request, me) if n.kind != org_pb2.ORG_NODE_KIND_TERMINAL]
    gw = gateway(request)
    try:
        tiers = (await gw.call(gw.tiers.ListTiers, tier_pb2.ListTiersRequest(page_size=100), token(request))).tiers
    except Refusal:
        tiers = []
    try:  # the templates a 新会员礼 may give
        templates = (
            await gw.call(
                gw.campaign.ListCouponTemplates,
                cpb.ListCouponTemplatesRequest(org_path=me.org_path, page_size=200),
                token(request),
            )
        ).templates
    except Refusal:
        templates = []
    context = {"values": values, "fields": fields, "error": error, "nodes": nodes, "tiers": tiers}
    context["templates"] = templates
    context["chosen_tiers"] = set(values.get("tier_ids", []))
    context["new_id"] = form_id  # a request id per form rendered: the form sent twice is done once
    return page(request, "campaign_new.html", context, status)


async def new_form(request: Request) -> Response:
    me = await signed_in(request)
    values = {"org_path": me.org_path, "kind": "reduction", "threshold": "", "amount": "", "budget": ""}
    return await _new_page(request, me, values, {}, "")


def _local_time(request: Request, text: str, end: bool) -> Timestamp | None:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    if not FIRST_DAY <= day <= LAST_DAY:  # its moment in UTC may lie past year 1 or 9999
        return None
    zone = ZoneInfo(request.app.state.settings.chain_time_zone)
    moment = datetime.combine(day, time.max if end else time.min, zone)
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _last_day(request: Request, stamp: Timestamp) -> str:
    """The last day of a campaign's end (made here as that day's last moment)."""
    if not stamp.seconds and not stamp.nanos:
        return ""
    zone = ZoneInfo(request.app.state.settings.chain_time_zone)
    return stamp.ToDatetime(tzinfo=ZoneInfo("UTC")).astimezone(zone).date().isoformat()


def _sku_prices(text: str) -> dict[str, int] | None:
    """Limited-time prices, a line each: a SKU and its price in yuan ("tea-1 9.9" or
    "tea-1=9.9"), in fen; None when a line is not one."""
    prices: dict[str, int] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        sku, _, price = line.replace("=", " ").strip().rpartition(" ")
        price_fen = fen(price)
        if not sku.strip() or price_fen is None:
            return None
        prices[sku.strip()] = price_fen
    return prices


def _campaign_of(values: dict, tier_ids: list[str], fields: dict[str, str]) -> cpb.Campaign:
    """The campaign the form describes, with the fields its kind reads; what the console
    cannot read as a number is noted in fields."""
    kind = values["kind"] if values["kind"] in KINDS else "reduction"
    reads = READS[kind]
    campaign = cpb.Campaign(name=values["name"], org_path=values["org_path"], kind=KINDS[kind])
    if "threshold" in reads:
        threshold = fen(values["threshold"])
        amount = percent_bp(values["amount"]) if kind == "discount" else fen(values["amount"])
        if threshold is None:
            fields["threshold"] = "请填写门槛金额（元）。"
        if amount is None:
            fields["amount"] = "请填写减免金额（元）或折扣（%）。"
        if threshold is not None and amount is not None:
            step = cpb.ThresholdStep(threshold_fen=threshold)
            if kind == "discount":
                step.rate_bp = amount  # amount: % x 100
            else:
                step.reduction_fen = amount
            campaign.steps.append(step)
    if "rate" in reads:
        rate = percent_bp(values["rate"])
        if rate is None:
            fields["rate"] = "请填写折扣（%），如 88 为八八折。"
        else:
            campaign.rate_bp = rate
    if "categories" in reads:
        campaign.categories.extend(words(values["categories"]))
    if "tier_ids" in reads:
        campaign.tier_ids.extend(tier_ids)
    for name in ("weekdays", "month_days"):
        if name in reads:
            days = day_list(values[name])
            if days is None:
                fields[name] = "请填写数字，以空格分隔。"
            else:
                getattr(campaign, name).extend(days)
    if "sku_prices" in reads:
        prices = _sku_prices(values["sku_prices"])
        if prices is None:
            fields["sku_prices"] = "每行一个商品：商品编码 空格 价格（元）。"
        else:
            campaign.sku_prices_fen.update(prices)
    if "multiplier" in reads:
        multiplier = times_bp(values["multiplier"])
        if multiplier is None:
            fields["multiplier"] = "请填写倍数，如 2。"
        else:
            campaign.points_multiplier_bp = multiplier
    if "coupon_template_id" in reads:
        campaign.coupon_template_id = values["coupon_template_id"]
    if "budget" in reads:
        budget = fen(values["budget"] or "0")
        if budget is None:
            fields["budget"] = "预算为金额（元），不填为不限。"
        else:
            campaign.budget_fen = budget
    if "per_member_limit" in reads:
        limit = whole(values["per_member_limit"] or "0")
        if limit is None:
            fields["per_member_limit"] = "每人限用次数为整数，不填为不限。"
        else:
            campaign.per_member_limit = limit
    return campaign


async def create(request: Request) -> Response:
    me, form = await posted(request)
    values = {k: str(form.get(k, "")).strip()[:2000] for k in FORM_FIELDS}
    tier_ids = [str(t)[:40] for t in form.getlist("tier_ids")][:20]
    fields: dict[str, str] = {}
    campaign = _campaign_of(values, tier_ids, fields)
    shown_values = {**values, "tier_ids": tier_ids}
    if fields:
        return await _new_page(request, me, shown_values, fields, "请改正标出的内容。", 400)
    start, end = _local_time(request, values["start"], False), _local_time(request, values["end"], True)
    for name, stamp in (("start", start), ("end", end)):
        if values[name] and stamp is None:
            fields[name] = day_note(values[name])
    if fields:
        return await _new_page(request, me, shown_values, fields, "请改正标出的内容。", 400)
    if start is not None:
        campaign.start_time.CopyFrom(start)
    if end is not None:
        campaign.end_time.CopyFrom(end)
    gw = gateway(request)
    try:
        created = await gw.call(
            gw.campaign.CreateCampaign,
            cpb.CreateCampaignRequest(request_id=form_request_id(form), campaign=campaign),
            token(request),
        )
    except Refusal as refusal:
        shown = shown_fields(refusal, "", _form_field, TEXTS)
        return await _new_page(request, me, shown_values, shown, refused_form(request, refusal, form), 400)
    return RedirectResponse(f"/campaigns/{created.campaign.campaign_id}", status_code=303)


def _form_field(path: str) -> str:
    """The form's field for a field the gateway names (campaign.steps[0].reduction_fen)."""
    path = path.removeprefix("campaign.")
    if path.startswith("steps"):
        return "threshold" if "threshold" in path else "amount"
    return {
        "budget_fen": "budget",
        "start_time": "start",
        "end_time": "end",
        "rate_bp": "rate",
        "sku_prices_fen": "sku_prices",
        "points_multiplier_bp": "multiplier",
    }.get(path, path)


async def _detail(request: Request, campaign_id: str, extra: dict, status: int = 200) -> Response:
    me = await signed_in(request)
    gw, session = gateway(request), token(request)
    campaign = (
        await gw.call(gw.campaign.GetCampaign, cpb.GetCampaignRequest(campaign_id=campaign_id), session)
    ).campaign
    stats = await gw.call(gw.campaign.GetCampaignStats, cpb.GetCampaignStatsRequest(campaign_id=campaign_id), session)
    stores = [n for n in await nodes_under(request, me) if n.kind == org_pb2.ORG_NODE_KIND_STORE]
    context = {
        "campaign": campaign,
        "stats": stats,
        "stores": stores,
        "may_change": may_configure_marketing(me),
        "quote": None,
        "sample": {
            "store": stores[0].path if stores else "",
            "price": "120",
            "quantity": "1",
            "category": "",
            "sku": "sample",
        },
        "error": "",
        "new_id": form_id,
        "schedule": (shown_day(request, campaign.start_time), _last_day(request, campaign.end_time)),
        "schedule_form": None,  # the dates typed, shown again when refused
        **_words(),
        **extra,
    }
    return page(request, "campaign.html", context, status)


async def detail(request: Request) -> Response:
    return await _detail(request, request.path_params["campaign_id"][:40], {})


async def simulate(request: Request) -> Response:
    _, form = await posted(request)
    campaign_id = request.path_params["campaign_id"][:40]
    sample = {k: str(form.get(k, "")).strip() for k in ("store", "sku", "category", "price", "quantity")}
    price = fen(sample["price"])
    quantity = whole(sample["quantity"]) or 0
    if price is None or quantity <= 0:
        return await _detail(request, campaign_id, {"sample": sample, "error": "请填写单价（元）和数量。"}, 400)
    order = cpb.QuoteRequest(
        store_path=sample["store"],
        lines=[
            cpb.OrderLine(
                line_id="1",
                sku=sample["sku"] or "sample",
                category=sample["category"],
                quantity=quantity,
                unit_price_fen=price,
            )
        ],
    )
    gw = gateway(request)
    try:
        answer = await gw.call(
            gw.campaign.Simulate, cpb.SimulateRequest(campaign_id=campaign_id, order=order), token(request)
        )
    except Refusal as refusal:
        return await _detail(request, campaign_id, {"sample": sample, "error": refusal.message}, 400)
    return await _detail(request, campaign_id, {"sample": sample, "quote": answer.quote})


async def set_status(request: Request) -> Response:
    _, form = await posted(request)
    campaign_id = request.path_params["campaign_id"][:40]
    status = STATUS_ACTIONS.get(str(form.get("action", "")))
    if status is None:
        return await _detail(request, campaign_id, {"error": "未知的操作。"}, 400)
    gw = gateway(request)
    try:
        await gw.call(
            gw.campaign.SetCampaignStatus,
            cpb.SetCampaignStatusRequest(request_id=form_request_id(form), campaign_id=campaign_id, status=status),
            token(request),
        )
    except Refusal as refusal:
        return await _detail(request, campaign_id, {"error": refused_form(request, refusal, form)}, 400)
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


async def reschedule(request: Request) -> Response:
    """A campaign's dates moved (not once it has ended: the campaign service refuses)."""
    _, form = await posted(request)
    campaign_id = request.path_params["campaign_id"][:40]
    start_text, end_text = str(form.get("start", "")).strip(), str(form.get("end", "")).strip()
    start, end = _local_time(request, start_text, False), _local_time(request, end_text, True)
    if (start_text and start is None) or (end_text and end is None):
        note = day_note(start_text if start_text and start is None else end_text)
        return await _detail(request, campaign_id, {"error": note, "schedule_form": (start_text, end_text)}, 400)
    ask = cpb.RescheduleCampaignRequest(request_id=form_request_id(form), campaign_id=campaign_id)
    if start is not None:
        ask.start_time.CopyFrom(start)
    if end is not None:
        ask.end_time.CopyFrom(end)
    gw = gateway(request)
    try:
        await gw.call(gw.campaign.RescheduleCampaign, ask, token(request))
    except Refusal as refusal:
        worded = shown_fields(refusal, "", lambda path: path, TEXTS)
        shown = {
            "error": " ".join([refused_form(request, refusal, form), *worded.values()]),
            "schedule_form": (start_text, end_text),
        }
        return await _detail(request, campaign_id, shown, 400)  # the dates as they were typed
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


ROUTES = [
    Route("/campaigns", list_campaigns, methods=["GET"]),
    Route("/campaigns/new", new_form, methods=["GET"]),
    Route("/campaigns/new", create, methods=["POST"]),
    Route("/campaigns/{campaign_id}", detail, methods=["GET"]),
    Route("/campaigns/{campaign_id}/simulate", simulate, methods=["POST"]),
    Route("/campaigns/{campaign_id}/status", set_status, methods=["POST"]),
    Route("/campaigns/{campaign_id}/schedule", reschedule, methods=["POST"]),
]
