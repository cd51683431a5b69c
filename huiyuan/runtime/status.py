"""Turns exceptions into gRPC statuses with google.rpc details (AIP-193).

Every refusal carries ErrorInfo (reason, domain "<service>.huiyuan", metadata), a
LocalizedMessage in en and one in zh-CN, and for bad input a BadRequest with one
field violation per bad field. Anything unexpected becomes INTERNAL with no internals.
"""

from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

import grpc
from grpc_status import rpc_status

from huiyuan.runtime.errors import DomainError, InvalidArgument, Violation

DETAILS_KEY = "grpc-status-details-bin"
# The codes of a call that got no answer: it may or may not have happened, and only a
# retry with the same request_id can tell. Any other code is the callee's answer.
NO_ANSWER = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(error: DomainError, service: str) -> status_pb2.Status:
    details = [
        error_details_pb2.ErrorInfo(
            reason=error.reason, domain=f"{service}.huiyuan", metadata=error.metadata
        ),
        error_details_pb2.LocalizedMessage(locale="en", message=error.en),
        error_details_pb2.LocalizedMessage(locale="zh-CN", message=error.zh),
    ]
    if isinstance(error, InvalidArgument):
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description, reason=v.reason
                    )
                    for v in error.violations
                ]
            )
        )
    return status_pb2.Status(
        code=error.code.value[0], message=error.en, details=[_pack(d) for d in details]
    )


def internal_status(service: str, trace_id: str) -> status_pb2.Status:
    en = f"Internal error; quote trace {trace_id} to support." if trace_id else "Internal error."
    error = DomainError("INTERNAL", en, "系统内部错误,请联系技术支持" + (f"(追踪号 {trace_id})" if trace_id else ""))
    status = to_status(error, service)
    status.code = code_pb2.INTERNAL
    return status


def grpc_code(status: status_pb2.Status) -> grpc.StatusCode:
    return next(c for c in grpc.StatusCode if c.value[0] == status.code)


def from_status(status: status_pb2.Status) -> DomainError:
    """Rebuild a DomainError from a stored status (sticky failures replay with it)."""
    info = error_details_pb2.ErrorInfo()
    messages = {}
    violations = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.LocalizedMessage.DESCRIPTOR):
            message = error_details_pb2.LocalizedMessage()
            detail.Unpack(message)
            messages[message.locale] = message.message
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = list(bad.field_violations)
    if violations:
        return InvalidArgument([Violation(v.field, v.reason, v.description) for v in violations])
    error = DomainError(info.reason, messages.get("en", status.message), messages.get("zh-CN", ""), **info.metadata)
    error.code = grpc_code(status)
    return error


def parse_rpc_error(error: grpc.RpcError) -> tuple[grpc.StatusCode, str, status_pb2.Status | None]:
    """Client side: the code, the ErrorInfo reason ("" if none) and the rich status."""
    status = rpc_status.from_call(error)
    reason = ""
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
    return error.code(), reason, status
