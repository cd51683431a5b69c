"""组织与权限: the org tree under the person's node, its people (HQ creates them and
disables them) and the audit trail, each paged by the gateway's tokens."""

import json

from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from console.app import page
from console.client import Refusal
from console.pages.common import form_id, gateway, is_hq_admin, posted, refused_form, signed_in, token
from console.pages.forms import form_request_id
from console.pages.reports import nodes_under
from huiyuan.gateway.v1 import gateway_pb2 as pb

PERSON_ROLES = {
    "STORE_MANAGER": pb.PERSON_ROLE_STORE_MANAGER,
    "REGIONAL_MANAGER": pb.PERSON_ROLE_REGIONAL_MANAGER,
    "HQ_ADMIN": pb.PERSON_ROLE_HQ_ADMIN,
    "FINANCE": pb.PERSON_ROLE_FINANCE,
    "MARKETING": pb.PERSON_ROLE_MARKETING,
}


def role_of(person: pb.Person) -> str:
    return pb.PersonRole.Name(person.role).removeprefix("PERSON_ROLE_")


async def _people_page(request: Request, values: dict, fields: dict, error: str, status: int = 200) -> Response:
    me = await signed_in(request)
    gw = gateway(request)
    answer = await gw.call(
        gw.gateway.ListPersons,
        pb.ListPersonsRequest(page_size=50, page_token=request.query_params.get("page_token", "")[:1024]),
        token(request),
    )
    return page(
        request,
        "people.html",
        {
            "people": [(p, role_of(p)) for p in answer.persons],
            "next_token": answer.next_page_token,
            "may_create": is_hq_admin(me),
            "nodes": await nodes_under(request, me),
            "roles": list(PERSON_ROLES),
            "values": values,
            "fields": fields,
            "error": error,
            "new_id": form_id,  # a request id per form rendered: the form sent twice is done once
        },
        status,
    )


async def people(request: Request) -> Response:
    return await _people_page(request, {}, {}, "")


async def create_person(request: Request) -> Response:
    _, form = await posted(request)
    values = {k: str(form.get(k, "")).strip() for k in ("login", "name", "phone", "org_path", "role")}
    gw = gateway(request)
    ask = pb.CreatePersonRequest(
        request_id=form_request_id(form),
        person=pb.Person(
            login=values["login"],
            name=values["name"],
            phone=values["phone"],
            org_path=values["org_path"],
            role=PERSON_ROLES.get(values["role"], pb.PERSON_ROLE_UNSPECIFIED),
        ),
        initial_password=str(form.get("password", "")),
    )
    try:
        await gw.call(gw.gateway.CreatePerson, ask, token(request))
    except Refusal as refusal:
        shown = {name.removeprefix("person."): text for name, text in refusal.fields.items()}
        if "initial_password" in shown:
            shown["password"] = shown.pop("initial_password")
        return await _people_page(request, values, shown, refused_form(request, refusal, form), 400)
    return RedirectResponse("/org/people", status_code=303)


async def disable_person(request: Request) -> Response:
    _, form = await posted(request)
    gw = gateway(request)
    ask = pb.DisablePersonRequest(request_id=form_request_id(form), person_id=str(form.get("person_id", ""))[:40])
    try:
        await gw.call(gw.gateway.DisablePerson, ask, token(request))
    except Refusal as refusal:
        return await _people_page(request, {}, {}, refused_form(request, refusal, form, ask.person_id), 400)
    return RedirectResponse("/org/people", status_code=303)


async def audit(request: Request) -> Response:
    await signed_in(request)
    gw = gateway(request)
    answer = await gw.call(
        gw.gateway.ListAuditEntries,
        pb.ListAuditEntriesRequest(page_size=50, page_token=request.query_params.get("page_token", "")[:1024]),
        token(request),
    )
    entries = [
        (
            e,
            e.entry_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"),
            e.method.rsplit("/", 1)[-1],
            json.dumps(json_format.MessageToDict(e.change), ensure_ascii=False)[:300],
        )
        for e in answer.entries
    ]
    return page(request, "audit.html", {"entries": entries, "next_token": answer.next_page_token})


KEY_ROLES = {
    "TERMINAL": pb.ROLE_TERMINAL,
    "STORE_MANAGER": pb.ROLE_STORE_MANAGER,
    "REGIONAL_MANAGER": pb.ROLE_REGIONAL_MANAGER,
    "HQ_ADMIN": pb.ROLE_HQ_ADMIN,
}


async def _keys_page(
    request: Request, issued: str = "", error: str = "", fields=None, status: int = 200, shown_before: bool = False
) -> Response:
    me = await signed_in(request)
    gw = gateway(request)
    answer = await gw.call(
        gw.gateway.ListApiKeys,
        pb.ListApiKeysRequest(page_size=50, page_token=request.query_params.get("page_token", "")[:1024]),
        token(request),
    )
    keys = [(k, pb.Role.Name(k.role).removeprefix("ROLE_")) for k in answer.api_keys]
    return page(
        request,
        "keys.html",
        {
            "keys": keys,
            "next_token": answer.next_page_token,
            "may_issue": is_hq_admin(me),
            "nodes": await nodes_under(request, me),
            "roles": list(KEY_ROLES),
            "issued": issued,  # the new key, shown this once (the gateway keeps its hash only)
            "shown_before": shown_before,  # the same form sent again: the key was shown the first time
            "new_id": form_id,
            "error": error,
            "fields": fields or {},
        },
        status,
    )


async def keys(request: Request) -> Response:
    return await _keys_page(request)


async def issue_key(request: Request) -> Response:
    _, form = await posted(request)
    gw = gateway(request)
    ask = pb.IssueApiKeyRequest(
        request_id=form_request_id(form),
        org_path=str(form.get("org_path", "")),
        role=KEY_ROLES.get(str(form.get("role", "")), pb.ROLE_UNSPECIFIED),
        label=str(form.get("label", "")).strip(),
    )
    try:
        answer = await gw.call(gw.gateway.IssueApiKey, ask, token(request))
    except Refusal as refusal:
        return await _keys_page(request, error=refused_form(request, refusal, form), fields=refusal.fields, status=400)
    return await _keys_page(request, issued=answer.api_key, shown_before=answer.secret_shown_before)


async def revoke_key(request: Request) -> Response:
    _, form = await posted(request)
    gw = gateway(request)
    ask = pb.RevokeApiKeyRequest(request_id=form_request_id(form), key_id=str(form.get("key_id", ""))[:40])
    try:
        await gw.call(gw.gateway.RevokeApiKey, ask, token(request))
    except Refusal as refusal:
        return await _keys_page(request, error=refused_form(request, refusal, form, ask.key_id), status=400)
    return RedirectResponse("/org/keys", status_code=303)


async def tree(request: Request) -> Response:
    me = await signed_in(request)
    return page(request, "tree.html", {"nodes": await nodes_under(request, me)})


ROUTES = [
    Route("/org", tree, methods=["GET"]),
    Route("/org/people", people, methods=["GET"]),
    Route("/org/people", create_person, methods=["POST"]),
    Route("/org/people/disable", disable_person, methods=["POST"]),
    Route("/org/audit", audit, methods=["GET"]),
    Route("/org/keys", keys, methods=["GET"]),
    Route("/org/keys", issue_key, methods=["POST"]),
    Route("/org/keys/revoke", revoke_key, methods=["POST"]),
]
