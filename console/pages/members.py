"""会员: search by phone, card or name under the person's node; a member's profile, cards,
stored value statement and points history (read). Every read goes through the gateway's
scope: a member outside the person's node is refused there, whatever the URL."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from console.app import page
from console.client import Refusal
from console.pages.common import gateway, is_hq_admin, posted, request_id, signed_in, token
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import card_pb2, member_pb2
from huiyuan.points.v1 import points_pb2
from huiyuan.runtime.words import chinese
from huiyuan.wallet.v1 import wallet_pb2


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
            message(request_id=request_id(), card_number=str(form.get("card_number", ""))[:32], reason=reason),
            token(request),
        )
    except Refusal as refusal:
        return await _profile(request, member_id, refusal.message, 400)
    return RedirectResponse(f"/members/{member_id}", status_code=303)


async def profile(request: Request) -> Response:
    return await _profile(request, request.path_params["member_id"][:40])


async def _profile(request: Request, member_id: str, error: str = "", status: int = 200) -> Response:
    me = await signed_in(request)
    gw, session = gateway(request), token(request)
    member = (await gw.call(gw.member.GetMember, member_pb2.GetMemberRequest(member_id=member_id), session)).member
    cards = (
        await gw.call(gw.cards.ListCards, card_pb2.ListCardsRequest(member_id=member_id, page_size=20), session)
    ).cards
    entries = (
        await gw.call(gw.wallet.ListEntries, wallet_pb2.ListEntriesRequest(member_id=member_id, page_size=20), session)
    ).entries
    movements = (
        await gw.call(gw.points.ListHistory, points_pb2.ListHistoryRequest(member_id=member_id, page_size=20), session)
    ).movements
    return page(
        request,
        "member.html",
        {
            "member": member,
            "cards": [(c, chinese(card_pb2.CardState.Name(c.state), "")) for c in cards],
            "entries": [
                (e, chinese(wallet_pb2.EntryKind.Name(e.kind), wallet_pb2.EntryKind.Name(e.kind))) for e in entries
            ],
            "error": error,
            "may_freeze": is_hq_admin(me),
            "movements": [
                (m, chinese(points_pb2.MovementKind.Name(m.kind), points_pb2.MovementKind.Name(m.kind)))
                for m in movements
            ],
        },
        status,
    )


ROUTES = [
    Route("/members", search),
    Route("/members/{member_id}", profile, methods=["GET"]),
    Route("/members/{member_id}/cards", card_action, methods=["POST"]),
]
