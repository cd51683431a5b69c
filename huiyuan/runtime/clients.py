"""Outgoing calls: channels to other services with the caller's service token, a
deadline on every call and tracing. Retries are the caller's choice and only for
idempotent calls."""

from typing import NamedTuple

import grpc

from huiyuan.runtime import tracing
from huiyuan.runtime.config import service_address
from huiyuan.runtime.server import MAX_MESSAGE_BYTES
from huiyuan.runtime.service_auth import METADATA_KEY, Identity


class _ServiceToken:
    """Sends the caller's token for the service of the channel with every call
    (huiyuan/runtime/service_auth.py): one token, signed anew only past half its life."""

    def __init__(self, identity: Identity, service: str):
        self.identity = identity
        self.service = service

    def _with_token(self, details):
        metadata = grpc.aio.Metadata(*(details.metadata or ()))  # a copy: the caller's may be sent again
        metadata.add(METADATA_KEY, self.identity.token(self.service))
        return details._replace(metadata=metadata)


# Two classes: grpc.aio files an interceptor under the first kind it is an instance of
# only, so one class of both kinds would never see a streamed call (an export).
class _UnaryServiceToken(_ServiceToken, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(self._with_token(details), request)


class _StreamServiceToken(_ServiceToken, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(self._with_token(details), request)


def service_token(identity: Identity, service: str) -> list:
    """The interceptors of an aio channel to service whose calls identity signs."""
    return [_UnaryServiceToken(identity, service), _StreamServiceToken(identity, service)]


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: object
    credentials: object
    wait_for_ready: bool | None
    compression: object


class BlockingServiceToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """The token on a blocking channel (the CLI's, the demo's, the tests'), where one interceptor serves both kinds."""

    def __init__(self, identity: Identity, service: str):
        self.identity = identity
        self.service = service

    def _with_token(self, d):
        metadata = [*(d.metadata or ()), (METADATA_KEY, self.identity.token(self.service))]
        return _Details(d.method, d.timeout, metadata, d.credentials, getattr(d, "wait_for_ready", None),
                        getattr(d, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)


def blocking_channel(service: str, identity: Identity, address: str | None = None, options=()) -> grpc.Channel:
    """A blocking channel to a huiyuan service (address from HUIYUAN_<SERVICE>_ADDR) that
    carries the identity's token."""
    return grpc.intercept_channel(grpc.insecure_channel(address or service_address(service), options=options),
                                  BlockingServiceToken(identity, service))


class _DefaultDeadline(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Gives every call a deadline unless the caller chose one, and lets it wait within
    that deadline for a service that is reconnecting (wait_for_ready): a service that
    restarts is a pause for its callers, not a burst of UNAVAILABLE."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s

    def _with_deadline(self, details):
        if details.timeout is None:
            details = details._replace(timeout=self.timeout_s)
        if details.wait_for_ready is None:
            details = details._replace(wait_for_ready=True)
        return details

    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(self._with_deadline(details), request)

    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(self._with_deadline(details), request)


def channel(service: str, timeout_s: float, identity: Identity, address: str | None = None) -> grpc.aio.Channel:
    """An aio channel to a huiyuan service (address from HUIYUAN_<SERVICE>_ADDR), its
    calls signed by identity."""
    return grpc.aio.insecure_channel(
        address or service_address(service),
        interceptors=[*service_token(identity, service), _DefaultDeadline(timeout_s), *tracing.client_interceptors()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # A restarted service is called again within a second: gRPC's default
            # reconnect backoff grows to 120 s, and a saga's settle steps wait on it.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ],
    )
