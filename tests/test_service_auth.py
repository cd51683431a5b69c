"""The services answer only callers they trust (issue 36, items 2 and 3).

Every RPC of every service, called without a service token, with an expired one, one
signed by a key the service does not hold, one made for another service, and one from a
caller that may not name an actor but does: each is refused (UNAUTHENTICATED, or
PERMISSION_DENIED for the actor) with an ErrorInfo of the service's domain, and nothing
is written. Health checks and reflection answer anyone. A process started outside
development without its secrets does not start, and says which is missing.
"""

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import inspect, text

from huiyuan.database import migrate
from huiyuan.member.v1 import member_pb2
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.runtime import clients, service_auth
from huiyuan.runtime.config import KeyFolder
from huiyuan.runtime.service_auth import METADATA_KEY, Gatekeeper, Identity
from tests.conftest import AS_GATEWAY, AS_OPERATOR, KEYS
from tests.support import ACTOR, Stubs, ensure_org, new_phone, refusal_of, rid
from tests.test_gateway import chain  # noqa: F401 - a fixture
from tests.test_runtime import _free_port, _serving

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("member", "wallet", "points", "campaign")
UNAUTHENTICATED, PERMISSION_DENIED = grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED


def _methods(service: str):
    """(full method name, request type, streamed) of every method the service serves."""
    spec = importlib.import_module(f"services.{service}.app").SPEC
    found = []
    for name in spec.service_names:
        for method in descriptor_pool.Default().FindServiceByName(name).methods:
            found.append((f"/{name}/{method.name}", GetMessageClass(method.input_type), method.server_streaming))
    return found


def _request(request_type):
    """A request as a caller would send one: its request_id and actor set where it has them."""
    request = request_type()
    fields = request_type.DESCRIPTOR.fields_by_name
    if "request_id" in fields:
        request.request_id = rid()
    if "actor" in fields:
        request.actor.CopyFrom(ACTOR)
    return request


def _call(address: str, method: str, request, streamed: bool, token: str | None):
    metadata = ((METADATA_KEY, token),) if token is not None else ()
    with grpc.insecure_channel(address) as channel:
        try:
            if streamed:
                list(channel.unary_stream(method)(request.SerializeToString(), metadata=metadata, timeout=10))
            else:
                channel.unary_unary(method)(request.SerializeToString(), metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            return error
    return None


def _token(key, kid: str, audience: str, issued: float, lifetime: int = 300) -> str:
    return jwt.encode(
        {"iss": kid, "aud": audience, "iat": int(issued), "exp": int(issued) + lifetime},
        key,
        algorithm="EdDSA",
        headers={"kid": kid},
    )


def _bad_tokens(service: str) -> dict[str, tuple[str | None, str]]:
    """What a caller without a valid credential may send: (token, the reason it gets)."""
    other = next(s for s in SERVICES if s != service)
    stranger = Ed25519PrivateKey.generate()
    return {
        "no token": (None, "SERVICE_CREDENTIAL_REQUIRED"),
        "an empty token": ("", "SERVICE_CREDENTIAL_REQUIRED"),
        "not a token": ("Bearer hq-admin-key", "SERVICE_CREDENTIAL_INVALID"),
        "expired": (_token(AS_GATEWAY.key, "gateway", service, time.time() - 400), "SERVICE_CREDENTIAL_EXPIRED"),
        "the gateway's name, another key": (
            _token(stranger, "gateway", service, time.time()),
            "SERVICE_CREDENTIAL_INVALID",
        ),
        "a caller nobody trusts": (Identity("intruder", stranger).token(service), "SERVICE_CREDENTIAL_INVALID"),
        "another service's key": (Identity(other, stranger).token(service), "SERVICE_CREDENTIAL_INVALID"),
        "made for another service": (AS_GATEWAY.token(other), "SERVICE_CREDENTIAL_INVALID"),
        "made to live a year": (
            _token(AS_GATEWAY.key, "gateway", service, time.time(), 365 * 86_400),
            "SERVICE_CREDENTIAL_INVALID",
        ),
        "unsigned": (
            jwt.encode(
                {"iss": "gateway", "aud": service, "iat": int(time.time()), "exp": int(time.time()) + 300},
                None,
                algorithm="none",
                headers={"kid": "gateway"},
            ),
            "SERVICE_CREDENTIAL_INVALID",
        ),
    }


def _row_counts(service) -> dict[str, int]:
    """The rows of every table of a service's database."""

    async def count():
        async with service.app.engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            return {name: (await connection.execute(text(f'SELECT count(*) FROM "{name}"'))).scalar() for name in names}

    return service.run(count())


@pytest.fixture(scope="module")
def services(member_service, wallet_service, points_service, campaign_service):
    ensure_org(Stubs(member_service.channel))
    return {"member": member_service, "wallet": wallet_service, "points": points_service, "campaign": campaign_service}


@pytest.mark.parametrize("service", SERVICES)
def test_every_rpc_refuses_a_caller_without_a_valid_service_token(services, service):
    running = services[service]
    before = _row_counts(running)
    methods = _methods(service)
    assert len(methods) >= 10
    for method, request_type, streamed in methods:
        for case, (token, reason) in _bad_tokens(service).items():
            error = _call(running.app.address, method, _request(request_type), streamed, token)
            assert error is not None, f"{method}, {case}: answered"
            code, got, _ = refusal_of(error, f"{service}.huiyuan")
            assert (code, got) == (UNAUTHENTICATED, reason), f"{method}, {case}: {code.name} {got}"
    assert _row_counts(running) == before


@pytest.mark.parametrize("service", SERVICES)
def test_only_the_gateway_names_the_actor_of_a_request(services, service):
    """The operator is trusted (its key is in the folder) but, outside development, may
    not act as a cashier or a back office: its request naming an actor is refused; the
    same request from the gateway is answered on its merits."""
    running = services[service]
    before = _row_counts(running)
    with_actor = [(m, t, s) for m, t, s in _methods(service) if "actor" in t.DESCRIPTOR.fields_by_name]
    assert with_actor
    for method, request_type, streamed in with_actor:
        error = _call(running.app.address, method, _request(request_type), streamed, AS_OPERATOR.token(service))
        assert error is not None, f"{method}: answered the operator's actor"
        code, reason, _ = refusal_of(error, f"{service}.huiyuan")
        assert (code, reason) == (PERMISSION_DENIED, "ACTOR_NOT_ALLOWED"), f"{method}: {code.name} {reason}"
    assert _row_counts(running) == before


def test_the_operator_is_answered_without_an_actor_and_the_gateway_with_one(services):
    address = services["member"].app.address
    lookup = member_pb2.LookupMemberRequest(phone=new_phone())
    error = _call(address, "/huiyuan.member.v1.MemberService/LookupMember", lookup, False, AS_OPERATOR.token("member"))
    assert refusal_of(error)[:2] == (grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND")  # answered on its merits
    register = member_pb2.RegisterMemberRequest(
        request_id=rid(),
        channel=member_pb2.REGISTRATION_CHANNEL_STORE,
        actor=ACTOR,
        member=member_pb2.Member(name="网关", phone=lookup.phone),
    )
    assert (
        _call(address, "/huiyuan.member.v1.MemberService/RegisterMember", register, False, AS_GATEWAY.token("member"))
        is None
    )


def test_a_refused_caller_writes_nothing(services):
    """A registration and a grant, each a request the gateway's token gets answered, sent
    with each bad credential: no member, no points."""
    member, points = services["member"], services["points"]
    phone = new_phone()
    register = member_pb2.RegisterMemberRequest(
        channel=member_pb2.REGISTRATION_CHANNEL_STORE, actor=ACTOR, member=member_pb2.Member(name="未授权", phone=phone)
    )
    for case, (token, _) in _bad_tokens("member").items():
        register.request_id = rid()
        assert (
            _call(member.app.address, "/huiyuan.member.v1.MemberService/RegisterMember", register, False, token)
            is not None
        ), case
    assert (
        _call(
            member.app.address,
            "/huiyuan.member.v1.MemberService/RegisterMember",
            register,
            False,
            AS_OPERATOR.token("member"),
        ).code()
        == PERMISSION_DENIED
    )
    error = _call(
        member.app.address,
        "/huiyuan.member.v1.MemberService/LookupMember",
        member_pb2.LookupMemberRequest(phone=phone),
        False,
        AS_GATEWAY.token("member"),
    )
    assert refusal_of(error)[:2] == (grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND")
    registered = Stubs(member.channel).register(name="已授权")

    grant = points_pb2.GrantRequest(member_id=registered.member_id, points=100, source=points_pb2.LOT_SOURCE_SIGN_UP)
    for token, _ in _bad_tokens("points").values():
        grant.request_id = rid()
        assert _call(points.app.address, "/huiyuan.points.v1.PointsService/Grant", grant, False, token) is not None
    stub = points_pb2_grpc.PointsServiceStub(points.channel)
    assert stub.GetBalance(points_pb2.GetBalanceRequest(member_id=registered.member_id)).balance.available_points == 0
    grant.request_id = rid()
    stub.Grant(grant)  # the same grant, from the gateway
    assert stub.GetBalance(points_pb2.GetBalanceRequest(member_id=registered.member_id)).balance.available_points == 100


@pytest.mark.parametrize("service", SERVICES)
def test_health_and_reflection_answer_without_a_token(services, service):
    """Kubernetes' gRPC probes and grpc_health_probe hold no token; reflection tells only
    what protos/ does."""
    with grpc.insecure_channel(services[service].app.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        answers = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        listed = {s.name for answer in answers for s in answer.list_services_response.service}
    assert set(importlib.import_module(f"services.{service}.app").SPEC.service_names) <= listed


def test_a_gateway_whose_key_the_services_do_not_trust_answers_internal(chain, database_url, tmp_path):
    """Its terminals' keys are fine: UNAUTHENTICATED would send them to check theirs. The
    deployment's keys are wrong, which is INTERNAL SERVICE_CREDENTIAL_REFUSED."""
    from gateway.app import SPEC
    from huiyuan.gateway.v1 import gateway_pb2 as pb, gateway_pb2_grpc
    from tests.conftest import ServiceThread, per_service
    from tests.test_gateway import as_

    stub, hq_key = chain
    assert refusal_of(
        _error(lambda: stub.LookupMember(pb.LookupMemberRequest(phone=new_phone()), metadata=as_(hq_key)))
    )[:2] == (grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND")  # the gateway's own key is trusted
    service_auth.make_key_pair(tmp_path / "gateway.key", tmp_path / "gateway.pub")
    patch = pytest.MonkeyPatch()
    patch.setenv("HUIYUAN_IDENTITY_KEY_FILE", str(tmp_path / "gateway.key"))
    try:
        stranger = ServiceThread(SPEC, per_service(database_url, "gateway"))
    finally:
        patch.undo()
    try:
        error = _error(
            lambda: gateway_pb2_grpc.GatewayServiceStub(stranger.channel).LookupMember(
                pb.LookupMemberRequest(phone=new_phone()), metadata=as_(hq_key)
            )
        )
        code, reason, _ = refusal_of(error, "gateway.huiyuan")
        assert (code, reason) == (grpc.StatusCode.INTERNAL, "SERVICE_CREDENTIAL_REFUSED")
        assert "SERVICE_CREDENTIAL_INVALID" in error.details()
    finally:
        stranger.stop()


def _error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


# ------------------------------------------------------------ tokens, on their own


def test_a_caller_signs_one_token_per_service_until_half_its_life_is_gone(monkeypatch):
    now = [1_800_000_000.0]
    monkeypatch.setattr(service_auth.time, "time", lambda: now[0])
    identity = Identity("gateway", Ed25519PrivateKey.generate())
    first = identity.token("member")
    assert identity.token("member") == first and identity.token("wallet") != first
    now[0] += service_auth.LIFETIME_S / 2 - 1
    assert identity.token("member") == first
    now[0] += 1
    renewed = identity.token("member")
    assert renewed != first
    claims = jwt.decode(
        renewed,
        identity.key.public_key(),
        algorithms=["EdDSA"],
        audience="member",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == "gateway" and claims["exp"] - claims["iat"] == service_auth.LIFETIME_S


def test_a_service_verifies_a_token_once_and_refuses_it_once_expired(monkeypatch):
    now = [time.time()]
    monkeypatch.setattr(service_auth.time, "time", lambda: now[0])
    key = Ed25519PrivateKey.generate()
    keys = {"gateway": key.public_key()}
    gatekeeper = Gatekeeper("member", keys, frozenset({"gateway"}))
    token = Identity("gateway", key).token("member")
    assert gatekeeper.caller(token) == service_auth.Caller("gateway", True)
    keys.clear()  # remembered: not verified again (a key withdrawn counts from the next token on)
    assert gatekeeper.caller(token).name == "gateway"
    now[0] += service_auth.LIFETIME_S + service_auth.LEEWAY_S
    with pytest.raises(Exception) as expired:
        gatekeeper.caller(token)
    assert expired.value.reason == "SERVICE_CREDENTIAL_EXPIRED"
    assert token not in gatekeeper.verified


# ------------------------------------------------------------ secrets at start


def _start(module: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


SECRETS = ("HUIYUAN_CALLER_KEYS_DIR", "HUIYUAN_IDENTITY_KEY_FILE", "HUIYUAN_QR_SECRET", "HUIYUAN_ENV")


@pytest.mark.parametrize(
    "module, given, missing",
    [
        ("services.member", (), "HUIYUAN_CALLER_KEYS_DIR"),
        ("services.member", ("HUIYUAN_CALLER_KEYS_DIR",), "HUIYUAN_QR_SECRET"),
        ("services.wallet", (), "HUIYUAN_CALLER_KEYS_DIR"),
        ("services.points", (), "HUIYUAN_CALLER_KEYS_DIR"),
        ("services.campaign", (), "HUIYUAN_CALLER_KEYS_DIR"),
        ("gateway", (), "HUIYUAN_IDENTITY_KEY_FILE"),
    ],
)
def test_a_process_outside_development_without_its_secrets_does_not_start(tmp_path, module, given, missing):
    env = {k: v for k, v in os.environ.items() if k not in SECRETS or k in given}
    env.update(
        {
            "HUIYUAN_VAR_DIR": str(tmp_path),
            "HUIYUAN_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
            "HUIYUAN_MEMBER_PORT": "0",
            "HUIYUAN_WALLET_PORT": "0",
            "HUIYUAN_POINTS_PORT": "0",
            "HUIYUAN_CAMPAIGN_PORT": "0",
            "HUIYUAN_GATEWAY_PORT": "0",
        }
    )
    ran = _start(module, env)
    assert ran.returncode != 0
    assert f"not starting: {missing} " in ran.stderr, ran.stderr
    assert '"variable": "' + missing + '"' in ran.stderr  # the log line, for whoever reads the logs
    assert not (tmp_path / "db.sqlite").exists()  # stopped before it opened anything


def test_a_development_secret_does_not_start_a_process_outside_development(tmp_path):
    """`huiyuan up`'s keys in var/keys stand in only where HUIYUAN_ENV=development."""
    service_auth.make_local_keys(KeyFolder(tmp_path / "keys"))
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    env.update({"HUIYUAN_VAR_DIR": str(tmp_path), "HUIYUAN_MEMBER_PORT": "0"})
    ran = _start("services.member", env)
    assert ran.returncode != 0 and "not starting: HUIYUAN_CALLER_KEYS_DIR " in ran.stderr, ran.stderr


def test_a_short_qr_secret_is_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HUIYUAN_ENV"}
    env.update({"HUIYUAN_QR_SECRET": "secret", "HUIYUAN_MEMBER_PORT": "0", "HUIYUAN_VAR_DIR": str(tmp_path)})
    ran = _start("services.member", env)
    assert ran.returncode != 0 and "not starting: HUIYUAN_QR_SECRET is too short" in ran.stderr, ran.stderr


def test_in_development_the_keys_of_var_keys_serve_and_the_operator_names_actors(tmp_path):
    """What `huiyuan up` does: var/keys made once (0600), HUIYUAN_ENV=development, no
    secret in the environment; the CLI's and the demo's operator may name an actor."""
    from huiyuan_cli.launcher import development_env
    from services.member.app import SPEC

    port = _free_port()
    url = f"sqlite:///{tmp_path}/member.db"
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    env.update(
        {
            "HUIYUAN_VAR_DIR": str(tmp_path),
            "HUIYUAN_DATABASE_URL": url,
            "HUIYUAN_MEMBER_PORT": str(port),
            "HUIYUAN_LOG_LEVEL": "WARNING",
        }
    )
    old = os.environ.copy()
    try:
        os.environ.clear()
        os.environ.update(env)
        launched = development_env()
        again = development_env()
    finally:
        os.environ.clear()
        os.environ.update(old)
    keys = KeyFolder(tmp_path / "keys")
    assert launched["HUIYUAN_ENV"] == "development" and launched == again  # made once
    for secret in (keys.private_key("gateway"), keys.private_key("operator"), keys.qr_secret):
        assert secret.stat().st_mode & 0o777 == 0o600
    migrate.upgrade(SPEC.migrations_dir, url, "member")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.member"], cwd=ROOT, env={**env, "HUIYUAN_ENV": "development"}
    )
    try:
        operator = Identity.from_file("operator", keys.private_key("operator"))
        address = f"127.0.0.1:{port}"
        _serving(port).close()
        stubs = Stubs(clients.blocking_channel("member", operator, address))
        ensure_org(stubs)
        stubs.register(name="开发")  # with an actor
        # The test run's own keys are not these: its gateway is a stranger here.
        error = _call(
            address,
            "/huiyuan.member.v1.MemberService/LookupMember",
            member_pb2.LookupMemberRequest(phone=new_phone()),
            False,
            AS_GATEWAY.token("member"),
        )
        assert refusal_of(error)[:2] == (UNAUTHENTICATED, "SERVICE_CREDENTIAL_INVALID")
    finally:
        process.terminate()
        process.wait(20)


def test_tests_run_outside_development():
    assert "HUIYUAN_ENV" not in os.environ and Path(os.environ["HUIYUAN_CALLER_KEYS_DIR"]).parent == KEYS.root
