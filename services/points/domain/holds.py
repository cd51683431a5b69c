"""Offset at checkout: hold -> capture | release. A hold takes its points out of the
soonest-expiring lots at once (so expiry can never take held points); a capture keeps
what it spends and gives the rest back; a release or a lapse gives everything back
(to lots that may have expired meanwhile: the next expiry run takes those). The
states and refusals every hold shares are huiyuan/runtime/holds.py's."""

from dataclasses import dataclass
from datetime import datetime

from huiyuan.runtime.errors import NotFound, invalid
from huiyuan.runtime.holds import HoldState, require_pending


@dataclass
class Hold:
    hold_id: str
    member_id: str
    points: int
    captured: int
    state: HoldState
    order_id: str
    store_path: str
    expire_time: datetime


def hold_not_found(hold_id: str) -> NotFound:
    return NotFound("HOLD_NOT_FOUND", "No such hold.", "冻结记录不存在。", hold_id=hold_id)


def check_capturable(hold_id: str, points: int, hold: Hold | None, now: datetime) -> Hold:
    if hold is None:
        raise hold_not_found(hold_id)
    require_pending(hold_id, hold.state, hold.expire_time, now)
    if points > hold.points:
        raise invalid("points", "CAPTURE_EXCEEDS_HOLD", f"points {points} is more than the {hold.points} held")
    return hold


def release_state(hold: Hold, now: datetime) -> HoldState | None:
    """The state a release leaves a hold in (None: it stays as it is: released or
    lapsed already). A captured hold is refused."""
    if hold.state == HoldState.CAPTURED:
        require_pending(hold.hold_id, hold.state, hold.expire_time, now)
    if hold.state == HoldState.PENDING:
        return HoldState.EXPIRED if hold.expire_time <= now else HoldState.RELEASED
    return None


def has_lapsed(hold: Hold, now: datetime) -> bool:
    """A pending hold past its deadline (the sweeper lapses it)."""
    return hold.state == HoldState.PENDING and hold.expire_time <= now
