"""Enterprise batch top-ups (企业批量充值) from a back office.

A company pays a store for stored value on many members' accounts and sends a file of
who gets how much. The wallet loads such a file (wallet.v1 BatchTopUp) but does not
know members: a mistyped member id would get value nobody can spend. So the gateway
first checks that the store exists, then finds each row's member, by member id or
phone, among the members the caller may read (the rule of GetMember through the
gateway: domain/scopes.py, sees with MEMBER_BY_ID). It hands the wallet the same rows, in
the same places, with the member column replaced by the member id found, or left
empty; the wallet rejects an empty one, and the gateway reports it MEMBER_NOT_FOUND,
as it would a member who does not exist.

The wallet applies a batch id's rows once. The gateway prefixes the company's batch id
with a digest of the store, so two stores' batches named alike never meet, and derives
the wallet's request id from the rows it sends: a retry that finds the same members
replays the wallet's answer, and one that finds more (a member registered meanwhile)
applies only the rows not applied before. The complete answer is stored under the
caller's request_id.
"""

import csv
import hashlib
import io

from gateway.domain.callers import Caller, denied
from gateway.domain.scopes import MEMBER_BY_ID, sees
from gateway.use_cases import audit
from gateway.use_cases.relay import actor_of, derived_id, relayed
from huiyuan.common.v1 import file_pb2
from huiyuan.database import Database, Idempotency
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2, org_pb2
from huiyuan.runtime import files
from huiyuan.runtime.errors import invalid
from huiyuan.wallet.v1 import wallet_pb2

METHOD = "BatchTopUp"  # the step its derived request_id names
MEMBER_COLUMNS = {"member_id": "member_id", "会员号": "member_id", "phone": "phone", "手机": "phone", "手机号": "phone"}
FIND_AT_ONCE = 1_000  # keys per FindMembers call: the member service's limit
NOT_FOUND = "MEMBER_NOT_FOUND"


async def top_up(
    services,
    idempotency: Idempotency,
    database: Database,
    caller: Caller,
    request: pb.BatchTopUpRequest,
    store: str,
    xlsx: bool,
    deadline_s: float | None,
) -> pb.BatchTopUpResponse:
    """The batch loaded (or its stored answer), then recorded in the audit trail;
    deadline_s: what the wallet's call may take (None: the channel's default)."""
    answer = await _top_up(services, idempotency, caller, request, store, xlsx, deadline_s)
    await audit.record(database, caller, "BatchTopUp", request, request.batch_id, store)
    return answer


async def _top_up(
    services,
    idempotency: Idempotency,
    caller: Caller,
    request: pb.BatchTopUpRequest,
    store: str,
    xlsx: bool,
    deadline_s: float | None,
) -> pb.BatchTopUpResponse:
    if not caller.covers(store):
        raise denied()
    async with relayed("member"):  # money is never booked at a store that does not exist
        await services.org.GetOrgNode(org_pb2.GetOrgNodeRequest(path=store))
    job = pb.BatchTopUpRequest()
    job.CopyFrom(request)
    job.request_id = derived_id(caller.key_id, request.request_id, METHOD)  # two keys' ids never meet
    done = await idempotency.stored(job, pb.BatchTopUpResponse)
    if done is not None:
        return done
    header, rows = _read(request.content, xlsx)
    column, kind = _member_column(header)
    cells = [row[column].strip() if column < len(row) else "" for row in rows]
    found = await _members(services.member, caller, kind, {c for c in cells if c})
    content = _with_member_ids(header, rows, column, [found.get(c, "") for c in cells])
    async with relayed("wallet"):
        loaded = await services.wallet.BatchTopUp(
            wallet_pb2.BatchTopUpRequest(
                request_id=derived_id(caller.key_id, job.request_id, hashlib.sha256(content).hexdigest()),
                batch_id=f"b{hashlib.sha256(store.encode()).hexdigest()[:10]}:{request.batch_id}",
                content=content,
                format=file_pb2.FILE_FORMAT_CSV,
                store_path=store,
                actor=actor_of(caller),
            ),
            timeout=deadline_s,
        )
    for row in loaded.rows:
        if not row.member_id and cells[row.row_number - 2]:  # named, not found: as if there were none
            row.reject_reason = NOT_FOUND
    return await idempotency.remember(
        job,
        pb.BatchTopUpResponse(
            applied_rows=loaded.applied_rows,
            rejected_rows=loaded.rejected_rows,
            total_fen=loaded.total_fen,
            bonus_fen=loaded.bonus_fen,
            rows=loaded.rows,
        ),
    )


def _read(content: bytes, xlsx: bool) -> tuple[list[str], list[list[str]]]:
    rows = files.read_rows(content, xlsx)
    return next(rows, []), list(rows)


def _member_column(header: list[str]) -> tuple[int, str]:
    """Where the file names its members, and by what: member_id or phone."""
    for i, cell in enumerate(header):
        if kind := _kind(cell):
            return i, kind
    raise invalid(
        "content",
        "HEADER_INVALID",
        "the first row must name a member column: member_id (会员号) or phone (手机), and the amount column",
    )


def _kind(header_cell: str) -> str:
    return files.column_of(MEMBER_COLUMNS, header_cell)


async def _members(member, caller: Caller, kind: str, keys: set[str]) -> dict[str, str]:
    """key -> member id, for the keys naming a member the caller may read."""
    keys = sorted(keys)
    found = {}
    for start in range(0, len(keys), FIND_AT_ONCE):
        async with relayed("member"):
            page = await member.FindMembers(
                member_pb2.FindMembersRequest(**{f"{kind}s": keys[start : start + FIND_AT_ONCE]})
            )
        found.update(
            (key, m.member_id)
            for key, m in page.members.items()
            if sees(caller, MEMBER_BY_ID, member_pb2.GetMemberResponse(member=m))
        )
    return found


def _with_member_ids(header: list[str], rows: list[list[str]], column: int, member_ids: list[str]) -> bytes:
    """The file as CSV, every row in its place, the member column holding the ids found."""
    out = io.StringIO()
    writer = csv.writer(out)
    # Any other member column loses its name: the wallet reads only the ids found.
    writer.writerow(["member_id" if i == column else "" if _kind(cell) else cell for i, cell in enumerate(header)])
    for row, member_id in zip(rows, member_ids):
        if any(cell.strip() for cell in row):
            row = row + [""] * (column + 1 - len(row))
            row[column] = member_id
            writer.writerow(row)
        else:
            writer.writerow([])  # a blank row stays blank: the rows keep their numbers
    return out.getvalue().encode()
