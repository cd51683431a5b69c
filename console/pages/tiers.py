"""营销 - 会员等级: the chain's tiers, lowest first (paged by the gateway's tokens); a new
tier and a tier's terms changed (its price rate, points multiplier, benefits and what
takes a member to it); the tier programme's versions, read (made with the CLI or the
API: their tier rules are a table of their own). Tiers are the chain's: every office reads them, HQ alone changes
them (the gateway's TierService routes are HQ's); the console shows the forms to HQ
only and the gateway refuses anyone else, by URL too."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from console.app import page
from console.client import Refusal
from console.pages.common import form_id, gateway, is_hq_admin, posted, refused_form, signed_in, token
from console.pages.forms import (
    by_table,
    fen,
    form_request_id,
    page_token,
    percent_bp,
    shown_fields,
    times_bp,
    values_of,
    whole,
)
from huiyuan.member.v1 import loyalty_pb2, tier_pb2 as tpb

FIELDS = ("name", "rank", "price_rate", "multiplier", "benefits", "upgrade_spend", "upgrade_top_up")
# What an edit changes (the rank stays: it orders the tiers members hold).
UPDATE_MASK = ["name", "price_rate_bp", "points_multiplier_bp", "benefits", "upgrade_spend_fen", "upgrade_top_up_fen"]
TEXTS = {
    "RANK_OUT_OF_RANGE": "序号为 0 到 1000 的整数。",
    "TIER_RANK_TAKEN": "该序号已被其他等级占用。",
    "RATE_OUT_OF_RANGE": "会员价须在 0.01% 到 100% 之间（100 为不打折）。",
    "MULTIPLIER_OUT_OF_RANGE": "积分倍数须在 0 到 10 之间。",
    "AMOUNT_OUT_OF_RANGE": "金额须在 0 到 100 亿元之间。",
    "UPGRADE_SPEND_OUT_OF_ORDER": "升级消费额须随等级序号递增。",
    "UPGRADE_TOP_UP_OUT_OF_ORDER": "升级充值额须随等级序号递增。",
}
NAMES = by_table(
    {
        "price_rate_bp": "price_rate",
        "points_multiplier_bp": "multiplier",
        "upgrade_spend_fen": "upgrade_spend",
        "upgrade_top_up_fen": "upgrade_top_up",
    }
)


def _values(tier: tpb.Tier) -> dict[str, str]:
    return {
        "name": tier.name,
        "rank": str(tier.rank),
        "price_rate": f"{tier.price_rate_bp / 100:g}",
        "multiplier": f"{tier.points_multiplier_bp / 10000:g}",
        "benefits": tier.benefits,
        "upgrade_spend": f"{tier.upgrade_spend_fen / 100:g}" if tier.upgrade_spend_fen else "",
        "upgrade_top_up": f"{tier.upgrade_top_up_fen / 100:g}" if tier.upgrade_top_up_fen else "",
    }


MEASURE_WORDS = {
    loyalty_pb2.TIER_MEASURE_SPEND: "消费额",
    loyalty_pb2.TIER_MEASURE_POINTS_EARNED: "获得积分",
    loyalty_pb2.TIER_MEASURE_VISITS: "到店次数",
    loyalty_pb2.TIER_MEASURE_TOP_UPS: "充值额",
    loyalty_pb2.TIER_MEASURE_VALUE_SCORE: "价值分",
}
DOWNGRADE_WORDS = {
    loyalty_pb2.DOWNGRADE_RULE_ONE_LEVEL: "每次降一级",
    loyalty_pb2.DOWNGRADE_RULE_TO_QUALIFIED: "降至达标等级",
}


async def _page(request: Request, values: dict, fields: dict, error: str, status: int = 200, editing=None):
    me = await signed_in(request)
    gw = gateway(request)
    answer = await gw.call(
        gw.tiers.ListTiers, tpb.ListTiersRequest(page_size=50, page_token=page_token(request)), token(request)
    )
    try:  # the latest versions of the programme, read only
        versions = (
            await gw.call(
                gw.tier_programmes.ListTierProgrammeVersions,
                loyalty_pb2.ListTierProgrammeVersionsRequest(page_size=10),
                token(request),
            )
        ).versions
    except Refusal:
        versions = []
    names = {t.tier_id: t.name for t in answer.tiers}
    return page(
        request,
        "tiers.html",
        {
            "tiers": answer.tiers,
            "versions": versions,
            "tier_names": names,
            "measure_words": MEASURE_WORDS,
            "downgrade_words": DOWNGRADE_WORDS,
            "next_token": answer.next_page_token,
            "may_change": is_hq_admin(me),
            "editing": editing,  # the tier whose form is shown, else a new one's
            "values": values or {"price_rate": "100", "multiplier": "1"},
            "fields": fields,
            "error": error,
            "new_id": form_id,  # a request id per form rendered: the form sent twice is done once
        },
        status,
    )


async def tiers(request: Request) -> Response:
    return await _page(request, {}, {}, "")


async def _find(request: Request, tier_id: str) -> tpb.Tier | None:
    gw = gateway(request)
    found = await gw.call(gw.tiers.ListTiers, tpb.ListTiersRequest(page_size=500), token(request))
    return next((t for t in found.tiers if t.tier_id == tier_id), None)


async def edit_form(request: Request) -> Response:
    await signed_in(request)
    tier = await _find(request, request.path_params["tier_id"][:40])
    if tier is None:
        return await _page(request, {}, {}, "没有这个等级。", 404)
    return await _page(request, _values(tier), {}, "", editing=tier)


def _tier_of(values: dict[str, str], fields: dict[str, str]) -> tpb.Tier:
    tier = tpb.Tier(name=values["name"], benefits=values["benefits"])
    rank = whole(values["rank"] or "0")
    rate = percent_bp(values["price_rate"] or "100")
    multiplier = times_bp(values["multiplier"] or "1")
    spend, top_up = fen(values["upgrade_spend"] or "0"), fen(values["upgrade_top_up"] or "0")
    for name, value, text in (
        ("rank", rank, "序号为整数，越大等级越高。"),
        ("price_rate", rate, "会员价为原价的百分比，如 95 为九五折。"),
        ("multiplier", multiplier, "积分倍数如 1 或 1.5。"),
        ("upgrade_spend", spend, "升级消费额为金额（元）。"),
        ("upgrade_top_up", top_up, "升级充值额为金额（元）。"),
    ):
        if value is None:
            fields[name] = text
    if not fields:
        assert rank is not None and rate is not None and multiplier is not None
        assert spend is not None and top_up is not None
        tier.rank, tier.price_rate_bp, tier.points_multiplier_bp = rank, rate, multiplier
        tier.upgrade_spend_fen, tier.upgrade_top_up_fen = spend, top_up
    return tier


async def create(request: Request) -> Response:
    _, form = await posted(request)
    values = values_of(form, FIELDS)
    fields: dict[str, str] = {}
    tier = _tier_of(values, fields)
    if fields:
        return await _page(request, values, fields, "请改正标出的内容。", 400)
    gw = gateway(request)
    try:
        await gw.call(
            gw.tiers.CreateTier, tpb.CreateTierRequest(request_id=form_request_id(form), tier=tier), token(request)
        )
    except Refusal as refusal:
        return await _page(
            request, values, shown_fields(refusal, "tier.", NAMES, TEXTS), refused_form(request, refusal, form), 400
        )
    return RedirectResponse("/tiers", status_code=303)


async def update(request: Request) -> Response:
    _, form = await posted(request)
    tier_id = request.path_params["tier_id"][:40]
    values = values_of(form, FIELDS)
    fields: dict[str, str] = {}
    tier = _tier_of(values, fields)
    tier.tier_id = tier_id
    editing = tpb.Tier(tier_id=tier_id, name=values["name"], rank=tier.rank)
    if fields:
        return await _page(request, values, fields, "请改正标出的内容。", 400, editing)
    ask = tpb.UpdateTierRequest(request_id=form_request_id(form), tier=tier)
    ask.update_mask.paths.extend(UPDATE_MASK)
    gw = gateway(request)
    try:
        await gw.call(gw.tiers.UpdateTier, ask, token(request))
    except Refusal as refusal:
        shown = shown_fields(refusal, "tier.", NAMES, TEXTS)
        return await _page(request, values, shown, refused_form(request, refusal, form), 400, editing)
    return RedirectResponse("/tiers", status_code=303)


ROUTES = [
    Route("/tiers", tiers, methods=["GET"]),
    Route("/tiers", create, methods=["POST"]),
    Route("/tiers/{tier_id}", edit_form, methods=["GET"]),
    Route("/tiers/{tier_id}", update, methods=["POST"]),
]
