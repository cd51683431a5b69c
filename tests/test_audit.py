"""Who changed what (issue 36, item 6): every change through the gateway recorded once
with its key, role, node, time, target and request (no secrets); read by the back
offices within their scope."""

import hashlib

import grpc
import pytest
from google.protobuf import field_mask_pb2

from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.common.v1 import credential_pb2, file_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2, member_pb2_grpc, payment_pin_pb2, payment_pin_pb2_grpc
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from tests.support import STORE, Stubs, card_type, fresh_pin, new_phone, refusal_of, rid, tables_holding
from tests.test_gateway import as_, chain, code_and_reason, issue  # noqa: F401 - chain: the fixture these tests share

EAST, SOUTH, GZ = "hq/east", "hq/south", "hq/south/gz-001"
CAMPAIGN, MEMBER = "/huiyuan.campaign.v1.CampaignService/", "/huiyuan.member.v1.MemberService/"


@pytest.fixture(scope="module")
def changes(chain, member_service, database_url):
    """Changes made by HQ, the east, the south and a till of the east, each through the
    gateway; what each made, by name."""
    stub, hq_key = chain
    east = issue(stub, hq_key, EAST, pb.ROLE_REGIONAL_MANAGER)
    south = issue(stub, hq_key, SOUTH, pb.ROLE_REGIONAL_MANAGER).api_key
    till = issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL)
    campaigns = campaign_pb2_grpc.CampaignServiceStub(stub.channel)
    offer = campaign_pb2.CreateCampaignRequest(
        request_id=rid(),
        campaign=campaign_pb2.Campaign(
            name="华东满100减20",
            kind=campaign_pb2.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
            org_path=EAST,
            steps=[campaign_pb2.ThresholdStep(threshold_fen=100_00, reduction_fen=20_00)],
        ),
    )
    campaign_id = campaigns.CreateCampaign(offer, metadata=as_(east.api_key)).campaign.campaign_id
    campaigns.CreateCampaign(offer, metadata=as_(east.api_key))  # the same request again: one change
    refused = campaign_pb2.CreateCampaignRequest(
        request_id=rid(),
        campaign=campaign_pb2.Campaign(
            name="越权", kind=campaign_pb2.CAMPAIGN_KIND_THRESHOLD_REDUCTION, org_path=SOUTH
        ),
    )
    with pytest.raises(grpc.RpcError):  # refused: nothing changed, nothing recorded
        campaigns.CreateCampaign(refused, metadata=as_(east.api_key))
    rule_id = (
        points_pb2_grpc.PointsServiceStub(stub.channel)
        .CreateRule(
            points_pb2.CreateRuleRequest(
                request_id=rid(),
                rule=points_pb2.Rule(name="华南双倍", org_path=SOUTH, priority=5, points_per_yuan_bp=20_000),
            ),
            metadata=as_(south),
        )
        .rule.rule_id
    )
    registered = stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(),
            member=member_pb2.Member(name="审计会员", phone=new_phone()),
            card_type_id=card_type(Stubs(member_service.channel)),
        ),
        metadata=as_(till.api_key),
    )
    member_id = registered.member.member_id
    member_pb2_grpc.MemberServiceStub(stub.channel).UpdateMember(
        member_pb2.UpdateMemberRequest(
            request_id=rid(),
            member=member_pb2.Member(member_id=member_id, name="审计会员改名"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        ),
        metadata=as_(east.api_key),
    )
    payment_pin_pb2_grpc.PaymentPinServiceStub(stub.channel).SetPaymentPin(
        payment_pin_pb2.SetPaymentPinRequest(
            request_id=rid(),
            member_id=member_id,
            pin=(pin := fresh_pin(database_url)),
            proof=credential_pb2.PaymentCredential(card_number=registered.card.card_number),
        ),
        metadata=as_(till.api_key),
    )
    revoke = pb.RevokeApiKeyRequest(request_id=rid(), key_id=till.key_id)
    return (
        stub,
        hq_key,
        {
            "east": east,
            "south": south,
            "campaign": campaign_id,
            "rule": rule_id,
            "member": member_id,
            "till": till,
            "revoke": revoke,
            "pin": pin,
        },
    )


def entries(stub, key, **filters) -> list[pb.AuditEntry]:
    return list(stub.ListAuditEntries(pb.ListAuditEntriesRequest(page_size=500, **filters), metadata=as_(key)).entries)


def test_each_change_is_recorded_once_with_who_when_where_and_what(changes):
    stub, hq_key, made = changes
    east = made["east"]
    (created,) = entries(stub, hq_key, method="CreateCampaign", key_id=east.key_id)  # the replay and the refusal: none
    assert (created.method, created.role, created.org_path, created.operator_id) == (
        f"{CAMPAIGN}CreateCampaign",
        pb.ROLE_REGIONAL_MANAGER,
        EAST,
        f"key:{east.key_id}",
    )
    assert (created.target_id, created.target_path) == (made["campaign"], EAST)
    assert created.change["campaign"]["name"] == "华东满100减20" and "request_id" not in created.change
    assert created.entry_time.seconds > 0 and created.request_id
    (renamed,) = entries(stub, hq_key, method=f"{MEMBER}UpdateMember", target_id=made["member"])
    assert renamed.change["update_mask"] == "name" and renamed.change["member"]["name"] == "审计会员改名"
    assert renamed.target_path == STORE  # the member's home store
    registered = entries(stub, hq_key, method="RegisterMember", target_id=made["member"])
    assert [(e.role, e.org_path, e.target_path) for e in registered] == [(pb.ROLE_TERMINAL, f"{STORE}/pos-1", STORE)]
    (pin,) = entries(stub, hq_key, method="SetPaymentPin")
    assert (
        made["pin"] not in str(pin.change) and "proof" not in pin.change and pin.change["member_id"] == made["member"]
    )

    # A file: its size and digest, not its rows (phones and amounts are the services' to keep).
    content = f"姓名,手机\n导入,{new_phone()}\n".encode()
    member_pb2_grpc.MemberServiceStub(stub.channel).ImportMembers(
        member_pb2.ImportMembersRequest(request_id=rid(), content=content, format=file_pb2.FILE_FORMAT_CSV),
        metadata=as_(east.api_key),
    )
    manager = issue(stub, hq_key, STORE, pb.ROLE_STORE_MANAGER).api_key
    company = "手机,金额(分)\n13900000000,100\n".encode()
    stub.BatchTopUp(
        pb.BatchTopUpRequest(request_id=rid(), batch_id="AUDIT-1", format=file_pb2.FILE_FORMAT_CSV, content=company),
        metadata=as_(manager),
    )
    (imported,) = entries(stub, hq_key, method="ImportMembers", key_id=east.key_id)
    assert imported.change["content"] == {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    assert imported.target_path == EAST and imported.change["format"] == "FILE_FORMAT_CSV"
    (batch,) = entries(stub, hq_key, method="BatchTopUp")
    assert (batch.target_id, batch.target_path, batch.change["content"]["bytes"]) == ("AUDIT-1", STORE, len(company))

    # The gateway's own: a key issued, and revoked, each in the transaction that makes it.
    issued = stub.IssueApiKey(
        pb.IssueApiKeyRequest(request_id=rid(), org_path=STORE, role=pb.ROLE_STORE_MANAGER, label="审计"),
        metadata=as_(hq_key),
    )
    (key_entry,) = entries(stub, hq_key, method="IssueApiKey", target_id=issued.key_id)
    assert (key_entry.target_path, key_entry.change["label"], key_entry.change["role"]) == (
        STORE,
        "审计",
        "ROLE_STORE_MANAGER",
    )
    assert issued.api_key not in str(key_entry)
    stub.RevokeApiKey(made["revoke"], metadata=as_(hq_key))
    stub.RevokeApiKey(made["revoke"], metadata=as_(hq_key))  # again: one entry
    revoked = entries(
        stub, hq_key, method="/huiyuan.gateway.v1.GatewayService/RevokeApiKey", target_id=made["till"].key_id
    )
    assert [(e.target_path, e.role) for e in revoked] == [(f"{STORE}/pos-1", pb.ROLE_HQ_ADMIN)]


def test_a_back_office_reads_the_changes_within_its_scope(changes):
    stub, hq_key, made = changes
    east, south = made["east"].api_key, made["south"]
    seen_by_east = {e.target_id for e in entries(stub, east)}
    assert {made["campaign"], made["member"]} <= seen_by_east and made["rule"] not in seen_by_east
    assert made["rule"] in {e.target_id for e in entries(stub, south)}
    assert not {made["campaign"], made["member"]} & {e.target_id for e in entries(stub, south)}
    manager = issue(stub, hq_key, STORE, pb.ROLE_STORE_MANAGER).api_key
    at_the_store = {(e.method.rpartition("/")[2], e.target_id) for e in entries(stub, manager)}
    assert ("RegisterMember", made["member"]) in at_the_store and made["campaign"] not in {t for _, t in at_the_store}
    assert code_and_reason(stub.ListAuditEntries, pb.ListAuditEntriesRequest(org_path=SOUTH), east) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "OUT_OF_SCOPE",
    )
    till = issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key
    assert code_and_reason(stub.ListAuditEntries, pb.ListAuditEntriesRequest(), till) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "OUT_OF_SCOPE",
    )  # a till reads no trail

    # Newest first, a page at a time, the token bound to its filters.
    every = entries(stub, hq_key)
    assert [e.entry_id for e in every] == sorted((e.entry_id for e in every), reverse=True)
    first = stub.ListAuditEntries(pb.ListAuditEntriesRequest(page_size=2), metadata=as_(hq_key))
    second = stub.ListAuditEntries(
        pb.ListAuditEntriesRequest(page_size=2, page_token=first.next_page_token), metadata=as_(hq_key)
    )
    assert [e.entry_id for e in (*first.entries, *second.entries)] == [e.entry_id for e in every[:4]]
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListAuditEntries(
            pb.ListAuditEntriesRequest(page_size=2, method="CreateRule", page_token=first.next_page_token),
            metadata=as_(hq_key),
        )
    assert refusal_of(caught.value)[2] == {"page_token": "PAGE_TOKEN_MISMATCH"}
    later = every[0].entry_time
    assert entries(stub, hq_key, start_time=later) and not entries(stub, hq_key, end_time=every[-1].entry_time)


def test_the_trail_keeps_no_secret(changes, database_url):
    """The PIN set, and the key issued, above: in no table (the audit trail included)."""
    stub, hq_key, made = changes
    assert tables_holding(database_url, made["pin"]) == []
    issued = stub.IssueApiKey(
        pb.IssueApiKeyRequest(request_id=rid(), org_path=EAST, role=pb.ROLE_REGIONAL_MANAGER), metadata=as_(hq_key)
    ).api_key
    assert tables_holding(database_url, issued) == []
