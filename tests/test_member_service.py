"""The member service through its generated stubs, on SQLite and on PostgreSQL."""

import csv
import io
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2
from google.type import date_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from openpyxl import Workbook, load_workbook

from huiyuan.common.v1 import file_pb2
from huiyuan.member.v1 import card_pb2, member_pb2, org_pb2, tier_pb2
from huiyuan.runtime.business_time import local
from services.member.domain import qr
from tests.support import ACTOR, STORE, Stubs, card_type, ensure_org, new_phone, refusal, rid

OK = grpc.StatusCode


@pytest.fixture(scope="module")
def stubs(member_service):
    s = Stubs(member_service.channel)
    ensure_org(s)
    return s


def count_members(stubs) -> int:
    return len(stubs.member.ListMembers(member_pb2.ListMembersRequest(page_size=500)).members)


def test_health_is_serving_when_migrated(member_service):
    stub = health_pb2_grpc.HealthStub(member_service.channel)
    for name in ["", "huiyuan.member.v1.MemberService"]:
        assert stub.Check(health_pb2.HealthCheckRequest(service=name)).status == health_pb2.HealthCheckResponse.SERVING


def test_register_then_lookup_by_phone_card_id_and_qr(stubs):
    phone = new_phone()
    member = stubs.register(
        "王小明", f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}", birthday={"year": 1990, "month": 5, "day": 17}
    )
    assert member.phone == phone and member.home_store_path == STORE
    assert member.registered_org_path == ACTOR.org_path
    card = stubs.card.IssueCard(
        card_pb2.IssueCardRequest(
            request_id=rid(), member_id=member.member_id, card_type_id=card_type(stubs), actor=ACTOR
        )
    ).card
    by_phone = stubs.member.LookupMember(member_pb2.LookupMemberRequest(phone=phone))
    by_card = stubs.member.LookupMember(member_pb2.LookupMemberRequest(card_number=card.card_number))
    by_id = stubs.member.LookupMember(member_pb2.LookupMemberRequest(member_id=member.member_id))
    token = stubs.member.IssueQrToken(member_pb2.IssueQrTokenRequest(member_id=member.member_id)).qr_token
    by_qr = stubs.member.LookupMember(member_pb2.LookupMemberRequest(qr_token=token))
    for found in (by_phone, by_card, by_id, by_qr):
        assert found.member.member_id == member.member_id
        assert [c.card_number for c in found.cards] == [card.card_number]
    assert by_card.presented_card.card_number == card.card_number
    assert by_phone.member.birthday.month == 5
    code, reason, _ = refusal(stubs.member.LookupMember, member_pb2.LookupMemberRequest(qr_token=token[:-2] + "zz"))
    assert (code, reason) == (OK.UNAUTHENTICATED, "QR_TOKEN_INVALID")


def test_a_qr_code_lives_five_minutes_at_most(stubs):
    """HUIYUAN_QR_LIFETIME_S, 300 unless set: a longer ttl is refused, and a token that
    claims a longer life was not made here (signed with the service's own secret)."""
    member = stubs.register()
    issue = member_pb2.IssueQrTokenRequest(member_id=member.member_id, ttl=duration_pb2.Duration(seconds=301))
    assert refusal(stubs.member.IssueQrToken, issue) == (
        OK.INVALID_ARGUMENT,
        "TTL_OUT_OF_RANGE",
        {"ttl": "TTL_OUT_OF_RANGE"},
    )
    issue.ttl.seconds = 300
    issued = stubs.member.IssueQrToken(issue)
    assert issued.expire_time.seconds - time.time() == pytest.approx(300, abs=5)
    forged = qr.sign_qr_token(
        member.member_id, datetime.now(UTC) + timedelta(days=3653), os.environ["HUIYUAN_QR_SECRET"]
    )
    code, reason, _ = refusal(stubs.member.LookupMember, member_pb2.LookupMemberRequest(qr_token=forged))
    assert (code, reason) == (OK.UNAUTHENTICATED, "QR_TOKEN_LIFETIME_EXCEEDED")
    found = stubs.member.LookupMember(member_pb2.LookupMemberRequest(qr_token=issued.qr_token))
    assert found.member.member_id == member.member_id


def test_find_members_answers_a_file_of_keys_in_one_call(stubs):
    first, second = new_phone(), new_phone()
    a = stubs.register("甲", first)
    b = stubs.register("乙", second)
    nobody = new_phone()
    dashed = f"{second[:3]}-{second[3:7]}-{second[7:]}"
    found = stubs.member.FindMembers(
        member_pb2.FindMembersRequest(
            member_ids=[a.member_id, "m_00000000000000000000000000", "not-an-id"], phones=[first, dashed, nobody, "12"]
        )
    ).members
    assert {key: m.member_id for key, m in found.items()} == {
        a.member_id: a.member_id,
        first: a.member_id,
        dashed: b.member_id,
    }  # under each key as given
    assert found[dashed].name == "乙" and found[dashed].phone == second
    code, _, violations = refusal(stubs.member.FindMembers, member_pb2.FindMembersRequest())
    assert (code, violations) == (OK.INVALID_ARGUMENT, {"member_ids": "KEYS_REQUIRED"})
    too_many = member_pb2.FindMembersRequest(member_ids=[a.member_id] * 600, phones=[first] * 401)
    assert refusal(stubs.member.FindMembers, too_many)[2] == {"member_ids": "TOO_MANY_KEYS"}


def test_bad_input_lists_every_bad_field_and_writes_nothing(stubs):
    before = count_members(stubs)
    code, reason, violations = refusal(
        stubs.member.RegisterMember,
        member_pb2.RegisterMemberRequest(
            request_id="", channel=99, member=member_pb2.Member(name="x" * 65, phone="12345", gender=42)
        ),
    )
    assert code == OK.INVALID_ARGUMENT and reason == "REQUEST_ID_INVALID"  # the first of them
    assert violations == {
        "request_id": "REQUEST_ID_INVALID",
        "actor": "ACTOR_REQUIRED",
        "channel": "CHANNEL_REQUIRED",
        "member.name": "NAME_TOO_LONG",
        "member.phone": "PHONE_INVALID",
    }
    code, _, violations = refusal(
        stubs.member.RegisterMember,
        member_pb2.RegisterMemberRequest(
            request_id=rid(),
            channel=member_pb2.REGISTRATION_CHANNEL_WEB,
            actor=ACTOR,
            member=member_pb2.Member(phone=new_phone()),
        ),
    )
    assert violations == {"member.name": "NAME_REQUIRED"}
    assert count_members(stubs) == before


def test_unknown_org_node_is_not_found_and_writes_nothing(stubs):
    before = count_members(stubs)
    request = member_pb2.RegisterMemberRequest(
        request_id=rid(),
        channel=member_pb2.REGISTRATION_CHANNEL_STORE,
        actor={"operator_id": "c", "org_path": "hq/nowhere/x-1"},
        member=member_pb2.Member(name="甲", phone=new_phone()),
    )
    assert refusal(stubs.member.RegisterMember, request)[:2] == (OK.NOT_FOUND, "ORG_NODE_NOT_FOUND")
    assert count_members(stubs) == before


def test_two_concurrent_registrations_with_one_phone_give_one_member(stubs):
    phone = new_phone()
    outcomes, barrier = [], threading.Barrier(2)

    def register():
        barrier.wait()
        try:
            outcomes.append(stubs.register("并发", phone).member_id)
        except grpc.RpcError as error:
            outcomes.append(error.code())

    threads = [threading.Thread(target=register) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(isinstance(o, str) for o in outcomes) == 1
    assert OK.ALREADY_EXISTS in outcomes
    assert (
        stubs.member.ListMembers(member_pb2.ListMembersRequest(filter={"phone_suffix": phone})).members[0].phone
        == phone
    )


def test_replay_returns_first_response_and_other_payload_is_refused(stubs):
    request_id, phone = rid(), new_phone()
    first = stubs.register("重放", phone, request_id=request_id)
    again = stubs.register("重放", phone, request_id=request_id)
    assert again == first
    code, reason, _ = refusal(stubs.register, "别人", new_phone(), request_id=request_id)
    assert (code, reason) == (OK.FAILED_PRECONDITION, "REQUEST_ID_REUSED")


def test_a_refused_request_id_stays_refused(stubs):
    phone = new_phone()
    stubs.register("先来", phone)
    request_id = rid()
    assert refusal(stubs.register, "后到", phone, request_id=request_id)[:2] == (
        OK.ALREADY_EXISTS,
        "PHONE_ALREADY_REGISTERED",
    )
    assert refusal(stubs.register, "后到", phone, request_id=request_id)[:2] == (
        OK.ALREADY_EXISTS,
        "PHONE_ALREADY_REGISTERED",
    )


def test_update_with_field_mask_changes_only_masked_fields(stubs):
    member = stubs.register("原名")
    updated = stubs.member.UpdateMember(
        member_pb2.UpdateMemberRequest(
            request_id=rid(),
            member=member_pb2.Member(member_id=member.member_id, name="新名", phone="bad"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        )
    ).member
    assert (updated.name, updated.phone) == ("新名", member.phone)
    _, _, violations = refusal(
        stubs.member.UpdateMember,
        member_pb2.UpdateMemberRequest(
            request_id=rid(),
            member=member_pb2.Member(member_id=member.member_id),
            update_mask=field_mask_pb2.FieldMask(paths=["channel"]),
        ),
    )
    assert violations == {"update_mask": "UPDATE_MASK_INVALID"}


def test_tags_are_kept_tidy_replaced_by_update_and_select_members(stubs):
    tag = f"企业{rid()[:6]}"  # a tag of this test's own: other tests' members never carry it
    tagged = stubs.register("标签会员", tags=[f" {tag} ", "高频", tag])
    assert list(tagged.tags) == [tag, "高频"]  # trimmed, each once, in the order given
    other = stubs.register("另一位", tags=[tag])

    def listed(**filter_fields):
        return [
            m.member_id
            for m in stubs.member.ListMembers(
                member_pb2.ListMembersRequest(filter=member_pb2.MemberFilter(**filter_fields))
            ).members
        ]

    assert listed(tag=tag) == [other.member_id, tagged.member_id]
    updated = stubs.member.UpdateMember(
        member_pb2.UpdateMemberRequest(
            request_id=rid(),
            member=member_pb2.Member(member_id=tagged.member_id, tags=["沉睡"]),
            update_mask=field_mask_pb2.FieldMask(paths=["tags"]),
        )
    ).member
    assert list(updated.tags) == ["沉睡"] and listed(tag=tag) == [other.member_id]
    assert list(stubs.member.GetMember(member_pb2.GetMemberRequest(member_id=tagged.member_id)).member.tags) == ["沉睡"]
    assert listed(tag="沉睡", phone_suffix=tagged.phone) == [tagged.member_id]
    bad = member_pb2.RegisterMemberRequest(
        request_id=rid(),
        channel=member_pb2.REGISTRATION_CHANNEL_STORE,
        actor=ACTOR,
        member=member_pb2.Member(
            name="坏标签", phone=new_phone(), tags=["", "a,b", "x" * 17, *[f"t{i}" for i in range(20)]]
        ),
    )
    assert refusal(stubs.member.RegisterMember, bad)[2] == {
        "member.tags[0]": "TAG_INVALID",
        "member.tags[1]": "TAG_INVALID",
        "member.tags[2]": "TAG_INVALID",
        "member.tags": "TOO_MANY_TAGS",
    }
    assert refusal(
        stubs.member.ListMembers, member_pb2.ListMembersRequest(filter=member_pb2.MemberFilter(tag="x" * 17))
    )[2] == {"filter.tag": "TAG_INVALID"}


def test_custom_attributes_are_typed(stubs):
    key = f"skin_{rid()[:6]}".replace("-", "")
    stubs.member.CreateAttributeDefinition(
        member_pb2.CreateAttributeDefinitionRequest(
            request_id=rid(),
            attribute_definition={
                "key": key,
                "display_name": "肤质",
                "type": member_pb2.ATTRIBUTE_TYPE_CHOICE,
                "choices": ["干性", "油性"],
            },
        )
    )
    member = stubs.register("属性", attributes={key: member_pb2.AttributeValue(choice_value="油性")})
    assert member.attributes[key].choice_value == "油性"
    _, _, violations = refusal(stubs.register, "属性", attributes={key: member_pb2.AttributeValue(choice_value="中性")})
    assert violations == {f"member.attributes[{key}]": "ATTRIBUTE_CHOICE_INVALID"}


def test_card_lifecycle_is_audited_and_payment_lookup_refuses_with_reason(stubs):
    member = stubs.register("卡主")
    card = stubs.card.IssueCard(
        card_pb2.IssueCardRequest(
            request_id=rid(), member_id=member.member_id, card_type_id=card_type(stubs), actor=ACTOR
        )
    ).card
    pay = member_pb2.LookupMemberRequest(card_number=card.card_number, purpose=member_pb2.LOOKUP_PURPOSE_PAYMENT)
    stubs.member.LookupMember(pay)
    change = dict(card_number=card.card_number, reason="顾客报失", actor=ACTOR)
    stubs.card.ReportCardLost(card_pb2.ReportCardLostRequest(request_id=rid(), **change))
    assert refusal(stubs.member.LookupMember, pay)[:2] == (OK.FAILED_PRECONDITION, "CARD_LOST")
    view = stubs.member.LookupMember(member_pb2.LookupMemberRequest(card_number=card.card_number))
    assert view.presented_card.state == card_pb2.CARD_STATE_LOST  # the back office still sees it
    assert (
        refusal(stubs.card.FreezeCard, card_pb2.FreezeCardRequest(request_id=rid(), **change))[1]
        == "CARD_STATE_CONFLICT"
    )
    replaced = stubs.card.ReplaceCard(card_pb2.ReplaceCardRequest(request_id=rid(), **change))
    assert replaced.old_card.replaced_by_card_number == replaced.new_card.card_number
    assert refusal(stubs.member.LookupMember, pay)[1] == "CARD_REPLACED"
    new_pay = member_pb2.LookupMemberRequest(
        card_number=replaced.new_card.card_number, purpose=member_pb2.LOOKUP_PURPOSE_PAYMENT
    )
    assert stubs.member.LookupMember(new_pay).member.member_id == member.member_id
    events = stubs.card.ListCardEvents(card_pb2.ListCardEventsRequest(card_number=card.card_number)).card_events
    assert [e.action for e in events] == [
        card_pb2.CARD_ACTION_ISSUE,
        card_pb2.CARD_ACTION_REPORT_LOST,
        card_pb2.CARD_ACTION_REPLACE,
    ]
    assert all(e.operator_id == "cashier-07" and e.org_path == ACTOR.org_path for e in events)


def test_tiers_and_history(stubs):
    rank = 100 + int(rid()[:3], 16) % 900
    tier = stubs.tier.CreateTier(
        tier_pb2.CreateTierRequest(
            request_id=rid(), tier=tier_pb2.Tier(name="金卡", rank=rank, price_rate_bp=9500, points_multiplier_bp=15000)
        )
    ).tier
    assert (
        refusal(
            stubs.tier.CreateTier,
            tier_pb2.CreateTierRequest(
                request_id=rid(),
                tier=tier_pb2.Tier(name="重复", rank=rank, price_rate_bp=9500, points_multiplier_bp=10000),
            ),
        )[1]
        == "TIER_RANK_TAKEN"
    )
    _, _, violations = refusal(
        stubs.tier.CreateTier,
        tier_pb2.CreateTierRequest(
            request_id=rid(), tier=tier_pb2.Tier(name="坏", rank=1, price_rate_bp=0, points_multiplier_bp=-1)
        ),
    )
    assert set(violations) == {"tier.price_rate_bp", "tier.points_multiplier_bp"}
    member = stubs.register("升级")
    stubs.tier.AssignTier(
        tier_pb2.AssignTierRequest(
            request_id=rid(), member_id=member.member_id, tier_id=tier.tier_id, reason="HQ 调整", actor=ACTOR
        )
    )
    history = stubs.tier.ListTierHistory(tier_pb2.ListTierHistoryRequest(member_id=member.member_id)).tier_changes
    assert [(h.from_tier_id, h.to_tier_id) for h in history] == [("", tier.tier_id)]
    assert stubs.member.LookupMember(member_pb2.LookupMemberRequest(member_id=member.member_id)).tier.name == "金卡"


def test_list_pages_through_everything_and_rejects_bad_tokens(stubs):
    suffix_members = {stubs.register("分页").member_id for _ in range(5)}
    seen, token = [], ""
    while True:
        page = stubs.member.ListMembers(
            member_pb2.ListMembersRequest(filter={"name_contains": "分页"}, page_size=2, page_token=token)
        )
        seen += [m.member_id for m in page.members]
        token = page.next_page_token
        if not token:
            break
    assert suffix_members <= set(seen) and seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    assert refusal(stubs.member.ListMembers, member_pb2.ListMembersRequest(page_token="nonsense"))[2] == {
        "page_token": "PAGE_TOKEN_INVALID"
    }
    first = stubs.member.ListMembers(member_pb2.ListMembersRequest(filter={"name_contains": "分页"}, page_size=1))
    other_filter = member_pb2.ListMembersRequest(filter={"name_contains": "别的"}, page_token=first.next_page_token)
    assert refusal(stubs.member.ListMembers, other_filter)[2] == {"page_token": "PAGE_TOKEN_MISMATCH"}


def _csv(rows) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def test_import_csv_validates_rows_and_a_rerun_imports_nothing_twice(stubs):
    good = [new_phone() for _ in range(3)]
    content = _csv(
        [
            ["姓名", "手机", "性别", "生日", "门店"],
            ["甲", good[0], "女", "1990-05-17", STORE],
            ["乙", good[1], "男", "", ""],
            ["", "123", "?", "1990-13-01", ""],
            ["丙", good[0], "", "", ""],
            ["丁", good[2], "", "", f"{STORE}/pos-404"],
            ["戊", new_phone(), "", "", "hq/east/none-1"],
        ]
    )  # the till imports into its store only
    request = member_pb2.ImportMembersRequest(
        request_id=rid(), content=content, format=file_pb2.FILE_FORMAT_CSV, actor=ACTOR
    )
    result = stubs.member.ImportMembers(request)
    assert (result.total_rows, result.imported_rows, result.existing_rows, result.rejected_rows) == (6, 2, 0, 4)
    assert {(r.row_number, r.reason) for r in result.rejects} == {
        (4, "NAME_REQUIRED"),
        (4, "PHONE_INVALID"),
        (4, "GENDER_INVALID"),
        (4, "DATE_INVALID"),
        (5, "PHONE_DUPLICATE_IN_FILE"),
        (6, "ORG_NODE_NOT_FOUND"),
        (7, "HOME_STORE_OUT_OF_SCOPE"),
    }
    assert stubs.member.ImportMembers(request) == result  # replay of the same call
    rerun = stubs.member.ImportMembers(
        member_pb2.ImportMembersRequest(request_id=rid(), content=content, format=file_pb2.FILE_FORMAT_CSV, actor=ACTOR)
    )
    assert (rerun.imported_rows, rerun.existing_rows) == (0, 2)
    found = stubs.member.LookupMember(member_pb2.LookupMemberRequest(phone=good[0])).member
    assert found.channel == member_pb2.REGISTRATION_CHANNEL_BULK_IMPORT and found.birthday.year == 1990


def test_import_xlsx_and_export_both_formats(stubs):
    phone = new_phone()
    key = f"note_{rid()[:6]}".replace("-", "")
    stubs.member.CreateAttributeDefinition(
        member_pb2.CreateAttributeDefinitionRequest(
            request_id=rid(),
            attribute_definition={"key": key, "display_name": "备注", "type": member_pb2.ATTRIBUTE_TYPE_TEXT},
        )
    )
    book = Workbook()
    book.active.append(["name", "phone", "birthday", f"attr:{key}", "标签"])
    book.active.append(["Excel 会员", int(phone), "05-17", "喜欢绿茶", f"{key}、高频"])
    out = io.BytesIO()
    book.save(out)
    result = stubs.member.ImportMembers(
        member_pb2.ImportMembersRequest(
            request_id=rid(), content=out.getvalue(), format=file_pb2.FILE_FORMAT_XLSX, actor=ACTOR
        )
    )
    assert (result.imported_rows, result.rejected_rows) == (1, 0)
    found = stubs.member.LookupMember(member_pb2.LookupMemberRequest(phone=phone)).member
    assert found.attributes[key].text_value == "喜欢绿茶" and list(found.tags) == [key, "高频"]
    assert [
        m.phone
        for m in stubs.member.ListMembers(
            member_pb2.ListMembersRequest(filter=member_pb2.MemberFilter(tag=key))
        ).members
    ] == [phone]  # an imported member's tags select it too
    rank = 100 + int(rid()[:3], 16) % 900
    tier = stubs.tier.CreateTier(
        tier_pb2.CreateTierRequest(
            request_id=rid(),
            tier=tier_pb2.Tier(name=f"银卡{rank}", rank=rank, price_rate_bp=9800, points_multiplier_bp=10000),
        )
    ).tier
    stubs.tier.AssignTier(
        tier_pb2.AssignTierRequest(
            request_id=rid(), member_id=found.member_id, tier_id=tier.tier_id, reason="导出", actor=ACTOR
        )
    )
    exported = b"".join(
        c.chunk
        for c in stubs.member.ExportMembers(
            member_pb2.ExportMembersRequest(filter={"phone_suffix": phone}, format=file_pb2.FILE_FORMAT_CSV)
        )
    )
    rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"), newline="")))
    assert (
        rows[0]
        == [
            "会员号",
            "姓名",
            "手机",
            "性别",
            "生日",
            "纪念日",
            "所属门店",
            "门店编码",
            "等级",
            "注册渠道",
            "注册时间",
            "营销同意",
            "标签",
        ]
        and len(rows) == 2
    )
    when = local(found.create_time.ToDatetime(tzinfo=UTC))
    assert rows[1] == [
        found.member_id,
        "Excel 会员",
        phone,
        "",
        "05-17",
        "",
        "SH-001",
        STORE,
        f"银卡{rank}",
        "批量导入",
        f"{when:%Y-%m-%d %H:%M:%S}",
        "否",
        f"{key}、高频",
    ]  # names, not ids; a day with no year as text
    xlsx = b"".join(
        c.chunk
        for c in stubs.member.ExportMembers(
            member_pb2.ExportMembersRequest(filter={"phone_suffix": phone}, format=file_pb2.FILE_FORMAT_XLSX)
        )
    )
    sheet = load_workbook(io.BytesIO(xlsx)).worksheets[0]
    header, row = list(sheet.iter_rows())
    assert sheet.title == "会员" and [c.value for c in header] == rows[0] and sheet.freeze_panes == "A2"
    assert [c.value for c in row if c.column not in (11,)] == [v or None for i, v in enumerate(rows[1]) if i != 10]
    registered = row[10]
    assert registered.is_date and registered.number_format == "yyyy-mm-dd hh:mm:ss"
    assert registered.value == when.replace(tzinfo=None, microsecond=0)  # the chain's clock, to the second
    assert row[2].data_type == "s"  # a phone stays text: 13800000000, not 1.38E+10
    # with a year, a birthday is an Excel date; and the file imports again as it came out
    dated = stubs.register(
        "有生日", birthday=date_pb2.Date(year=1990, month=5, day=17), gender=member_pb2.GENDER_FEMALE
    )
    dated_xlsx = b"".join(
        c.chunk
        for c in stubs.member.ExportMembers(
            member_pb2.ExportMembersRequest(filter={"phone_suffix": dated.phone}, format=file_pb2.FILE_FORMAT_XLSX)
        )
    )
    row = list(load_workbook(io.BytesIO(dated_xlsx)).worksheets[0].iter_rows())[1]
    assert (row[4].value, row[4].number_format, row[3].value) == (datetime(1990, 5, 17), "yyyy-mm-dd", "女")
    for content, file_format in ((exported, file_pb2.FILE_FORMAT_CSV), (dated_xlsx, file_pb2.FILE_FORMAT_XLSX)):
        again = stubs.member.ImportMembers(
            member_pb2.ImportMembersRequest(request_id=rid(), content=content, format=file_format, actor=ACTOR)
        )
        assert (again.existing_rows, again.rejected_rows) == (1, 0)  # every column read, none refused
    bad = member_pb2.ImportMembersRequest(
        request_id=rid(), content=b"not,a\nheader,file\n", format=file_pb2.FILE_FORMAT_CSV, actor=ACTOR
    )
    assert refusal(stubs.member.ImportMembers, bad)[2] == {"content": "HEADER_INVALID"}


def test_member_list_shows_each_member_s_tier(stubs, member_service, monkeypatch, capsys):
    from huiyuan_cli import cli

    rank = 100 + int(rid()[:3], 16) % 900
    tier = stubs.tier.CreateTier(
        tier_pb2.CreateTierRequest(
            request_id=rid(),
            tier=tier_pb2.Tier(name=f"铂金{rank}", rank=rank, price_rate_bp=9000, points_multiplier_bp=20000),
        )
    ).tier
    gold, plain = stubs.register("列表金卡"), stubs.register("列表普通")
    stubs.tier.AssignTier(
        tier_pb2.AssignTierRequest(
            request_id=rid(), member_id=gold.member_id, tier_id=tier.tier_id, reason="列表", actor=ACTOR
        )
    )
    from huiyuan.runtime import service_auth
    from tests.conftest import KEYS

    monkeypatch.setenv("HUIYUAN_MEMBER_ADDR", member_service.app.address)
    monkeypatch.setenv("HUIYUAN_IDENTITY_KEY_FILE", str(KEYS.private_key(service_auth.OPERATOR)))  # as an operator
    assert cli.main(["member", "list", "--org", STORE, "--limit", "500"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[
        listed.index(f"列表金卡  {gold.phone[:3]}****{gold.phone[-4:]}  会员号 {gold.member_id}") + 1
    ].startswith(f"  所属门店 {STORE}   等级 铂金{rank}   注册于 ")
    assert listed[
        listed.index(f"列表普通  {plain.phone[:3]}****{plain.phone[-4:]}  会员号 {plain.member_id}") + 1
    ].startswith(f"  所属门店 {STORE}   等级 -   注册于 ")


def test_record_visit_is_idempotent_by_order(stubs):
    member = stubs.register("常客")
    visit = dict(member_id=member.member_id, store_path=STORE, amount_fen=12_345)
    stubs.member.RecordVisit(
        member_pb2.RecordVisitRequest(request_id=rid(), order_id="o-1-" + member.member_id, **visit)
    )
    stats = stubs.member.RecordVisit(
        member_pb2.RecordVisitRequest(request_id=rid(), order_id="o-1-" + member.member_id, **visit)
    ).stats
    assert (stats.visit_count, stats.total_spend_fen) == (1, 12_345)
    stats = stubs.member.RecordVisit(
        member_pb2.RecordVisitRequest(request_id=rid(), order_id="o-2-" + member.member_id, **visit)
    ).stats
    assert (stats.visit_count, stats.total_spend_fen, stats.stores[0].store_path) == (2, 24_690, STORE)
    bad = member_pb2.RecordVisitRequest(
        request_id=rid(), order_id="", member_id=member.member_id, store_path="Bad Path", amount_fen=-1
    )
    assert set(refusal(stubs.member.RecordVisit, bad)[2]) == {"order_id", "store_path", "amount_fen"}


def test_org_tree_rules(stubs):
    misplaced = org_pb2.CreateOrgNodeRequest(
        request_id=rid(),
        parent_path="hq",
        org_node=org_pb2.OrgNode(code="pos-x", name="x", kind=org_pb2.ORG_NODE_KIND_TERMINAL),
    )
    assert refusal(stubs.org.CreateOrgNode, misplaced)[1] == "ORG_KIND_MISPLACED"
    bad = org_pb2.CreateOrgNodeRequest(
        request_id=rid(),
        parent_path="hq",
        org_node=org_pb2.OrgNode(code="Bad Code", name="x", kind=7, time_zone="Mars/Base"),
    )
    assert set(refusal(stubs.org.CreateOrgNode, bad)[2]) == {"org_node.code", "org_node.kind", "org_node.time_zone"}
    nodes = stubs.org.ListOrgNodes(org_pb2.ListOrgNodesRequest(under_path="hq/east")).org_nodes
    assert [n.path for n in nodes][:2] == ["hq/east", "hq/east/sh-001"]
