"""营销 - 充值套餐: the top-up packages on the person's node's line (paged by the
gateway's tokens), a new one (充 X 送 Y, up to three steps) and one ended now. Made and
ended through the gateway's pass-through routes (HQ, the regions and marketing); the
wallet judges the steps and the gateway the node."""

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
    day_note,
    fen,
    form_request_id,
    local_time,
    page_token,
    shown_day,
    shown_fields,
    values_of,
)
from console.pages.reports import nodes_under
from huiyuan.wallet.v1 import wallet_pb2 as wpb

STEPS = 3
FIELDS = ("name", "org_path", "start", "end", *(f"{k}{i}" for i in range(STEPS) for k in ("threshold", "bonus")))
TEXTS = {
    "THRESHOLD_INVALID": "充值金额须大于 0。",
    "BONUS_INVALID": "赠送金额须在 0 到充值金额之间。",
    "STEPS_REQUIRED": "请至少填写一档充值金额与赠送金额。",
    "STEPS_NOT_ASCENDING": "各档充值金额须逐级递增。",
    "BONUS_NOT_ASCENDING": "高档的赠送金额不能少于低档。",
    "DATES_REVERSED": "结束日期须晚于开始日期。",
}


async def _page(request: Request, values: dict, fields: dict, error: str, status: int = 200) -> Response:
    me = await signed_in(request)
    gw = gateway(request)
    show_ended = request.query_params.get("ended") == "1"
    answer = await gw.call(
        gw.wallet.ListTopUpPackages,
        wpb.ListTopUpPackagesRequest(
            org_path=me.org_path, show_ended=show_ended, page_size=20, page_token=page_token(request)
        ),
        token(request),
    )
    packages = [
        (p, shown_day(request, p.start_time), shown_day(request, p.end_time, end=True)) for p in answer.packages
    ]
    return page(
        request,
        "packages.html",
        {
            "packages": packages,
            "next_token": answer.next_page_token,
            "show_ended": show_ended,
            "may_change": may_configure_marketing(me),
            "nodes": await nodes_under(request, me) if may_configure_marketing(me) else [],
            "values": values or {"org_path": me.org_path},
            "fields": fields,
            "error": error,
            "steps": range(STEPS),
            "new_id": form_id,  # a request id per form rendered: the form sent twice is done once
        },
        status,
    )


async def packages(request: Request) -> Response:
    return await _page(request, {}, {}, "")


async def create(request: Request) -> Response:
    _, form = await posted(request)
    values = values_of(form, FIELDS)
    fields: dict[str, str] = {}
    package = wpb.TopUpPackage(name=values["name"], org_path=values["org_path"])
    for i in range(STEPS):
        threshold, bonus = values[f"threshold{i}"], values[f"bonus{i}"]
        if not threshold and not bonus:
            continue
        threshold_fen, bonus_fen = fen(threshold), fen(bonus or "0")
        if threshold_fen is None:
            fields[f"threshold{i}"] = "请填写充值金额（元）。"
        if bonus_fen is None:
            fields[f"bonus{i}"] = "请填写赠送金额（元）。"
        if threshold_fen is not None and bonus_fen is not None:
            package.steps.append(wpb.PackageStep(threshold_fen=threshold_fen, bonus_fen=bonus_fen))
    for name, end in (("start", False), ("end", True)):
        if values[name]:
            stamp = local_time(request, values[name], end)
            if stamp is None:
                fields[name] = day_note(values[name])
            else:
                (package.end_time if end else package.start_time).CopyFrom(stamp)
    if fields:
        return await _page(request, values, fields, "请改正标出的内容。", 400)
    gw = gateway(request)
    try:
        await gw.call(
            gw.wallet.CreateTopUpPackage,
            wpb.CreateTopUpPackageRequest(request_id=form_request_id(form), package=package),
            token(request),
        )
    except Refusal as refusal:
        shown = shown_fields(refusal, "package.", _form_field, TEXTS)
        return await _page(request, values, shown, refused_form(request, refusal, form), 400)
    return RedirectResponse("/packages", status_code=303)


def _form_field(path: str) -> str:
    """A step's violation goes beside that step's input (steps[1].bonus_fen: bonus1)."""
    if path.startswith("steps[") and "." in path:
        index = path[len("steps[") : path.index("]")]
        return ("bonus" if path.endswith("bonus_fen") else "threshold") + index
    return {"start_time": "start", "end_time": "end", "steps": "threshold0"}.get(path, path)


async def end(request: Request) -> Response:
    _, form = await posted(request)
    gw = gateway(request)
    ask = wpb.EndTopUpPackageRequest(request_id=form_request_id(form), package_id=str(form.get("package_id", ""))[:40])
    try:
        await gw.call(gw.wallet.EndTopUpPackage, ask, token(request))
    except Refusal as refusal:
        return await _page(request, {}, {}, refused_form(request, refusal, form, ask.package_id), 400)
    return RedirectResponse("/packages", status_code=303)


ROUTES = [
    Route("/packages", packages, methods=["GET"]),
    Route("/packages", create, methods=["POST"]),
    Route("/packages/end", end, methods=["POST"]),
]
