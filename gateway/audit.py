"""Who changed what: the gateway's audit trail, in one table of its own.

Every change the gateway passes through to a service (gateway/passthrough.py: the
calls whose request has a request_id) and its own changes (RegisterMember,
IssueApiKey, RevokeApiKey, SettleOrder, BatchTopUp, IssueSegmentCoupons) are recorded
once they succeed: who (the key, its role and node, and the operator id the services'
trails name: "key:<id>" now, a person's id once people sign in), when, what the change
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

import functools
import hashlib
from datetime import datetime

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from sqlalchemy import or_, select

from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.runtime import pagination
from huiyuan.runtime.convert import from_timestamp, timestamp
from huiyuan.database.engines import dialect_name, under
from huiyuan.runtime.clock import utcnow
from huiyuan.database.direct import BUILT_ONCE
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.requests import check_org_path
from huiyuan.runtime.secrets import clear, plan
from huiyuan.database.upsert import insert_for
from gateway import auth
from gateway.auth import Caller
from gateway.storage import MAX_TARGET_ID, audit_entries

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
        if field.type == FieldDescriptor.TYPE_STRING and not field.is_repeated and (
                field.name.endswith("_id") or field.name in ID_FIELDS):
            return value
    if depth > 1:
        for field, value in message.ListFields():
            if field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated:
                found = first_id(value, depth - 1)
                if found:
                    return found
    return ""


@functools.cache
def _insert(dialect: str):
    """A replay records nothing more (its key, method and request_id are there)."""
    return insert_for(dialect)(audit_entries).on_conflict_do_nothing(
        index_elements=["key_id", "method", "request_id"]).execution_options(**{BUILT_ONCE: True})


def entry(caller: Caller, method: str, request: Message, target_id: str, target_path: str,
          now: datetime | None = None) -> dict:
    return {"entry_id": new_id("ae"), "entry_time": now or utcnow(), "key_id": caller.key_id,
            "role": caller.role.value, "org_path": caller.org_path, "operator_id": caller.actor.operator_id,
            "method": method if method.startswith("/") else GATEWAY + method,
            "request_id": request.request_id, "target_id": (target_id or "")[:MAX_TARGET_ID],
            "target_path": target_path or caller.org_path, "change": change_of(request)}


async def record_in(db, caller: Caller, method: str, request: Message, target_id: str, target_path: str) -> None:
    """Record a change in the transaction that makes it (db: Database.transaction()'s)."""
    await db.execute(_insert(dialect_name(db)), entry(caller, method, request, target_id, target_path))


async def record(direct, caller: Caller, method: str, request: Message, target_id: str, target_path: str) -> None:
    """Record a change a service has made (it answered OK)."""
    async with direct.transaction() as db:
        await record_in(db, caller, method, request, target_id, target_path)


async def list_entries(direct, caller: Caller, request: pb.ListAuditEntriesRequest) -> pb.ListAuditEntriesResponse:
    t = audit_entries
    v = Violations()
    node = check_org_path(v, request.org_path, "org_path", required=False) or caller.org_path
    start = from_timestamp(request.start_time) if request.HasField("start_time") else None
    end = from_timestamp(request.end_time) if request.HasField("end_time") else None
    v.check(start is None or end is None or start < end, "end_time", "PERIOD_INVALID", "end_time is after start_time")
    v.check(len(request.key_id) <= 40 and len(request.method) <= 128 and len(request.target_id) <= MAX_TARGET_ID, "key_id",
            "TOO_LONG", "key_id, method and target_id are ids and names, not texts")
    size = pagination.page_size(request.page_size, 50, 500, v)
    filters = [node, request.key_id, request.method, request.target_id,
               start.isoformat() if start else "", end.isoformat() if end else ""]
    fingerprint = pagination.fingerprint(*filters)
    before = pagination.decode(request.page_token, fingerprint, v)
    v.raise_if_any()
    if not caller.covers(node):
        raise auth.denied()
    query = select(t).where(or_(under(t.c.target_path, node), under(t.c.org_path, node)))
    if request.key_id:
        query = query.where(t.c.key_id == request.key_id)
    if request.method:
        query = query.where(t.c.method == request.method if request.method.startswith("/")
                            else t.c.method.endswith("/" + request.method))
    if request.target_id:
        query = query.where(t.c.target_id == request.target_id)
    if start:
        query = query.where(t.c.entry_time >= start)
    if end:
        query = query.where(t.c.entry_time < end)
    if before:
        query = query.where(t.c.entry_id < before[0])
    async with direct.reading() as db:
        rows = (await db.execute(query.order_by(t.c.entry_id.desc()).limit(size + 1))).all()
    page, token = pagination.next_page(rows, size, lambda row: [row.entry_id], fingerprint)
    return pb.ListAuditEntriesResponse(entries=[_entry(row) for row in page], next_page_token=token)


def _entry(row) -> pb.AuditEntry:
    found = pb.AuditEntry(
        entry_id=row.entry_id, entry_time=timestamp(row.entry_time), key_id=row.key_id,
        role=pb.Role.Value(f"ROLE_{row.role}"), org_path=row.org_path, operator_id=row.operator_id,
        method=row.method, request_id=row.request_id, target_id=row.target_id, target_path=row.target_path)
    found.change.update(row.change)
    return found
