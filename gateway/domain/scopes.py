"""Scope rules of the services' calls passed through the gateway (servicers/passthrough.py).

Scope, by the kind of call:
- WRITE: the node the request acts on lies under the caller's node;
- READ: the object lies on the caller's line, under its node or above it (an HQ
  campaign applies in every region, so a regional manager may read it);
- LIST: the filter node lies under the caller's node; left empty, it is the caller's;
- SERVE: a member's card, at any till of the chain. A member belongs to the chain,
  not a store: the card reported lost or replaced at any store is theirs to ask for;
- AT_STORE: done at a store (a gift handed over, a count card sold or punched): the
  store lies under the caller's node, left empty it is the caller's own, and what the
  request names by id is on the caller's line (an HQ gift is offered in every store);
- OWN_NODE: done at the caller's own node, which the gateway stamps as the actor (a
  file of members imported there); the request names no other node.
An object named by id is fetched first for its node; off the caller's line it is
NOT_FOUND as a missing one is, so scope never tells what exists elsewhere. A member
is read from the offices over their home store or over the node that registered them,
as ListMembers' org filter selects them; changed only from over their home store. A
card is read where its member is (ById.via).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from gateway.domain.callers import Caller, Role
from huiyuan.runtime.requests import on_line

WRITE, READ, LIST, SERVE, AT_STORE, OWN_NODE = "WRITE", "READ", "LIST", "SERVE", "AT_STORE", "OWN_NODE"
EVERY_ROLE = frozenset(Role)
CONFIGURERS = frozenset({Role.HQ_ADMIN, Role.REGIONAL_MANAGER})
HQ_ONLY = frozenset({Role.HQ_ADMIN})
CHAIN = "hq"  # the node of what belongs to the whole chain (tiers)


@dataclass(frozen=True)
class ById:
    """How to find the node of an object a request names by id."""

    stub: str  # the attribute of gateway.use_cases.relay.Services holding the Get method
    method: str  # the Get method's full name, taking id_field
    id_field: str
    path: str  # the node in the Get response ("" there: the whole chain's)
    not_found: str  # the service's reason for a missing one
    in_request: str = ""  # where the request names it (dotted), when not at id_field
    # A second node in the Get response: the offices over it may read it too; where the
    # first is empty, the object is this node's (a member imported by a region, no home
    # store yet, is that region's to read and to give one).
    read_from: str = ""
    # An object with no node of its own: (the field in the Get response naming its
    # owner, how to find the owner's node). A card is its member's.
    via: "tuple[str, ById] | None" = None


@dataclass(frozen=True)
class Route:
    service: str  # the attribute of gateway.use_cases.relay.Services holding the stub
    kind: str
    roles: frozenset[Role]
    path: str = ""  # the request field (dotted) holding the node; "" = the whole chain; with by_id, a node it sets
    by_id: ById | None = None
    # What another service must learn of the answer: then(services, caller, request,
    # answer), awaited before the answer goes back, so that a failure there leaves the
    # caller to retry the same request (a replay, then this again).
    then: "Callable[..., Awaitable[None]] | None" = None
    # The request field naming a member it serves, who must exist; at any store, as a
    # member belongs to the chain (a count card sold to them). Missing: MEMBER_NOT_FOUND.
    member: str = ""
    # The request field listing members it gives something to (coupons): each must exist
    # and be the caller's, registered or homed under its node, as ListMembers' org filter
    # selects them. One that is not: MEMBER_NOT_FOUND, as for one missing.
    members: str = ""
    # A call that spends a member's balances (points on a gift, a count card's uses):
    # whose they are - the request field naming the member, or (an object the request
    # names by id, the field of it naming its member). What the member presents (the
    # request's credential) is checked for them and cleared: the service never sees it.
    payer: "str | tuple[ById, str]" = ""
    # Each call takes a token of the caller's lookups (a PIN set or tried: domain/limits.py).
    limited: bool = False


_MEMBER, _CARDS = "/huiyuan.member.v1.MemberService/", "/huiyuan.member.v1.CardService/"
_WALLET, _POINTS = "/huiyuan.wallet.v1.WalletService/", "/huiyuan.points.v1.PointsService/"
_CAMPAIGN = "/huiyuan.campaign.v1.CampaignService/"
_COUNT_CARDS = "/huiyuan.wallet.v1.CountCardService/"
_PINS = "/huiyuan.member.v1.PaymentPinService/"
CAMPAIGN_BY_ID = ById("campaign", f"{_CAMPAIGN}GetCampaign", "campaign_id", "campaign.org_path", "CAMPAIGN_NOT_FOUND")
TEMPLATE_BY_ID = ById(
    "campaign", f"{_CAMPAIGN}GetCouponTemplate", "template_id", "template.org_path", "TEMPLATE_NOT_FOUND"
)
RULE_BY_ID = ById("points", f"{_POINTS}GetRule", "rule_id", "rule.org_path", "RULE_NOT_FOUND")
GIFT_BY_ID = ById("points", f"{_POINTS}GetGift", "gift_id", "gift.org_path", "GIFT_NOT_FOUND")
PACKAGE_BY_ID = ById("wallet", f"{_WALLET}GetTopUpPackage", "package_id", "package.org_path", "PACKAGE_NOT_FOUND")
CARD_TYPE_BY_ID = ById("cards", f"{_CARDS}GetCardType", "card_type_id", "card_type.org_path", "CARD_TYPE_NOT_FOUND")
# A top-up is its store's: the money goes back from that store's till.
TOP_UP_BY_ID = ById("wallet", f"{_WALLET}GetTopUp", "top_up_id", "top_up.store_path", "TOP_UP_NOT_FOUND")
# A member is its home store's: that store and the nodes above it may correct or tag them,
# and adjust their points. The node that registered them (开卡门店) reads them too. A
# request may name them inside the member it carries.
MEMBER_BY_ID = ById(
    "member",
    f"{_MEMBER}GetMember",
    "member_id",
    "member.home_store_path",
    "MEMBER_NOT_FOUND",
    read_from="member.registered_org_path",
)
MEMBER_IN_REQUEST = replace(MEMBER_BY_ID, in_request="member.member_id")
MEMBER_CONTACTED = replace(MEMBER_BY_ID, in_request="contact.member_id")
CARD_BY_NUMBER = ById(
    "cards", f"{_CARDS}GetCard", "card_number", "", "CARD_NOT_FOUND", via=("card.member_id", MEMBER_BY_ID)
)
# A count card plan is its node's; a count card is usable (and read) under its plan's
# node, and refunded by the store that sold it, or above; a use is its store's.
PLAN_BY_ID = ById(
    "count_cards", f"{_COUNT_CARDS}GetCountCardPlan", "plan_id", "plan.org_path", "COUNT_CARD_PLAN_NOT_FOUND"
)
COUNT_CARD_BY_ID = ById(
    "count_cards", f"{_COUNT_CARDS}GetCountCard", "card_id", "card.org_path", "COUNT_CARD_NOT_FOUND"
)
COUNT_CARD_SOLD_BY_ID = replace(COUNT_CARD_BY_ID, path="card.sold_store_path")
COUNT_CARD_USE_BY_ID = ById(
    "count_cards", f"{_COUNT_CARDS}GetCountCardUse", "use_id", "use.store_path", "COUNT_CARD_USE_NOT_FOUND"
)

# Issue 40, item 5: a tag rule and a saved segment are their owner node's. A segment's
# members (count, list, export) are read only from over its owner, as a WRITE is
# checked: an office above the owner reads them, one below does not.
_SEGMENTS = "/huiyuan.member.v1.SegmentService/"
TAG_RULE_BY_ID = ById("segments", f"{_SEGMENTS}GetTagRule", "tag_rule_id", "tag_rule.org_path", "TAG_RULE_NOT_FOUND")
SEGMENT_BY_ID = ById("segments", f"{_SEGMENTS}GetSegment", "segment_id", "segment.org_path", "SEGMENT_NOT_FOUND")
SEGMENT_IN_REQUEST = replace(SEGMENT_BY_ID, in_request="segment.segment_id")

# A region issues its own templates' coupons, to members of its own; HQ's only HQ.
ISSUE_COUPONS = Route("campaign", WRITE, CONFIGURERS, by_id=TEMPLATE_BY_ID, members="member_ids")


def get_field(message: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        message = getattr(message, name)
    return message


def set_field(message: Any, dotted: str, value: Any) -> None:
    *parents, name = dotted.split(".")
    for parent in parents:
        message = getattr(message, parent)
    setattr(message, name, value)


def named(request: Any, b: ById) -> str:
    """The id of the object the request names."""
    return str(get_field(request, b.in_request or b.id_field))


def node_of(b: ById, found: Any) -> str:
    """The node an object belongs to; found: what b.method answers for it."""
    return get_field(found, b.path) or (b.read_from and get_field(found, b.read_from)) or CHAIN


def sees(caller: Caller, b: ById, found: Any) -> bool:
    """May the caller read this object: it lies on the caller's line (at, above or below
    the caller's node), or its read_from node is under the caller's."""
    return on_line(node_of(b, found), caller.org_path) or bool(
        b.read_from and caller.covers(get_field(found, b.read_from))
    )
