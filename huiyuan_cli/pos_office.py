"""`huiyuan pos` for a back office's files: the members under a node exported for Excel
and a file of members imported, through the gateway with the member service's own stub
within the key's scope (gateway/servicers/passthrough.py); a company's file of top-ups loaded
(gateway/use_cases/batches.py); a store's day (日结) and what each tender took; the members to
remember (会员关怀): birthdays, anniversaries, and those who stopped coming, and the
contacts made with them (回访记录)."""

from datetime import datetime, timedelta
from pathlib import Path

from huiyuan.runtime.business_time import CHAIN_ZONE
from huiyuan.runtime.money import yuan
from huiyuan_cli import cli_args
from huiyuan_cli.cli_text import enum_text, headings, left, right, t, width
from huiyuan_cli.pos_retry import change

READS = {".csv": False, ".txt": False, ".xlsx": True}  # a file's suffix: is it XLSX


def file_format(xlsx: bool):
    """The contracts' FileFormat: XLSX, or CSV."""
    from huiyuan.common.v1 import file_pb2

    return file_pb2.FILE_FORMAT_XLSX if xlsx else file_pb2.FILE_FORMAT_CSV


def save_file(chunks, out: str) -> None:
    """An export streamed in chunks, written to out (default: the name the gateway suggests;
    into out under that name when out is a folder)."""
    first = next(chunks)
    path = Path(out or first.file_name)
    if path.is_dir():
        path = path / first.file_name
    try:
        with path.open("wb") as file:
            file.write(first.chunk)
            for chunk in chunks:
                file.write(chunk.chunk)
    except OSError as error:  # no such folder, no permission, a full disk
        raise SystemExit(t("file_unwritable", path=path, why=error.strerror or error)) from None
    print(t("wrote", path=path, size=path.stat().st_size))


def read_file(path_text: str) -> tuple[bytes, bool]:
    """(the bytes, whether XLSX) of a file to send, or a clear refusal: no such file, a
    folder, not readable, or not a .csv or .xlsx."""
    path = Path(path_text)
    if path.suffix.lower() not in READS:
        raise SystemExit(t("file_kind", path=path))
    try:
        return path.read_bytes(), READS[path.suffix.lower()]
    except FileNotFoundError:
        raise SystemExit(t("file_missing", path=path)) from None
    except IsADirectoryError:
        raise SystemExit(t("file_is_folder", path=path)) from None
    except OSError as error:
        raise SystemExit(t("file_unreadable", path=path, why=error.strerror or error)) from None


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
        raise SystemExit(t("days_range", days=days))
    last = today + timedelta(days=min(days, 365) - 1)
    return member_pb2.DaySpan(
        first_day=date_pb2.Date(month=today.month, day=today.day),
        last_day=date_pb2.Date(month=last.month, day=last.day),
    )


def _at_least_0(days: int) -> int:
    if days < 0:
        raise SystemExit(t("dormant_negative", days=days))
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
    sections = [
        (
            t("care_birthdays", days=args.days, today=f"{today:%m-%d}"),
            "birthday",
            member_pb2.MemberFilter(org_path=args.org, birthday_in=span),
        ),
        (
            t("care_anniversaries", days=args.days, today=f"{today:%m-%d}"),
            "anniversary",
            member_pb2.MemberFilter(org_path=args.org, anniversary_in=span),
        ),
        (
            t("care_dormant", days=dormant_days, since=f"{asleep:%Y-%m-%d}"),
            "",
            member_pb2.MemberFilter(org_path=args.org, no_visit_since=_timestamp(asleep)),
        ),
    ]
    for title, day_field, chosen in sections:
        found = members.ListMembers(
            member_pb2.ListMembersRequest(filter=chosen, page_size=args.limit), metadata=auth, timeout=30
        )
        print(title)
        for m in sorted(found.members, key=lambda m: _day_of(m, day_field)):
            day = f"{_day_of(m, day_field)}  " if day_field else ""
            print(f"  {day}{m.name}  {m.phone}  {m.home_store_path}" + ("" if m.marketing_consent else "  勿营销"))
        if not found.members:
            print(t("care_none"))
        elif found.next_page_token:
            print(t("care_more", limit=args.limit))


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
        raise SystemExit(t("file_needed", action=args.action))
    content, xlsx = read_file(args.file)
    members = member_pb2_grpc.MemberServiceStub(channel)
    done = change(
        members.ImportMembers,
        member_pb2.ImportMembersRequest(request_id=args.request_id, content=content, format=file_format(xlsx)),
        metadata=auth,
        timeout=600,
    )
    print(
        t(
            "imported",
            total=done.total_rows,
            imported=done.imported_rows,
            existing=done.existing_rows,
            rejected=done.rejected_rows,
        )
    )
    for reject in done.rejects:
        print(
            t("import_reject", row=reject.row_number, field=reject.field, reason=reject.reason, message=reject.message)
        )


def batch_top_up(gateway, auth, args) -> None:
    """A company's CSV or XLSX of members (手机 or 会员号) and amounts (金额(分)), loaded at
    the key's store, or --store for a region's or HQ's key; the report's rejected rows."""
    from huiyuan.gateway.v1 import gateway_pb2 as pb

    if not (args.file and args.batch):
        raise SystemExit(t("batch_needed"))
    content, xlsx = read_file(args.file)
    done = change(
        gateway.BatchTopUp,
        pb.BatchTopUpRequest(
            request_id=args.request_id,
            batch_id=args.batch,
            content=content,
            store_path=args.store,
            format=file_format(xlsx),
        ),
        metadata=auth,
        timeout=600,
    )
    bonus = t("batch_bonus", bonus=yuan(done.bonus_fen)) if done.bonus_fen else ""
    print(
        t(
            "batch_done",
            rows=done.applied_rows + done.rejected_rows,
            applied=done.applied_rows,
            total=yuan(done.total_fen),
            bonus=bonus,
            rejected=done.rejected_rows,
        )
    )
    for row in done.rows:
        if row.reject_reason:
            print(t("batch_reject", row=row.row_number, reason=row.reject_reason, amount=yuan(row.amount_fen)))


def day_summary(gateway, auth, args) -> None:
    """A store's day (日结): the key's store, or --store for a region's or HQ's key; today
    unless --date. The takings are what each tender's drawer or statement should show."""
    from google.type import date_pb2

    from huiyuan.gateway.v1 import gateway_pb2 as pb

    day = args.day or cli_args.today()
    d = gateway.GetStoreDailySummary(
        pb.GetStoreDailySummaryRequest(
            store_path=args.store, date=date_pb2.Date(year=day.year, month=day.month, day=day.day)
        ),
        metadata=auth,
        timeout=30,
    )
    print(f"{d.store_path}  {day:%Y-%m-%d}")
    print(t("day_orders", orders=d.orders, sales=yuan(d.sales_fen), discounts=yuan(d.discount_fen)))
    print(
        t(
            "day_stored_value",
            loaded=yuan(d.top_up_fen),
            bonus=yuan(d.top_up_bonus_fen),
            spent=yuan(d.stored_value_spent_fen),
        )
    )
    print(t("day_points", earned=d.points_earned, spent=d.points_spent, new_members=d.new_members))
    if d.count_card_sold_fen or d.count_card_used_fen:
        print(t("day_count_cards", sold=yuan(d.count_card_sold_fen), used=yuan(d.count_card_used_fen)))
    # A count card column only on a day that sold one: most stores sell none.
    cards = any(taking.count_card_fen for taking in d.takings)
    widths = (12, 12, 12, 13, 12, 12) if cards else (12, 12, 12, 0, 12, 12)
    if d.takings:
        print("  " + _table_row(headings("day_header"), widths))
    for taking in d.takings:
        print(
            "  "
            + _table_row(
                (
                    enum_text(pb.TenderKind, taking.kind),
                    yuan(taking.sales_fen),
                    yuan(taking.top_up_fen),
                    yuan(taking.count_card_fen),
                    yuan(taking.refunded_fen),
                    yuan(taking.net_fen),
                ),
                widths,
            )
        )
    if d.enterprise_top_up_fen or d.online_top_up_fen:
        print(t("day_not_at_till", enterprise=yuan(d.enterprise_top_up_fen), online=yuan(d.online_top_up_fen)))


def _table_row(cells, widths) -> str:
    """The first cell to the left, the rest to the right, in columns of widths (0: left out)."""
    return "".join(
        left(cell, width) if i == 0 else right(cell, width)
        for i, (cell, width) in enumerate(zip(cells, widths))
        if width
    )


CARE_CHANNELS = {"phone": "PHONE", "sms": "SMS", "wechat": "WECHAT", "in-store": "IN_STORE"}
CARE_TOPICS = {"birthday": "BIRTHDAY", "anniversary": "ANNIVERSARY", "win-back": "WIN_BACK", "follow-up": "FOLLOW_UP"}


def _member_by_phone(channel, auth, phone: str):
    """The member with this phone, among those the key's offices see."""
    from huiyuan.member.v1 import member_pb2, member_pb2_grpc

    if not (phone and phone.isdigit() and len(phone) == 11):
        raise SystemExit(t("whom_by_phone"))
    found = (
        member_pb2_grpc.MemberServiceStub(channel)
        .ListMembers(
            member_pb2.ListMembersRequest(filter=member_pb2.MemberFilter(phone_suffix=phone), page_size=1),
            metadata=auth,
            timeout=10,
        )
        .members
    )
    if not found:
        raise SystemExit(t("no_member_by_phone", phone=phone))
    return found[0]


def contact(channel, auth, args) -> None:
    """回访: a contact made with a member, kept for the next person who calls them."""
    from huiyuan.member.v1 import care_pb2, care_pb2_grpc

    member = _member_by_phone(channel, auth, args.phone)
    done = change(
        care_pb2_grpc.CareServiceStub(channel).RecordCareContact,
        care_pb2.RecordCareContactRequest(
            request_id=args.request_id,
            contact=care_pb2.CareContact(
                member_id=member.member_id,
                channel=care_pb2.CareChannel.Value(f"CARE_CHANNEL_{CARE_CHANNELS[args.via]}"),
                topic=care_pb2.CareTopic.Value(f"CARE_TOPIC_{CARE_TOPICS[args.topic]}"),
                note=args.note,
            ),
        ),
        metadata=auth,
        timeout=10,
    ).contact
    print(
        t(
            "contact_recorded",
            contact_id=done.contact_id,
            name=member.name,
            via=enum_text(care_pb2.CareChannel, done.channel),
            topic=enum_text(care_pb2.CareTopic, done.topic),
        )
    )


def contacts(channel, auth, args) -> None:
    """A member's contacts, newest first: when, how, why, from where, by whom, and what came of it."""
    from huiyuan.member.v1 import care_pb2, care_pb2_grpc

    member = _member_by_phone(channel, auth, args.phone)
    found = (
        care_pb2_grpc.CareServiceStub(channel)
        .ListCareContacts(
            care_pb2.ListCareContactsRequest(member_id=member.member_id, page_size=args.limit),
            metadata=auth,
            timeout=10,
        )
        .contacts
    )
    print(f"{member.name}  {member.phone}" + ("" if member.marketing_consent else "  勿营销"))
    for c in found:
        print(
            f"  {c.contact_time.ToDatetime(tzinfo=CHAIN_ZONE):%Y-%m-%d %H:%M}  "
            f"{left(enum_text(care_pb2.CareChannel, c.channel), 9)}{left(enum_text(care_pb2.CareTopic, c.topic), 12)}"
            f"{c.org_path}  {c.operator_id}  {c.note}".rstrip()
        )
    if not found:
        print(t("no_contacts"))


REPORTS = ("sales", "members", "behaviour", "liability", "campaigns", "staff")
PERIODS = ("day", "week", "month", "quarter", "year")


def report(gateway, auth, args) -> None:
    """A back office's report (docs/reports.md): --report sales|members|..., the node of
    --org (the key's by default) and a period: --period day|week|month|quarter|year
    holding --date (today by default), or --month, or --from/--to. Printed as text
    tables, or with --out written to a file (--format xlsx|csv)."""
    from huiyuan.gateway.v1 import gateway_pb2 as pb
    from huiyuan.runtime.convert import calendar_day

    kind = pb.ReportKind.Value(f"REPORT_KIND_{(args.report or 'sales').upper()}")
    if args.month or args.first_day:
        first, last = cli_args.period(args)
        period = pb.ReportPeriod(kind=pb.PERIOD_KIND_RANGE, day=calendar_day(first), last_day=calendar_day(last))
    else:
        day = args.day or cli_args.today()
        period = pb.ReportPeriod(kind=pb.PeriodKind.Value(f"PERIOD_KIND_{args.period.upper()}"), day=calendar_day(day))
    request = pb.RunReportRequest(report=kind, org_path=args.org, period=period)
    if args.out:
        export = pb.ExportReportRequest(report=request, format=file_format(args.format == "xlsx"))
        save_file(gateway.ExportReport(export, metadata=auth, timeout=120), args.out)
        return
    answer = gateway.RunReport(request, metadata=auth, timeout=60)
    first, last = answer.first_day, answer.last_day
    print(
        f"{answer.org_name} ({answer.org_path})  {first.year}-{first.month:02d}-{first.day:02d} ~ {last.year}-{last.month:02d}-{last.day:02d}"
    )
    for table in answer.tables:
        print()
        print(f"【{table.title}】")
        rows = [[c.title for c in table.columns]] + [[_cell_text(c) for c in r.cells] for r in table.rows]
        widths = [max(width(row[i]) for row in rows) for i in range(len(rows[0]))]
        for n, row in enumerate(rows):
            print(
                "  ".join(left(v, w) if i == 0 or n == 0 else right(v, w) for i, (v, w) in enumerate(zip(row, widths)))
            )
        if table.note:
            print(table.note)


def _cell_text(cell) -> str:
    kind = cell.WhichOneof("value")
    if kind is None:
        return "-"
    value = getattr(cell, kind)
    if kind == "money_fen":
        return yuan(value)
    if kind == "rate_bp":
        return f"{value / 100:.1f}%"
    if kind == "hundredths":
        return f"{value // 100}.{value % 100:02d}"
    if kind == "day":
        return f"{value.year}-{value.month:02d}-{value.day:02d}"
    if kind in ("count", "points"):
        return f"{value:,}"
    return str(value)
