"""Member care (会员关怀): the birthdays and anniversaries of a span of the year, and
the members who stopped coming (沉睡). The rule in Python (services/member/domain/care.py),
then the member service through its stubs on SQLite and PostgreSQL, where the same
rule is SQL: the two must agree. Then the contacts made with them (回访记录), and the
consent a marketing call needs."""

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.type import date_pb2

from huiyuan.common.v1 import file_pb2
from huiyuan.member.v1 import care_pb2, care_pb2_grpc, member_pb2
from services.member.domain.care import DaySpan
from tests.support import ACTOR, STORE, Stubs, ensure_org, refusal, rid

OK = grpc.StatusCode


@pytest.mark.parametrize(
    "first, last, kept, taken_in",
    [
        ("11-23", "11-29", "1990-11-23", True),  # the first day
        ("11-23", "11-29", "0000-11-29", True),  # the last day, year unknown
        ("11-23", "11-29", "1990-11-30", False),
        ("11-23", "11-29", "1990-11-22", False),
        ("12-28", "01-03", "1985-12-31", True),  # over the new year
        ("12-28", "01-03", "1985-01-02", True),
        ("12-28", "01-03", "1985-06-15", False),
        ("02-22", "02-28", "2000-02-29", True),  # the 29th with the 28th, in the years without one
        ("02-28", "02-28", "2000-02-29", True),
        ("02-29", "02-29", "2000-02-28", False),
        ("02-29", "02-28", "1999-07-01", True),  # the whole year, from the 29th round to the 28th
        ("03-01", "03-07", "2000-02-29", False),
        ("05-17", "05-17", None, False),  # no birthday given
    ],
)
def test_a_span_of_the_year(first, last, kept, taken_in):
    assert DaySpan(first, last).takes_in(kept) is taken_in


@pytest.fixture(scope="module")
def stubs(member_service):
    s = Stubs(member_service.channel)
    ensure_org(s)
    return s


def day(month, day, year=0):
    return date_pb2.Date(year=year, month=month, day=day)


def span(first, last):
    return member_pb2.DaySpan(first_day=day(*first), last_day=day(*last))


def listed(stubs, **filters) -> set[str]:
    found, token = set(), ""
    while True:
        page = stubs.member.ListMembers(
            member_pb2.ListMembersRequest(filter=member_pb2.MemberFilter(**filters), page_size=3, page_token=token)
        )
        found |= {m.member_id for m in page.members}
        if not (token := page.next_page_token):
            return found


def at(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


BIRTHDAYS = [
    (1, 1),
    (1, 3),
    (1, 4),
    (2, 28),
    (2, 29),
    (3, 1),
    (5, 17),
    (11, 23),
    (11, 29),
    (11, 30),
    (12, 27),
    (12, 28),
    (12, 31),
]
SPANS = [
    ((11, 23), (11, 29)),
    ((12, 28), (1, 3)),
    ((2, 22), (2, 28)),
    ((2, 29), (2, 29)),
    ((3, 1), (2, 28)),
    ((1, 1), (12, 31)),
    ((5, 17), (5, 17)),
    ((2, 29), (2, 28)),
]


def test_birthdays_of_a_span_are_the_ones_the_rule_names(stubs):
    tag = f"关怀{rid()[:6]}"
    born = {}
    for month, d in BIRTHDAYS:
        member = stubs.register(f"生日{month}-{d}", birthday=day(month, d, 1988 if d % 2 else 0), tags=[tag])
        born[member.member_id] = f"{1988 if d % 2 else 0:04d}-{month:02d}-{d:02d}"
    stubs.register("无生日", tags=[tag])
    for first, last in SPANS:
        rule = DaySpan(f"{first[0]:02d}-{first[1]:02d}", f"{last[0]:02d}-{last[1]:02d}")
        expected = {m for m, kept in born.items() if rule.takes_in(kept)}
        assert listed(stubs, tag=tag, birthday_in=span(first, last)) == expected, (first, last)
    # by hand, the ones a store manager reads: the week of 23 November, and the new year's
    week = listed(stubs, tag=tag, birthday_in=span((11, 23), (11, 29)))
    assert sorted(born[m][5:] for m in week) == ["11-23", "11-29"]
    new_year = listed(stubs, tag=tag, birthday_in=span((12, 28), (1, 3)))
    assert sorted(born[m][5:] for m in new_year) == ["01-01", "01-03", "12-28", "12-31"]


def test_anniversaries_and_birthdays_are_asked_apart_and_together(stubs):
    tag = f"周年{rid()[:6]}"
    both = stubs.register("两者", birthday=day(6, 1, 1990), anniversary=day(6, 2, 2015), tags=[tag])
    wed = stubs.register("结婚纪念", anniversary=day(6, 3), tags=[tag])
    stubs.register("都不在", birthday=day(7, 1), anniversary=day(7, 2), tags=[tag])
    assert listed(stubs, tag=tag, anniversary_in=span((6, 1), (6, 7))) == {both.member_id, wed.member_id}
    assert listed(stubs, tag=tag, birthday_in=span((6, 1), (6, 7))) == {both.member_id}
    assert listed(stubs, tag=tag, birthday_in=span((6, 1), (6, 7)), anniversary_in=span((6, 3), (6, 3))) == set()


def test_members_who_stopped_coming(stubs):
    tag = f"沉睡{rid()[:6]}"
    never = stubs.register("从未到店", tags=[tag])
    lately = stubs.register("最近来过", tags=[tag])
    long_ago = stubs.register("很久没来", tags=[tag])
    since = datetime.now(UTC)  # the three registered before it
    for member, when in [(lately, since + timedelta(seconds=1)), (long_ago, since - timedelta(days=120))]:
        stubs.member.RecordVisit(
            member_pb2.RecordVisitRequest(
                request_id=rid(),
                member_id=member.member_id,
                store_path=STORE,
                order_id=rid(),
                amount_fen=1000,
                visit_time=at(when),
                actor=ACTOR,
            )
        )
    stubs.register("新会员", tags=[tag])  # registered after `since`: new, not asleep
    assert listed(stubs, tag=tag, no_visit_since=at(since)) == {never.member_id, long_ago.member_id}
    # a year back, nobody had been away that long: they had not registered yet
    assert listed(stubs, tag=tag, no_visit_since=at(since - timedelta(days=365))) == set()


def test_the_export_selects_by_the_same_filter(stubs):
    tag = f"导出{rid()[:6]}"
    stubs.register("十二月生日", birthday=day(12, 5, 1988), tags=[tag])
    stubs.register("一月生日", birthday=day(1, 5, 1988), tags=[tag])
    chunks = stubs.member.ExportMembers(
        member_pb2.ExportMembersRequest(
            filter=member_pb2.MemberFilter(tag=tag, birthday_in=span((12, 1), (12, 31))),
            format=file_pb2.FILE_FORMAT_CSV,
        )
    )
    text = b"".join(c.chunk for c in chunks).decode("utf-8-sig")
    assert "十二月生日" in text and "一月生日" not in text


@pytest.mark.parametrize(
    "first, last, field",
    [
        ((2, 30), (3, 1), "filter.birthday_in.first_day"),
        ((0, 0), (3, 1), "filter.birthday_in.first_day"),  # a span needs both its days
        ((3, 1), (13, 1), "filter.birthday_in.last_day"),
    ],
)
def test_a_day_no_year_has_is_refused(stubs, first, last, field):
    code, _, violations = refusal(
        stubs.member.ListMembers,
        member_pb2.ListMembersRequest(filter=member_pb2.MemberFilter(birthday_in=span(first, last))),
    )
    assert code == OK.INVALID_ARGUMENT and violations == {field: "DAY_INVALID"}
    code, _, violations = refusal(
        lambda r: list(stubs.member.ExportMembers(r)),
        member_pb2.ExportMembersRequest(
            filter=member_pb2.MemberFilter(anniversary_in=span(first, last)), format=file_pb2.FILE_FORMAT_CSV
        ),
    )
    assert code == OK.INVALID_ARGUMENT and violations == {field.replace("birthday", "anniversary"): "DAY_INVALID"}


def contact_of(member, channel=care_pb2.CARE_CHANNEL_PHONE, topic=care_pb2.CARE_TOPIC_BIRTHDAY, note="生日祝福"):
    return care_pb2.CareContact(member_id=member.member_id, channel=channel, topic=topic, note=note)


def record(stubs, contact, request_id=None):
    return stubs.care.RecordCareContact(
        care_pb2.RecordCareContactRequest(request_id=request_id or rid(), contact=contact, actor=ACTOR)
    ).contact


def kept(stubs, member, page_size=50) -> list:
    found, token = [], ""
    while True:
        page = stubs.care.ListCareContacts(
            care_pb2.ListCareContactsRequest(member_id=member.member_id, page_size=page_size, page_token=token)
        )
        found += page.contacts
        if not (token := page.next_page_token):
            return found


def test_contacts_are_kept_newest_first_with_who_made_them(care_stubs):
    stubs = care_stubs
    member = stubs.register("回访", marketing_consent=True)
    request_id = rid()
    first = record(stubs, contact_of(member), request_id)
    assert (first.operator_id, first.org_path, first.note) == (ACTOR.operator_id, ACTOR.org_path, "生日祝福")
    assert record(stubs, contact_of(member), request_id) == first  # a retry keeps it once
    second = record(stubs, contact_of(member, care_pb2.CARE_CHANNEL_WECHAT, care_pb2.CARE_TOPIC_FOLLOW_UP, "  满意  "))
    third = record(stubs, contact_of(member, care_pb2.CARE_CHANNEL_SMS, care_pb2.CARE_TOPIC_WIN_BACK, ""))
    assert [c.contact_id for c in kept(stubs, member, page_size=2)] == [
        third.contact_id,
        second.contact_id,
        first.contact_id,
    ]
    assert second.note == "满意"


def test_marketing_that_reaches_out_needs_the_members_consent(care_stubs):
    stubs = care_stubs
    member = stubs.register("勿扰", marketing_consent=False)
    for channel in (care_pb2.CARE_CHANNEL_PHONE, care_pb2.CARE_CHANNEL_SMS, care_pb2.CARE_CHANNEL_WECHAT):
        for topic in (care_pb2.CARE_TOPIC_BIRTHDAY, care_pb2.CARE_TOPIC_ANNIVERSARY, care_pb2.CARE_TOPIC_WIN_BACK):
            assert refusal(record, stubs, contact_of(member, channel, topic))[:2] == (
                OK.FAILED_PRECONDITION,
                "MARKETING_DECLINED",
            )
    assert kept(stubs, member) == []  # nothing of the refusals
    record(stubs, contact_of(member, care_pb2.CARE_CHANNEL_IN_STORE, care_pb2.CARE_TOPIC_BIRTHDAY))  # at the counter
    record(stubs, contact_of(member, care_pb2.CARE_CHANNEL_PHONE, care_pb2.CARE_TOPIC_FOLLOW_UP))  # their complaint
    assert len(kept(stubs, member)) == 2


def test_a_bad_contact_is_refused_and_writes_nothing(care_stubs):
    stubs = care_stubs
    member = stubs.register("坏回访", marketing_consent=True)
    code, _, violations = refusal(record, stubs, care_pb2.CareContact(note="x" * 501))
    assert code == OK.INVALID_ARGUMENT and violations == {
        "contact.member_id": "MEMBER_ID_REQUIRED",
        "contact.channel": "CHANNEL_REQUIRED",
        "contact.topic": "TOPIC_REQUIRED",
        "contact.note": "TOO_LONG",
    }
    nobody = member_pb2.Member(member_id="m_nobody")
    assert refusal(record, stubs, contact_of(nobody))[:2] == (OK.NOT_FOUND, "MEMBER_NOT_FOUND")
    assert refusal(kept, stubs, nobody)[:2] == (OK.NOT_FOUND, "MEMBER_NOT_FOUND")
    code, _, violations = refusal(
        stubs.care.RecordCareContact, care_pb2.RecordCareContactRequest(request_id=rid(), contact=contact_of(member))
    )
    assert code == OK.INVALID_ARGUMENT and violations == {"actor": "ACTOR_REQUIRED"}
    assert kept(stubs, member) == []


@pytest.fixture(scope="module")
def care_stubs(stubs, member_service):
    stubs.care = care_pb2_grpc.CareServiceStub(member_service.channel)
    return stubs
