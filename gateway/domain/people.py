"""People: the back office's users, who sign in with a login and a password and call the
gateway with a session, as keys do (docs/console.md).

A person has a role (PersonRole) and an org node. For the rules of scope a person is a
caller of their node's office role (callers.Role): a store manager at a store, a
regional manager at a region, an HQ admin at HQ; finance and marketing people, at HQ or
a region, read as that node's office role does. What they may change is narrower:
finance changes nothing, marketing only marketing's configuration (may_change).

Pure rules: the time is passed in; hashing a password is the use case's
(use_cases/people.py, argon2)."""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gateway.domain.callers import Role
from huiyuan.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Violations,
    invalid,
)

MAX_WRONG_PASSWORDS = 5  # in a row, then the login is locked
LOCK = timedelta(minutes=15)
SESSION = timedelta(hours=12)  # unless HUIYUAN_SESSION_S says otherwise (use_cases/people.py)
MIN_PASSWORD = 8
MAX_PASSWORD = 128
LOGIN = re.compile(r"[A-Za-z0-9._-]{3,32}")
PHONE = re.compile(r"1\d{10}")
SESSION_PREFIX = "hys_"  # a session's token; a key's is "hy_"


class PersonRole(StrEnum):
    STORE_MANAGER = "STORE_MANAGER"
    REGIONAL_MANAGER = "REGIONAL_MANAGER"
    HQ_ADMIN = "HQ_ADMIN"
    FINANCE = "FINANCE"
    MARKETING = "MARKETING"


# The kind of org node (member.v1 OrgNodeKind) a person of each role is bound to.
NODE_KINDS = {
    PersonRole.STORE_MANAGER: {"STORE"},
    PersonRole.REGIONAL_MANAGER: {"REGION"},
    PersonRole.HQ_ADMIN: {"HQ"},
    PersonRole.FINANCE: {"HQ", "REGION"},
    PersonRole.MARKETING: {"HQ", "REGION"},
}
# The office role of a node, by its depth in the tree (hq, hq/east, hq/east/sh-001).
_OFFICE_ROLES = {1: Role.HQ_ADMIN, 2: Role.REGIONAL_MANAGER, 3: Role.STORE_MANAGER}

# What a marketing person may change: marketing's configuration, through the gateway's
# pass-through routes (servicers/passthrough.py), and coupons issued to a segment.
MARKETING_CHANGES = frozenset(
    {
        "/huiyuan.campaign.v1.CampaignService/CreateCampaign",
        "/huiyuan.campaign.v1.CampaignService/SetCampaignStatus",
        "/huiyuan.campaign.v1.CampaignService/RescheduleCampaign",
        "/huiyuan.campaign.v1.CampaignService/CreateCouponTemplate",
        "/huiyuan.campaign.v1.CampaignService/IssueCoupons",
        "/huiyuan.points.v1.PointsService/CreateRule",
        "/huiyuan.points.v1.PointsService/EndRule",
        "/huiyuan.points.v1.PointsService/SetOffsetPolicy",
        "/huiyuan.points.v1.PointsService/CreateGift",
        "/huiyuan.points.v1.PointsService/AdjustGiftStock",
        "/huiyuan.wallet.v1.WalletService/CreateTopUpPackage",
        "/huiyuan.wallet.v1.WalletService/EndTopUpPackage",
        "/huiyuan.wallet.v1.CountCardService/CreateCountCardPlan",
        "/huiyuan.wallet.v1.CountCardService/EndCountCardPlan",
        "/huiyuan.gateway.v1.GatewayService/IssueSegmentCoupons",
    }
)
# What every person may change, whatever their role: their own password.
OWN_CHANGES = frozenset({"/huiyuan.gateway.v1.GatewayService/ChangePassword"})


def office_role(org_path: str) -> Role:
    """The office role whose scope rules a person at org_path is held to."""
    return _OFFICE_ROLES.get(org_path.count("/") + 1, Role.STORE_MANAGER)


def may_change(role: PersonRole, method: str) -> bool:
    """May a person of this role make this change (a call whose request has a
    request_id, named by its full gRPC method)?"""
    if method in OWN_CHANGES:
        return True
    if role == PersonRole.FINANCE:
        return False
    if role == PersonRole.MARKETING:
        return method in MARKETING_CHANGES
    return True


def read_only() -> PermissionDenied:
    return PermissionDenied(
        "ROLE_READ_ONLY", "Your role may read this, not change it.", "您的角色只能查看，不能进行此项修改。"
    )


def check_password(v: Violations, password: str, login: str, field: str) -> None:
    """At least 8 characters, letters and digits both, not the login."""
    if not v.check(len(password) >= MIN_PASSWORD, field, "PASSWORD_TOO_SHORT", "at least 8 characters"):
        return
    v.check(len(password) <= MAX_PASSWORD, field, "PASSWORD_TOO_LONG", "at most 128 characters")
    v.check(
        any(c.isalpha() for c in password) and any(c.isdigit() for c in password) and password != login,
        field,
        "PASSWORD_TOO_WEAK",
        "letters and digits, and not the login",
    )


def check_person(v: Violations, login: str, name: str, phone: str) -> None:
    v.check(bool(LOGIN.fullmatch(login)), "person.login", "LOGIN_INVALID", "3 to 32 letters, digits, '.', '_' or '-'")
    v.check(bool(name.strip()), "person.name", "NAME_REQUIRED", "name is required")
    v.check(len(name) <= 64, "person.name", "TOO_LONG", "name is at most 64 characters")
    v.check(not phone or bool(PHONE.fullmatch(phone)), "person.phone", "PHONE_INVALID", "11 digits, starting with 1")


@dataclass(frozen=True)
class Lock:
    """What a wrong password leaves: the count in a row and the lock, if it locked."""

    wrong_passwords: int
    locked_until: datetime | None


def after_wrong_password(wrong_so_far: int, now: datetime) -> Lock:
    wrong = wrong_so_far + 1
    if wrong >= MAX_WRONG_PASSWORDS:
        return Lock(0, now + LOCK)
    return Lock(wrong, None)


def login_failed() -> Unauthenticated:
    # One answer for an unknown login and a wrong password: a login's existence is not
    # told to whoever tries.
    return Unauthenticated("LOGIN_FAILED", "Wrong login or password.", "账号或密码错误。")


def login_locked(until: datetime) -> FailedPrecondition:
    return FailedPrecondition(
        "LOGIN_LOCKED",
        "Too many wrong passwords: the login is locked for a while.",
        "密码错误次数过多，账号已被暂时锁定，请 15 分钟后再试。",
        unlock_time=until.isoformat(),
    )


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and locked_until > now


def binding_refusal(org_path: str, role: PersonRole, kind: str | None) -> NotFound | InvalidArgument | None:
    """Why a person of this role may not be bound to this node, whose kind is kind (None:
    there is no such node); None if they may. CreatePerson and `huiyuan person create`."""
    if kind is None:
        return NotFound(
            "ORG_NODE_NOT_FOUND", f"No org node at '{org_path}'.", f"组织节点 '{org_path}' 不存在。", path=org_path
        )
    if kind not in NODE_KINDS[role]:
        error = invalid(
            "person.org_path",
            "ORG_LEVEL_INVALID",
            "bind a store manager to a store, a regional manager to a region, an HQ admin to hq, "
            "finance and marketing to hq or a region",
        )
        error.zh = (
            "人员的角色与组织节点不符：店长绑定门店，区域经理绑定区域，总部管理员绑定总部，财务和市场绑定总部或区域。"
        )
        return error
    return None
