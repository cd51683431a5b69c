"""People who sign in (gateway/domain/people.py, use_cases/people.py): accounts HQ
creates, sessions, the lock after wrong passwords, read-only roles, the audit trail
naming the person."""

import time

import grpc
import pytest

from gateway.domain import people as rules
from gateway.domain.people import PersonRole, may_change
from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.gateway.v1 import gateway_pb2 as pb
from tests.support import rid
from tests.test_gateway import as_, chain, code_and_reason  # noqa: F401 - the fixture

PASSWORD = "Secret123"


def create(stub, hq_key, login, org_path, role, password=PASSWORD):
    return stub.CreatePerson(
        pb.CreatePersonRequest(
            request_id=rid(),
            person=pb.Person(login=login, name=f"测试{login}", phone="13800138000", org_path=org_path, role=role),
            initial_password=password,
        ),
        metadata=as_(hq_key),
    ).person


def sign_in(stub, login, password=PASSWORD):
    return stub.SignIn(pb.SignInRequest(login=login, password=password))


def test_the_rules_of_what_each_role_may_change():
    assert rules.office_role("hq") == "HQ_ADMIN" and rules.office_role("hq/east") == "REGIONAL_MANAGER"
    create_campaign = "/huiyuan.campaign.v1.CampaignService/CreateCampaign"
    assert may_change(PersonRole.MARKETING, create_campaign)
    assert not may_change(PersonRole.FINANCE, create_campaign)
    assert not may_change(PersonRole.MARKETING, "/huiyuan.gateway.v1.GatewayService/IssueApiKey")
    assert may_change(PersonRole.FINANCE, "/huiyuan.gateway.v1.GatewayService/ChangePassword")


def test_hq_creates_a_person_who_signs_in_and_is_named_in_the_audit_trail(chain):
    stub, hq_key = chain
    person = create(stub, hq_key, "east.boss", "hq/east", pb.PERSON_ROLE_REGIONAL_MANAGER)
    assert person.person_id and person.role == pb.PERSON_ROLE_REGIONAL_MANAGER
    assert code_and_reason(
        stub.CreatePerson,
        pb.CreatePersonRequest(
            request_id=rid(),
            person=pb.Person(login="east.boss", name="又一个", org_path="hq/east", role=pb.PERSON_ROLE_FINANCE),
            initial_password=PASSWORD,
        ),
        hq_key,
    ) == (grpc.StatusCode.ALREADY_EXISTS, "LOGIN_TAKEN")
    assert code_and_reason(
        stub.CreatePerson,
        pb.CreatePersonRequest(
            request_id=rid(),
            person=pb.Person(login="sh.x1", name="店长", org_path="hq/east", role=pb.PERSON_ROLE_STORE_MANAGER),
            initial_password="short",
        ),
        hq_key,
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "PASSWORD_TOO_SHORT")

    signed = sign_in(stub, "east.boss")
    token = signed.session_token
    assert token.startswith("hys_") and signed.person.org_path == "hq/east"
    me = stub.GetSelf(pb.GetSelfRequest(), metadata=as_(token))
    assert me.person.login == "east.boss" and me.role == pb.ROLE_REGIONAL_MANAGER and not me.key_id

    # the person changes a campaign of the region: the audit trail names them
    campaigns = campaign_pb2_grpc.CampaignServiceStub(stub.channel)
    created = campaigns.CreateCampaign(
        campaign_pb2.CreateCampaignRequest(
            request_id=rid(),
            campaign=campaign_pb2.Campaign(
                name="华东满100减10",
                kind=campaign_pb2.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
                org_path="hq/east",
                budget_fen=1_000_00,
                steps=[campaign_pb2.ThresholdStep(threshold_fen=100_00, reduction_fen=10_00)],
            ),
        ),
        metadata=as_(token),
    ).campaign
    entries = stub.ListAuditEntries(
        pb.ListAuditEntriesRequest(target_id=created.campaign_id), metadata=as_(hq_key)
    ).entries
    assert [(e.key_id, e.operator_id, e.operator_name) for e in entries] == [
        (person.person_id, f"person:{person.person_id}", person.name)
    ]
    stub.IssueApiKey(
        pb.IssueApiKeyRequest(request_id=rid(), org_path="hq/east", role=pb.ROLE_REGIONAL_MANAGER), metadata=as_(hq_key)
    )
    keyed = stub.ListAuditEntries(pb.ListAuditEntriesRequest(method="IssueApiKey"), metadata=as_(hq_key)).entries
    assert keyed and {e.operator_name for e in keyed} == {""}  # a key names no person

    # out of the region: as a regional manager's key
    assert code_and_reason(stub.ListPersons, pb.ListPersonsRequest(org_path="hq/south"), token)[0] == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    listed = stub.ListPersons(pb.ListPersonsRequest(), metadata=as_(token)).persons
    assert [p.login for p in listed] == ["east.boss"]

    stub.SignOut(pb.SignOutRequest(), metadata=as_(token))
    assert code_and_reason(stub.GetSelf, pb.GetSelfRequest(), token) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "SESSION_INVALID",
    )


def test_five_wrong_passwords_lock_the_login_even_for_the_right_one(chain):
    stub, hq_key = chain
    create(stub, hq_key, "sh.manager", "hq/east/sh-001", pb.PERSON_ROLE_STORE_MANAGER)
    assert code_and_reason(stub.SignIn, pb.SignInRequest(login="nobody", password="x")) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "LOGIN_FAILED",
    )
    for _ in range(4):
        assert code_and_reason(stub.SignIn, pb.SignInRequest(login="sh.manager", password="wrong1234")) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "LOGIN_FAILED",
        )
    assert code_and_reason(stub.SignIn, pb.SignInRequest(login="sh.manager", password="wrong1234"))[1] == "LOGIN_LOCKED"
    assert code_and_reason(stub.SignIn, pb.SignInRequest(login="sh.manager", password=PASSWORD))[1] == "LOGIN_LOCKED"


def test_a_finance_person_reads_but_changes_nothing_and_a_password_change_ends_other_sessions(chain):
    stub, hq_key = chain
    create(stub, hq_key, "hq.finance", "hq", pb.PERSON_ROLE_FINANCE)
    first = sign_in(stub, "hq.finance").session_token
    second = sign_in(stub, "hq.finance").session_token
    stub.ListAuditEntries(pb.ListAuditEntriesRequest(), metadata=as_(first))
    assert code_and_reason(
        stub.IssueApiKey,
        pb.IssueApiKeyRequest(request_id=rid(), org_path="hq", role=pb.ROLE_HQ_ADMIN),
        first,
    ) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_READ_ONLY")
    assert code_and_reason(
        stub.ChangePassword,
        pb.ChangePasswordRequest(request_id=rid(), current_password="nope12345", new_password="Another456"),
        first,
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "PASSWORD_INCORRECT")
    stub.ChangePassword(
        pb.ChangePasswordRequest(request_id=rid(), current_password=PASSWORD, new_password="Another456"),
        metadata=as_(first),
    )
    stub.GetSelf(pb.GetSelfRequest(), metadata=as_(first))
    assert code_and_reason(stub.GetSelf, pb.GetSelfRequest(), second)[1] == "SESSION_INVALID"
    assert sign_in(stub, "hq.finance", "Another456").session_token


@pytest.mark.parametrize("login", ["east.boss2"])
def test_hq_disables_a_person_and_their_session_ends(chain, login):
    stub, hq_key = chain
    person = create(stub, hq_key, login, "hq/east", pb.PERSON_ROLE_MARKETING)
    token = sign_in(stub, login).session_token
    stub.DisablePerson(pb.DisablePersonRequest(request_id=rid(), person_id=person.person_id), metadata=as_(hq_key))
    assert code_and_reason(stub.GetSelf, pb.GetSelfRequest(), token)[1] == "SESSION_INVALID"
    assert code_and_reason(stub.SignIn, pb.SignInRequest(login=login, password=PASSWORD))[1] == "LOGIN_FAILED"


def test_a_session_expires(chain, monkeypatch):
    from datetime import timedelta

    from gateway.use_cases import people

    stub, hq_key = chain
    create(stub, hq_key, "short.lived", "hq/east", pb.PERSON_ROLE_FINANCE)
    monkeypatch.setattr(people, "SESSION", timedelta(seconds=1))  # HUIYUAN_SESSION_S=1
    token = sign_in(stub, "short.lived").session_token
    stub.GetSelf(pb.GetSelfRequest(), metadata=as_(token))
    time.sleep(1.2)
    assert code_and_reason(stub.GetSelf, pb.GetSelfRequest(), token) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "SESSION_INVALID",
    )
