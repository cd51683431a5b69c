"""Credentials and scope. A key is bound to an org node and a role; it is shown once
and kept as a SHA-256 hash (a key is 32 random bytes: no salt or slow hash is needed
against guessing, and a leaked table reveals no key). Every call names its credential in
the "authorization" metadata as "Bearer <key>", terminals and back offices alike.
"ApiKey <key>", the terminals' form before, is deprecated: still accepted for one
version, then refused."""

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Column, Index, String, Table, bindparam, insert, select, update

from huiyuan.common.v1 import actor_pb2
from huiyuan.database.engines import UtcDateTime
from huiyuan.database.direct import Direct
from huiyuan.runtime.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated, Violations, invalid
from huiyuan.runtime.requests import check_store_path, is_under, store_of


class Role(StrEnum):
    TERMINAL = "TERMINAL"
    STORE_MANAGER = "STORE_MANAGER"
    REGIONAL_MANAGER = "REGIONAL_MANAGER"
    HQ_ADMIN = "HQ_ADMIN"


STORE_ROLES = {Role.TERMINAL, Role.STORE_MANAGER}
# The kind of org node (member.v1 OrgNodeKind) a credential of each role is bound to.
NODE_KINDS = {Role.HQ_ADMIN: {"HQ"}, Role.REGIONAL_MANAGER: {"REGION"}, Role.STORE_MANAGER: {"STORE"},
              Role.TERMINAL: {"STORE", "TERMINAL"}}
BACK_OFFICE_ROLES = frozenset({Role.STORE_MANAGER, Role.REGIONAL_MANAGER, Role.HQ_ADMIN})
ALL_ROLES = set(Role)


def define_table(metadata) -> Table:
    return Table(
        "api_keys", metadata,
        Column("key_id", String(40), primary_key=True),
        Column("key_hash", String(64), nullable=False, unique=True),
        Column("org_path", String(140), nullable=False),
        Column("role", String(24), nullable=False),
        Column("label", String(64), nullable=False),
        Column("create_time", UtcDateTime, nullable=False),
        Column("revoke_time", UtcDateTime, nullable=True),
        Index("ix_api_keys_org_path", "org_path"),
    )


def actor(key_id: str, org_path: str) -> actor_pb2.Actor:
    """Who the services' audit trails name for a credential's calls: the key, never
    what a client claims."""
    return actor_pb2.Actor(operator_id=f"key:{key_id}", org_path=org_path)


@dataclass(frozen=True)
class Caller:
    key_id: str
    org_path: str
    role: Role

    @property
    def actor(self) -> actor_pb2.Actor:
        return actor(self.key_id, self.org_path)

    @property
    def store_path(self) -> str:
        """The store a terminal or store manager works in ("" above store level)."""
        return store_of(self.org_path)

    def covers(self, path: str) -> bool:
        """Does the caller's scope include path? A terminal's scope is its store."""
        scope = self.store_path if self.role == Role.TERMINAL else self.org_path
        return is_under(path, scope)

    def store_asked(self, v: Violations, requested: str, what: str) -> str:
        """The store a request names, or else the caller's own (a store-level key); a key
        above store level must name one (STORE_PATH_REQUIRED, saying it is `what`)."""
        store = requested or self.store_path
        if store:
            check_store_path(v, store, "store_path")
        else:
            v.check(False, "store_path", "STORE_PATH_REQUIRED", f"store_path: {what} is required")
        return store


def new_key() -> str:
    return "hy_" + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def denied() -> PermissionDenied:
    # One answer for "not yours" and "not there": scope never leaks existence.
    return PermissionDenied("OUT_OF_SCOPE", "This call is outside your credential's scope or role.",
                            "此操作超出您的权限范围。")


# The schemes accepted, compared as HTTP does, case aside (RFC 7235). "apikey" is
# deprecated: accepted for one version (README).
SCHEMES = ("bearer", "apikey")


class Authenticator:
    def __init__(self, direct: Direct, table: Table):
        self.database = direct  # every call reads its key: a revoked key stops at once
        self.table = table
        self._by_hash = select(table).where(table.c.key_hash == bindparam("key_hash"))

    async def caller(self, context, roles: set[Role] = ALL_ROLES) -> Caller:
        """The caller of this call, or UNAUTHENTICATED; PERMISSION_DENIED for a role
        the call does not admit."""
        header = dict(context.invocation_metadata() or ()).get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() not in SCHEMES or not key.strip():
            raise Unauthenticated("CREDENTIAL_REQUIRED", "Send your key as 'authorization: Bearer <key>'.",
                                  "请在请求中提供凭证：authorization: Bearer <key>。")
        rows = await self.database.rows(self._by_hash, {"key_hash": digest(key.strip())})
        row = rows[0] if rows else None
        if row is None or row.revoke_time is not None:
            raise Unauthenticated("CREDENTIAL_INVALID", "The credential is unknown or revoked.", "凭证无效或已吊销。")
        caller = Caller(row.key_id, row.org_path, Role(row.role))
        if caller.role not in roles:
            raise denied()
        return caller


def binding_refusal(org_path: str, role: Role, kind: str | None) -> NotFound | InvalidArgument | None:
    """Why a credential of this role may not be bound to this node, whose kind is kind
    (None: there is no such node); None if it may. IssueApiKey and `huiyuan key issue`
    alike: a key for a node that is not there, or a till's key at HQ, would open a
    scope nobody meant."""
    if kind is None:
        return NotFound("ORG_NODE_NOT_FOUND", f"No org node at '{org_path}'.", f"组织节点 '{org_path}' 不存在。",
                        path=org_path)
    if kind not in NODE_KINDS[role]:
        error = invalid("org_path", "ORG_LEVEL_INVALID", "bind HQ_ADMIN to hq, REGIONAL_MANAGER to a region, "
                        "STORE_MANAGER to a store, TERMINAL to a store or terminal")
        error.zh = "凭证的角色与组织节点不符：总部管理员绑定总部，区域经理绑定区域，店长绑定门店，收银终端绑定门店或终端。"
        return error
    return None


async def issue(db, table: Table, *, key_id: str, org_path: str, role: Role, label: str, now) -> str:
    key = new_key()
    await db.execute(insert(table), {"key_id": key_id, "key_hash": digest(key), "org_path": org_path, "role": role.value,
                                     "label": label, "create_time": now, "revoke_time": None})
    return key


async def revoke(db, table: Table, key_id: str, now):
    """(when the key was revoked, the node it was bound to)."""
    row = (await db.execute(select(table.c.revoke_time, table.c.org_path).where(table.c.key_id == key_id))).one_or_none()
    if row is None:
        raise NotFound("KEY_NOT_FOUND", "No such key.", "凭证不存在。", key_id=key_id)
    if row.revoke_time is not None:
        return row.revoke_time, row.org_path
    await db.execute(update(table).where(table.c.key_id == key_id).values(revoke_time=now))
    return now, row.org_path
