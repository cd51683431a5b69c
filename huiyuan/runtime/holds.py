"""Two-phase spending, as the wallet and points services both do it: a hold is
pending until it is captured, released, or lapses at its deadline (TigerBeetle's
pending -> post | void, with a timeout). The states, the refusals and the request
checks live here once (the loop that lapses holds: huiyuan/runtime/sweeper.py); what a
hold reserves is each service's own business."""

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from huiyuan.runtime.errors import FailedPrecondition, Violations
from huiyuan.runtime.requests import check_actor, check_member_id, check_request_id, check_store_path, check_text

TTL_MIN = timedelta(seconds=1)
TTL_MAX = timedelta(hours=1)  # longer than any checkout saga plus its recovery


class HoldState(StrEnum):
    PENDING = "PENDING"
    CAPTURED = "CAPTURED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"


def check_ttl(v: Violations, ttl: timedelta, field: str = "ttl") -> timedelta:
    v.check(TTL_MIN <= ttl <= TTL_MAX, field, "TTL_OUT_OF_RANGE", "ttl must be 1 s to 1 h")
    return ttl


def check_hold_request(v: Violations, request: Any) -> tuple[timedelta, str]:
    """What a Hold request of either ledger (stored value, points) must hold besides its
    amount: a request id, a member, a ttl, the store and order it is for. Returns the ttl
    and the order id."""
    check_request_id(v, request.request_id)
    check_member_id(v, request.member_id)
    ttl = check_ttl(v, request.ttl.ToTimedelta())
    check_store_path(v, request.store_path, "store_path")
    order_id = check_text(v, request.order_id, "order_id", 64)
    check_actor(v, request, required=False)
    return ttl, order_id


def check_hold_change(v: Violations, request: Any) -> str:
    """What a Capture, Release or refund of a hold must hold besides its amount: a request
    id and the hold. Returns the operator who asked (may be empty)."""
    check_request_id(v, request.request_id)
    v.check(bool(request.hold_id), "hold_id", "HOLD_ID_REQUIRED", "hold_id is required")
    operator, _ = check_actor(v, request, required=False)
    return operator


def lapsed(state: HoldState, expire_time: datetime, now: datetime) -> bool:
    return state == HoldState.EXPIRED or (state == HoldState.PENDING and expire_time <= now)


def require_pending(hold_id: str, state: HoldState, expire_time: datetime, now: datetime) -> None:
    """Refuse to capture a hold that is no longer pending, with the reason."""
    if state == HoldState.CAPTURED:
        raise FailedPrecondition(
            "HOLD_ALREADY_CAPTURED", "The hold was already captured.", "该冻结已扣款。", hold_id=hold_id
        )
    if state == HoldState.RELEASED:
        raise FailedPrecondition("HOLD_RELEASED", "The hold was released.", "该冻结已释放。", hold_id=hold_id)
    if lapsed(state, expire_time, now):
        raise FailedPrecondition(
            "HOLD_EXPIRED", "The hold lapsed at its deadline.", "该冻结已超时失效。", hold_id=hold_id
        )
