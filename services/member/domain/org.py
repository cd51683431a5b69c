"""The org tree: HQ, then regions, stores and terminals, each a node under its parent."""

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from huiyuan.runtime.business_time import CHAIN_ZONE
from huiyuan.runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    Violations,
)
from huiyuan.runtime.requests import ORG_PATH, is_under, store_of  # noqa: F401 - part of the domain's vocabulary


class OrgKind(StrEnum):
    HQ = "HQ"
    REGION = "REGION"
    STORE = "STORE"
    TERMINAL = "TERMINAL"


ORG_LEVELS = [OrgKind.HQ, OrgKind.REGION, OrgKind.STORE, OrgKind.TERMINAL]
ORG_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


@dataclass
class OrgNode:
    path: str
    code: str
    name: str
    kind: OrgKind
    time_zone: str
    parent_path: str
    create_time: datetime | None = None


def child_kind(parent: OrgKind | None) -> OrgKind | None:
    """The only kind a child of `parent` may have (HQ when there is no parent)."""
    if parent is None:
        return OrgKind.HQ
    level = ORG_LEVELS.index(parent) + 1
    return ORG_LEVELS[level] if level < len(ORG_LEVELS) else None


def valid_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def check_time_zone(v: Violations, name: str, field: str) -> None:
    """An org node's zone: an IANA name, and the chain's. Business days, member days and
    expiry are reckoned in the chain's zone (huiyuan/runtime/clock.py) by services that
    do not read the org tree, so a store's own zone would be kept and never used."""
    if v.check(
        valid_time_zone(name), field, "TIME_ZONE_INVALID", "time_zone must be an IANA name such as Asia/Shanghai"
    ):
        v.check(
            name == CHAIN_ZONE.key,
            field,
            "TIME_ZONE_NOT_SUPPORTED",
            f"every store keeps the chain's business time, {CHAIN_ZONE.key} (HUIYUAN_CHAIN_TIME_ZONE): "
            "a store's own zone is not supported yet",
        )


def new_node(
    parent: OrgNode | None, chain_has_hq: bool, code: str, name: str, kind: OrgKind, time_zone: str, now: datetime
) -> OrgNode:
    """A node to add under parent (None: the chain's HQ), if its kind belongs there."""
    if parent is None and chain_has_hq:
        raise FailedPrecondition(
            "ORG_KIND_MISPLACED", "The chain already has its HQ; give a parent_path.", "总部已存在,请指定上级节点。"
        )
    expected = child_kind(parent.kind if parent else None)
    if kind != expected:
        raise FailedPrecondition(
            "ORG_KIND_MISPLACED",
            f"A {kind.lower()} cannot sit under {parent.kind.lower() if parent else 'nothing'}; "
            f"expected {expected.lower() if expected else 'no child'}.",
            "组织层级不符: 总部→区域→门店→终端。",
            expected=expected or "",
        )
    return OrgNode(
        path=f"{parent.path}/{code}" if parent else code,
        code=code,
        name=name,
        kind=kind,
        time_zone=time_zone or (parent.time_zone if parent else CHAIN_ZONE.key),
        parent_path=parent.path if parent else "",
        create_time=now,
    )


def org_not_found(path: str, field: str = "org_path") -> NotFound:
    return NotFound(
        "ORG_NODE_NOT_FOUND", f"No org node at '{path}'.", f"组织节点 '{path}' 不存在。", path=path, field=field
    )


def node_exists(path: str) -> AlreadyExists:
    return AlreadyExists("ORG_NODE_EXISTS", f"'{path}' exists already.", f"'{path}' 已存在。", path=path)
