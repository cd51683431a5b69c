"""Server interceptor that turns exceptions into gRPC statuses.

- DomainError -> its code with ErrorInfo, LocalizedMessage (en, zh-CN), BadRequest;
- NotImplementedError (the generated base servicer's default) -> UNIMPLEMENTED;
- anything else -> logged with its trace id, returned as INTERNAL with no internals.
"""

import logging
import time

import grpc
from grpc.aio import AbortError

from huiyuan.runtime.errors import DomainError
from huiyuan.runtime.logs import current_trace_id
from huiyuan.runtime.status import DETAILS_KEY, internal_status, to_status

log = logging.getLogger("huiyuan.rpc")


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, service: str, access_log: bool = False):
        self.service = service
        self.access_log = access_log

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # no client-streaming RPCs in our contracts

    def _wrap_unary(self, behavior, method):
        async def wrapped(request, context):
            started = time.perf_counter()
            try:
                response = await behavior(request, context)
            except (AbortError, grpc.RpcError):
                raise
            except Exception as error:  # noqa: BLE001 - this is the one place that catches all
                await self._abort(context, error, method, started)
            self._log_ok(method, started)
            return response

        return wrapped

    def _wrap_stream(self, behavior, method):
        async def wrapped(request, context):
            started = time.perf_counter()
            try:
                async for response in behavior(request, context):
                    yield response
            except (AbortError, grpc.RpcError):
                raise
            except Exception as error:  # noqa: BLE001
                await self._abort(context, error, method, started)
            self._log_ok(method, started)

        return wrapped

    def _log_ok(self, method, started):
        if self.access_log:
            log.info("rpc ok", extra={"rpc": method, "code": "OK", "ms": round((time.perf_counter() - started) * 1000, 2)})

    async def _abort(self, context, error: Exception, method: str, started: float):
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        if isinstance(error, DomainError):
            status = to_status(error, self.service)
            code = error.code
            log.info("rpc refused", extra={"rpc": method, "code": code.name, "reason": error.reason, "ms": elapsed})
        elif isinstance(error, NotImplementedError):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented yet")
        else:
            trace_id = current_trace_id()
            log.error("rpc failed", exc_info=error, extra={"rpc": method, "code": "INTERNAL", "ms": elapsed})
            status = internal_status(self.service, trace_id)
            code = grpc.StatusCode.INTERNAL
        await context.abort(code, status.message, trailing_metadata=((DETAILS_KEY, status.SerializeToString()),))
