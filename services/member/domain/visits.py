"""Visits: what a member bought where, counted per store; returns take the returned
goods back off the spend, never more than the visit added."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from huiyuan.runtime.errors import FailedPrecondition, NotFound, Violations

VISIT_CLOCK_LEEWAY = timedelta(minutes=5)  # a till's clock may run this far ahead of ours


@dataclass
class StoreVisits:
    store_path: str
    visit_count: int
    total_spend_fen: int
    last_visit_time: datetime


@dataclass
class VisitStats:
    member_id: str
    stores: list[StoreVisits]

    @property
    def visit_count(self) -> int:
        return sum(s.visit_count for s in self.stores)

    @property
    def total_spend_fen(self) -> int:
        return sum(s.total_spend_fen for s in self.stores)

    @property
    def last_visit_time(self) -> datetime | None:
        return max((s.last_visit_time for s in self.stores), default=None)


@dataclass
class VisitRecord:
    """One paid order of a member's, as it was recorded."""

    order_id: str
    member_id: str
    store_path: str
    amount_fen: int
    visit_time: datetime


def check_visit_time(v: Violations, when: datetime, now: datetime) -> None:
    v.check(when <= now + VISIT_CLOCK_LEEWAY, "visit_time", "VISIT_IN_FUTURE", "visit_time is in the future")


def order_recorded_for_another(order_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "ORDER_ALREADY_RECORDED",
        "This order is recorded for another member.",
        "该订单已记录在其他会员名下。",
        order_id=order_id,
    )


def visit_not_found(order_id: str) -> NotFound:
    return NotFound(
        "VISIT_NOT_FOUND",
        "This member has no visit for this order.",
        "该会员没有这笔订单的消费记录。",
        order_id=order_id,
    )


def return_recorded_for_another(return_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "RETURN_ALREADY_RECORDED",
        "This return is recorded for another order.",
        "该退货已记录在其他订单名下。",
        return_id=return_id,
    )


def check_return_fits(visit: VisitRecord, returned_fen: int, amount_fen: int) -> None:
    """A return takes back at most what the visit added, less what went back already."""
    if returned_fen + amount_fen > visit.amount_fen:
        raise FailedPrecondition(
            "RETURN_EXCEEDS_VISIT",
            f"The visit added {visit.amount_fen} fen and {returned_fen} went back already.",
            f"该订单消费 {visit.amount_fen} 分，已退回 {returned_fen} 分，不能再退 {amount_fen} 分。",
            order_id=visit.order_id,
            left_fen=visit.amount_fen - returned_fen,
        )
