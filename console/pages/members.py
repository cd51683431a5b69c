"""会员: search by phone, card or name under the person's node; a member's profile, cards,
stored value statement and points history (read). Every read goes through the gateway's
scope: a member outside the person's node is refused there, whatever the URL."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console.app import page
from console.client import Refusal
from console.pages.common import gateway, signed_in, token
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


async def profile(request: Request) -> Response:
    await signed_in(request)
    member_id = request.path_params["member_id"][:40]
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
            "movements": [
                (m, chinese(points_pb2.MovementKind.Name(m.kind), points_pb2.MovementKind.Name(m.kind)))
                for m in movements
            ],
        },
    )


ROUTES = [Route("/members", search), Route("/members/{member_id}", profile)]
