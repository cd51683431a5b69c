"""`huiyuan pos` for a back office's files: the members under a node exported for Excel
and a file of members imported, through the gateway with the member service's own stub
within the key's scope (gateway/passthrough.py); a company's file of top-ups loaded
(gateway/batches.py); a store's day (日结) and what each tender took; the members to
remember (会员关怀): birthdays, anniversaries, and those who stopped coming, and the
contacts made with them (回访记录)."""

from datetime import datetime, timedelta
from pathlib import Path

from huiyuan.pos_retry import change
from huiyuan.runtime.clock import CHAIN_ZONE
from huiyuan.runtime.convert import enum_word
from huiyuan.runtime.money import yuan


def file_format(xlsx: bool):
    """The contracts' FileFormat: XLSX, or CSV."""
    from huiyuan.common.v1 import file_pb2

    return file_pb2.FILE_FORMAT_XLSX if xlsx else file_pb2.FILE_FORMAT_CSV


def save_file(chunks, out: str) -> None:
    """An export streamed in chunks, written to out (default: the name the gateway suggests)."""
    first = next(chunks)
    path = Path(out or first.file_name)
    with path.open("wb") as file:
        file.write(first.chunk)
        for chunk in chunks:
            file.write(chunk.chunk)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")


def export_members(channel, auth, args) -> None:
    """The members registered or homed under --org (default: the key's node), perhaps
    only those with --tag."""
    from huiyuan.member.v1 import member_pb2, member_pb2_grpc

    members = member_pb2_grpc.MemberServiceStub(channel)
    chosen = member_pb2.MemberFilter(org_path=args.org, tag=args.tag)
    today = datetime.now(CHAIN_ZONE)
    if args.birthday_days:
        chosen.birthday_in.CopyFrom(coming_days(today, args.birthday_days))
    if args.anniversary_days:
        chosen.anniversary_in.CopyFrom(coming_days(today, args.anniversary_days))
    if args.dormant_days:
        chosen.no_visit_since.FromDatetime(today - timedelta(days=_at_least_0(args.dormant_days)))
    request = member_pb2.ExportMembersRequest(filter=chosen, format=file_format(args.format == "xlsx"))
    save_file(members.ExportMembers(request, metadata=auth, timeout=600), args.out)


def coming_days(today: datetime, days: int):
    """The DaySpan of today and the days - 1 after it (a year at most)."""
    from google.type import date_pb2

    from huiyuan.member.v1 import member_pb2

    if not 1 <= days <= 366:
        raise SystemExit(f"{days} days: say 1 (today) to 366 (a year)")
    last = today + timedelta(days=min(days, 365) - 1)
    return member_pb2.DaySpan(first_day=date_pb2.Date(month=today.month, day=today.day),
                              last_day=date_pb2.Date(month=last.month, day=last.day))


def _at_least_0(days: int) -> int:
    if days < 0:
        raise SystemExit(f"--dormant-days {days}: say how many days back, 0 or more")
    return days


def care(channel, auth, args) -> None:
    """会员关怀 under --org (default: the key's node): the birthdays and anniversaries of
    the coming --days (today included), and the members who have not come for
    --dormant-days, --limit of each. Members who declined marketing are marked 勿营销:
    greet them at the till, do not call them."""
    from huiyuan.member.v1 import member_pb2, member_pb2_grpc

    members = member_pb2_grpc.MemberServiceStub(channel)
    today = datetime.now(CHAIN_ZONE)
    span = coming_days(today, args.days)
    dormant_days = 90 if args.dormant_days is None else _at_least_0(args.dormant_days)
    asleep = today - timedelta(days=dormant_days)
    sections = [(f"生日 (birthdays), {args.days} days from {today:%m-%d}", "birthday",
                 member_pb2.MemberFilter(org_path=args.org, birthday_in=span)),
                (f"纪念日 (anniversaries), {args.days} days from {today:%m-%d}", "anniversary",
                 member_pb2.MemberFilter(org_path=args.org, anniversary_in=span)),
                (f"沉睡 (no visit for {dormant_days} days, since {asleep:%Y-%m-%d})", "",
                 member_pb2.MemberFilter(org_path=args.org, no_visit_since=_timestamp(asleep)))]
    for title, day_field, chosen in sections:
        found = members.ListMembers(member_pb2.ListMembersRequest(filter=chosen, page_size=args.limit),
                                    metadata=auth, timeout=30)
        print(title)
        for m in sorted(found.members, key=lambda m: _day_of(m, day_field)):
            day = f"{_day_of(m, day_field)}  " if day_field else ""
            print(f"  {day}{m.name}  {m.phone}  {m.home_store_path}" + ("" if m.marketing_consent else "  勿营销"))
        if not found.members:
            print("  none")
        elif found.next_page_token:
            print(f"  ... more than {args.limit}: export-members with --birthday-days, --anniversary-days or "
                  "--dormant-days lists them all")


def _day_of(member, day_field: str) -> str:
    if not day_field:
        return ""
    kept = getattr(member, day_field)
    return f"{kept.month:02d}-{kept.day:02d}"


def _timestamp(moment: datetime):
    from google.protobuf import timestamp_pb2

    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def import_members(channel, auth, args) -> None:
    """A CSV or XLSX file of members (姓名, 手机, ... as the member service reads them),
    registered at the key's node; rows already registered are left alone."""
    from huiyuan.member.v1 import member_pb2, member_pb2_grpc

    if not args.file:
        raise SystemExit("import-members needs --file, a .csv or .xlsx with a header row (姓名,手机,...)")
    path = Path(args.file)
    members = member_pb2_grpc.MemberServiceStub(channel)
    done = change(members.ImportMembers, member_pb2.ImportMembersRequest(
        request_id=args.request_id, content=path.read_bytes(), format=file_format(path.suffix.lower() == ".xlsx")),
        metadata=auth, timeout=600)
    print(f"{done.total_rows} rows: {done.imported_rows} imported, {done.existing_rows} already members, "
          f"{done.rejected_rows} rejected")
    for reject in done.rejects:
        print(f"  row {reject.row_number}  {reject.field}  {reject.reason}  {reject.message}")


def batch_top_up(gateway, auth, args) -> None:
    """A company's CSV or XLSX of members (手机 or 会员号) and amounts (金额(分)), loaded at
    the key's store, or --store for a region's or HQ's key; the report's rejected rows."""
    from huiyuan.gateway.v1 import gateway_pb2 as pb

    if not (args.file and args.batch):
        raise SystemExit("batch-top-up needs --file and --batch (the company's id for this batch)")
    path = Path(args.file)
    done = change(gateway.BatchTopUp, pb.BatchTopUpRequest(
        request_id=args.request_id, batch_id=args.batch, content=path.read_bytes(), store_path=args.store,
        format=file_format(path.suffix.lower() == ".xlsx")), metadata=auth, timeout=600)
    bonus = f" + bonus {yuan(done.bonus_fen)}" if done.bonus_fen else ""
    print(f"{done.applied_rows + done.rejected_rows} rows: {done.applied_rows} applied ({yuan(done.total_fen)}{bonus}), "
          f"{done.rejected_rows} rejected")
    for row in done.rows:
        if row.reject_reason:
            print(f"  row {row.row_number}  {row.reject_reason}  {yuan(row.amount_fen)}")


def day_summary(gateway, auth, args) -> None:
    """A store's day (日结): the key's store, or --store for a region's or HQ's key; today
    unless --date. The takings are what each tender's drawer or statement should show."""
    from google.type import date_pb2

    from huiyuan.gateway.v1 import gateway_pb2 as pb

    day = args.day or datetime.now(CHAIN_ZONE).date()
    d = gateway.GetStoreDailySummary(pb.GetStoreDailySummaryRequest(
        store_path=args.store, date=date_pb2.Date(year=day.year, month=day.month, day=day.day)),
        metadata=auth, timeout=30)
    print(f"{d.store_path}  {day:%Y-%m-%d}")
    print(f"  orders {d.orders}  sales {yuan(d.sales_fen)}  discounts {yuan(d.discount_fen)}")
    print(f"  stored value loaded {yuan(d.top_up_fen)} (+ bonus {yuan(d.top_up_bonus_fen)}), "
          f"spent {yuan(d.stored_value_spent_fen)}")
    print(f"  points earned {d.points_earned}, spent {d.points_spent}  new members {d.new_members}")
    if d.count_card_sold_fen or d.count_card_used_fen:
        print(f"  count cards sold {yuan(d.count_card_sold_fen)} (net of refunds), uses punched {yuan(d.count_card_used_fen)}")
    # A count card column only on a day that sold one: most stores sell none.
    cards = any(t.count_card_fen for t in d.takings)
    if d.takings:
        print(f"  {'takings':<12}{'sales':>12}{'top-ups':>12}" + (f"{'count cards':>13}" if cards else "")
              + f"{'refunded':>12}{'net':>12}")
    for t in d.takings:
        print(f"  {enum_word(pb.TenderKind, t.kind):<12}{yuan(t.sales_fen):>12}{yuan(t.top_up_fen):>12}"
              + (f"{yuan(t.count_card_fen):>13}" if cards else "") + f"{yuan(t.refunded_fen):>12}{yuan(t.net_fen):>12}")
    if d.enterprise_top_up_fen or d.online_top_up_fen:
        print(f"  not at a till: companies' batches {yuan(d.enterprise_top_up_fen)}, online {yuan(d.online_top_up_fen)}")


CARE_CHANNELS = {"phone": "PHONE", "sms": "SMS", "wechat": "WECHAT", "in-store": "IN_STORE"}
CARE_TOPICS = {"birthday": "BIRTHDAY", "anniversary": "ANNIVERSARY", "win-back": "WIN_BACK", "follow-up": "FOLLOW_UP"}


def _member_by_phone(channel, auth, phone: str):
    """The member with this phone, among those the key's offices see."""
    from huiyuan.member.v1 import member_pb2, member_pb2_grpc

    if not (phone and phone.isdigit() and len(phone) == 11):
        raise SystemExit("say whom with --phone and the member's 11 digits")
    found = member_pb2_grpc.MemberServiceStub(channel).ListMembers(member_pb2.ListMembersRequest(
        filter=member_pb2.MemberFilter(phone_suffix=phone), page_size=1), metadata=auth, timeout=10).members
    if not found:
        raise SystemExit(f"no member with phone {phone} under this key's node")
    return found[0]


def contact(channel, auth, args) -> None:
    """回访: a contact made with a member, kept for the next person who calls them."""
    from huiyuan.member.v1 import care_pb2, care_pb2_grpc

    member = _member_by_phone(channel, auth, args.phone)
    done = change(care_pb2_grpc.CareServiceStub(channel).RecordCareContact, care_pb2.RecordCareContactRequest(
        request_id=args.request_id, contact=care_pb2.CareContact(
            member_id=member.member_id, channel=care_pb2.CareChannel.Value(f"CARE_CHANNEL_{CARE_CHANNELS[args.via]}"),
            topic=care_pb2.CareTopic.Value(f"CARE_TOPIC_{CARE_TOPICS[args.topic]}"), note=args.note)),
        metadata=auth, timeout=10).contact
    print(f"recorded {done.contact_id}  {member.name}  {args.via} {args.topic}")


def contacts(channel, auth, args) -> None:
    """A member's contacts, newest first: when, how, why, from where, by whom, and what came of it."""
    from huiyuan.member.v1 import care_pb2, care_pb2_grpc

    member = _member_by_phone(channel, auth, args.phone)
    found = care_pb2_grpc.CareServiceStub(channel).ListCareContacts(care_pb2.ListCareContactsRequest(
        member_id=member.member_id, page_size=args.limit), metadata=auth, timeout=10).contacts
    print(f"{member.name}  {member.phone}" + ("" if member.marketing_consent else "  勿营销"))
    for c in found:
        print(f"  {c.contact_time.ToDatetime(tzinfo=CHAIN_ZONE):%Y-%m-%d %H:%M}  "
              f"{enum_word(care_pb2.CareChannel, c.channel):<9}{enum_word(care_pb2.CareTopic, c.topic):<12}"
              f"{c.org_path}  {c.operator_id}  {c.note}".rstrip())
    if not found:
        print("  no contacts yet")
