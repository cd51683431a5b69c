"""Coupons: what a template promises, the states a coupon goes through, why one cannot
be used now, and how its terms read at a till.

A coupon is issued from a template to a member and is AVAILABLE, then RESERVED for an
order, then REDEEMED (or back to AVAILABLE when the reservation is released or lapses).
A template's terms never change once it is made."""

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from huiyuan.runtime.errors import FailedPrecondition, NotFound, Violations
from huiyuan.runtime.money import yuan
from huiyuan.runtime.requests import is_under, on_line
from services.campaign.domain.rates import BP

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L: read aloud at a till
AVAILABLE, RESERVED, REDEEMED, EXPIRED = "AVAILABLE", "RESERVED", "REDEEMED", "EXPIRED"


class CouponKind(StrEnum):
    FIXED = "FIXED"  # amount_fen off (of a spend of threshold_fen, if set)
    PERCENTAGE = "PERCENTAGE"  # pay rate_bp, at most cap_fen off


@dataclass
class Template:
    template_id: str
    name: str
    kind: CouponKind
    amount_fen: int = 0
    rate_bp: int = 0
    cap_fen: int = 0
    threshold_fen: int = 0
    categories: list[str] = field(default_factory=list)
    org_path: str = "hq"
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int = 0
    campaign_id: str = ""

    def validity(self, issued: datetime) -> tuple[datetime, datetime | None]:
        if self.valid_days:
            return issued, issued + timedelta(days=self.valid_days)
        return self.valid_from or issued, self.valid_until

    @property
    def face_fen(self) -> int:
        """What a coupon of the template is worth when its value is fixed (FIXED: its
        amount); 0 where it is not (a PERCENTAGE depends on the order)."""
        return self.amount_fen if self.kind == CouponKind.FIXED else 0


@dataclass
class MemberCoupon:
    """A coupon a member holds, with its template (its name and terms)."""

    coupon_id: str
    coupon_code: str
    template_id: str
    member_id: str
    state: str
    valid_from_time: datetime
    valid_until_time: datetime
    template: Template


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))


def not_found(code: str) -> NotFound:
    return NotFound("COUPON_NOT_FOUND", "No such coupon.", "优惠券不存在。", coupon_code=code)


def template_not_found(template_id: str) -> NotFound:
    return NotFound("TEMPLATE_NOT_FOUND", "No such coupon template.", "优惠券模板不存在。", template_id=template_id)


def terms(t: Template) -> str:
    """What a coupon takes off and when, as a till prints it: 满¥50.00减¥5.00,
    打9折 最多减¥20.00, 减¥5.00 限tea."""
    if t.kind == CouponKind.FIXED:
        off = f"减{yuan(t.amount_fen)}"
    else:  # rate_bp is the share paid: 9000 is 打9折, 8850 is 打8.85折
        off = f"打{Decimal(t.rate_bp) / 1000:f}折" + (f" 最多减{yuan(t.cap_fen)}" if t.cap_fen else "")
    when = f"满{yuan(t.threshold_fen)}" if t.threshold_fen else ""
    where = f" 限{'、'.join(t.categories)}" if t.categories else ""
    return when + off + where


def usable_at(c: MemberCoupon, store_path: str) -> bool:
    """A listed coupon can be used at this store: its template's scope covers it. State
    and validity the listing has checked."""
    return is_under(store_path, c.template.org_path)


def usable_under(c: MemberCoupon, org_path: str) -> bool:
    """A listed coupon can be used at some store under this node: its template's scope
    covers the node, or lies within it."""
    return on_line(c.template.org_path, org_path)


class Held(Protocol):
    """What refusal() reads of a coupon (a row of the coupons table)."""

    @property
    def member_id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def valid_from_time(self) -> datetime: ...
    @property
    def valid_until_time(self) -> datetime: ...


# What a cashier reads for each reason refusal() gives, in the sentence "优惠券 X …".
REFUSALS_ZH = {
    "COUPON_NOT_OWNED": "不属于该会员",
    "COUPON_ALREADY_USED": "已使用过",
    "COUPON_RESERVED": "正被另一笔订单占用",
    "COUPON_EXPIRED": "已过期",
    "COUPON_NOT_YET_VALID": "尚未生效",
}


def refusal(row: Held | None, member_id: str, at: datetime) -> str:
    """Why a coupon cannot be used by this member now ("" when it can)."""
    if row is None:
        return "COUPON_NOT_FOUND"
    if row.member_id != member_id:
        return "COUPON_NOT_OWNED"
    if row.state == REDEEMED:
        return "COUPON_ALREADY_USED"
    if row.state == RESERVED:
        return "COUPON_RESERVED"
    if row.state == EXPIRED or at >= row.valid_until_time:
        return "COUPON_EXPIRED"
    if at < row.valid_from_time:
        return "COUPON_NOT_YET_VALID"
    return ""


def refused(code: str, reason: str) -> NotFound | FailedPrecondition:
    """The refusal of an order that presents a coupon it cannot use, for reason."""
    if reason == "COUPON_NOT_FOUND":
        return not_found(code)
    return FailedPrecondition(
        reason,
        f"Coupon {code} cannot be used: {reason}.",
        f"优惠券 {code} {REFUSALS_ZH[reason]}，不能使用。",
        coupon_code=code,
    )


def check_template(v: Violations, t: Template, p: str = "template.") -> None:
    v.check(0 < len(t.name.strip()) <= 64, f"{p}name", "NAME_REQUIRED", "name is required, at most 64 characters")
    if t.kind == CouponKind.FIXED:
        v.check(t.amount_fen > 0, f"{p}amount_fen", "AMOUNT_INVALID", "a fixed coupon takes amount_fen > 0 off")
        v.check(
            t.threshold_fen == 0 or t.threshold_fen >= t.amount_fen,
            f"{p}threshold_fen",
            "THRESHOLD_BELOW_REDUCTION",
            "a threshold below the amount off would pay the member to buy",
        )
        for name in ("rate_bp", "cap_fen"):
            v.check(
                not getattr(t, name),
                f"{p}{name}",
                "FIELD_NOT_FOR_KIND",
                f"a FIXED coupon takes amount_fen off: {name} is a PERCENTAGE coupon's",
            )
    else:
        v.check(0 < t.rate_bp < BP, f"{p}rate_bp", "RATE_INVALID", "rate_bp is what the member pays, 1 to 9999")
        v.check(t.cap_fen >= 0, f"{p}cap_fen", "CAP_INVALID", "cap_fen must not be negative")
        v.check(
            not t.amount_fen,
            f"{p}amount_fen",
            "FIELD_NOT_FOR_KIND",
            "a PERCENTAGE coupon takes rate_bp off, at most cap_fen: amount_fen is a FIXED coupon's",
        )
    v.check(
        not (t.valid_days and t.valid_from),
        f"{p}valid_from_time",
        "FIELD_NOT_FOR_VALIDITY",
        "a coupon valid for valid_days is valid from its issue: valid_from_time goes with valid_until_time",
    )
    v.check(t.threshold_fen >= 0, f"{p}threshold_fen", "THRESHOLD_INVALID", "threshold_fen must not be negative")
    v.check(
        (t.valid_days > 0) != (t.valid_until is not None),
        f"{p}valid_days",
        "VALIDITY_INVALID",
        "give valid_days (from issue) or valid_until_time (fixed), one of the two",
    )
    v.check(0 <= t.valid_days <= 3660, f"{p}valid_days", "VALIDITY_INVALID", "valid_days is at most 3660")
    if t.valid_from and t.valid_until:
        v.check(
            t.valid_from < t.valid_until,
            f"{p}valid_until_time",
            "VALIDITY_REVERSED",
            "valid_until_time must be after valid_from_time",
        )
