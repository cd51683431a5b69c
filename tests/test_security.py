"""Secrets at rest, what a till may see and spend, scope on every path, rate limits and
message sizes at the gateway (issue 36: items 1, 4 and 5)."""

import glob
import os
import time

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway import auth, bootstrap
from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.common.v1 import actor_pb2, file_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2, member_pb2_grpc
from tests.conftest import per_service
from tests.support import STORE, Stubs, new_phone, refusal_of, rid
from tests.test_gateway import as_, chain, code_and_reason, issue  # noqa: F401 - chain: the fixture these tests share

EAST, SOUTH, GZ = "hq/east", "hq/south", "hq/south/gz-001"
CSV = file_pb2.FILE_FORMAT_CSV

# What the flows of this module wrote that must be nowhere at rest, searched for at the end.
SECRETS: dict[str, str] = {}


def test_a_replayed_key_issue_answers_with_the_key_s_id_and_not_the_key(chain):
    stub, hq_key = chain
    request = pb.IssueApiKeyRequest(request_id=rid(), org_path=STORE, role=pb.ROLE_STORE_MANAGER, label="店长")
    first = stub.IssueApiKey(request, metadata=as_(hq_key))
    assert first.api_key.startswith("hy_") and not first.secret_shown_before
    SECRETS["an issued key"] = first.api_key
    again = stub.IssueApiKey(request, metadata=as_(hq_key))
    assert (again.key_id, again.api_key, again.secret_shown_before) == (first.key_id, "", True)
    assert stub.ListOrders(pb.ListOrdersRequest(), metadata=as_(first.api_key)).orders is not None  # it works


def test_a_key_is_issued_only_for_a_node_there_is_and_a_role_that_works_there(chain, database_url, monkeypatch,
                                                                             capsys):
    from huiyuan import cli

    stub, hq_key = chain
    for org_path, role, refused in [
        ("hq/east/sh-404", pb.ROLE_STORE_MANAGER, (grpc.StatusCode.NOT_FOUND, "ORG_NODE_NOT_FOUND")),
        (f"{STORE}/pos-9", pb.ROLE_TERMINAL, (grpc.StatusCode.NOT_FOUND, "ORG_NODE_NOT_FOUND")),
        ("hq", pb.ROLE_TERMINAL, (grpc.StatusCode.INVALID_ARGUMENT, "ORG_LEVEL_INVALID")),
        (EAST, pb.ROLE_STORE_MANAGER, (grpc.StatusCode.INVALID_ARGUMENT, "ORG_LEVEL_INVALID")),
    ]:
        request = pb.IssueApiKeyRequest(request_id=rid(), org_path=org_path, role=role)
        assert code_and_reason(stub.IssueApiKey, request, hq_key) == refused, org_path
    assert issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key  # a node there is, a role that works there

    # The operator's command holds to the same, reading the org tree from the member database.
    gateway_url, member_url = per_service(database_url, "gateway"), per_service(database_url, "member")
    for org_path, role, reason in [("hq", auth.Role.TERMINAL, "ORG_LEVEL_INVALID"),
                                   ("hq/west", auth.Role.REGIONAL_MANAGER, "ORG_NODE_NOT_FOUND")]:
        with pytest.raises(Exception) as caught:
            bootstrap.issue_key(gateway_url, org_path, role, "t", member_database_url=member_url)
        assert caught.value.reason == reason
    monkeypatch.setenv("HUIYUAN_GATEWAY_DATABASE_URL", gateway_url)
    monkeypatch.setenv("HUIYUAN_MEMBER_DATABASE_URL", member_url)
    assert cli.main(["key", "issue", "--org", "hq", "--role", "TERMINAL"]) == 1
    assert "ORG_LEVEL_INVALID" in capsys.readouterr().err
    assert cli.main(["key", "issue", "--org", EAST, "--role", "REGIONAL_MANAGER", "--label", "华东"]) == 0
    assert "api key hy_" in capsys.readouterr().out


def test_a_region_imports_members_only_into_its_own_stores_row_by_row(chain, member_service):
    stub, hq_key = chain
    east = issue(stub, hq_key, EAST, pb.ROLE_REGIONAL_MANAGER).api_key
    phones = [new_phone() for _ in range(3)]
    content = f"姓名,手机,门店\n东,{phones[0]},{STORE}\n南,{phones[1]},{GZ}\n无店,{phones[2]},\n".encode()
    members = member_pb2_grpc.MemberServiceStub(stub.channel)
    result = members.ImportMembers(member_pb2.ImportMembersRequest(request_id=rid(), content=content, format=CSV),
                                   metadata=as_(east))
    assert (result.imported_rows, result.rejected_rows) == (2, 1)
    assert [(r.row_number, r.field, r.reason) for r in result.rejects] == [(3, "home_store_path", "HOME_STORE_OUT_OF_SCOPE")]
    with pytest.raises(grpc.RpcError):  # nobody was registered in the south
        Stubs(member_service.channel).member.LookupMember(member_pb2.LookupMemberRequest(phone=phones[1]))
    hq_import = members.ImportMembers(member_pb2.ImportMembersRequest(  # HQ's node holds every store
        request_id=rid(), content=f"姓名,手机,门店\n南,{phones[1]},{GZ}\n".encode(), format=CSV), metadata=as_(hq_key))
    assert (hq_import.imported_rows, hq_import.rejected_rows) == (1, 0)


def registered_at(member_service, store: str) -> str:
    """A member registered at a store (and homed there), by the member service itself."""
    return Stubs(member_service.channel).member.RegisterMember(member_pb2.RegisterMemberRequest(
        request_id=rid(), channel=member_pb2.REGISTRATION_CHANNEL_STORE, member=member_pb2.Member(
            name="范围会员", phone=new_phone()), actor=actor_pb2.Actor(operator_id="t", org_path=store))).member.member_id


def test_a_region_issues_coupons_only_to_members_there_are_in_its_scope(chain, member_service, campaign_service):
    stub, hq_key = chain
    east = as_(issue(stub, hq_key, EAST, pb.ROLE_REGIONAL_MANAGER).api_key)
    campaigns = campaign_pb2_grpc.CampaignServiceStub(stub.channel)
    template = campaigns.CreateCouponTemplate(campaign_pb2.CreateCouponTemplateRequest(
        request_id=rid(), template=campaign_pb2.CouponTemplate(name="华东3元券", kind=campaign_pb2.COUPON_KIND_FIXED,
                                                               amount_fen=3_00, valid_days=7, org_path=EAST)),
        metadata=east).template
    ours, theirs, nobody = registered_at(member_service, STORE), registered_at(member_service, GZ), "m_" + "7" * 26
    for member_ids in ([nobody], [ours, theirs]):
        with pytest.raises(grpc.RpcError) as caught:
            campaigns.IssueCoupons(campaign_pb2.IssueCouponsRequest(
                request_id=rid(), template_id=template.template_id, member_ids=member_ids), metadata=east)
        code, reason, _ = refusal_of(caught.value)
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND"), member_ids  # as one missing
    given = campaigns.IssueCoupons(campaign_pb2.IssueCouponsRequest(
        request_id=rid(), template_id=template.template_id, member_ids=[ours, ours]), metadata=east).coupons
    assert [c.member_id for c in given] == [ours, ours]
    direct = campaign_pb2_grpc.CampaignServiceStub(campaign_service.channel)
    assert direct.ListMemberCoupons(campaign_pb2.ListMemberCouponsRequest(member_id=theirs)).coupons == []


def retry_info(error: grpc.RpcError) -> error_details_pb2.RetryInfo | None:
    for detail in rpc_status.from_call(error).details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info
    return None


def test_a_till_s_lookups_are_limited_and_it_is_told_when_to_try_again(chain):
    """A till looking up 300 phone numbers it does not know gets RESOURCE_EXHAUSTED after
    its burst, with how long to wait; after that wait it may look one up again. Another
    key has its own allowance."""
    stub, hq_key = chain
    till = as_(issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key)
    answered, limited = 0, None
    for _ in range(300):
        try:
            stub.LookupMember(pb.LookupMemberRequest(phone=new_phone()), metadata=till)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                answered += 1  # NOT_FOUND: nobody has that number
                continue
            limited = error
            break
    assert limited is not None and 5 <= answered < 100, answered
    assert refusal_of(limited)[:2] == (grpc.StatusCode.RESOURCE_EXHAUSTED, "LOOKUP_RATE_EXCEEDED")
    delay = retry_info(limited).retry_delay.ToTimedelta().total_seconds()
    assert 0 < delay <= 5, delay
    other = as_(issue(stub, hq_key, STORE, pb.ROLE_STORE_MANAGER).api_key)
    assert code_and_reason(stub.LookupMember, pb.LookupMemberRequest(phone=new_phone()), None) != (
        grpc.StatusCode.RESOURCE_EXHAUSTED, "LOOKUP_RATE_EXCEEDED")
    with pytest.raises(grpc.RpcError) as caught:
        stub.LookupMember(pb.LookupMemberRequest(phone=new_phone()), metadata=other)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND  # its own allowance
    time.sleep(delay)
    with pytest.raises(grpc.RpcError) as caught:
        stub.LookupMember(pb.LookupMemberRequest(phone=new_phone()), metadata=till)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND  # answered again


def test_the_gateway_reads_no_large_message_but_a_file(chain):
    """Beyond the largest file (16 MiB) gRPC itself refuses a message before reading it,
    credential or none; a message for any call but a file's upload is refused past 4 MiB."""
    stub, hq_key = chain
    channel = grpc.insecure_channel(stub.address, options=[("grpc.max_send_message_length", 100 * 2**20)])

    def call(method, request_bytes, key=None):
        send = channel.unary_unary(f"/huiyuan.gateway.v1.GatewayService/{method}",
                                   request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw)
        try:
            send(request_bytes, metadata=as_(key) if key else (), timeout=30)
        except grpc.RpcError as error:
            return error
        return None

    huge = pb.LookupMemberRequest(phone="1" * (60 * 2**20)).SerializeToString()
    refused = call("LookupMember", huge)
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # gRPC's own: no credential was read either
    till = issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key
    refused = call("LookupMember", pb.LookupMemberRequest(phone="1" * (5 * 2**20)).SerializeToString(), till)
    assert refusal_of(refused)[:2] == (grpc.StatusCode.RESOURCE_EXHAUSTED, "REQUEST_TOO_LARGE")
    assert retry_info(refused) is None  # the same request never fits
    manager = issue(stub, hq_key, STORE, pb.ROLE_STORE_MANAGER).api_key
    company = ("手机,金额(分)\n" + "13900000000,100\n" * (5 * 2**20 // 16)).encode()
    batch = pb.BatchTopUpRequest(request_id=rid(), batch_id="big", content=company, format=CSV).SerializeToString()
    refused = call("BatchTopUp", batch, manager)
    assert refused is None or refusal_of(refused)[1] not in ("REQUEST_TOO_LARGE", ""), refusal_of(refused)
    channel.close()


def tables_holding(database_url: str, needle: str) -> list[str]:
    """The tables of every service (PostgreSQL: every schema; SQLite: every file) that
    hold needle anywhere: in a text or JSON column, or inside a serialised message."""
    raw = needle.encode()
    if database_url.startswith("sqlite"):
        folder = os.path.dirname(database_url.removeprefix("sqlite:///"))
        return [path for path in glob.glob(f"{folder}/*.db*") if raw in open(path, "rb").read()]
    found = []
    with psycopg.connect(database_url, autocommit=True) as db:
        tables = db.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = "
                            "'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')").fetchall()
        assert {schema for schema, _ in tables} >= {"member", "wallet", "points", "campaign", "gateway"}
        for schema, table in tables:
            # a row as text shows bytea as \x and hex digits
            (count,) = db.execute(f'SELECT count(*) FROM "{schema}"."{table}" AS r WHERE r::text LIKE %s '
                                  f"OR r::text LIKE %s", (f"%{needle}%", f"%{raw.hex()}%")).fetchone()
            if count:
                found.append(f"{schema}.{table}")
    return found


def test_no_secret_of_these_flows_is_kept_anywhere(chain, database_url):
    """Run last in this module: every key and PIN its flows made, searched for in every
    table of every service. Checked by hand too (docs/security.md lists each table)."""
    assert SECRETS, "the flows above ran"
    for what, secret in SECRETS.items():
        assert tables_holding(database_url, secret) == [], what
