"""Who changed what: the gateway's audit trail, in one table of its own.

Every change the gateway passes through to a service (servicers/passthrough.py: the
calls whose request has a request_id) and its own changes (RegisterMember,
IssueApiKey, RevokeApiKey, SettleOrder, BatchTopUp, IssueSegmentCoupons) are recorded
once they succeed: who (the key, its role and node, and the operator id the services'
trails name: "key:<id>", or "person:<id>" for a person's session), when, what the change
acted on (target_id, and target_path: its org node, for scope) and what was asked (the
request as JSON, without its secrets, request_id and actor; a file as its size and
SHA-256). What changed is what was asked, with its update mask where it has one: the
services keep what things are now, this says who asked for each change.

When: in the transaction of the change where the gateway makes it (a key issued or
revoked); right after the service answered OK where a service makes it. A gateway that
dies between the two loses the entry of a change its caller never heard answered: the
caller's retry (the same request_id: the service replays) records it then. An entry
is recorded once per key, call and request_id, however often the request is sent.

Money moved at a till (Checkout, TopUp, Refund) is not recorded here: its orders and
the services' ledgers name the key that moved it, and a checkout should not pay for a
second write.

Read (ListAuditEntries) by the back offices within their scope: an entry is seen from
over the node it acted on, or over the node of the key that made it.
"""

import hashlib
from datetime import datetime

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from gateway.domain.callers import Caller, denied
from gateway.storage import audit as trail
from gateway.storage.audit import MAX_TARGET_ID
from huiyuan.database import Database, Transaction
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.runtime import pagination
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.convert import timestamp
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.secrets import clear, plan

GATEWAY = "/huiyuan.gateway.v1.GatewayService/"


# Fields that say how or by whom a change was asked, not what: the request_id and actor
# (the entry has its own), what the member presented to pay (a card number: not what
# changed; its PIN or QR token are secrets anyway).
NOT_THE_CHANGE = ("request_id", "actor", "credential", "proof")


def change_of(request: Message) -> dict:
    """What was asked, as JSON: the request without its secrets, and without what says
    how or by whom (NOT_THE_CHANGE); a file (a bytes field) as its size and SHA-256."""
    copy = type(request)()
    copy.CopyFrom(request)
    clear(copy, plan(request.DESCRIPTOR))
    files = {}
    for field, value in copy.ListFields():
        if field.type == FieldDescriptor.TYPE_BYTES and not field.is_repeated:
            files[field.name] = {"bytes": len(value), "sha256": hashlib.sha256(value).hexdigest()}
    for name in (*NOT_THE_CHANGE, *files):
        if name in copy.DESCRIPTOR.fields_by_name:
            copy.ClearField(name)
    return {**json_format.MessageToDict(copy, preserving_proto_field_name=True), **files}


ID_FIELDS = ("card_number", "path")


def first_id(message: Message, depth: int = 2) -> str:
    """The first id an answer carries (a new campaign's campaign_id, a node's path), its
    own fields first, then its messages'."""
    for field, value in message.ListFields():
        if (
            field.type == FieldDescriptor.TYPE_STRING
            and not field.is_repeated
            and (field.name.endswith("_id") or field.name in ID_FIELDS)
        ):
            return value
    if depth > 1:
        for field, value in message.ListFields():
            if field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated:
                found = first_id(value, depth - 1)
                if found:
                    return found
    return ""


def entry(
    caller: Caller, method: str, request: Message, target_id: str, target_path: str, now: datetime | None = None
) -> dict:
    return {
        "entry_id": new_id("ae"),
        "entry_time": now or utcnow(),
        "key_id": caller.key_id,
        "role": caller.role.value,
        "org_path": caller.org_path,
        "operator_id": caller.operator_id,
        "method": method if method.startswith("/") else GATEWAY + method,
        "request_id": _kept_id(request.request_id),
        "target_id": (target_id or "")[:MAX_TARGET_ID],
        "target_path": target_path or caller.org_path,
        "change": change_of(request),
    }


def _kept_id(request_id: str) -> str:
    """The request_id as the trail keeps it: a service took the gateway's id derived from
    it, whatever its length; one longer than the column is kept as its digest."""
    if len(request_id) <= 64:
        return request_id
    return "sha256:" + hashlib.sha256(request_id.encode()).hexdigest()[:57]


async def record_in(
    tx: Transaction, caller: Caller, method: str, request: Message, target_id: str, target_path: str
) -> None:
    """Record a change in the transaction that makes it."""
    await trail.add(tx, entry(caller, method, request, target_id, target_path))


async def record(
    database: Database, caller: Caller, method: str, request: Message, target_id: str, target_path: str
) -> None:
    """Record a change a service has made (it answered OK)."""
    async with database.transaction() as tx:
        await record_in(tx, caller, method, request, target_id, target_path)


async def list_entries(
    database: Database,
    caller: Caller,
    request: pb.ListAuditEntriesRequest,
    node: str,
    start,
    end,
    size: int,
    before,
    fingerprint: str,
) -> pb.ListAuditEntriesResponse:
    """The entries seen from over node (checked: servicers/checks.py), a page of them."""
    if not caller.covers(node):
        raise denied()
    async with database.reading() as tx:
        rows = await trail.page(
            tx,
            node,
            key_id=request.key_id,
            method=request.method,
            target_id=request.target_id,
            start=start,
            end=end,
            before=before[0] if before else None,
            limit=size + 1,
        )
    page, token = pagination.next_page(rows, size, lambda row: [row.entry_id], fingerprint)
    return pb.ListAuditEntriesResponse(entries=[_entry(row) for row in page], next_page_token=token)


def _entry(row) -> pb.AuditEntry:
    found = pb.AuditEntry(
        entry_id=row.entry_id,
        entry_time=timestamp(row.entry_time),
        key_id=row.key_id,
        role=pb.Role.Value(f"ROLE_{row.role}"),
        org_path=row.org_path,
        operator_id=row.operator_id,
        method=row.method,
        request_id=row.request_id,
        target_id=row.target_id,
        target_path=row.target_path,
        operator_name=row.operator_name or "",
    )
    found.change.update(row.change)
    return found
