"""`huiyuan pos` for a back office's files: the members under a node exported for Excel
and a file of members imported, through the gateway with the member service's own stub
within the key's scope (gateway/passthrough.py); a company's file of top-ups loaded
(gateway/batches.py); a store's day (日结) and what each tender took."""

from datetime import datetime
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
    request = member_pb2.ExportMembersRequest(filter=member_pb2.MemberFilter(org_path=args.org, tag=args.tag),
                                              format=file_format(args.format == "xlsx"))
    save_file(members.ExportMembers(request, metadata=auth, timeout=600), args.out)


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
    if d.takings:
        print(f"  {'takings':<12}{'sales':>12}{'top-ups':>12}{'refunded':>12}{'net':>12}")
    for t in d.takings:
        print(f"  {enum_word(pb.TenderKind, t.kind):<12}{yuan(t.sales_fen):>12}{yuan(t.top_up_fen):>12}"
              f"{yuan(t.refunded_fen):>12}{yuan(t.net_fen):>12}")
    if d.enterprise_top_up_fen or d.online_top_up_fen:
        print(f"  not at a till: companies' batches {yuan(d.enterprise_top_up_fen)}, online {yuan(d.online_top_up_fen)}")
