"""Calls to the services, and their refusals passed on to the gateway's caller.

A service's answer is passed on as it gave it: a refusal keeps its code, reason and
domain (CARD_LOST of member.huiyuan stays that), and its INTERNAL stays INTERNAL (an
errors.Internal, with the service's trace id): retrying would fail the same way. Only a
service that did not answer becomes UNAVAILABLE SERVICE_UNAVAILABLE, and one that refused
the gateway's own service token INTERNAL SERVICE_CREDENTIAL_REFUSED: the deployment's keys
are wrong, which the caller's UNAUTHENTICATED would blame on its API key. Ids the
services see for idempotency are derived from the caller's credential and request_id,
so a terminal's retry reaches every service as the same request.
"""

import hashlib
from contextlib import asynccontextmanager

import grpc
from google.rpc import status_pb2

from huiyuan.runtime import service_auth
from huiyuan.runtime.errors import Internal, Unavailable
from huiyuan.runtime.status import DETAILS_KEY, NO_ANSWER, from_status

# What a call passed on may take when its caller set no deadline: the channel's default
# for most (gateway/app.py), this for a long one - an export, a company's batch.
LONG_CALL_S = 600


def passed_on_deadline(context, default: float | None = None) -> float | None:
    """The deadline a call made for this caller gets: what is left of the caller's own
    (a remaining 0 s included: it is spent, not absent), else default (None: the
    channel's)."""
    remaining = context.time_remaining()
    return default if remaining is None else remaining


def derived_id(key_id: str, request_id: str, step: str) -> str:
    return "gw-" + hashlib.sha256(f"{key_id}\0{request_id}\0{step}".encode()).hexdigest()[:40]


@asynccontextmanager
async def relayed(service: str):
    try:
        yield
    except grpc.aio.AioRpcError as error:
        details = dict(error.trailing_metadata() or ()).get(DETAILS_KEY)
        if details and error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:  # the service's own answer
            refusal = from_status(status_pb2.Status.FromString(details))
            if refusal.reason in service_auth.REFUSALS:
                raise Internal("SERVICE_CREDENTIAL_REFUSED", f"The {service} service refused the gateway's "
                               f"credential ({refusal.reason}): the deployment's keys are wrong.",
                               "系统配置有误，请联系技术支持。", service=service) from error
            raise refusal from error
        if error.code() in NO_ANSWER:
            raise Unavailable("SERVICE_UNAVAILABLE", f"The {service} service did not answer; try again.",
                              "服务暂时无响应，请重试。", service=service) from error
        # An answer without our details (UNKNOWN: an exception inside gRPC there): a bug.
        raise Internal("SERVICE_FAILED", f"The {service} service failed ({error.code().name}).",
                       "服务内部出错，请联系技术支持。", service=service) from error
