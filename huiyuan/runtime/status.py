"""Turns exceptions into gRPC statuses with google.rpc details (AIP-193).

Every refusal carries ErrorInfo (reason, domain "<service>.huiyuan", metadata), a
LocalizedMessage in en and one in zh-CN, for bad input a BadRequest with one field
violation per bad field, and for a rate exceeded a RetryInfo saying when to try again. Anything unexpected becomes INTERNAL with no internals.
"""

from typing import cast

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from huiyuan.runtime.errors import Code, DomainError, Internal, InvalidArgument, Unavailable, Violation

DETAILS_KEY = "grpc-status-details-bin"
# The codes of a call that got no answer: it may or may not have happened, and only a
# retry with the same request_id can tell. Any other code is the callee's answer.
NO_ANSWER = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


# A refusal must reach its caller: gRPC drops trailing metadata past 8 KB by default
# (the client then gets RESOURCE_EXHAUSTED and no details), and the status travels
# there base64-encoded beside the message. So every text that can carry the caller's
# input is cut to MAX_TEXT characters, and violations are sent while they fit.
MAX_TEXT = 200
MAX_STATUS_BYTES = 4096


def bounded(text: str) -> str:
    """text, cut to MAX_TEXT characters with an ellipsis."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def to_status(error: DomainError, service: str) -> status_pb2.Status:
    details = [
        error_details_pb2.ErrorInfo(
            reason=bounded(error.reason),
            domain=error.domain or f"{service}.huiyuan",
            metadata={bounded(k): bounded(v) for k, v in error.metadata.items()},
        ),
        error_details_pb2.LocalizedMessage(locale="en", message=bounded(error.en)),
        error_details_pb2.LocalizedMessage(locale="zh-CN", message=bounded(error.zh)),
    ]
    if error.retry_delay_s is not None:  # when to try again (ResourceExhausted)
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(round(error.retry_delay_s * 1e9))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    status = status_pb2.Status(code=error.code.value[0], message=bounded(error.en), details=[_pack(d) for d in details])
    if isinstance(error, InvalidArgument):
        status.details.append(_pack(_bad_request(error.violations, MAX_STATUS_BYTES - status.ByteSize())))
    return status


def _bad_request(violations: list[Violation], room: int) -> error_details_pb2.BadRequest:
    """The violations, in order, as many as fit in room bytes (the first always)."""
    bad = error_details_pb2.BadRequest()
    for v in violations:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=bounded(v.field), description=bounded(v.description), reason=bounded(v.reason)
        )
        if bad.field_violations and bad.ByteSize() + violation.ByteSize() + 8 > room:
            break
        bad.field_violations.append(violation)
    return bad


def internal_status(service: str, trace_id: str) -> status_pb2.Status:
    en = f"Internal error; quote trace {trace_id} to support." if trace_id else "Internal error."
    zh = "系统内部错误，请联系技术支持" + (f"（追踪号 {trace_id}）。" if trace_id else "。")
    return to_status(Internal("INTERNAL", en, zh, **({"trace_id": trace_id} if trace_id else {})), service)


def grpc_status_code(code: Code) -> grpc.StatusCode:
    """gRPC's own member for an error's code (what a servicer context aborts with)."""
    return grpc.StatusCode[code.name]


def from_status(status: status_pb2.Status) -> DomainError:
    """Rebuild a DomainError from a status: a stored one (sticky failures replay with
    it) or a service's, relayed by the gateway with its reason and domain."""
    info = error_details_pb2.ErrorInfo()
    messages: dict[str, str] = {}
    violations: list[error_details_pb2.BadRequest.FieldViolation] = []
    retry = None
    error: DomainError
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
        elif detail.Is(error_details_pb2.LocalizedMessage.DESCRIPTOR):
            message = error_details_pb2.LocalizedMessage()
            detail.Unpack(message)
            messages[message.locale] = message.message
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = list(bad.field_violations)
    if violations:  # as it was said: its reason, messages and metadata too
        error = InvalidArgument([Violation(v.field, v.reason, v.description) for v in violations])
        error.reason, error.metadata = info.reason or error.reason, dict(info.metadata)
        error.en, error.zh = messages.get("en", error.en), messages.get("zh-CN", error.zh)
    else:
        # A service's INTERNAL or UNAVAILABLE stays one: callers tell them from refusals by kind.
        kind = {code_pb2.INTERNAL: Internal, code_pb2.UNAVAILABLE: Unavailable}.get(status.code, DomainError)
        error = kind(info.reason, messages.get("en", status.message), messages.get("zh-CN", ""), **info.metadata)
        error.code = Code.of(status.code)
    error.domain = info.domain or None
    if retry is not None:  # relayed, it still says when to try again
        error.retry_delay_s = retry.retry_delay.ToNanoseconds() / 1e9
    return error


def parse_rpc_error(error: grpc.RpcError) -> tuple[grpc.StatusCode, str, status_pb2.Status | None]:
    """Client side: the code, the ErrorInfo reason ("" if none) and the rich status."""
    # from_call reads code(), details() and trailing_metadata(), which every RpcError has
    status: status_pb2.Status | None = rpc_status.from_call(cast(grpc.Call, error))
    reason = ""
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
    return error.code(), reason, status
