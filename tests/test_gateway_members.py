"""A back office's member file through the gateway, with the member service's own stubs:
a region finds, opens and exports its members (to CSV and to an XLSX Excel opens) and
nobody else's; a member registered by one region and homed in another is read by both
and changed only by the home region; a file of members imported by a region is
registered at the region's node, once; a tier assigned by the member's region; the
members to remind of expiring points their region's stores gave; a store's members to
remember (会员关怀: birthdays, anniversaries, who stopped coming)."""

import csv
import io
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from openpyxl import load_workbook
from sqlalchemy import update

from huiyuan.common.v1 import actor_pb2, file_pb2
from huiyuan.database.engines import make_sync_engine
from huiyuan.gateway.v1 import gateway_pb2
from huiyuan.member.v1 import card_pb2, card_pb2_grpc, member_pb2, member_pb2_grpc, tier_pb2, tier_pb2_grpc
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from services.points.storage.tables import lots
from tests.support import STORE, Stubs, new_phone, pos_args, refusal_of as refused_of, rid
from tests.test_gateway import as_, chain, code_and_reason as refused, issue  # noqa: F401 - chain is the fixture these tests share
from tests.test_gateway_config import EAST, GZ, HQ, REGION, SOUTH, STORE_MANAGER, office  # noqa: F401
from tests.test_gateway_counter import new_card

CSV, XLSX = file_pb2.FILE_FORMAT_CSV, file_pb2.FILE_FORMAT_XLSX
DENIED = (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
UNSEEN = (grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND")


@pytest.fixture(scope="module")
def marked(office, member_service):
    """A tag carried by one member of each region and by a member registered at the east's
    store but homed in the south, so that a list by the tag is exactly these three."""
    tag = f"t{rid()[:8]}"
    stubs = Stubs(member_service.channel)

    def register(name, at, home):
        return stubs.member.RegisterMember(
            member_pb2.RegisterMemberRequest(
                request_id=rid(),
                channel=member_pb2.REGISTRATION_CHANNEL_STORE,
                actor=actor_pb2.Actor(operator_id="t", org_path=at),
                member=member_pb2.Member(name=name, phone=new_phone(), home_store_path=home, tags=[tag]),
            )
        ).member

    return tag, {
        "east": register("东区会员", STORE, STORE),
        "south": register("华南会员", GZ, GZ),
        "moved": register("东区开卡华南常住", STORE, GZ),
    }


def _export(members, tag, key, file_format=CSV, org_path=""):
    return b"".join(
        chunk.chunk
        for chunk in members.ExportMembers(
            member_pb2.ExportMembersRequest(
                filter=member_pb2.MemberFilter(tag=tag, org_path=org_path), format=file_format
            ),
            metadata=as_(key),
        )
    )


def test_a_region_finds_opens_and_exports_its_members_and_nobody_else_s(office, marked):
    stub, keys, _ = office
    tag, people = marked
    members = member_pb2_grpc.MemberServiceStub(stub.channel)  # the member service's stub, aimed at the gateway
    by_tag = member_pb2.ListMembersRequest(filter=member_pb2.MemberFilter(tag=tag))

    ids = {who: m.member_id for who, m in people.items()}

    def listed(key, org_path=""):
        request = member_pb2.ListMembersRequest(filter=member_pb2.MemberFilter(tag=tag, org_path=org_path))
        return {m.member_id for m in members.ListMembers(request, metadata=as_(key)).members}

    assert listed(keys[REGION]) == {ids["east"], ids["moved"]}  # an empty filter is the caller's node
    assert listed(keys[STORE_MANAGER]) == {ids["east"], ids["moved"]}
    assert listed(keys[HQ]) == set(ids.values())
    assert listed(keys[HQ], SOUTH) == {ids["south"], ids["moved"]}
    assert (
        refused(
            members.ListMembers,
            member_pb2.ListMembersRequest(filter=member_pb2.MemberFilter(tag=tag, org_path=SOUTH)),
            keys[REGION],
        )
        == DENIED
    )
    assert refused(members.ListMembers, by_tag) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIAL_REQUIRED")

    opened = members.GetMember(
        member_pb2.GetMemberRequest(member_id=people["east"].member_id), metadata=as_(keys[REGION])
    )
    assert opened.member.phone == people["east"].phone
    assert (
        refused(members.GetMember, member_pb2.GetMemberRequest(member_id=people["south"].member_id), keys[REGION])
        == UNSEEN
    )  # as a member who does not exist
    assert refused(members.GetMember, member_pb2.GetMemberRequest(member_id="m_nobody"), keys[REGION]) == UNSEEN

    rows = list(csv.reader(io.StringIO(_export(members, tag, keys[REGION]).decode("utf-8-sig"))))
    assert rows[0][:3] == ["会员号", "姓名", "手机"]
    assert {row[0] for row in rows[1:]} == {ids["east"], ids["moved"]}
    book = load_workbook(io.BytesIO(_export(members, tag, keys[HQ], XLSX)), read_only=True)
    sheet = [list(row) for row in book.active.iter_rows(values_only=True)]
    assert sheet[0][:3] == ["会员号", "姓名", "手机"] and len(sheet) == 4  # the header and all three
    assert (
        refused(
            lambda request, **kw: list(members.ExportMembers(request, **kw)),
            member_pb2.ExportMembersRequest(filter=member_pb2.MemberFilter(tag=tag, org_path=SOUTH), format=CSV),
            keys[REGION],
        )
        == DENIED
    )


def test_a_member_registered_in_one_region_and_homed_in_another_is_read_by_both_changed_by_home(
    office, marked, member_service, wallet_service
):
    stub, keys, _ = office
    _, people = marked
    moved = people["moved"].member_id
    number = new_card(member_service, moved, STORE)
    Stubs(member_service.channel).card.ReportCardLost(
        card_pb2.ReportCardLostRequest(
            request_id=rid(),
            card_number=number,
            reason="钱包丢失",
            actor=actor_pb2.Actor(operator_id="c-9", org_path=GZ),
        )
    )
    wallet_pb2_grpc.WalletServiceStub(wallet_service.channel).TopUp(
        wallet_pb2.TopUpRequest(
            request_id=rid(),
            member_id=moved,
            amount_fen=30_00,
            tender=wallet_pb2.TENDER_CASH,
            store_path=STORE,
            actor=actor_pb2.Actor(operator_id="t", org_path=STORE),
        )
    )
    members = member_pb2_grpc.MemberServiceStub(stub.channel)
    east, hq = as_(keys[REGION]), as_(keys[HQ])

    assert members.GetMember(member_pb2.GetMemberRequest(member_id=moved), metadata=east).member.home_store_path == GZ
    cards = (
        card_pb2_grpc.CardServiceStub(stub.channel)
        .ListCards(card_pb2.ListCardsRequest(member_id=moved), metadata=east)
        .cards
    )
    assert len(cards) == 1 and cards[0].member_id == moved
    card_service = card_pb2_grpc.CardServiceStub(stub.channel)
    assert card_service.GetCard(card_pb2.GetCardRequest(card_number=number), metadata=east).card.state == (
        card_pb2.CARD_STATE_LOST
    )
    events = card_service.ListCardEvents(card_pb2.ListCardEventsRequest(card_number=number), metadata=east).card_events
    assert [(e.action, e.reason, e.operator_id, e.org_path) for e in events][1:] == [
        (card_pb2.CARD_ACTION_REPORT_LOST, "钱包丢失", "c-9", GZ)
    ]  # who reported it, where, why
    south_card = new_card(member_service, people["south"].member_id, GZ)
    assert (
        refused(card_service.ListCardEvents, card_pb2.ListCardEventsRequest(card_number=south_card), keys[REGION])
        == refused(card_service.GetCard, card_pb2.GetCardRequest(card_number="88000000000001"), keys[REGION])
        == (grpc.StatusCode.NOT_FOUND, "CARD_NOT_FOUND")
    )
    statement = (
        wallet_pb2_grpc.WalletServiceStub(stub.channel)
        .ListEntries(wallet_pb2.ListEntriesRequest(member_id=moved), metadata=east)
        .entries
    )
    assert [(e.principal_delta_fen, e.balance_after_fen) for e in statement] == [(30_00, 30_00)]
    assert (
        members.GetVisitStats(member_pb2.GetVisitStatsRequest(member_id=moved), metadata=east).stats.member_id == moved
    )

    rename = member_pb2.UpdateMemberRequest(
        request_id=rid(),
        member=member_pb2.Member(member_id=moved, name="改名"),
        update_mask={"paths": ["name"]},
        actor=actor_pb2.Actor(operator_id="t", org_path=EAST),
    )
    assert refused(members.UpdateMember, rename, keys[REGION]) == DENIED  # seen from the east, changed from the south
    assert members.UpdateMember(rename, metadata=hq).member.name == "改名"
    assert members.GetMember(member_pb2.GetMemberRequest(member_id=moved), metadata=east).member.name == "改名"


def test_a_region_imports_a_file_of_members_registered_at_its_node_once(office, member_service):
    stub, keys, _ = office
    members = member_pb2_grpc.MemberServiceStub(stub.channel)
    phones = [new_phone(), new_phone()]
    content = f"姓名,手机,门店\n导入甲,{phones[0]},{STORE}\n导入乙,{phones[1]},\n,123,\n".encode("utf-8-sig")
    request = member_pb2.ImportMembersRequest(
        request_id=rid(), content=content, format=CSV, actor=actor_pb2.Actor(operator_id="claimed", org_path="hq")
    )  # the gateway stamps the key's node
    assert refused(members.ImportMembers, request, keys[STORE_MANAGER]) == DENIED  # HQ's and the regions'
    result = members.ImportMembers(request, metadata=as_(keys[REGION]))
    assert (result.total_rows, result.imported_rows, result.rejected_rows) == (3, 2, 1)
    assert members.ImportMembers(request, metadata=as_(keys[REGION])) == result  # a retry imports nothing twice
    found = [
        Stubs(member_service.channel).member.LookupMember(member_pb2.LookupMemberRequest(phone=p)).member
        for p in phones
    ]
    assert [(m.channel, m.registered_org_path) for m in found] == [
        (member_pb2.REGISTRATION_CHANNEL_BULK_IMPORT, EAST)
    ] * 2
    assert [m.home_store_path for m in found] == [STORE, ""]  # a region is no store: the second has none yet
    again = members.ImportMembers(
        member_pb2.ImportMembersRequest(request_id=rid(), content=content, format=CSV), metadata=as_(keys[REGION])
    )
    assert (again.imported_rows, again.existing_rows) == (0, 2)  # the same file as a new call: phones known

    # The one with no home store is the importing region's: it gives them one, another region may not.
    homeless = found[1].member_id
    home = member_pb2.UpdateMemberRequest(
        request_id=rid(),
        member=member_pb2.Member(member_id=homeless, home_store_path=STORE),
        update_mask={"paths": ["home_store_path"]},
    )
    south = issue(stub, keys[HQ], SOUTH, REGION).api_key
    assert refused(members.UpdateMember, home, south) == UNSEEN
    assert refused(members.UpdateMember, home, keys[STORE_MANAGER]) == DENIED  # a store reads them, changes its own
    assert members.UpdateMember(home, metadata=as_(keys[REGION])).member.home_store_path == STORE


def test_a_tier_is_assigned_by_the_member_s_region_and_its_history_read(office, marked, member_service):
    stub, keys, _ = office
    _, people = marked
    stubs = Stubs(member_service.channel)
    taken = {t.rank for t in stubs.tier.ListTiers(tier_pb2.ListTiersRequest()).tiers}
    tier = stubs.tier.CreateTier(
        tier_pb2.CreateTierRequest(
            request_id=rid(),
            tier=tier_pb2.Tier(
                name="区域金卡", rank=max(set(range(1_001)) - taken), price_rate_bp=9_500, points_multiplier_bp=12_000
            ),
        )
    ).tier
    tiers = tier_pb2_grpc.TierServiceStub(stub.channel)

    def assign(member):
        return tier_pb2.AssignTierRequest(
            request_id=rid(), member_id=member.member_id, tier_id=tier.tier_id, reason="区域活动升级"
        )

    assert refused(tiers.AssignTier, assign(people["south"]), keys[REGION]) == UNSEEN
    assert refused(tiers.AssignTier, assign(people["moved"]), keys[REGION]) == DENIED
    assert refused(tiers.AssignTier, assign(people["east"]), keys[STORE_MANAGER]) == DENIED  # HQ's and the regions'
    change = tiers.AssignTier(assign(people["east"]), metadata=as_(keys[REGION])).tier_change
    assert change.to_tier_id == tier.tier_id and change.operator_id.startswith("key:")  # the credential, not a claim
    history = tiers.ListTierHistory(
        tier_pb2.ListTierHistoryRequest(member_id=people["east"].member_id), metadata=as_(keys[STORE_MANAGER])
    ).tier_changes
    assert [h.to_tier_id for h in history] == [tier.tier_id]


def test_a_region_lists_the_members_to_remind_of_points_its_stores_gave(office, marked, points_service):
    stub, keys, _ = office
    _, people = marked
    points = points_pb2_grpc.PointsServiceStub(points_service.channel)
    for who, store in (("east", STORE), ("south", GZ)):
        points.Grant(
            points_pb2.GrantRequest(
                request_id=rid(),
                member_id=people[who].member_id,
                points=50,
                source=points_pb2.LOT_SOURCE_SIGN_UP,
                store_path=store,
            )
        )
    engine = make_sync_engine(points_service.settings.database_url, "points")
    with engine.begin() as db:  # granted long ago: they expire in a week
        db.execute(
            update(lots)
            .where(lots.c.member_id.in_([people["east"].member_id, people["south"].member_id]))
            .values(expire_time=datetime.now(UTC) + timedelta(days=7))
        )
    engine.dispose()
    reminders = points_pb2_grpc.PointsServiceStub(stub.channel)
    within = Duration(seconds=10 * 86400)

    def listed(key, org_path=""):
        request = points_pb2.ListExpiringMembersRequest(within=within, org_path=org_path, page_size=1000)
        return {m.member_id: m.points for m in reminders.ListExpiringMembers(request, metadata=as_(key)).members}

    east = listed(keys[REGION])
    assert east.get(people["east"].member_id) == 50 and people["south"].member_id not in east
    assert listed(keys[HQ], SOUTH).get(people["south"].member_id) == 50
    assert (
        refused(
            reminders.ListExpiringMembers,
            points_pb2.ListExpiringMembersRequest(within=within, org_path=SOUTH),
            keys[REGION],
        )
        == DENIED
    )


def test_the_pos_command_exports_and_imports_members(office, marked, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HUIYUAN_LANG", "en")  # what it prints in English (Chinese by default)
    from huiyuan_cli import pos

    stub, keys, _ = office
    tag, people = marked
    monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", stub.address)

    def run(*words, key):
        assert pos.run(pos_args(*words, "--key", key)) == 0
        return capsys.readouterr().out

    out = tmp_path / "members.xlsx"
    assert run("export-members", "--tag", tag, "--out", str(out), key=keys[STORE_MANAGER]).startswith(f"wrote {out} (")
    sheet = list(load_workbook(out, read_only=True).active.iter_rows(values_only=True))
    assert {row[0] for row in sheet[1:]} == {people["east"].member_id, people["moved"].member_id}  # not the south's
    with pytest.raises(grpc.RpcError) as caught:
        run("export-members", "--org", SOUTH, "--out", str(out), key=keys[STORE_MANAGER])
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    phone = new_phone()
    (tmp_path / "new.csv").write_text(f"姓名,手机\n新会员,{phone}\n坏行,12\n", encoding="utf-8")
    report = run("import-members", "--file", str(tmp_path / "new.csv"), key=keys[REGION]).splitlines()
    assert report[0] == "2 rows: 1 imported, 0 already members, 1 rejected"
    assert report[1].startswith("  row 3  phone  PHONE_INVALID  ")
    assert run("import-members", "--file", str(tmp_path / "new.csv"), key=keys[REGION]).splitlines()[0] == (
        "2 rows: 0 imported, 1 already members, 1 rejected"
    )
    with pytest.raises(SystemExit, match="needs --file"):
        run("import-members", key=keys[REGION])


def test_a_store_remembers_its_members_days_and_who_stopped_coming_not_another_region_s(
    office, member_service, monkeypatch, capsys, tmp_path
):
    monkeypatch.setenv("HUIYUAN_LANG", "en")  # what it prints in English (Chinese by default)
    from huiyuan.runtime.business_time import CHAIN_ZONE
    from huiyuan_cli import pos

    stub, keys, ids_by_field = office
    monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", stub.address)
    stubs = Stubs(member_service.channel)
    today = datetime.now(CHAIN_ZONE).date()
    tomorrow = today + timedelta(days=1)

    def register(name, at, consent, **days):
        return stubs.member.RegisterMember(
            member_pb2.RegisterMemberRequest(
                request_id=rid(),
                channel=member_pb2.REGISTRATION_CHANNEL_STORE,
                actor=actor_pb2.Actor(operator_id="t", org_path=at),
                member=member_pb2.Member(
                    name=name,
                    phone=new_phone(),
                    marketing_consent=consent,
                    **{k: {"year": 0, "month": d.month, "day": d.day} for k, d in days.items()},
                ),
            )
        ).member

    born = register(f"寿星{rid()[:4]}", STORE, True, birthday=today)
    wed = register(f"纪念{rid()[:4]}", STORE, False, anniversary=tomorrow)
    south = register(f"华南寿星{rid()[:4]}", GZ, True, birthday=today)

    def run(*words, key):
        assert pos.run(pos_args(*words, "--key", key)) == 0
        return capsys.readouterr().out

    lines = run("care", "--days", "2", "--limit", "500", key=keys[STORE_MANAGER]).splitlines()
    births = lines[1 : lines.index(next(line for line in lines if line.startswith("纪念日")))]
    assert f"  {today:%m-%d}  {born.name}  {born.phone}  {STORE}" in births
    assert not any(south.name in line for line in lines)  # the south's members are not the east store's
    assert f"  {tomorrow:%m-%d}  {wed.name}  {wed.phone}  {STORE}  勿营销" in lines  # declined marketing
    assert lines[0] == f"生日 (birthdays), 2 days from {today:%m-%d}" and any(
        line.startswith("沉睡 (no visit for 90 days") for line in lines
    )
    out = tmp_path / "birthdays.csv"
    run("export-members", "--birthday-days", "1", "--format", "csv", "--out", str(out), key=keys[STORE_MANAGER])
    exported = {row[0] for row in csv.reader(io.StringIO(out.read_text("utf-8-sig")))}
    assert born.member_id in exported and wed.member_id not in exported and south.member_id not in exported
    with pytest.raises(SystemExit, match="366"):
        run("care", "--days", "0", key=keys[STORE_MANAGER])

    def segment(first, last):  # birthday coupons go to the members the same filter selects
        return stub.IssueSegmentCoupons(
            gateway_pb2.IssueSegmentCouponsRequest(
                request_id=rid(),
                template_id=ids_by_field["template_id"][EAST],
                validate_only=True,
                segment=member_pb2.MemberFilter(
                    name_contains=born.name,
                    birthday_in=member_pb2.DaySpan(
                        first_day={"month": first.month, "day": first.day},
                        last_day={"month": last.month, "day": last.day},
                    ),
                ),
            ),
            metadata=as_(keys[REGION]),
        ).member_count

    assert (segment(today, today), segment(tomorrow, tomorrow)) == (1, 0)
    with pytest.raises(SystemExit, match="0 or more"):
        run("care", "--dormant-days", "-1", key=keys[STORE_MANAGER])

    # 回访: the call made is kept, for the next one who calls; a marketing call needs consent
    called = run(
        "contact",
        "--phone",
        born.phone,
        "--via",
        "phone",
        "--topic",
        "birthday",
        "--note",
        "已致电祝福",
        key=keys[STORE_MANAGER],
    )
    assert called.startswith("recorded cc_") and called.rstrip().endswith(f"{born.name}  phone birthday")
    read = run("contacts", "--phone", born.phone, key=keys[REGION]).splitlines()  # the region reads it too
    assert read[0] == f"{born.name}  {born.phone}" and len(read) == 2
    when, channel, topic, where, who, note = read[1].split(None, 1)[1].split()  # after the date
    assert (channel, topic, where, note) == ("phone", "birthday", STORE, "已致电祝福") and who.startswith("key:")
    with pytest.raises(grpc.RpcError) as declined:
        run("contact", "--phone", wed.phone, "--via", "sms", "--topic", "anniversary", key=keys[STORE_MANAGER])
    assert refused_of(declined.value)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "MARKETING_DECLINED")
    assert run("contacts", "--phone", wed.phone, key=keys[STORE_MANAGER]).splitlines() == [
        f"{wed.name}  {wed.phone}  勿营销",
        "  no contacts yet",
    ]
    with pytest.raises(SystemExit, match="no member"):  # the south's member is not the east store's to call
        run("contact", "--phone", south.phone, key=keys[STORE_MANAGER])
