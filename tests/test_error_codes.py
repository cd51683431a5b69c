"""huiyuan.runtime.errors names gRPC's status codes without importing gRPC (domain packages
raise its errors with no I/O library loaded): its Code must stay gRPC's, member for member,
and compare as gRPC's does where code still holds a grpc.StatusCode."""

import grpc

from huiyuan.runtime.errors import Code, NotFound
from huiyuan.runtime.status import NO_ANSWER, from_status, grpc_status_code, to_status


def test_code_is_grpc_status_code_member_for_member():
    assert [(c.name, c.value) for c in Code] == [(c.name, c.value) for c in grpc.StatusCode]
    for code in Code:
        assert grpc_status_code(code) is grpc.StatusCode[code.name]
        assert code == grpc.StatusCode[code.name] and grpc.StatusCode[code.name] == code
        assert hash(code) == hash(grpc.StatusCode[code.name])
        assert Code.of(code.number) is code
    assert Code.NOT_FOUND != grpc.StatusCode.ALREADY_EXISTS and Code.OK != 0
    assert Code.UNAVAILABLE in NO_ANSWER and Code.INTERNAL not in NO_ANSWER
    assert Code.of(99) is Code.UNKNOWN


def test_a_relayed_refusal_keeps_its_code():
    heard = from_status(to_status(NotFound("NO_SUCH_THING", "No such thing.", "没有。"), "member"))
    assert heard.code is Code.NOT_FOUND and heard.code == grpc.StatusCode.NOT_FOUND
