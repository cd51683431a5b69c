"""Credentials: the caller a key names, and keys issued and revoked by HQ."""

import secrets

from gateway.domain.callers import ALL_ROLES, Caller, Role, denied, digest
from gateway.storage import api_keys
from huiyuan.database import Database, Transaction
from huiyuan.runtime.errors import NotFound, Unauthenticated


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
    await api_keys.add(tx, key_id=key_id, key_hash=digest(key), org_path=org_path, role=role.value, label=label,
                       now=now)
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
