"""Top-ups as the tiers count them (充值会员: 累计充值满 N 元升级): the principal a member
paid at a till, not the bonus (the chain's gift), until the top-up is refunded."""

from dataclasses import dataclass
from datetime import datetime

from huiyuan.runtime.errors import FailedPrecondition, NotFound


@dataclass
class TopUp:
    top_up_id: str  # the wallet's id
    member_id: str
    store_path: str
    amount_fen: int
    top_up_time: datetime
    refund_time: datetime | None = None  # set when refunded: it counts no more


def recorded_for_another(top_up_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "TOP_UP_ALREADY_RECORDED",
        "This top-up is recorded for another member.",
        "该充值已记录在其他会员名下。",
        top_up_id=top_up_id,
    )


def not_recorded(top_up_id: str) -> NotFound:
    return NotFound(
        "TOP_UP_NOT_RECORDED",
        "This top-up does not count toward the tiers.",
        "该充值不计入会员等级。",
        top_up_id=top_up_id,
    )
