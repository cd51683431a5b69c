"""A service's call passed through (servicers/passthrough.py): admitted within the
caller's scope (use_cases/scopes.py), stamped with the caller, forwarded, what another
service must learn of the answer told (Route.then), and the change recorded in the
audit trail (use_cases/audit.py)."""

from collections.abc import Callable

from gateway.domain.callers import Caller
from gateway.domain.limits import TokenBuckets
from gateway.domain.scopes import Route, named
from gateway.use_cases import audit, scopes
from gateway.use_cases.relay import Services, actor_of, derived_id, relayed
from huiyuan.database import Database
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.requests import check_request_id

Deadline = Callable[[], float | None]  # what the call may take, asked when it is made


async def _admitted(services: Services, lookups: TokenBuckets, caller: Caller, method: str, route: Route, request):
    """Checks the scope and rewrites the request for the service; returns the service's
    method to call with it and the node it acts on."""
    name = method.rpartition("/")[2]
    if route.limited:
        lookups.take(caller.key_id)
    node = await scopes.node_acted_on(caller, route, request, services)
    if route.payer:
        await scopes.check_payer(caller, route, request, name, services, lookups)
    fields = request.DESCRIPTOR.fields_by_name
    if "request_id" in fields:  # as the service would check it: the trail keeps the caller's
        v = Violations()
        check_request_id(v, request.request_id)
        v.raise_if_any()
        request.request_id = derived_id(caller.key_id, request.request_id, name)
    if "actor" in fields:  # the audit trail names the credential, not what the client claims
        request.actor.CopyFrom(actor_of(caller))
    return getattr(getattr(services, route.service), name), node


async def forward(
    services: Services,
    database: Database,
    lookups: TokenBuckets,
    caller: Caller,
    method: str,
    route: Route,
    request,
    asked,
    deadline: Deadline,
):
    """The service's answer; asked: the request as its caller sent it, for the audit
    trail (None: the method changes nothing)."""
    call, node = await _admitted(services, lookups, caller, method, route, request)
    async with relayed(route.service):  # a file imported with a long deadline keeps it
        answer = await call(request, timeout=deadline())
    if route.then is not None:
        await route.then(services, caller, request, answer)
    if asked is not None:  # done: who changed what
        target = named(request, route.by_id) if route.by_id is not None else audit.first_id(answer)
        await audit.record(database, caller, method, asked, target, node)
    return answer


async def stream(
    services: Services, lookups: TokenBuckets, caller: Caller, method: str, route: Route, request, deadline: Deadline
):
    """The service's answer, chunk by chunk (an export)."""
    call, _ = await _admitted(services, lookups, caller, method, route, request)
    async with relayed(route.service):
        async for chunk in call(request, timeout=deadline()):
            yield chunk
