"""Checks every service makes of its requests: org paths, the Actor, field masks.

An org path is the materialised path of a node in the org tree, HQ -> region -> store
-> terminal, such as "hq/east/sh-001/pos-01": up to four lower-case codes.
"""

import re
from collections.abc import Sequence
from typing import Any

from huiyuan.runtime.errors import PermissionDenied, Violations
from huiyuan.runtime.ids import is_id

ORG_PATH = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}(/[a-z0-9][a-z0-9-]{0,31}){0,3}$")
MAX_OPERATOR = 64


def is_under(path: str, ancestor: str) -> bool:
    return path == ancestor or path.startswith(ancestor + "/")


def on_line(scope: str, node: str) -> bool:
    """Does something set for scope concern the node's stores or a back office's view of
    it: the node's own, a node's above it (HQ's applies everywhere) or below it?"""
    return is_under(node, scope) or is_under(scope, node)


def check_in_scope(path: str, actor_path: str, what: str, what_zh: str) -> None:
    """A back office sets up and changes only what lies under its own node; without an
    actor the caller is another service, trusted. PERMISSION_DENIED OUT_OF_SCOPE."""
    if actor_path and not is_under(path, actor_path):
        raise PermissionDenied(
            "OUT_OF_SCOPE", f"The {what}'s scope lies outside yours.", f"{what_zh}范围超出您的管辖范围。"
        )


def store_of(org_path: str) -> str:
    """The store an org path lies in ('' above store level): hq/r/s/t -> hq/r/s."""
    parts = org_path.split("/")
    return "/".join(parts[:3]) if len(parts) >= 3 else ""


def check_org_path(violations: Violations, path: str, field: str, required: bool = True) -> str:
    if not path and not required:
        return ""
    violations.check(
        bool(ORG_PATH.match(path or "")),
        field,
        "ORG_PATH_INVALID",
        f"{field} must be an org path such as hq/east/sh-001",
    )
    return path


def check_scope(violations: Violations, path: str, field: str) -> str:
    """The org path a setting (a campaign, a package, a gift...) applies under: HQ, a
    region or a store; a store's applies at each of its terminals. What it applies to is
    found by the store (a checkout's, a top-up's), so a terminal's own setting would never
    apply: it is refused rather than kept unused."""
    check_org_path(violations, path, field)
    if ORG_PATH.match(path or ""):
        violations.check(
            path.count("/") <= 2,
            field,
            "TERMINAL_SCOPE_NOT_SUPPORTED",
            f"{field} must be HQ, a region or a store: this applies at every terminal of a store",
        )
    return path


def check_actor(violations: Violations, request: Any, required: bool = True) -> tuple[str, str]:
    """(operator_id, org_path) of request.actor."""
    if not request.HasField("actor"):
        violations.check(not required, "actor", "ACTOR_REQUIRED", "actor (operator_id and org_path) is required")
        return "", ""
    actor = request.actor
    operator = actor.operator_id.strip()
    violations.check(
        0 < len(operator) <= MAX_OPERATOR,
        "actor.operator_id",
        "OPERATOR_INVALID",
        f"actor.operator_id is required, at most {MAX_OPERATOR} characters",
    )
    check_org_path(violations, actor.org_path, "actor.org_path")
    return operator, actor.org_path


def check_mask(violations: Violations, request: Any, allowed: set[str], prefixes: tuple[str, ...] = ()) -> list[str]:
    """The paths of request.update_mask, each one allowed."""
    paths = list(request.update_mask.paths)
    violations.check(bool(paths), "update_mask", "UPDATE_MASK_EMPTY", "update_mask must name the fields to change")
    for path in paths:
        ok = path in allowed or (bool(prefixes) and path.startswith(prefixes))
        violations.check(
            ok,
            "update_mask",
            "UPDATE_MASK_INVALID",
            f"'{path}' cannot be updated; allowed: {', '.join(sorted(allowed))}",
        )
    return paths


def check_store_path(violations: Violations, path: str, field: str) -> str:
    """A store's org path (hq/region/store): where money is taken or spent."""
    ok = bool(ORG_PATH.match(path or "")) and path.count("/") == 2
    violations.check(ok, field, "STORE_PATH_INVALID", f"{field} must be a store's org path such as hq/east/sh-001")
    return path


def check_text(violations: Violations, value: str, field: str, maximum: int, required: bool = False) -> str:
    value = value.strip()
    if required:
        violations.check(bool(value), field, f"{field.split('.')[-1].upper()}_REQUIRED", f"{field} is required")
    violations.check(len(value) <= maximum, field, "TOO_LONG", f"{field} is at most {maximum} characters")
    return value


# An idempotency key (AIP-155): chosen by the client, the same for every retry of one change.
REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")


def check_request_id(violations: Violations, request_id: str, field: str = "request_id") -> None:
    violations.check(
        bool(REQUEST_ID.match(request_id)),
        field,
        "REQUEST_ID_INVALID",
        "request_id is required: 1 to 64 letters, digits or . _ : - (a UUID is ideal)",
    )


MAX_ORDER_LINES = 500  # what the services take; the gateway takes fewer from a till (its own limit)
MAX_QUANTITY = 100_000
MAX_UNIT_PRICE_FEN = 10**9
MAX_PAID_FEN = 10**10  # a points line's whole amount


def check_order_lines(
    v: Violations,
    lines: Sequence[Any],
    field: str = "lines",
    max_lines: int = MAX_ORDER_LINES,
    sku_required: bool = False,
) -> None:
    """An order's lines, as every service and the gateway check them: 1 to max_lines, each
    with a line_id of its own (and a sku, where the caller requires one), and, where the
    line has them, a quantity and a unit price within bounds, or the amount paid for it
    (a points line)."""
    v.check(0 < len(lines) <= max_lines, field, "LINES_REQUIRED", f"an order has 1 to {max_lines} lines")
    seen: set[str] = set()
    fields = lines[0].DESCRIPTOR.fields_by_name if lines else {}  # one message type for every line
    for i, line in enumerate(lines):
        at = f"{field}[{i}]"
        v.check(
            bool(line.line_id) and line.line_id not in seen,
            f"{at}.line_id",
            "LINE_ID_INVALID",
            "every line needs its own line_id",
        )
        seen.add(line.line_id)
        if sku_required:
            v.check(bool(line.sku), f"{at}.sku", "SKU_REQUIRED", "sku is required")
        if "quantity" in fields:
            v.check(
                0 < line.quantity <= MAX_QUANTITY, f"{at}.quantity", "QUANTITY_INVALID", "quantity must be 1 or more"
            )
        if "unit_price_fen" in fields:
            v.check(
                0 <= line.unit_price_fen <= MAX_UNIT_PRICE_FEN,
                f"{at}.unit_price_fen",
                "PRICE_INVALID",
                "unit_price_fen must be 0 or more",
            )
        if "paid_fen" in fields:
            v.check(
                0 <= line.paid_fen <= MAX_PAID_FEN, f"{at}.paid_fen", "AMOUNT_INVALID", "paid_fen must be 0 or more"
            )


def check_member_id(v: Violations, value: str, field: str = "member_id") -> str:
    """A member's id as the member service makes them (m_...)."""
    v.check(is_id(value, "m"), field, "MEMBER_ID_INVALID", f"{field} must be a member id such as m_01J...")
    return value


def check_till_or_office_view(v: Violations, request: Any) -> None:
    """A list of what is on offer, asked by a till (store_path: what applies there) or by
    a back office (org_path: what is set at and under a node), never both."""
    if request.store_path:
        check_store_path(v, request.store_path, "store_path")
        v.check(
            not request.org_path,
            "org_path",
            "FILTERS_EXCLUSIVE",
            "give store_path (the till's view) or org_path (the back office's), not both",
        )
    check_org_path(v, request.org_path, "org_path", required=False)
