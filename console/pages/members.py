"""会员: search by phone, card or name under the person's node; a member's profile with
their cards, tier and its history, stored value statement, points history, coupons,
count cards, orders and care contacts (each list paged by the gateway's tokens on a page
of its own); cards reported lost or found, frozen or unfrozen, replaced (补卡); the
profile edited (UpdateMember: the gateway's audit trail names the person); a tier
given by hand; a care contact recorded.

Every read and change goes through the gateway's scope: a member outside the person's
node is refused there, whatever the URL; the console decides only which forms to show."""

import asyncio
import json
from dataclasses import dataclass
from datetime import date

from google.protobuf import field_mask_pb2, json_format
from google.type import date_pb2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from console.app import page
from console.client import Refusal
from console.formats import yuan
from console.pages.common import (
    form_id,
    form_request_id,
    gateway,
    is_hq_admin,
    local_time,
    posted,
    refused_form,
    role_name,
    signed_in,
    token,
)
from huiyuan.campaign.v1 import campaign_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import card_pb2, care_pb2, member_pb2, tier_pb2
from huiyuan.points.v1 import points_pb2
from huiyuan.runtime.words import chinese
from huiyuan.wallet.v1 import count_card_pb2, wallet_pb2

PROFILE_ROWS = 10  # each list's first rows on the profile; the rest on the list's own page
PAGE_ROWS = 20

COUPON_STATES = {
    campaign_pb2.COUPON_STATE_AVAILABLE: "可用",
    campaign_pb2.COUPON_STATE_RESERVED: "已锁定",
    campaign_pb2.COUPON_STATE_REDEEMED: "已使用",
    campaign_pb2.COUPON_STATE_EXPIRED: "已过期",
}
GENDERS = {
    "": member_pb2.GENDER_UNSPECIFIED,
    "female": member_pb2.GENDER_FEMALE,
    "male": member_pb2.GENDER_MALE,
    "undisclosed": member_pb2.GENDER_UNDISCLOSED,
}
CARE_CHANNELS = {
    "phone": care_pb2.CARE_CHANNEL_PHONE,
    "sms": care_pb2.CARE_CHANNEL_SMS,
    "wechat": care_pb2.CARE_CHANNEL_WECHAT,
    "in_store": care_pb2.CARE_CHANNEL_IN_STORE,
}
CARE_TOPICS = {
    "follow_up": care_pb2.CARE_TOPIC_FOLLOW_UP,
    "birthday": care_pb2.CARE_TOPIC_BIRTHDAY,
    "anniversary": care_pb2.CARE_TOPIC_ANNIVERSARY,
    "win_back": care_pb2.CARE_TOPIC_WIN_BACK,
}


def word(enum, value: int) -> str:
    name = enum.Name(value)
    return chinese(name, name)


async def search(request: Request) -> Response:
    me = await signed_in(request)
    q = request.query_params.get("q", "").strip()[:64]
    page_token = request.query_params.get("page_token", "")[:1024]
    gw, session = gateway(request), token(request)
    found: list = []
    next_token, error = "", ""
    if q:
        try:
            if q.isdigit() and len(q) > 11:  # a card: found at the gateway, then read within the scope
                card = await gw.call(gw.gateway.LookupMember, pb.LookupMemberRequest(card_number=q), session)
                member = await gw.call(
                    gw.member.GetMember, member_pb2.GetMemberRequest(member_id=card.member.member_id), session
                )
                found = [member.member]
            else:
                wanted = member_pb2.MemberFilter(org_path=me.org_path)
                if q.isdigit():
                    wanted.phone_suffix = q
                else:
                    wanted.name_contains = q
                answer = await gw.call(
                    gw.member.ListMembers,
                    member_pb2.ListMembersRequest(filter=wanted, page_size=20, page_token=page_token),
                    session,
                )
                found, next_token = list(answer.members), answer.next_page_token
        except Refusal as refusal:
            if refusal.reason in ("MEMBER_NOT_FOUND", "CARD_NOT_FOUND", "OUT_OF_SCOPE"):
                error = "未找到会员。"
            else:
                error = refusal.message
    return page(request, "members.html", {"q": q, "members": found, "next_token": next_token, "error": error})


# The lists of a member's file: each read through the gateway, a page at a time.


@dataclass
class Listed:
    title: str
    headers: list[str]
    rows: list[list]  # a cell: text, or (text, link)
    next_token: str = ""


async def _tier_names(request: Request) -> dict[str, str]:
    gw = gateway(request)
    answer = await gw.call(gw.tiers.ListTiers, tier_pb2.ListTiersRequest(page_size=500), token(request))
    return {t.tier_id: t.name for t in answer.tiers}


async def _fetch_people(request: Request) -> dict[str, str]:
    gw = gateway(request)
    try:
        answer = await gw.call(
            gw.gateway.ListPersons,
            pb.ListPersonsRequest(org_path=request.state.me.org_path, page_size=500),
            token(request),
        )
    except Refusal:
        return {}
    return {f"person:{p.person_id}": p.name for p in answer.persons}


async def _people(request: Request) -> dict[str, str]:
    """The names of the persons under the person's node, by the operator id the
    services' trails name them with ("person:<id>"), read once per page; another
    node's person, or a key, is shown by its id."""
    found = getattr(request.state, "people", None)
    if found is None:
        found = request.state.people = asyncio.ensure_future(_fetch_people(request))
    return await found


async def list_entries(request: Request, member_id: str, size: int, page_token: str) -> Listed:
    gw = gateway(request)
    answer = await gw.call(
        gw.wallet.ListEntries,
        wallet_pb2.ListEntriesRequest(member_id=member_id, page_size=size, page_token=page_token),
        token(request),
    )
    rows = [
        [
            local_time(request, e.post_time),
            word(wallet_pb2.EntryKind, e.kind),
            yuan(e.principal_delta_fen),
            yuan(e.bonus_delta_fen),
            yuan(e.balance_after_fen),
            e.store_path,
        ]
        for e in answer.entries
    ]
    return Listed("储值明细", ["时间", "类型", "本金", "赠送", "余额", "门店"], rows, answer.next_page_token)


async def list_points(request: Request, member_id: str, size: int, page_token: str) -> Listed:
    gw = gateway(request)
    answer = await gw.call(
        gw.points.ListHistory,
        points_pb2.ListHistoryRequest(member_id=member_id, page_size=size, page_token=page_token),
        token(request),
    )
    rows = [
        [
            local_time(request, m.create_time),
            word(points_pb2.MovementKind, m.kind),
            str(m.delta_points),
            (m.order_id, f"/orders/{m.order_id}") if m.order_id else "",
            m.store_path,
            m.memo,
        ]
        for m in answer.movements
    ]
    return Listed("积分明细", ["时间", "类型", "积分", "订单", "门店", "说明"], rows, answer.next_page_token)


async def list_tiers(request: Request, member_id: str, size: int, page_token: str) -> Listed:
    gw = gateway(request)
    answer, names, people = await asyncio.gather(
        gw.call(
            gw.tiers.ListTierHistory,
            tier_pb2.ListTierHistoryRequest(member_id=member_id, page_size=size, page_token=page_token),
            token(request),
        ),
        _tier_names(request),
        _people(request),
    )
    rows = [
        [
            local_time(request, c.change_time),
            names.get(c.from_tier_id, c.from_tier_id) or "—",
            names.get(c.to_tier_id, c.to_tier_id) or "—",
            c.reason,
            people.get(c.operator_id, c.operator_id),
        ]
        for c in answer.tier_changes
    ]
    return Listed("等级变更", ["时间", "原等级", "新等级", "原因", "操作人"], rows, answer.next_page_token)


async def list_coupons(request: Request, member_id: str, size: int, page_token: str) -> Listed:
    gw = gateway(request)
    answer = await gw.call(
        gw.campaign.ListMemberCoupons,
        campaign_pb2.ListMemberCouponsRequest(member_id=member_id, page_size=size, page_token=page_token),
        token(request),
    )
    rows = [
        [
            c.coupon_code,
            c.name,
            c.terms,
            COUPON_STATES.get(c.state, "—"),
            local_time(request, c.valid_until_time),
        ]
        for c in answer.coupons
    ]
    return Listed("优惠券", ["券码", "名称", "规则", "状态", "有效期至"], rows, answer.next_page_token)


async def list_count_cards(request: Request, member_id: str, size: int, page_token: str) -> Listed:
    gw = gateway(request)
    answer = await gw.call(
        gw.count_cards.ListCountCards,
        count_card_pb2.ListCountCardsRequest(member_id=member_id, page_size=size, page_token=page_token),
        token(request),
    )
    rows = [
        [
            c.name,
            f"{c.uses_left} / {c.uses_total}",
            yuan(c.price_fen),
            yuan(c.value_left_fen),
            c.sold_store_path,
            word(count_card_pb2.CountCardState, c.state),
            local_time(request, c.expire_time) or "不限",
        ]
        for c in answer.cards
    ]
    return Listed(
        "次卡", ["名称", "剩余/总次数", "售价", "剩余价值", "售卡门店", "状态", "到期"], rows, answer.next_page_token
    )


async def list_orders(request: Request, member_id: str, size: int, page_token: str) -> Listed:
    gw = gateway(request)
    me = request.state.me
    answer = await gw.call(
        gw.gateway.ListOrders,
        pb.ListOrdersRequest(org_path=me.org_path, member_id=member_id, page_size=size, page_token=page_token),
        token(request),
    )
    rows = [
        [
            (o.order_id, f"/orders/{o.order_id}"),
            local_time(request, o.create_time),
            o.store_path,
            word(pb.OrderState, o.state),
            yuan(o.receipt.list_total_fen - o.receipt.discount_total_fen) if o.HasField("receipt") else "—",
        ]
        for o in answer.orders
    ]
    return Listed("订单（本辖区）", ["订单号", "时间", "门店", "状态", "应付"], rows, answer.next_page_token)


async def list_care(request: Request, member_id: str, size: int, page_token: str) -> Listed:
    gw = gateway(request)
    answer, people = await asyncio.gather(
        gw.call(
            gw.care.ListCareContacts,
            care_pb2.ListCareContactsRequest(member_id=member_id, page_size=size, page_token=page_token),
            token(request),
        ),
        _people(request),
    )
    rows = [
        [
            local_time(request, c.contact_time),
            word(care_pb2.CareChannel, c.channel),
            word(care_pb2.CareTopic, c.topic),
            c.note,
            people.get(c.operator_id, c.operator_id),
        ]
        for c in answer.contacts
    ]
    return Listed("回访记录", ["时间", "方式", "事由", "记录", "操作人"], rows, answer.next_page_token)


SECTIONS = {
    "tiers": list_tiers,
    "entries": list_entries,
    "points": list_points,
    "coupons": list_coupons,
    "count-cards": list_count_cards,
    "orders": list_orders,
    "care": list_care,
}


async def section(request: Request) -> Response:
    """One list of a member's file, paged by the gateway's tokens."""
    await signed_in(request)
    member_id = request.path_params["member_id"][:40]
    name = request.path_params["section"]
    fetch = SECTIONS.get(name)
    if fetch is None:
        return page(request, "error.html", {"message": "没有此页面。", "reason": "NOT_FOUND"}, 404)
    gw = gateway(request)
    member, listed = await asyncio.gather(
        gw.call(gw.member.GetMember, member_pb2.GetMemberRequest(member_id=member_id), token(request)),
        fetch(request, member_id, PAGE_ROWS, request.query_params.get("page_token", "")[:1024]),
    )
    return page(request, "member_list.html", {"member": member.member, "name": name, "listed": listed})


# The profile


async def profile(request: Request) -> Response:
    return await _profile(request, request.path_params["member_id"][:40])


async def _profile(request: Request, member_id: str, error: str = "", status: int = 200, **shown) -> Response:
    me = await signed_in(request)
    gw, session = gateway(request), token(request)
    member_answer, cards_answer, names, *lists = await asyncio.gather(
        gw.call(gw.member.GetMember, member_pb2.GetMemberRequest(member_id=member_id), session),
        gw.call(gw.cards.ListCards, card_pb2.ListCardsRequest(member_id=member_id, page_size=20), session),
        _tier_names(request),
        *(fetch(request, member_id, PROFILE_ROWS, "") for fetch in SECTIONS.values()),
    )
    member = member_answer.member
    cards = [(c, word(card_pb2.CardState, c.state)) for c in cards_answer.cards]
    return page(
        request,
        "member.html",
        {
            "member": member,
            "tier_name": names.get(member.tier_id, member.tier_id),
            "gender": word(member_pb2.Gender, member.gender) if member.gender else "—",
            "birthday": _day_text(member.birthday),
            "anniversary": _day_text(member.anniversary),
            "cards": cards,
            # 补卡: a card not already replaced or cancelled
            "replaceable": [
                c for c, _ in cards if c.state not in (card_pb2.CARD_STATE_REPLACED, card_pb2.CARD_STATE_CANCELLED)
            ],
            "sections": list(zip(SECTIONS, lists, strict=True)),
            "error": error,
            "fields": shown.pop("fields", {}),
            "replaced": shown.pop("replaced", None),
            "may_freeze": is_hq_admin(me),
            "may_change": role_name(me) not in ("FINANCE", "MARKETING"),  # read-only roles: no forms
            "may_assign_tier": role_name(me) in ("REGIONAL_MANAGER", "HQ_ADMIN"),
            "tier_choices": names,
            "care_channels": {k: word(care_pb2.CareChannel, v) for k, v in CARE_CHANNELS.items()},
            "care_topics": {k: word(care_pb2.CareTopic, v) for k, v in CARE_TOPICS.items()},
            "new_request_id": form_id,  # each form its own, chosen as it is rendered
        },
        status,
    )


def _day_text(day) -> str:
    if not day.month:
        return ""
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}" if day.year else f"{day.month:02d}-{day.day:02d}"


# 挂失, 解挂 at any office (a member is the chain's); 冻结, 解冻 by HQ (the gateway says so)
CARD_ACTIONS = {
    "lost": ("ReportCardLost", card_pb2.ReportCardLostRequest),
    "found": ("CancelCardLoss", card_pb2.CancelCardLossRequest),
    "freeze": ("FreezeCard", card_pb2.FreezeCardRequest),
    "unfreeze": ("UnfreezeCard", card_pb2.UnfreezeCardRequest),
}


async def card_action(request: Request) -> Response:
    _, form = await posted(request)
    member_id = request.path_params["member_id"][:40]
    action = CARD_ACTIONS.get(str(form.get("action", "")))
    reason = str(form.get("reason", "")).strip()[:200]
    if action is None or not reason:
        return await _profile(request, member_id, "请选择操作并填写原因。", 400)
    method, message = action
    gw = gateway(request)
    try:
        await gw.call(
            getattr(gw.cards, method),
            message(request_id=form_request_id(form), card_number=str(form.get("card_number", ""))[:32], reason=reason),
            token(request),
        )
    except Refusal as refusal:  # beside the card action form's fields (the replace form has its own)
        fields = {f"action_{name}": text for name, text in refusal.fields.items()}
        return await _profile(request, member_id, refused_form(request, refusal, form), 400, fields=fields)
    return RedirectResponse(f"/members/{member_id}", status_code=303)


async def replace_card(request: Request) -> Response:
    """补卡: the old card retired, a new number of its type given to the member; the
    balances are the member's and stay."""
    _, form = await posted(request)
    member_id = request.path_params["member_id"][:40]
    ask = card_pb2.ReplaceCardRequest(
        request_id=form_request_id(form),
        card_number=str(form.get("card_number", ""))[:32],
        new_card_number=str(form.get("new_card_number", "")).strip()[:32],
        reason=str(form.get("reason", "")).strip()[:256],
    )
    gw = gateway(request)
    try:
        answer = await gw.call(gw.cards.ReplaceCard, ask, token(request))
    except Refusal as refusal:
        fields = {_replace_field(name): text for name, text in refusal.fields.items()}
        if refusal.reason == "CARD_NUMBER_TAKEN":
            fields["new_card_number"] = refusal.message
        return await _profile(request, member_id, refused_form(request, refusal, form), 400, fields=fields)
    return await _profile(request, member_id, replaced=answer.new_card)


def _replace_field(path: str) -> str:
    return {"card_number": "card_number", "new_card_number": "new_card_number"}.get(path, "replace_reason")


async def record_care(request: Request) -> Response:
    """回访: a contact kept by the care service, with the person as the actor."""
    _, form = await posted(request)
    member_id = request.path_params["member_id"][:40]
    contact = care_pb2.CareContact(
        member_id=member_id,
        channel=CARE_CHANNELS.get(str(form.get("channel", "")), care_pb2.CARE_CHANNEL_UNSPECIFIED),
        topic=CARE_TOPICS.get(str(form.get("topic", "")), care_pb2.CARE_TOPIC_UNSPECIFIED),
        note=str(form.get("note", "")).strip()[:500],
    )
    gw = gateway(request)
    try:
        await gw.call(
            gw.care.RecordCareContact,
            care_pb2.RecordCareContactRequest(request_id=form_request_id(form), contact=contact),
            token(request),
        )
    except Refusal as refusal:
        fields = {name.removeprefix("contact."): text for name, text in refusal.fields.items()}
        return await _profile(request, member_id, refused_form(request, refusal, form), 400, fields=fields)
    return RedirectResponse(f"/members/{member_id}#care", status_code=303)


async def assign_tier(request: Request) -> Response:
    """A tier given by hand (AssignTier: HQ, or the member's region), with why and, if
    given, the last day it is held; the tier history keeps it."""
    _, form = await posted(request)
    member_id = request.path_params["member_id"][:40]
    ask = tier_pb2.AssignTierRequest(
        request_id=form_request_id(form),
        member_id=member_id,
        tier_id=str(form.get("tier_id", ""))[:40],
        reason=str(form.get("reason", "")).strip()[:256],
    )
    fields: dict[str, str] = {}
    end_text = str(form.get("end_date", "")).strip()
    if end_text:
        try:
            end = date.fromisoformat(end_text)
            ask.end_date.CopyFrom(date_pb2.Date(year=end.year, month=end.month, day=end.day))
        except ValueError:
            fields["end_date"] = "日期格式为 YYYY-MM-DD。"
    if fields:
        return await _profile(request, member_id, "请改正标出的内容。", 400, fields=fields)
    gw = gateway(request)
    try:
        await gw.call(gw.tiers.AssignTier, ask, token(request))
    except Refusal as refusal:
        return await _profile(
            request, member_id, refused_form(request, refusal, form), 400, fields=dict(refusal.fields)
        )
    return RedirectResponse(f"/members/{member_id}#tiers", status_code=303)


# Editing the profile: UpdateMember with the fields that changed in its mask; the
# gateway records the change, and the person who asked, in its audit trail.

EDITABLE = ("name", "phone", "gender", "birthday", "anniversary", "marketing_consent", "tags")


def _values_of(member) -> dict[str, str]:
    gender = next((k for k, v in GENDERS.items() if v == member.gender), "")
    return {
        "name": member.name,
        "phone": member.phone,
        "gender": gender,
        "birthday": _day_text(member.birthday),
        "anniversary": _day_text(member.anniversary),
        "marketing_consent": "yes" if member.marketing_consent else "",
        "tags": "，".join(member.tags),
    }


async def _edit_page(request: Request, member, values: dict, fields: dict, error: str, status: int = 200) -> Response:
    return page(
        request,
        "member_edit.html",
        {
            "member": member,
            "values": values,
            "fields": fields,
            "error": error,
            "genders": {"": "未填", "female": "女", "male": "男", "undisclosed": "保密"},
            "new_request_id": form_id,
        },
        status,
    )


async def _member(request: Request, member_id: str):
    gw = gateway(request)
    return (await gw.call(gw.member.GetMember, member_pb2.GetMemberRequest(member_id=member_id), token(request))).member


async def edit_form(request: Request) -> Response:
    await signed_in(request)
    member = await _member(request, request.path_params["member_id"][:40])
    return await _edit_page(request, member, _values_of(member), {}, "")


def _parse_day(text: str) -> date_pb2.Date | None:
    """YYYY-MM-DD, or MM-DD for a day whose year is not known; None if neither."""
    text = text.strip()
    try:
        if len(text) == 5:
            day = date.fromisoformat(f"2000-{text}")  # a leap year: 02-29 is a day
            return date_pb2.Date(month=day.month, day=day.day)
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


async def edit(request: Request) -> Response:
    _, form = await posted(request)
    member_id = request.path_params["member_id"][:40]
    member = await _member(request, member_id)
    before = _values_of(member)
    values = {k: str(form.get(k, "")).strip()[:200] for k in EDITABLE}
    values["marketing_consent"] = "yes" if values["marketing_consent"] else ""
    changed = [k for k in EDITABLE if values[k] != before[k]]
    if not changed:
        return await _edit_page(request, member, values, {}, "未作修改。", 400)
    wanted = member_pb2.Member(
        member_id=member_id,
        name=values["name"],
        phone=values["phone"],
        gender=GENDERS.get(values["gender"], member_pb2.GENDER_UNSPECIFIED),
        marketing_consent=bool(values["marketing_consent"]),
        tags=[t.strip() for t in values["tags"].replace("，", ",").split(",") if t.strip()],
    )
    fields: dict[str, str] = {}
    for day_field in ("birthday", "anniversary"):
        if day_field in changed and values[day_field]:
            parsed = _parse_day(values[day_field])
            if parsed is None:
                fields[day_field] = "日期格式为 YYYY-MM-DD，或不知年份时 MM-DD。"
            else:
                getattr(wanted, day_field).CopyFrom(parsed)
    if fields:
        return await _edit_page(request, member, values, fields, "请改正标出的内容。", 400)
    gw = gateway(request)
    ask = member_pb2.UpdateMemberRequest(
        request_id=form_request_id(form), member=wanted, update_mask=field_mask_pb2.FieldMask(paths=changed)
    )
    try:
        await gw.call(gw.member.UpdateMember, ask, token(request))
    except Refusal as refusal:
        shown = {name.removeprefix("member."): text for name, text in refusal.fields.items()}
        if refusal.reason == "PHONE_ALREADY_REGISTERED":
            shown["phone"] = refusal.message
        return await _edit_page(request, member, values, shown, refused_form(request, refusal, form), 400)
    return RedirectResponse(f"/members/{member_id}", status_code=303)


async def audit(request: Request) -> Response:
    """Who changed this member through the gateway: its audit trail, by the member's id
    (the entries the person's node may see), each naming the person who asked."""
    me = await signed_in(request)
    member_id = request.path_params["member_id"][:40]
    gw = gateway(request)
    member, answer = await asyncio.gather(
        _member(request, member_id),
        gw.call(
            gw.gateway.ListAuditEntries,
            pb.ListAuditEntriesRequest(
                org_path=me.org_path,
                target_id=member_id,
                page_size=PAGE_ROWS,
                page_token=request.query_params.get("page_token", "")[:1024],
            ),
            token(request),
        ),
    )
    entries = [
        (
            e,
            local_time(request, e.entry_time),
            e.method.rsplit("/", 1)[-1],
            json.dumps(json_format.MessageToDict(e.change), ensure_ascii=False)[:300],
        )
        for e in answer.entries
    ]
    return page(
        request, "member_audit.html", {"member": member, "entries": entries, "next_token": answer.next_page_token}
    )


ROUTES = [
    Route("/members", search),
    Route("/members/{member_id}", profile, methods=["GET"]),
    Route("/members/{member_id}/cards", card_action, methods=["POST"]),
    Route("/members/{member_id}/cards/replace", replace_card, methods=["POST"]),
    Route("/members/{member_id}/care", record_care, methods=["POST"]),
    Route("/members/{member_id}/tier", assign_tier, methods=["POST"]),
    Route("/members/{member_id}/edit", edit_form, methods=["GET"]),
    Route("/members/{member_id}/edit", edit, methods=["POST"]),
    Route("/members/{member_id}/audit", audit, methods=["GET"]),
    Route("/members/{member_id}/{section}", section, methods=["GET"]),
]
