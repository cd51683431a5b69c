"""The scope checks of a call passed through (servicers/passthrough.py), with what they
ask the services: the node of an object named by id, the members a call serves, what a
member presents to pay. The rules are domain/scopes.py's."""

import functools
from dataclasses import replace

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass

from gateway.domain.callers import Caller, denied
from gateway.domain.limits import TokenBuckets
from gateway.domain.scopes import (
    AT_STORE,
    CHAIN,
    LIST,
    MEMBER_BY_ID,
    OWN_NODE,
    READ,
    SERVE,
    WRITE,
    ById,
    Route,
    get_field,
    named,
    node_of,
    sees,
    set_field,
)
from gateway.use_cases.relay import derived_id, relayed
from huiyuan.member.v1 import member_pb2, payment_pin_pb2
from huiyuan.runtime.errors import DomainError, NotFound
from huiyuan.runtime.requests import on_line


@functools.cache
def request_type(method: str):
    """The request class of a full method name, from the descriptor pool."""
    service, _, name = method[1:].partition("/")
    return GetMessageClass(descriptor_pool.Default().FindServiceByName(service).methods_by_name[name].input_type)


async def node_acted_on(caller: Caller, route: Route, request, services) -> str:
    """The scope check; the node the request acts on (the caller's, for what is done
    at any store or at the caller's own node). Fills in the node a request left empty
    where the caller's is meant."""
    if route.kind in (SERVE, OWN_NODE):
        return caller.org_path
    if route.kind == AT_STORE:
        if not get_field(request, route.path):
            set_field(request, route.path, caller.store_path)
        if not caller.covers(get_field(request, route.path) or CHAIN):
            raise denied()
        if route.by_id is not None:
            await check_named(caller, route, services, named(request, route.by_id))
        if route.member:
            await check_member(services, get_field(request, route.member))
        return get_field(request, route.path)
    if route.by_id is not None:
        node = await check_named(caller, route, services, named(request, route.by_id))
        if route.path and get_field(request, route.path) and not caller.covers(get_field(request, route.path)):
            raise denied()  # a node the change would set, beside the object's own
        if route.members:
            await check_members(caller, services, get_field(request, route.members))
        return node
    if route.kind == LIST and not get_field(request, route.path):
        set_field(request, route.path, caller.org_path)
    path = get_field(request, route.path) if route.path else CHAIN
    allowed = on_line(path, caller.org_path) if route.kind == READ else caller.covers(path)
    if not allowed:
        raise denied()
    return path


async def check_payer(caller: Caller, route: Route, request, name: str, services, lookups: TokenBuckets) -> None:
    """What the member presents to spend (request.credential) is theirs, checked by
    the member service (a PIN tried once for this request), then cleared."""
    if isinstance(route.payer, str):
        member_id = get_field(request, route.payer)
    else:
        b, member_field = route.payer
        found = await fetched(services, b, named(request, b), NotFound(b.not_found, "Not found.", "不存在。"))
        member_id = get_field(found, member_field)
    if request.credential.WhichOneof("proof") == "pin":
        lookups.take(caller.key_id)
    async with relayed("member"):
        await services.pins.VerifyPaymentCredential(
            payment_pin_pb2.VerifyPaymentCredentialRequest(
                request_id=derived_id(caller.key_id, request.request_id, f"{name}:credential"),
                member_id=member_id,
                credential=request.credential,
            )
        )
    request.ClearField("credential")


async def check_member(services, member_id: str) -> None:
    """The member a request serves exists (no scope: any store serves any member)."""
    await fetched(services, MEMBER_BY_ID, member_id, NotFound("MEMBER_NOT_FOUND", "No such member.", "会员不存在。"))


FIND_MEMBERS_AT_ONCE = 1_000  # member.v1 FindMembers' most keys a call


async def check_members(caller: Caller, services, member_ids) -> None:
    """Every member named exists and is the caller's (registered or homed under its node)."""
    wanted = list(dict.fromkeys(member_ids))
    for start in range(0, len(wanted), FIND_MEMBERS_AT_ONCE):
        page = wanted[start : start + FIND_MEMBERS_AT_ONCE]
        async with relayed("member"):
            found = (await services.member.FindMembers(member_pb2.FindMembersRequest(member_ids=page))).members
        for member_id in page:
            member = found.get(member_id)
            if member is None or not (
                caller.covers(member.home_store_path) or caller.covers(member.registered_org_path)
            ):
                raise NotFound(
                    "MEMBER_NOT_FOUND", "No such member in your scope.", "您的范围内没有该会员。", member_id=member_id
                )


async def fetched(services, b: ById, object_id: str, not_found: NotFound):
    """What b.method answers for the object; its service's NOT_FOUND raised as not_found."""
    try:
        async with relayed(b.stub):
            return await getattr(getattr(services, b.stub), b.method.rpartition("/")[2])(
                request_type(b.method)(**{b.id_field: object_id})
            )
    except DomainError as error:
        if error.code == grpc.StatusCode.NOT_FOUND:
            raise not_found from None
        raise


async def check_named(caller: Caller, route: Route, services, object_id: str) -> str:
    """The scope check of an object named by id (route.by_id), fetched from its service
    for its node, which it answers. Missing, or off the caller's line: one NOT_FOUND,
    word for word. On the line but above the caller's node (an HQ campaign, seen from a
    region), or seen only from its read_from node (a member registered by the caller's
    store, homed in another): readable, and for a WRITE, denied."""
    b = route.by_id
    not_found = NotFound(b.not_found, "Not found in your scope.", "您的范围内不存在。")
    found = await fetched(services, b, object_id, not_found)
    if b.via is not None:  # its owner's scope is its scope; off it, the object itself is not found
        owner_field, owner = b.via
        try:
            return await check_named(caller, replace(route, by_id=owner), services, get_field(found, owner_field))
        except NotFound:
            raise not_found from None
    path = node_of(b, found)
    if not sees(caller, b, found):
        raise not_found
    if route.kind == WRITE and not caller.covers(path):
        raise denied()  # seen from below (an HQ campaign), changed only from above
    return path
