"""Member care (会员关怀): which members a store remembers on their birthday or
anniversary, and which have stopped coming (沉睡); and which contacts with them
(回访记录) need their consent to marketing.

Birthdays and anniversaries are kept as 'YYYY-MM-DD' ('0000-MM-DD' when the year is
unknown), so the day of the year is the text from the sixth character on, and days
of the year compare as text ('01-03' < '12-28').
"""

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from huiyuan.runtime.errors import FailedPrecondition, Violations

LEAP_DAY = "02-29"
DAY_BEFORE_LEAP_DAY = "02-28"


@dataclass(frozen=True)
class DaySpan:
    """first to last inclusive, as 'MM-DD'; last before first runs over the new year."""

    first: str
    last: str

    @property
    def last_taken_in(self) -> str:
        """The last day, or the 29th for a span that ends on 28 February: in the years
        without one, those born on the 29th are remembered with the 28th."""
        if self.last == DAY_BEFORE_LEAP_DAY and self.first != LEAP_DAY:
            return LEAP_DAY
        return self.last

    @property
    def wraps(self) -> bool:
        return self.last_taken_in < self.first

    def takes_in(self, kept: str | None) -> bool:
        """Whether a kept birthday or anniversary ('YYYY-MM-DD' or None) falls in the span;
        storage/members.py asks the database the same question."""
        if not kept:
            return False
        day = kept[5:]
        if self.wraps:
            return day >= self.first or day <= self.last_taken_in
        return self.first <= day <= self.last_taken_in


def check_day(v: Violations, month: int, day: int, field_path: str) -> str | None:
    """A day of the year as 'MM-DD', any year's (29 February too), or None if it is none."""
    try:
        date(2000, month, day)  # a leap year
    except ValueError:
        v.add(field_path, "DAY_INVALID", f"{field_path} must be a month and day that a year has")
        return None
    return f"{month:02d}-{day:02d}"


def check_span(v: Violations, first: tuple[int, int], last: tuple[int, int], field_path: str) -> DaySpan | None:
    """A span from its first and last (month, day)."""
    first_day = check_day(v, *first, f"{field_path}.first_day")
    last_day = check_day(v, *last, f"{field_path}.last_day")
    return DaySpan(first_day, last_day) if first_day and last_day else None


class CareChannel(StrEnum):
    PHONE = "PHONE"
    SMS = "SMS"
    WECHAT = "WECHAT"
    IN_STORE = "IN_STORE"


class CareTopic(StrEnum):
    BIRTHDAY = "BIRTHDAY"
    ANNIVERSARY = "ANNIVERSARY"
    WIN_BACK = "WIN_BACK"
    FOLLOW_UP = "FOLLOW_UP"


MARKETING = {CareTopic.BIRTHDAY, CareTopic.ANNIVERSARY, CareTopic.WIN_BACK}
REACHING_OUT = {CareChannel.PHONE, CareChannel.SMS, CareChannel.WECHAT}  # the member did not come to us
MAX_NOTE = 500


@dataclass
class CareContact:
    contact_id: str
    member_id: str
    channel: CareChannel
    topic: CareTopic
    note: str
    operator_id: str
    org_path: str
    contact_time: datetime


def check_consent(contact: CareContact, marketing_consent: bool) -> None:
    """Marketing that reaches out to a member (a call, a message) needs their consent;
    a word at the counter, or a follow-up of their own purchase or complaint, does not."""
    if contact.topic in MARKETING and contact.channel in REACHING_OUT and not marketing_consent:
        raise FailedPrecondition(
            "MARKETING_DECLINED",
            "The member declined marketing: greet them at the counter instead.",
            "该会员不接受营销联系，请在到店时当面问候。",
            member_id=contact.member_id,
        )
