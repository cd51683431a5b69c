"""Who calls the gateway: a credential (an API key) bound to an org node with a role, and
what its scope covers.

Every caller sends "authorization: Bearer <key>", terminals and back offices alike.
"ApiKey <key>", the terminals' form before, is deprecated: still accepted for one
version, then refused (servicers/auth.py)."""

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from huiyuan.runtime.errors import InvalidArgument, NotFound, PermissionDenied, Violations, invalid
from huiyuan.runtime.requests import check_store_path, is_under, store_of


class Role(StrEnum):
    TERMINAL = "TERMINAL"
    STORE_MANAGER = "STORE_MANAGER"
    REGIONAL_MANAGER = "REGIONAL_MANAGER"
    HQ_ADMIN = "HQ_ADMIN"


STORE_ROLES = {Role.TERMINAL, Role.STORE_MANAGER}
# The kind of org node (member.v1 OrgNodeKind) a credential of each role is bound to.
NODE_KINDS = {
    Role.HQ_ADMIN: {"HQ"},
    Role.REGIONAL_MANAGER: {"REGION"},
    Role.STORE_MANAGER: {"STORE"},
    Role.TERMINAL: {"STORE", "TERMINAL"},
}
BACK_OFFICE_ROLES = frozenset({Role.STORE_MANAGER, Role.REGIONAL_MANAGER, Role.HQ_ADMIN})
ALL_ROLES = set(Role)


def operator_id(key_id: str) -> str:
    """Who the services' audit trails name for a credential's calls: the key, never
    what a client claims."""
    return f"key:{key_id}"


@dataclass(frozen=True)
class Caller:
    """A key, or a person's session (domain/people.py): then key_id is the person's id,
    so what the gateway derives from the credential (request ids, the lookup rate, the
    audit trail's key) is the person's across their sessions, and person_role says
    what they may change."""

    key_id: str
    org_path: str
    role: Role
    person_role: str = ""  # a person's PersonRole; empty for a key

    @property
    def is_person(self) -> bool:
        return bool(self.person_role)

    @property
    def operator_id(self) -> str:
        return f"person:{self.key_id}" if self.is_person else operator_id(self.key_id)

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


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def denied() -> PermissionDenied:
    # One answer for "not yours" and "not there": scope never leaks existence.
    return PermissionDenied(
        "OUT_OF_SCOPE", "This call is outside your credential's scope or role.", "此操作超出您的权限范围。"
    )


def binding_refusal(org_path: str, role: Role, kind: str | None) -> NotFound | InvalidArgument | None:
    """Why a credential of this role may not be bound to this node, whose kind is kind
    (None: there is no such node); None if it may. IssueApiKey and `huiyuan key issue`
    alike: a key for a node that is not there, or a till's key at HQ, would open a
    scope nobody meant."""
    if kind is None:
        return NotFound(
            "ORG_NODE_NOT_FOUND", f"No org node at '{org_path}'.", f"组织节点 '{org_path}' 不存在。", path=org_path
        )
    if kind not in NODE_KINDS[role]:
        error = invalid(
            "org_path",
            "ORG_LEVEL_INVALID",
            "bind HQ_ADMIN to hq, REGIONAL_MANAGER to a region, "
            "STORE_MANAGER to a store, TERMINAL to a store or terminal",
        )
        error.zh = (
            "凭证的角色与组织节点不符：总部管理员绑定总部，区域经理绑定区域，店长绑定门店，收银终端绑定门店或终端。"
        )
        return error
    return None
