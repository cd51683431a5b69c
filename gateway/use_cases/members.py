"""A member at the till: found by card, phone or QR code with what they hold (stored
value, points, coupons and count cards, in one answer), and registered at a store with
a card and the new member's gifts."""

import asyncio
import logging

from gateway.domain.callers import Caller, Role
from gateway.use_cases import audit
from gateway.use_cases.relay import actor_of, derived_id, relayed
from huiyuan.campaign.v1 import campaign_pb2
from huiyuan.database import Database
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import card_pb2, member_pb2
from huiyuan.points.v1 import points_pb2
from huiyuan.runtime.errors import DomainError, Internal, Unavailable
from huiyuan.wallet.v1 import count_card_pb2, wallet_pb2

log = logging.getLogger("huiyuan.gateway")


async def look_up(services, caller: Caller, key: str, value: str) -> pb.LookupMemberResponse:
    """The member a card number, phone or QR token (key) names, and what they hold."""
    async with relayed("member"):
        found = await services.member.LookupMember(
            member_pb2.LookupMemberRequest(
                purpose=member_pb2.LOOKUP_PURPOSE_PAYMENT,
                **{key: value},
                # a till sees what it needs to serve the member; its manager and the offices, all
                view=member_pb2.MEMBER_VIEW_COUNTER if caller.role == Role.TERMINAL else member_pb2.MEMBER_VIEW_FULL,
            )
        )
    member_id = found.member.member_id
    async with relayed("wallet, points or campaign"):
        stored, points, coupons, count_cards = await asyncio.gather(
            services.wallet.GetBalance(wallet_pb2.GetBalanceRequest(member_id=member_id)),
            services.points.GetBalance(points_pb2.GetBalanceRequest(member_id=member_id)),
            services.campaign.ListMemberCoupons(
                campaign_pb2.ListMemberCouponsRequest(  # a till's screen: one page
                    member_id=member_id,
                    state=campaign_pb2.COUPON_STATE_AVAILABLE,
                    # at a store, those usable there; above it, those usable somewhere in its scope
                    **(
                        {"usable_at_store_path": caller.store_path}
                        if caller.store_path
                        else {"usable_under_org_path": caller.org_path}
                    ),
                )
            ),
            _usable_count_cards(services, member_id, caller.store_path),
        )
    return pb.LookupMemberResponse(
        member=found.member,
        card=found.presented_card if found.HasField("presented_card") else None,
        tier=found.tier if found.HasField("tier") else None,
        stored_value_available_fen=stored.balance.available_fen,
        points_available=points.balance.available_points,
        usable_coupon_codes=[c.coupon_code for c in coupons.coupons],
        usable_coupons=coupons.coupons,
        usable_count_cards=count_cards,
    )


async def _usable_count_cards(services, member_id: str, store_path: str) -> list:
    """A member's count cards usable at the store now; above a store, none is (a back
    office reads a member's cards with CountCardService.ListCountCards)."""
    if not store_path:
        return []
    request = count_card_pb2.ListCountCardsRequest(
        member_id=member_id, usable_at_store_path=store_path, page_size=500
    )  # the most the wallet gives
    found = []
    while True:  # every one, page after page (one page but for a rare member)
        page = await services.count_cards.ListCountCards(request)
        found += page.cards
        if not page.next_page_token:
            return found
        request.page_token = page.next_page_token


async def register(
    services, database: Database, caller: Caller, request: pb.RegisterMemberRequest
) -> pb.RegisterMemberResponse:
    async with relayed("member"):
        registered = await services.member.RegisterMember(
            member_pb2.RegisterMemberRequest(
                request_id=derived_id(caller.key_id, request.request_id, "register"),
                member=request.member,
                channel=member_pb2.REGISTRATION_CHANNEL_STORE,
                actor=actor_of(caller),
                cashier_id=request.cashier_id,
            )
        )
        card = None
        if request.card_type_id:
            card = (
                await services.cards.IssueCard(
                    card_pb2.IssueCardRequest(
                        request_id=derived_id(caller.key_id, request.request_id, "card"),
                        member_id=registered.member.member_id,
                        card_type_id=request.card_type_id,
                        card_number=request.card_number,
                        actor=actor_of(caller),
                    )
                )
            ).card
    member = registered.member
    try:
        async with relayed("campaign"):  # after the registration: a retry registers nobody twice, then gives
            gifts = (
                await services.campaign.IssueNewMemberGifts(
                    campaign_pb2.IssueNewMemberGiftsRequest(
                        request_id=derived_id(caller.key_id, request.request_id, "gifts"),
                        member_id=member.member_id,
                        home_store_path=member.home_store_path,
                        tags=member.tags,
                        actor=actor_of(caller),
                    )
                )
            ).coupons
    except (Unavailable, Internal):  # the same request again gives them
        raise
    except DomainError as refusal:  # a budget spent meanwhile: the member is registered, without that gift
        log.warning("new-member gifts refused", extra={"member_id": member.member_id, "reason": refusal.reason})
        gifts = []
    await audit.record(database, caller, "RegisterMember", request, member.member_id, member.home_store_path)
    return pb.RegisterMemberResponse(member=member, card=card, gift_coupons=gifts)
