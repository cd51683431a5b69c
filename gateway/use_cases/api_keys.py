"""Credentials: the caller a key names, and keys issued and revoked by HQ."""

import secrets

from gateway.domain.callers import ALL_ROLES, Caller, Role, binding_refusal, denied, digest
from gateway.storage import api_keys
from gateway.use_cases import audit
from gateway.use_cases.relay import relayed
from huiyuan.database import Database, Idempotency, Transaction
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import org_pb2
from huiyuan.runtime import pagination
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.convert import enum_name, timestamp
from huiyuan.runtime.errors import DomainError, NotFound, Unauthenticated
from huiyuan.runtime.ids import new_id


def new_key() -> str:
    return "hy_" + secrets.token_urlsafe(32)


async def caller_of(database: Database, key: str, roles: set[Role] = ALL_ROLES) -> Caller:
    """The caller a key names, or UNAUTHENTICATED; PERMISSION_DENIED for a role the call
    does not admit. Every call reads its key: a revoked key stops at once."""
    row = await api_keys.by_hash(database, digest(key))
    if row is None or row.revoke_time is not None:
        raise Unauthenticated("CREDENTIAL_INVALID", "The credential is unknown or revoked.", "凭证无效或已吊销。")
    caller = Caller(row.key_id, row.org_path, Role(row.role))
    if caller.role not in roles:
        raise denied()
    return caller


async def issue(tx: Transaction, *, key_id: str, org_path: str, role: Role, label: str, now) -> str:
    key = new_key()
    await api_keys.add(
        tx, key_id=key_id, key_hash=digest(key), org_path=org_path, role=role.value, label=label, now=now
    )
    return key


async def revoke(tx: Transaction, key_id: str, now):
    """(when the key was revoked, the node it was bound to)."""
    row = await api_keys.revocation(tx, key_id)
    if row is None:
        raise NotFound("KEY_NOT_FOUND", "No such key.", "凭证不存在。", key_id=key_id)
    if row.revoke_time is not None:
        return row.revoke_time, row.org_path
    await api_keys.revoke(tx, key_id, now)
    return now, row.org_path


async def node_kind(services, path: str) -> str | None:
    """The kind of the org node at path (HQ, REGION, STORE, TERMINAL), None if none is."""
    try:
        async with relayed("member"):
            node = (await services.org.GetOrgNode(org_pb2.GetOrgNodeRequest(path=path))).org_node
    except DomainError as error:
        if error.reason == "ORG_NODE_NOT_FOUND":
            return None
        raise
    return enum_name(org_pb2.OrgNodeKind, "ORG_NODE_KIND", node.kind)


async def issue_key(
    services, idempotency: Idempotency, caller: Caller, request: pb.IssueApiKeyRequest, role: Role
) -> pb.IssueApiKeyResponse:
    """IssueApiKey: a key bound to a node that is there, of a kind the role works at."""
    refusal = binding_refusal(request.org_path, role, await node_kind(services, request.org_path))
    if refusal is not None:
        raise refusal

    async def work(tx):
        key_id = new_id("k")
        key = await issue(
            tx, key_id=key_id, org_path=request.org_path, role=role, label=request.label.strip(), now=utcnow()
        )
        await audit.record_in(tx, caller, "IssueApiKey", request, key_id, request.org_path)
        return pb.IssueApiKeyResponse(key_id=key_id, api_key=key)

    answer = await idempotency.run(request, pb.IssueApiKeyResponse, work)
    # kept without the key (huiyuan/runtime/secrets.py): a replay answers without it
    answer.secret_shown_before = not answer.api_key
    return answer


async def revoke_key(
    idempotency: Idempotency, caller: Caller, request: pb.RevokeApiKeyRequest
) -> pb.RevokeApiKeyResponse:
    async def work(tx):
        revoked, org_path = await revoke(tx, request.key_id, utcnow())
        await audit.record_in(tx, caller, "RevokeApiKey", request, request.key_id, org_path)
        return pb.RevokeApiKeyResponse(revoke_time=timestamp(revoked))

    return await idempotency.run(request, pb.RevokeApiKeyResponse, work)


async def list_keys(
    database: Database, caller: Caller, node: str, size: int, after, fingerprint: str
) -> pb.ListApiKeysResponse:
    """ListApiKeys: the keys under node (checked to be the caller's), a page of them."""
    if not caller.covers(node):
        raise denied()
    async with database.reading() as tx:
        rows = await api_keys.page(tx, node, after[0] if after else None, size + 1)
    page, token = pagination.next_page(rows, size, lambda row: [row.key_id], fingerprint)
    return pb.ListApiKeysResponse(
        api_keys=[
            pb.ApiKey(
                key_id=row.key_id,
                org_path=row.org_path,
                role=pb.Role.Value(f"ROLE_{row.role}"),
                label=row.label,
                create_time=timestamp(row.create_time),
                revoke_time=timestamp(row.revoke_time) if row.revoke_time else None,
            )
            for row in page
        ],
        next_page_token=token,
    )
