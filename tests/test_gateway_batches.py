"""Enterprise batch top-ups (企业批量充值) through the gateway: a back office loads a
company's file of members and amounts at a store under it. Only members it may read
get money; a row naming anyone else is MEMBER_NOT_FOUND, as one naming nobody; a
batch run again applies no row twice; two stores' batches named alike never meet."""

import csv
import io

import grpc
import pytest
from openpyxl import Workbook

from huiyuan.common.v1 import actor_pb2, file_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2, member_pb2_grpc
from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from tests.support import STORE, Stubs, new_phone, pos_args, refusal_of, rid
from tests.test_gateway import as_, chain, issue  # noqa: F401 - chain is the fixture these tests share
from tests.test_gateway_config import EAST, GZ, HQ, REGION, STORE_MANAGER, office  # noqa: F401
from tests.test_gateway_members import marked  # noqa: F401

CSV, XLSX = file_pb2.FILE_FORMAT_CSV, file_pb2.FILE_FORMAT_XLSX


def _csv(*rows) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def _principal(wallet_service, member_id: str) -> int:
    wallet = wallet_pb2_grpc.WalletServiceStub(wallet_service.channel)
    return wallet.GetBalance(wallet_pb2.GetBalanceRequest(member_id=member_id)).balance.principal_fen


def _report(answer) -> list[tuple]:
    return [(r.row_number, r.member_id, r.amount_fen, r.reject_reason) for r in answer.rows]


def test_a_region_loads_a_company_s_file_for_the_members_it_reads_and_nobody_else(office, marked, wallet_service):
    stub, keys, _ = office
    _, people = marked
    east, south, moved = people["east"], people["south"], people["moved"]
    before = {who: _principal(wallet_service, m.member_id) for who, m in people.items()}
    content = _csv(
        ["姓名", "手机", "金额(分)"],
        ["张三", east.phone, "100000"],
        ["李四", south.phone, "50000"],  # homed and registered in the south: not the east's
        ["王五", moved.phone, "20000"],  # registered in the east, homed in the south: read there
        [],  # a blank line is no row
        ["赵六", new_phone(), "30000"],  # nobody's phone
        ["钱七", east.phone, "0"],
        ["孙八", "", "10000"],
    )
    request = pb.BatchTopUpRequest(
        request_id=rid(), batch_id=f"ACME-{rid()[:8]}", content=content, format=CSV, store_path=STORE
    )
    answer = stub.BatchTopUp(request, metadata=as_(keys[REGION]))
    assert _report(answer) == [
        (2, east.member_id, 100000, ""),
        (3, "", 50000, "MEMBER_NOT_FOUND"),
        (4, moved.member_id, 20000, ""),
        (6, "", 30000, "MEMBER_NOT_FOUND"),
        (7, east.member_id, 0, "AMOUNT_INVALID"),
        (8, "", 10000, "MEMBER_ID_INVALID"),
    ]
    assert (answer.applied_rows, answer.rejected_rows, answer.total_fen) == (2, 4, 120000)
    after = {who: _principal(wallet_service, m.member_id) for who, m in people.items()}
    assert {who: after[who] - before[who] for who in people} == {"east": 100000, "south": 0, "moved": 20000}

    assert stub.BatchTopUp(request, metadata=as_(keys[REGION])) == answer  # a retry: the same answer
    again = pb.BatchTopUpRequest()
    again.CopyFrom(request)
    again.request_id = rid()  # the same batch sent again: no row twice
    rerun = stub.BatchTopUp(again, metadata=as_(keys[REGION]))
    assert (rerun.applied_rows, rerun.total_fen) == (0, 0)
    assert [r.reject_reason for r in rerun.rows if r.row_number in (2, 4)] == ["ALREADY_APPLIED"] * 2
    assert {who: _principal(wallet_service, m.member_id) for who, m in people.items()} == after
    reused = pb.BatchTopUpRequest()
    reused.CopyFrom(request)
    reused.content = _csv(["手机", "金额(分)"], [east.phone, "1"])
    with pytest.raises(grpc.RpcError) as caught:
        stub.BatchTopUp(reused, metadata=as_(keys[REGION]))
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "REQUEST_ID_REUSED")


def test_a_store_manager_books_at_its_own_store_and_another_store_s_batch_of_the_same_id_is_its_own(
    office, marked, wallet_service
):
    stub, keys, _ = office
    _, people = marked
    east = people["east"]
    batch_id = f"2026-11-{rid()[:6]}"
    workbook = Workbook()
    workbook.active.append(["会员号", "金额(分)"])
    workbook.active.append([east.member_id, 5000])
    xlsx = io.BytesIO()
    workbook.save(xlsx)
    before = _principal(wallet_service, east.member_id)
    own = stub.BatchTopUp(
        pb.BatchTopUpRequest(request_id=rid(), batch_id=batch_id, content=xlsx.getvalue(), format=XLSX),
        metadata=as_(keys[STORE_MANAGER]),
    )
    assert _report(own) == [(2, east.member_id, 5000, "")]
    statement = (
        wallet_pb2_grpc.WalletServiceStub(wallet_service.channel)
        .ListEntries(wallet_pb2.ListEntriesRequest(member_id=east.member_id, page_size=1))
        .entries
    )
    assert statement[0].store_path == STORE  # booked at the manager's store
    elsewhere = stub.BatchTopUp(
        pb.BatchTopUpRequest(  # HQ, at another store, a batch named alike
            request_id=rid(),
            batch_id=batch_id,
            content=_csv(["手机", "金额(分)"], [east.phone, "7000"]),
            format=CSV,
            store_path=GZ,
        ),
        metadata=as_(keys[HQ]),
    )
    assert _report(elsewhere) == [(2, east.member_id, 7000, "")]
    assert _principal(wallet_service, east.member_id) == before + 12000


def test_only_the_member_column_it_checked_reaches_the_wallet(office, marked, wallet_service):
    """A file naming members twice (手机 and 会员号): the gateway finds them by the first
    column; an id in the second, of a member the caller cannot read, is not used."""
    stub, keys, _ = office
    _, people = marked
    east, south = people["east"], people["south"]
    before = (_principal(wallet_service, east.member_id), _principal(wallet_service, south.member_id))
    answer = stub.BatchTopUp(
        pb.BatchTopUpRequest(
            request_id=rid(),
            batch_id=f"two-{rid()[:8]}",
            format=CSV,
            store_path=STORE,
            content=_csv(
                ["手机", "会员号", "金额(分)"], [east.phone, south.member_id, "100"], ["", south.member_id, "100"]
            ),
        ),
        metadata=as_(keys[REGION]),
    )
    assert _report(answer) == [(2, east.member_id, 100, ""), (3, "", 100, "MEMBER_ID_INVALID")]
    assert (_principal(wallet_service, east.member_id), _principal(wallet_service, south.member_id)) == (
        before[0] + 100,
        before[1],
    )


def test_a_member_the_region_imported_without_a_home_store_is_named_by_its_stores_as_getmember_reads_them(
    office, member_service, wallet_service
):
    """One rule says who may read a member, GetMember's: a member a region imported with
    no home store yet is the region's, read by its stores. Before, a batch asked the
    home store, and a store of that region got MEMBER_NOT_FOUND for a member GetMember
    showed it; a store of another region still does."""
    stub, keys, _ = office
    members = member_pb2_grpc.MemberServiceStub(stub.channel)
    phone = new_phone()
    members.ImportMembers(
        member_pb2.ImportMembersRequest(request_id=rid(), content=f"姓名,手机\n导入丙,{phone}\n".encode(), format=CSV),
        metadata=as_(keys[REGION]),
    )
    homeless = Stubs(member_service.channel).member.LookupMember(member_pb2.LookupMemberRequest(phone=phone)).member
    assert (homeless.home_store_path, homeless.registered_org_path) == ("", EAST)
    read = members.GetMember(
        member_pb2.GetMemberRequest(member_id=homeless.member_id), metadata=as_(keys[STORE_MANAGER])
    )
    assert read.member.member_id == homeless.member_id

    def batch(key, store):
        return stub.BatchTopUp(
            pb.BatchTopUpRequest(
                request_id=rid(),
                batch_id=f"B-{rid()[:8]}",
                content=_csv(["手机", "金额(分)"], [phone, "500"]),
                format=CSV,
                store_path=store,
            ),
            metadata=as_(key),
        )

    assert _report(batch(keys[STORE_MANAGER], STORE)) == [(2, homeless.member_id, 500, "")]
    gz_manager = issue(stub, keys[HQ], GZ, STORE_MANAGER).api_key
    assert _report(batch(gz_manager, GZ)) == [(2, "", 500, "MEMBER_NOT_FOUND")]
    assert _principal(wallet_service, homeless.member_id) == 500


def test_a_batch_outside_the_caller_s_stores_or_unreadable_is_refused_and_loads_nothing(office, marked, wallet_service):
    stub, keys, _ = office
    _, people = marked
    content = _csv(["手机", "金额(分)"], [people["east"].phone, "100"])
    before = _principal(wallet_service, people["east"].member_id)

    def refusal(key, **fields):
        request = pb.BatchTopUpRequest(
            **{"request_id": rid(), "batch_id": "B-1", "content": content, "format": CSV, **fields}
        )
        with pytest.raises(grpc.RpcError) as caught:
            stub.BatchTopUp(request, metadata=as_(key))
        return refusal_of(caught.value)

    assert refusal(keys[REGION], store_path=GZ)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    assert refusal(keys[REGION])[2] == {"store_path": "STORE_PATH_REQUIRED"}  # a region names the store
    assert refusal(keys[REGION], store_path="hq/east/sh-404")[:2] == (grpc.StatusCode.NOT_FOUND, "ORG_NODE_NOT_FOUND")
    assert refusal(keys[HQ], store_path="hq/east", batch_id="no spaces", format=0, content=b"")[2] == {
        "store_path": "STORE_PATH_INVALID",
        "batch_id": "BATCH_ID_INVALID",
        "format": "FORMAT_INVALID",
        "content": "CONTENT_REQUIRED",
    }
    assert refusal(keys[HQ], store_path=STORE, content=_csv(["姓名", "金额(分)"], ["张三", "100"]))[2] == {
        "content": "HEADER_INVALID"
    }
    assert refusal(keys[HQ], store_path=STORE, content=b"PK\x03\x04 not a workbook", format=XLSX)[2] == {
        "content": "FILE_UNREADABLE"
    }
    assert _principal(wallet_service, people["east"].member_id) == before


def test_the_pos_command_loads_a_batch_and_prints_its_report(
    office, marked, wallet_service, monkeypatch, capsys, tmp_path
):
    monkeypatch.setenv("HUIYUAN_LANG", "en")  # what it prints in English (Chinese by default)
    from huiyuan_cli import pos

    stub, keys, _ = office
    _, people = marked
    monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", stub.address)
    wallet = wallet_pb2_grpc.WalletServiceStub(wallet_service.channel)
    corporate = wallet.CreateTopUpPackage(
        wallet_pb2.CreateTopUpPackageRequest(  # for companies, at this store
            request_id=rid(),
            package=wallet_pb2.TopUpPackage(
                name="企业充88送2",
                org_path=STORE,
                tenders=[wallet_pb2.TENDER_ENTERPRISE],
                steps=[wallet_pb2.PackageStep(threshold_fen=8800, bonus_fen=200)],
            ),
        )
    ).package
    path = tmp_path / "acme.csv"
    path.write_bytes(_csv(["手机", "金额(分)"], [people["east"].phone, "8800"], [new_phone(), "100"]))
    args = ["batch-top-up", "--file", str(path), "--batch", f"ACME-{rid()[:8]}", "--key", keys[STORE_MANAGER]]
    assert pos.run(pos_args(*args)) == 0
    wallet.EndTopUpPackage(
        wallet_pb2.EndTopUpPackageRequest(
            request_id=rid(), package_id=corporate.package_id, actor=actor_pb2.Actor(operator_id="t", org_path=STORE)
        )
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "2 rows: 1 applied (¥88.00 + bonus ¥2.00), 1 rejected"
    assert printed[1] == "  row 3  MEMBER_NOT_FOUND  ¥1.00"
    with pytest.raises(SystemExit, match="--file and --batch"):
        pos.run(pos_args("batch-top-up", "--file", str(path), "--key", keys[STORE_MANAGER]))


def test_the_example_files_load_as_examples_readme_says(office, member_service, wallet_service, monkeypatch, capsys):
    """examples/acme.csv and examples/members.csv, as the README's commands load them:
    every row read, the one bad row of each reported, and a batch run again loads nothing
    twice. (The demo's members hold the phones acme.csv names: here they are registered
    first.)"""
    from pathlib import Path

    from huiyuan.member.v1 import org_pb2
    from huiyuan_cli import pos

    examples = Path(__file__).parent.parent / "examples"
    stub, keys, _ = office
    monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", stub.address)
    stubs = Stubs(member_service.channel)
    stubs.org.CreateOrgNode(
        org_pb2.CreateOrgNodeRequest(
            request_id="org-hz-001",
            parent_path=EAST,
            org_node=org_pb2.OrgNode(
                code="hz-001", name="杭州一店", kind=org_pb2.ORG_NODE_KIND_STORE, time_zone="Asia/Shanghai"
            ),
        )
    )
    demo = [stubs.register(name, phone=f"1380000000{i}") for i, name in enumerate(("张伟", "王芳"), start=1)]

    def run(*words, key):
        assert pos.run(pos_args(*words, "--key", key)) == 0
        return capsys.readouterr().out.splitlines()

    batch = ("batch-top-up", "--file", str(examples / "acme.csv"), "--batch", f"ACME-{rid()[:8]}")
    assert run(*batch, key=keys[STORE_MANAGER]) == [
        "共 3 行：已充值 2 行（¥800.00），拒绝 1 行",
        "  第 4 行  MEMBER_NOT_FOUND  ¥200.00",
    ]
    assert [_principal(wallet_service, m.member_id) for m in demo] == [500_00, 300_00]
    run(*batch, key=keys[STORE_MANAGER])  # again: no row twice
    assert [_principal(wallet_service, m.member_id) for m in demo] == [500_00, 300_00]

    imported = run("import-members", "--file", str(examples / "members.csv"), key=keys[REGION])
    assert imported[0] == "共 5 行：导入 4，已是会员 0，拒绝 1"
    rejects = {tuple(line.split()[3:5]) for line in imported[1:]}
    assert rejects == {("phone", "PHONE_INVALID"), ("birthday", "DATE_INVALID")}  # both of row 6
    assert all(line.startswith("  第 6 行  ") for line in imported[1:])
    zhao = stubs.member.LookupMember(member_pb2.LookupMemberRequest(phone="13700000001")).member
    assert (
        zhao.name,
        zhao.gender,
        zhao.birthday.year,
        zhao.anniversary.month,
        zhao.home_store_path,
        zhao.marketing_consent,
        list(zhao.tags),
    ) == ("赵敏", member_pb2.GENDER_FEMALE, 1992, 6, STORE, True, ["企业客户", "高频"])
    sun = stubs.member.LookupMember(member_pb2.LookupMemberRequest(phone="13700000003")).member
    assert (sun.birthday.year, sun.birthday.month, sun.birthday.day, sun.home_store_path) == (
        0,
        7,
        15,
        f"{EAST}/hz-001",
    )
