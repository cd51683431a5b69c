"""OpenTelemetry tracing: gRPC server and client calls and SQL, one trace per request.

The exporter is chosen by HUIYUAN_TRACES_EXPORTER: none (spans are still made, so
trace ids reach the logs), console, or otlp (OTEL_EXPORTER_OTLP_ENDPOINT).
"""

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

_configured = False


def configure(service: str, exporter: str, extra_exporter: SpanExporter | None = None) -> None:
    """Install the tracer provider once per process. extra_exporter is for tests."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"huiyuan-{service}"}))
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter != "none":
        raise SystemExit(f"HUIYUAN_TRACES_EXPORTER must be none, console or otlp, not {exporter!r}")
    if extra_exporter is not None:
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        provider.add_span_processor(SimpleSpanProcessor(extra_exporter))
    trace.set_tracer_provider(provider)
    _configured = True


def instrument_engine(engine) -> None:
    """Trace every SQL statement of an (async) SQLAlchemy engine.

    SQLAlchemyInstrumentor().instrument(engine=...) acts once per process and ignores
    later engines (a test process holds several), so each engine gets its EngineTracer,
    which is what instrument() attaches. The contrib package is pinned for this reason.
    """
    from opentelemetry.instrumentation.sqlalchemy import __version__
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    name = "opentelemetry.instrumentation.sqlalchemy"
    usage = get_meter(name, __version__).create_up_down_counter(
        "db.client.connections.usage", unit="connections", description="connections in each state")
    EngineTracer(trace.get_tracer(name, __version__), engine.sync_engine, usage)


def client_interceptors():
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return aio_client_interceptors()
