"""营销 - 积分规则 and 积分抵现: the points rules that apply at the person's node (paged by
the gateway's tokens), a new rule (a base rate, or a multiplier on days or categories),
one ended now; the offset policy in force at a node (how many points make a yuan, what
share of an order they may pay) and a new one set there. Through the gateway's
pass-through routes: HQ, the regions and marketing change them; the points service
judges the rule and the gateway the node."""

from urllib.parse import quote

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
    day_list,
    day_note,
    fen,
    form_request_id,
    local_time,
    page_token,
    percent_bp,
    shown_day,
    shown_fields,
    times_bp,
    values_of,
    whole,
    words,
)
from console.pages.reports import nodes_under
from huiyuan.points.v1 import points_pb2 as ppb

RULE_FIELDS = ("name", "org_path", "kind", "priority", "rate", "multiplier", "categories", "weekdays", "min_spend")
RULE_FIELDS += ("cap_per_order", "start", "end")
RULE_TEXTS = {
    "PRIORITY_INVALID": "优先级为 0 到 1000000 的整数。",
    "RULE_PRIORITY_TAKEN": "该优先级已被其他同类规则占用，请换一个。",
    "RULE_KIND_INVALID": "基础规则填写每元积分，倍数规则填写倍数，二者取一。",
    "RATE_INVALID": "每元积分须在 0 到 100 之间。",
    "MULTIPLIER_INVALID": "倍数须大于 1 且不超过 10。",
    "WEEKDAY_INVALID": "星期为 1（周一）到 7（周日）。",
    "WINDOW_REVERSED": "结束日期须晚于开始日期。",
    "NEGATIVE": "不能为负数。",
    "NOT_FOR_MULTIPLIER": "倍数规则不设上限，沿用基础规则的。",
    "CAPS_INCONSISTENT": "每单上限不能超过每日上限。",
}
RULE_NAMES = by_table(
    {
        "points_per_yuan_bp": "rate",
        "multiplier_bp": "multiplier",
        "min_spend_fen": "min_spend",
        "start_time": "start",
        "end_time": "end",
    }
)
POLICY_TEXTS = {
    "RATE_INVALID": "多少积分抵 1 元：1 到 10000。",
    "SHARE_INVALID": "抵扣比例须在 0% 到 100% 之间。",
}
POLICY_NAMES = by_table({"points_per_yuan": "points_per_yuan", "max_share_bp": "max_share"})


async def _rules_page(request: Request, values: dict, fields: dict, error: str, status: int = 200) -> Response:
    me = await signed_in(request)
    gw = gateway(request)
    show_ended = request.query_params.get("ended") == "1"
    answer = await gw.call(
        gw.points.ListRules,
        ppb.ListRulesRequest(org_path=me.org_path, show_ended=show_ended, page_size=20, page_token=page_token(request)),
        token(request),
    )
    rules = [(r, shown_day(request, r.start_time), shown_day(request, r.end_time, end=True)) for r in answer.rules]
    may_change = may_configure_marketing(me)
    return page(
        request,
        "points_rules.html",
        {
            "rules": rules,
            "next_token": answer.next_page_token,
            "show_ended": show_ended,
            "may_change": may_change,
            "nodes": await nodes_under(request, me) if may_change else [],
            "values": values or {"org_path": me.org_path, "kind": "base", "priority": "", "rate": "1"},
            "fields": fields,
            "error": error,
            "new_id": form_id,  # a request id per form rendered: the form sent twice is done once
        },
        status,
    )


async def rules(request: Request) -> Response:
    return await _rules_page(request, {}, {}, "")


async def create_rule(request: Request) -> Response:
    _, form = await posted(request)
    values = values_of(form, RULE_FIELDS)
    fields: dict[str, str] = {}
    rule = ppb.Rule(name=values["name"], org_path=values["org_path"], categories=words(values["categories"]))
    priority = whole(values["priority"])
    if priority is None:
        fields["priority"] = "请填写优先级（整数，越大越先考虑）。"
    else:
        rule.priority = priority
    if values["kind"] == "multiplier":
        multiplier = times_bp(values["multiplier"])
        if multiplier is None:
            fields["multiplier"] = "请填写倍数，如 2 或 1.5。"
        else:
            rule.multiplier_bp = multiplier
    else:
        rate = fen(values["rate"])  # points a yuan, in hundredths
        if rate is None:
            fields["rate"] = "请填写每元积分，如 1 或 0.5。"
        else:
            rule.points_per_yuan_bp = rate * 100
        cap = whole(values["cap_per_order"] or "0")
        if cap is None:
            fields["cap_per_order"] = "每单上限为整数积分，不填为不限。"
        else:
            rule.cap_per_order = cap
    weekdays = day_list(values["weekdays"])
    if weekdays is None:
        fields["weekdays"] = "星期为 1 到 7 的数字，以空格分隔。"
    else:
        rule.weekdays.extend(weekdays)
    min_spend = fen(values["min_spend"] or "0")
    if min_spend is None:
        fields["min_spend"] = "最低消费为金额（元）。"
    else:
        rule.min_spend_fen = min_spend
    for name, end in (("start", False), ("end", True)):
        if values[name]:
            stamp = local_time(request, values[name], end)
            if stamp is None:
                fields[name] = day_note(values[name])
            else:
                (rule.end_time if end else rule.start_time).CopyFrom(stamp)
    if fields:
        return await _rules_page(request, values, fields, "请改正标出的内容。", 400)
    gw = gateway(request)
    try:
        await gw.call(
            gw.points.CreateRule, ppb.CreateRuleRequest(request_id=form_request_id(form), rule=rule), token(request)
        )
    except Refusal as refusal:
        shown = shown_fields(refusal, "rule.", RULE_NAMES, RULE_TEXTS)
        return await _rules_page(request, values, shown, refused_form(request, refusal, form), 400)
    return RedirectResponse("/points/rules", status_code=303)


async def end_rule(request: Request) -> Response:
    _, form = await posted(request)
    gw = gateway(request)
    ask = ppb.EndRuleRequest(request_id=form_request_id(form), rule_id=str(form.get("rule_id", ""))[:40])
    try:
        await gw.call(gw.points.EndRule, ask, token(request))
    except Refusal as refusal:
        return await _rules_page(request, {}, {}, refused_form(request, refusal, form, ask.rule_id), 400)
    return RedirectResponse("/points/rules", status_code=303)


async def _offset_page(request: Request, values: dict, fields: dict, error: str, status: int = 200) -> Response:
    me = await signed_in(request)
    nodes = await nodes_under(request, me)
    known = {n.path for n in nodes} | {me.org_path}
    node = request.query_params.get("node", "") or values.get("org_path", "") or me.org_path
    if node not in known:
        node = me.org_path
    gw = gateway(request)
    policy = (
        await gw.call(gw.points.GetOffsetPolicy, ppb.GetOffsetPolicyRequest(org_path=node), token(request))
    ).policy
    return page(
        request,
        "points_offset.html",
        {
            "node": node,
            "nodes": nodes,
            "policy": policy,
            "may_change": may_configure_marketing(me),
            "values": values
            or {
                "org_path": node,
                "points_per_yuan": str(policy.points_per_yuan),
                "max_share": f"{policy.max_share_bp / 100:g}",
            },
            "fields": fields,
            "error": error,
            "new_id": form_id,
        },
        status,
    )


async def offset(request: Request) -> Response:
    return await _offset_page(request, {}, {}, "")


async def set_offset(request: Request) -> Response:
    _, form = await posted(request)
    values = values_of(form, ("org_path", "points_per_yuan", "max_share"))
    fields: dict[str, str] = {}
    points_per_yuan, share = whole(values["points_per_yuan"]), percent_bp(values["max_share"])
    if points_per_yuan is None:
        fields["points_per_yuan"] = "请填写多少积分抵 1 元（整数）。"
    if share is None:
        fields["max_share"] = "请填写最多抵扣订单金额的百分比。"
    if fields:
        return await _offset_page(request, values, fields, "请改正标出的内容。", 400)
    assert points_per_yuan is not None and share is not None
    policy = ppb.OffsetPolicy(org_path=values["org_path"], points_per_yuan=points_per_yuan, max_share_bp=share)
    gw = gateway(request)
    try:
        await gw.call(
            gw.points.SetOffsetPolicy,
            ppb.SetOffsetPolicyRequest(request_id=form_request_id(form), policy=policy),
            token(request),
        )
    except Refusal as refusal:
        shown = shown_fields(refusal, "policy.", POLICY_NAMES, POLICY_TEXTS)
        return await _offset_page(request, values, shown, refused_form(request, refusal, form), 400)
    return RedirectResponse(f"/points/offset?node={quote(values['org_path'])}", status_code=303)


ROUTES = [
    Route("/points/rules", rules, methods=["GET"]),
    Route("/points/rules", create_rule, methods=["POST"]),
    Route("/points/rules/end", end_rule, methods=["POST"]),
    Route("/points/offset", offset, methods=["GET"]),
    Route("/points/offset", set_offset, methods=["POST"]),
]
