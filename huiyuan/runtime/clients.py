"""Outgoing calls: channels to other services with the caller's service token, a
deadline on every call and tracing. Retries are the caller's choice and only for
idempotent calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple, TypeVar, cast

import grpc
from grpc.aio import ClientCallDetails, UnaryStreamCall, UnaryUnaryCall

from huiyuan.runtime import tracing
from huiyuan.runtime.config import service_address
from huiyuan.runtime.server import MAX_MESSAGE_BYTES
from huiyuan.runtime.service_auth import METADATA_KEY, Identity

Request = TypeVar("Request")
Response = TypeVar("Response")


class _ServiceToken:
    """Sends the caller's token for the service of the channel with every call
    (huiyuan/runtime/service_auth.py): one token, signed anew only past half its life."""

    def __init__(self, identity: Identity, service: str):
        self.identity = identity
        self.service = service

    def _with_token(self, details: ClientCallDetails) -> ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))  # a copy: the caller's may be sent again
        metadata.add(METADATA_KEY, self.identity.token(self.service))
        return ClientCallDetails(details.method, details.timeout, metadata, details.credentials, details.wait_for_ready)


# Two classes: grpc.aio files an interceptor under the first kind it is an instance of
# only, so one class of both kinds would never see a streamed call (an export).
class _UnaryServiceToken(_ServiceToken, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self,
        continuation: Callable[[ClientCallDetails, Request], Awaitable[UnaryUnaryCall[Request, Response]]],
        details: ClientCallDetails,
        request: Request,
    ) -> UnaryUnaryCall[Request, Response]:
        return await continuation(self._with_token(details), request)


class _StreamServiceToken(_ServiceToken, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self,
        continuation: Callable[[ClientCallDetails, Request], Awaitable[UnaryStreamCall[Request, Response]]],
        details: ClientCallDetails,
        request: Request,
    ) -> UnaryStreamCall[Request, Response]:
        return await continuation(self._with_token(details), request)


def service_token(identity: Identity, service: str) -> list[grpc.aio.ClientInterceptor]:
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

    def _with_token(self, d: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [*(d.metadata or ()), (METADATA_KEY, self.identity.token(self.service))]
        details = _Details(
            d.method,
            d.timeout,
            metadata,
            d.credentials,
            getattr(d, "wait_for_ready", None),
            getattr(d, "compression", None),
        )
        return cast(grpc.ClientCallDetails, details)  # gRPC reads its attributes, all there

    # Any: what the continuation answers, a call that is also a future or an iterator of
    # responses, is a type grpc's stubs keep to themselves.
    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Request], Any],
        details: grpc.ClientCallDetails,
        request: Request,
    ) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Request], Any],
        details: grpc.ClientCallDetails,
        request: Request,
    ) -> Any:
        return continuation(self._with_token(details), request)


def blocking_channel(
    service: str, identity: Identity, address: str | None = None, options: Sequence[tuple[str, Any]] = ()
) -> grpc.Channel:
    """A blocking channel to a huiyuan service (address from HUIYUAN_<SERVICE>_ADDR) that
    carries the identity's token."""
    return grpc.intercept_channel(
        grpc.insecure_channel(address or service_address(service), options=options),
        BlockingServiceToken(identity, service),
    )


class _DefaultDeadline(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Gives every call a deadline unless the caller chose one, and lets it wait within
    that deadline for a service that is reconnecting (wait_for_ready): a service that
    restarts is a pause for its callers, not a burst of UNAVAILABLE."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s

    def _with_deadline(self, details: ClientCallDetails) -> ClientCallDetails:
        if details.timeout is not None and details.wait_for_ready is not None:
            return details
        return ClientCallDetails(
            details.method,
            self.timeout_s if details.timeout is None else details.timeout,
            details.metadata,
            details.credentials,
            True if details.wait_for_ready is None else details.wait_for_ready,
        )

    async def intercept_unary_unary(
        self,
        continuation: Callable[[ClientCallDetails, Request], Awaitable[UnaryUnaryCall[Request, Response]]],
        details: ClientCallDetails,
        request: Request,
    ) -> UnaryUnaryCall[Request, Response]:
        return await continuation(self._with_deadline(details), request)

    async def intercept_unary_stream(
        self,
        continuation: Callable[[ClientCallDetails, Request], Awaitable[UnaryStreamCall[Request, Response]]],
        details: ClientCallDetails,
        request: Request,
    ) -> UnaryStreamCall[Request, Response]:
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
