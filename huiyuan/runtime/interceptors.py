"""The one server interceptor: a tracing span per call, and exceptions turned into statuses.

- each call runs in an OpenTelemetry SERVER span, continuing the caller's trace
  (W3C traceparent in the metadata), named like the contrib instrumentation names it;
- a service answers only a caller whose service token it trusts (huiyuan/runtime/
  service_auth.py), else UNAUTHENTICATED, and takes a request's actor only from a caller
  that may name one, else PERMISSION_DENIED ACTOR_NOT_ALLOWED; health checks and
  reflection answer anyone (orchestrators' probes hold no token). The gateway, which
  checks its callers' API keys itself, has no gatekeeper;
- a request that does not decode, holds a NUL in a string or a Timestamp or Duration
  out of range never reaches the servicer: INVALID_ARGUMENT (huiyuan/runtime/inbound.py);
  nor one larger than its method takes (max_request_bytes): RESOURCE_EXHAUSTED;
- DomainError -> its code with ErrorInfo, LocalizedMessage (en, zh-CN), BadRequest;
- NotImplementedError (the generated base servicer's default) -> UNIMPLEMENTED;
- the database down, busy or picking this call as a deadlock's victim -> logged, and
  UNAVAILABLE DATABASE_UNAVAILABLE (nothing was committed: retrying is safe);
- anything else -> logged with its trace id, returned as INTERNAL with no internals.

Why one interceptor and not the contrib aio_server_interceptor plus ours: every layer
re-wraps the handler, and on a 2-core machine the contrib one alone cost a third of
the server's throughput (bench/member_lookup.py); this span carries what we read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, cast

import grpc
from google.protobuf.message import Message
from grpc.aio import AbortError
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from sqlalchemy.exc import OperationalError, TimeoutError as PoolTimeoutError

from huiyuan.runtime import faults
from huiyuan.runtime.errors import Code, DomainError, Internal, Unavailable
from huiyuan.runtime.inbound import Refused, request_decoder
from huiyuan.runtime.logs import current_trace_id
from huiyuan.runtime.service_auth import METADATA_KEY, Gatekeeper, actor_not_allowed
from huiyuan.runtime.serving import serving_rpc
from huiyuan.runtime.status import DETAILS_KEY, grpc_status_code, internal_status, to_status

log = logging.getLogger("huiyuan.rpc")

# A method's behaviour, for any of the methods: Any is its request and response messages.
Context = grpc.aio.ServicerContext[Any, Any]
UnaryBehavior = Callable[[Any, Context], Awaitable[Any]]
StreamBehavior = Callable[[Any, Context], AsyncIterator[Any]]
Decoder = Callable[[bytes], "Message | Refused"]
tracer = trace.get_tracer("huiyuan.rpc")

# Answer without a service token: Kubernetes' gRPC probes and grpc_health_probe hold
# none, and reflection tells only what protos/ tells.
OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


class ServerInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        service: str,
        access_log: bool = False,
        gatekeeper: Gatekeeper | None = None,
        max_request_bytes: Callable[[str], int] | None = None,
    ):
        self.service = service
        self.access_log = access_log
        self.gatekeeper = gatekeeper
        self.max_request_bytes = max_request_bytes  # method -> the largest request it reads (None: the server's)
        self._decoders: dict[str, Decoder] = {}  # method -> its request decoder (huiyuan/runtime/inbound.py), made once
        self._actors: dict[str, bool] = {}  # method -> does its request have an actor field, found once

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if handler is None:
            return None
        # grpc's stubs type a handler's behaviours as a blocking server's; an aio server's are coroutines
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(cast(UnaryBehavior, handler.unary_unary), details),
                request_deserializer=self._decoder(details.method, handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(cast(StreamBehavior, handler.unary_stream), details),
                request_deserializer=self._decoder(details.method, handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        # No client-streaming RPCs in our contracts but reflection's: another would get past the gatekeeper.
        return handler if self.gatekeeper is None or details.method.startswith(OPEN_SERVICES) else None

    def _decoder(self, method: str, parse: Callable[[bytes], Message] | None) -> Decoder | None:
        """The method's deserializer (a message type's FromString), wrapped so that a
        request it refuses reaches the behaviour as a Refused rather than an exception."""
        decoder = self._decoders.get(method)
        if decoder is None and parse is not None:
            message_type = getattr(parse, "__self__", None)  # FromString is bound to its message type
            descriptor = getattr(message_type, "DESCRIPTOR", None)
            decoder = self._decoders[method] = request_decoder(
                parse, descriptor, self.max_request_bytes(method) if self.max_request_bytes else None
            )
            self._actors[method] = descriptor is not None and "actor" in descriptor.fields_by_name
        return decoder

    def _admit(self, gatekeeper: Gatekeeper, details: grpc.HandlerCallDetails, request: Any) -> None:
        """Raises the refusal of a call whose caller this service does not answer, or
        that names an actor its caller may not name."""
        token = None
        for key, value in details.invocation_metadata or ():
            if key == METADATA_KEY and isinstance(value, str):  # not a -bin key: a str
                token = value
                break
        caller = gatekeeper.caller(token)
        if (
            not caller.may_set_actor
            and self._actors.get(details.method)
            and request.__class__ is not Refused
            and request.HasField("actor")
        ):
            raise actor_not_allowed(caller.name)

    def _span(self, details: grpc.HandlerCallDetails) -> AbstractContextManager[Span]:
        """A SERVER span for this call, child of the caller's span if it sent one."""
        method = details.method  # "/huiyuan.member.v1.MemberService/LookupMember"
        service, _, name = method[1:].partition("/")
        carrier = {k: v for k, v in details.invocation_metadata or () if isinstance(v, str)}
        return tracer.start_as_current_span(
            method[1:],
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
            record_exception=False,
            set_status_on_exception=False,
        )

    # The status goes out after the span has ended: grpc.aio's abort() sends it at once,
    # and whoever reads the trace after the reply must find the whole span.
    def _wrap_unary(self, behavior: UnaryBehavior, details: grpc.HandlerCallDetails) -> UnaryBehavior:
        if faults.ARMED:
            behavior = self._with_crash_points(behavior, details.method)

        gatekeeper = None if details.method.startswith(OPEN_SERVICES) else self.gatekeeper

        async def wrapped(request: Any, context: Context) -> Any:
            started = time.perf_counter()
            serving_rpc.set(details.method)  # each call runs in a task of its own: this is its own
            with self._span(details) as span:
                try:
                    if gatekeeper is not None:
                        self._admit(gatekeeper, details, request)
                    if request.__class__ is Refused:
                        raise request.error
                    response = await behavior(request, context)
                except (AbortError, grpc.RpcError):
                    raise
                except Exception as error:  # noqa: BLE001 - this is the one place that catches all
                    refusal = self._refusal(span, error, details.method, started)
                else:
                    self._log_ok(details.method, started)
                    return response
            await context.abort(*refusal)

        return wrapped

    def _with_crash_points(self, behavior: UnaryBehavior, method: str) -> UnaryBehavior:
        """The fault points <service>.<Method>:before and :after (huiyuan/runtime/faults.py)."""
        point = f"{self.service}.{method.rpartition('/')[2]}"

        async def with_points(request: Any, context: Context) -> Any:
            faults.crash_point(f"{point}:before")
            response = await behavior(request, context)
            faults.crash_point(f"{point}:after")
            return response

        return with_points

    def _wrap_stream(self, behavior: StreamBehavior, details: grpc.HandlerCallDetails) -> StreamBehavior:
        gatekeeper = None if details.method.startswith(OPEN_SERVICES) else self.gatekeeper

        async def wrapped(request: Any, context: Context) -> AsyncIterator[Any]:
            started = time.perf_counter()
            serving_rpc.set(details.method)  # each call runs in a task of its own: this is its own
            with self._span(details) as span:
                try:
                    if gatekeeper is not None:
                        self._admit(gatekeeper, details, request)
                    if request.__class__ is Refused:
                        raise request.error
                    async for response in behavior(request, context):
                        yield response
                except (AbortError, grpc.RpcError):
                    raise
                except Exception as error:  # noqa: BLE001
                    refusal = self._refusal(span, error, details.method, started)
                else:
                    self._log_ok(details.method, started)
                    return
            await context.abort(*refusal)

        return wrapped

    def _log_ok(self, method: str, started: float) -> None:
        if self.access_log:
            log.info(
                "rpc ok", extra={"rpc": method, "code": "OK", "ms": round((time.perf_counter() - started) * 1000, 2)}
            )

    def _refusal(
        self, span: Span, error: Exception, method: str, started: float
    ) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
        """The (code, message, trailing metadata) to abort with; notes it on the span and in the log."""
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        if isinstance(error, NotImplementedError):
            error = DomainError("NOT_IMPLEMENTED", f"{method} is not implemented yet.", "该功能尚未提供。")
            error.code = Code.UNIMPLEMENTED
        if isinstance(error, (OperationalError, PoolTimeoutError)):
            # Transient: the database is down, busy, or chose this transaction as a deadlock's
            # victim. Nothing was committed; the caller may retry with the same request_id.
            log.error("database unavailable", exc_info=error, extra={"rpc": method})
            error = Unavailable(
                "DATABASE_UNAVAILABLE",
                "The database is busy or unreachable; try again.",
                "数据库繁忙或暂不可用，请稍后重试。",
            )
        if isinstance(error, DomainError):
            status = to_status(error, self.service)
            code = grpc_status_code(error.code)
            span.set_attribute("huiyuan.reason", error.reason)
            if isinstance(error, Internal):  # a service this one called failed: it logged the traceback
                span.set_status(Status(StatusCode.ERROR, error.reason))
                log.error(
                    "rpc failed in a service it called",
                    extra={
                        "rpc": method,
                        "code": code.name,
                        "reason": error.reason,
                        "domain": error.domain,
                        "ms": elapsed,
                    },
                )
            else:
                log.info("rpc refused", extra={"rpc": method, "code": code.name, "reason": error.reason, "ms": elapsed})
        else:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            log.error("rpc failed", exc_info=error, extra={"rpc": method, "code": "INTERNAL", "ms": elapsed})
            status = internal_status(self.service, current_trace_id())
            code = grpc.StatusCode.INTERNAL
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        return code, status.message, ((DETAILS_KEY, status.SerializeToString()),)
