"""The gateway in front of the real services, each on an ephemeral port: credentials,
roles and scope, and the terminal's calls passed through with their refusals."""

import grpc
import pytest

from gateway import auth, bootstrap
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.gateway.v1 import gateway_pb2_grpc
from huiyuan.member.v1 import member_pb2
from huiyuan.runtime import migrate
from tests.conftest import ServiceThread, per_service
from tests.support import STORE, Stubs, ensure_org, new_phone, refusal_of, rid

ADDRESS_VARS = {name: f"HUIYUAN_{name.upper()}_ADDR" for name in ("member", "wallet", "points", "campaign")}


@pytest.fixture(scope="module")
def chain(database_url, member_service, wallet_service, points_service, campaign_service):
    """Every service running; the gateway pointed at them; an HQ key made by bootstrap."""
    from gateway.app import SPEC

    patch = pytest.MonkeyPatch()
    for service, var in ADDRESS_VARS.items():
        running = {"member": member_service, "wallet": wallet_service, "points": points_service,
                   "campaign": campaign_service}[service]
        patch.setenv(var, running.app.address)
    url = per_service(database_url, "gateway")
    migrate.upgrade(SPEC.migrations_dir, url, "gateway")
    gateway = ServiceThread(SPEC, url)
    ensure_org(Stubs(member_service.channel))
    _, hq_key = bootstrap.issue_key(url, "hq", auth.Role.HQ_ADMIN, "first admin")
    yield gateway_pb2_grpc.GatewayServiceStub(gateway.channel), hq_key
    gateway.stop()
    patch.undo()


def as_(key):
    return (("authorization", f"ApiKey {key}"),)


def issue(stub, hq_key, org_path, role):
    return stub.IssueApiKey(pb.IssueApiKeyRequest(request_id=rid(), org_path=org_path, role=role, label="t"),
                            metadata=as_(hq_key))


def code_and_reason(call, request, key=None):
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=as_(key) if key else ())
    return refusal_of(caught.value)[:2]


def test_a_terminal_registers_tops_up_and_looks_a_member_up(chain):
    stub, hq_key = chain
    terminal = issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key
    phone = new_phone()
    request = pb.RegisterMemberRequest(request_id=rid(), member=member_pb2.Member(name="网关会员", phone=phone))
    member = stub.RegisterMember(request, metadata=as_(terminal)).member
    assert stub.RegisterMember(request, metadata=as_(terminal)).member == member  # a retry: one member
    top_up = pb.TopUpRequest(request_id=rid(), member_id=member.member_id, amount_fen=100_00, tender=pb.TENDER_KIND_CASH)
    done = stub.TopUp(top_up, metadata=as_(terminal))
    assert done.stored_value_available_fen == 100_00 and done.receipt_lines[-1] == "储值余额 ¥100.00"
    assert stub.TopUp(top_up, metadata=as_(terminal)).top_up_id == done.top_up_id  # nothing moves twice
    found = stub.LookupMember(pb.LookupMemberRequest(phone=phone), metadata=as_(terminal))
    assert (found.member.member_id, found.stored_value_available_fen, found.points_available) == (member.member_id, 100_00, 0)
    assert code_and_reason(stub.LookupMember, pb.LookupMemberRequest(phone=new_phone()), terminal) == (
        grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND")  # the member service's refusal, passed on
    ghost = pb.TopUpRequest(request_id=rid(), member_id="m_" + "9" * 26, amount_fen=1_00, tender=pb.TENDER_KIND_CASH)
    assert code_and_reason(stub.TopUp, ghost, terminal) == (grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND")


def test_no_credential_a_bad_one_or_a_revoked_one_is_unauthenticated(chain):
    stub, hq_key = chain
    lookup = pb.LookupMemberRequest(phone=new_phone())
    assert code_and_reason(stub.LookupMember, lookup) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIAL_REQUIRED")
    assert code_and_reason(stub.LookupMember, lookup, "hy_not-a-key") == (
        grpc.StatusCode.UNAUTHENTICATED, "CREDENTIAL_INVALID")
    issued = issue(stub, hq_key, STORE, pb.ROLE_STORE_MANAGER)
    stub.RevokeApiKey(pb.RevokeApiKeyRequest(request_id=rid(), key_id=issued.key_id), metadata=as_(hq_key))
    assert code_and_reason(stub.LookupMember, lookup, issued.api_key) == (
        grpc.StatusCode.UNAUTHENTICATED, "CREDENTIAL_INVALID")


@pytest.mark.parametrize("role, org_path", [(pb.ROLE_TERMINAL, f"{STORE}/pos-1"), (pb.ROLE_STORE_MANAGER, STORE),
                                            (pb.ROLE_REGIONAL_MANAGER, "hq/east"), (pb.ROLE_HQ_ADMIN, "hq")])
def test_role_matrix(chain, role, org_path):
    """Each built call × each role: admitted, or PERMISSION_DENIED OUT_OF_SCOPE."""
    stub, hq_key = chain
    key = hq_key if role == pb.ROLE_HQ_ADMIN else issue(stub, hq_key, org_path, role).api_key
    at_store = role in (pb.ROLE_TERMINAL, pb.ROLE_STORE_MANAGER)
    calls = [
        (stub.RegisterMember, pb.RegisterMemberRequest(request_id=rid(), member=member_pb2.Member(
            name="矩阵", phone=new_phone())), at_store),
        (stub.TopUp, pb.TopUpRequest(request_id=rid(), member_id="m_" + "7" * 26, amount_fen=1_00,
                                     tender=pb.TENDER_KIND_CASH), at_store),
        (stub.IssueApiKey, pb.IssueApiKeyRequest(request_id=rid(), org_path=STORE, role=pb.ROLE_TERMINAL),
         role == pb.ROLE_HQ_ADMIN),
        (stub.RevokeApiKey, pb.RevokeApiKeyRequest(request_id=rid(), key_id="k_none"), role == pb.ROLE_HQ_ADMIN),
    ]
    for call, request, admitted in calls:
        try:
            call(request, metadata=as_(key))
            outcome = None
        except grpc.RpcError as error:
            outcome = refusal_of(error)[:2]
        if admitted:
            assert outcome is None or outcome[1] != "OUT_OF_SCOPE", (call, outcome)
        else:
            assert outcome == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE"), (call, outcome)


def test_keys_are_bound_to_the_level_their_role_works_at(chain):
    stub, hq_key = chain
    bad = pb.IssueApiKeyRequest(request_id=rid(), org_path="hq", role=pb.ROLE_TERMINAL)
    with pytest.raises(grpc.RpcError) as caught:
        stub.IssueApiKey(bad, metadata=as_(hq_key))
    assert refusal_of(caught.value)[2] == {"org_path": "ORG_LEVEL_INVALID"}
