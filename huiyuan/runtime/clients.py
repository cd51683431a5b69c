"""Outgoing calls: channels to other services with a deadline on every call and
tracing. Retries are the caller's choice and only for idempotent calls."""

import grpc

from huiyuan.runtime import tracing
from huiyuan.runtime.config import service_address
from huiyuan.runtime.server import MAX_MESSAGE_BYTES


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


def channel(service: str, timeout_s: float, address: str | None = None) -> grpc.aio.Channel:
    """An aio channel to a huiyuan service (address from HUIYUAN_<SERVICE>_ADDR)."""
    return grpc.aio.insecure_channel(
        address or service_address(service),
        interceptors=[_DefaultDeadline(timeout_s), *tracing.client_interceptors()],
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
