"""`huiyuan pos` for a back office's files: the members under a node exported for Excel
and a file of members imported, through the gateway with the member service's own stub
within the key's scope (gateway/passthrough.py); a company's file of top-ups loaded
(gateway/batches.py)."""

from pathlib import Path

from huiyuan.pos_retry import change
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
