"""Ending early what a window of validity governs: a points rule, a top-up package.

Their terms never change once created: the accruals and bonuses they gave name them,
and must stay explained by the terms they were given under. What a back office may
change is the end, and only earlier: to change the terms, end one and create another.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from huiyuan.runtime.errors import FailedPrecondition, Violations
from huiyuan.runtime.requests import check_actor


def has_ended(end: datetime | None, at: datetime) -> bool:
    """Has a window ending at end (None: open) ended by at? Its end is the first moment
    it no longer applies."""
    return end is not None and end <= at


@dataclass(frozen=True)
class Ending:
    """A request to end a configuration early (a points rule, a top-up package, a count
    card plan): who asks, from which node, and when it is to end (None: now)."""

    operator: str
    actor_path: str
    requested: datetime | None

    def at(self, now: datetime) -> datetime:
        return self.requested or now


def check_ending(v: Violations, request: Any, now: datetime) -> Ending:
    """An End* request's actor and end_time (requested_end)."""
    operator, actor_path = check_actor(v, request)
    return Ending(operator, actor_path, requested_end(v, request, now))


def requested_end(v: Violations, request: Any, now: datetime) -> datetime | None:
    """request.end_time (None: unset, meaning now); never in the past, where what was
    given under the old end stands."""
    if not request.HasField("end_time"):
        return None
    end: datetime = request.end_time.ToDatetime(tzinfo=UTC)  # as convert.from_timestamp, without importing protobuf
    v.check(end >= now, "end_time", "END_TIME_PAST", "end_time must be now or later: what was given before stands")
    return end


def shortened_end(
    start: datetime | None, end: datetime | None, requested: datetime, now: datetime, *, kind: str, kind_zh: str
) -> datetime:
    """The new end of a window [start, end) asked to end at requested (>= now).

    Refused when it has ended already or would end later than it does anyway. Asked
    to end before it starts, it ends at its start: an empty window, it never applied."""
    if has_ended(end, now):
        raise FailedPrecondition(f"{kind.upper()}_ENDED", f"The {kind} has already ended.", f"该{kind_zh}已结束。")
    if end is not None and requested >= end:
        raise FailedPrecondition(
            "END_TIME_NOT_EARLIER",
            f"The {kind} ends by then anyway: it can end earlier, never later.",
            f"该{kind_zh}届时已结束：只能提前结束，不能延长。",
        )
    return max(requested, start) if start is not None else requested
