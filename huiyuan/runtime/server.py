"""The gRPC server every service runs (grpc.aio), following grpc/grpc examples/python:

- standard health (grpc.health.v1): SERVING only while the database answers and is
  migrated to the head revision (or past it, by a newer release: migrate.serves_at);
  re-checked every few seconds (the readiness probe);
  the name "liveness" is SERVING from start to stop whatever the database does (the
  liveness probe: answered on the event loop, so a stuck loop fails it, while a
  database that is down does not get every pod restarted);
- server reflection, so grpcurl and friends can discover the API;
- one interceptor: the caller's service token checked, an OpenTelemetry span per call,
  domain errors -> rich statuses (health and reflection answer anyone: probes hold no token);
- outside development it does not start without its secrets (ServiceSpec.secrets), and
  says which is missing;
- graceful shutdown on SIGTERM/SIGINT: health turns NOT_SERVING, new calls are refused,
  in-flight calls get HUIYUAN_SHUTDOWN_GRACE_S to finish;
- uvloop's event loop where it is installed (not on Windows): psycopg's async driver
  waits on the event loop for every statement it sends, and on uvloop a points
  accrue + hold + capture cycle took about a sixth less CPU than on asyncio's own loop
  (7.3 ms against 8.9 ms, five runs each, 2026-11-23).
"""

import asyncio
import gc
import logging
import os
import signal
import threading
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from huiyuan.database import Database, engines, migrate
from huiyuan.runtime import logs, service_auth, tracing
from huiyuan.runtime.config import CALLER_KEYS, IDENTITY_KEY, QR_SECRET, MissingSecret, Settings
from huiyuan.runtime.interceptors import ServerInterceptor

log = logging.getLogger("huiyuan.server")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # bulk imports travel in one message
HEALTH_INTERVAL_S = 5.0
LIVENESS = "liveness"  # the health service name the liveness probe asks for
SHUTDOWN_SLACK_S = 5.0  # past the grace period, for closing the database and the rest


@dataclass
class ServiceContext:
    """What a service's servicers are built from."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    database: Database  # every transaction and read of the service (huiyuan/database/)
    identity: service_auth.Identity | None = None  # what it signs its calls to the services with (the gateway)

    def reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection on the engine for reads that need no transaction
        (huiyuan.database.engines.reading), for code that takes the context and must not
        import the database layer itself (the holds' sweeper, huiyuan/runtime/holds.py)."""
        return engines.reading(self.engine)


@dataclass
class ServiceSpec:
    """What makes one service: its name, the full gRPC service names it serves, its
    migrations, and a function that adds its servicers to the server."""

    name: str
    service_names: list[str]
    migrations_dir: Path
    register: Callable[[grpc.aio.Server, ServiceContext], None]
    # Background loops (a sweeper, say): each is called with the context once the
    # server is up and runs as a task until the server stops.
    background: list[Callable[[ServiceContext], Coroutine[Any, Any, None]]] = field(default_factory=list)
    # The secrets it runs with, which outside development it does not start without:
    # CALLER_KEYS, the callers it answers (every service but the gateway, whose port
    # faces terminals and back offices with API keys); IDENTITY_KEY, for the services it
    # calls (the gateway); QR_SECRET (the member service).
    secrets: tuple[str, ...] = (CALLER_KEYS,)
    # The largest request the server reads (gRPC refuses a larger one from its announced
    # length, unread), and, where some methods take less, each method's largest: a
    # request past it is refused REQUEST_TOO_LARGE (huiyuan/runtime/inbound.py).
    max_receive_bytes: int = MAX_MESSAGE_BYTES
    max_request_bytes: Callable[[str], int] | None = None


def server_options(max_receive_bytes: int = MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", max_receive_bytes),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),  # a second server on a taken port must fail, not share it
    ]


class App:
    """A running service: server, health, engine. Built by start(), ended by stop()."""

    def __init__(self, spec: ServiceSpec, settings: Settings):
        self.spec = spec
        self.settings = settings
        # Secrets first: a process without them stops here, before it opens anything.
        gatekeeper = service_auth.gatekeeper(settings) if CALLER_KEYS in spec.secrets else None
        identity = service_auth.identity(settings) if IDENTITY_KEY in spec.secrets else None
        if QR_SECRET in spec.secrets:
            settings.required_qr_secret()
        # On PostgreSQL the service's calls run on Database's pool (database/direct.py), which
        # may open db_pool_size connections; SQLAlchemy's carries the rest (exports,
        # background jobs, the member registry's sessions), a quarter as many.
        self.engine = engines.make_async_engine(settings.database_url, spec.name, max(2, settings.db_pool_size // 4))
        tracing.instrument_engine(self.engine)
        self.context = ServiceContext(
            settings,
            self.engine,
            engines.session_factory(self.engine),
            Database(self.engine, spec.name, settings.db_pool_size),
            identity,
        )
        self.server = grpc.aio.server(
            interceptors=[ServerInterceptor(spec.name, settings.access_log, gatekeeper, spec.max_request_bytes)],
            options=server_options(spec.max_receive_bytes),
        )
        self.health = health.aio.HealthServicer()
        self.port = 0
        self._watch: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
        self._serves_at = migrate.serves_at(spec.migrations_dir)

    async def start(self) -> "App":
        self.spec.register(self.server, self.context)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [*self.spec.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, self.server)
        self.port = self.server.add_insecure_port(f"{self.settings.host}:{self.settings.port}")
        if self.port == 0:
            raise SystemExit(f"{self.spec.name}: cannot listen on {self.settings.host}:{self.settings.port}")
        await self.context.database.open()
        await self.server.start()
        await self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        await self.check_health()
        self._watch = asyncio.create_task(self._watch_health())
        self._background = [asyncio.create_task(loop(self.context)) for loop in self.spec.background]
        log.info(
            "serving",
            extra={
                "port": self.port,
                "database": make_url(self.settings.database_url).render_as_string(hide_password=True),
            },
        )
        return self

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    async def database_ready(self) -> bool:
        try:  # reading the revision also shows the database answers
            return self._serves_at(await migrate.current_revision(self.engine))
        except Exception as error:  # noqa: BLE001 - any failure means not ready
            log.warning("database not ready", extra={"error": str(error)[:200]})
            return False

    async def check_health(self) -> bool:
        ready = await self.database_ready()
        status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *self.spec.service_names]:
            await self.health.set(name, status)
        return ready

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            await self.check_health()

    async def stop(self, grace: float | None = None) -> None:
        for task in [self._watch, *self._background]:
            if task:
                task.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.settings.shutdown_grace_s if grace is None else grace)
        await self.context.database.close()
        await self.engine.dispose()
        log.info("stopped")


async def _serve_until_signalled(spec: ServiceSpec, settings: Settings) -> None:
    try:
        app = App(spec, settings)
    except MissingSecret as missing:
        log.error("a secret is missing: not starting", extra={"variable": missing.variable, "error": str(missing)})
        raise SystemExit(
            f"{spec.name}: not starting: {missing}"
            + ("" if settings.development else " (HUIYUAN_ENV is not development)")
        ) from None
    await app.start()
    # What start-up made (modules, descriptors, compiled SQL) lives as long as the
    # process: freezing it keeps the collector's full passes from walking it again.
    # Those passes paused a member service for 50-60 ms, every call waiting behind.
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down", extra={"grace_s": settings.shutdown_grace_s})
    _exit_if_stuck(settings.shutdown_grace_s + SHUTDOWN_SLACK_S)
    await app.stop()


def _exit_if_stuck(deadline_s: float) -> None:
    """End the process if stopping takes longer than its deadline, as an orchestrator
    would. Seen once: a sweeper whose cancellation was lost (huiyuan/database/engines.py,
    take_turn) swept on, and the process never finished stopping. That cause is gone;
    this makes sure any other like it cannot keep a service from being restarted."""

    def give_up() -> None:
        log.error("shutdown did not finish in time: exiting", extra={"deadline_s": deadline_s})
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(deadline_s, give_up)
    timer.daemon = True  # a clean stop exits without waiting for it
    timer.start()


def main(spec: ServiceSpec) -> None:
    """Entry point of `python -m services.<name>` (and the gateway)."""
    settings = Settings.from_env(spec.name)
    logs.configure(spec.name, settings.log_level)
    tracing.configure(spec.name, settings.traces_exporter)
    run_event_loop(_serve_until_signalled(spec, settings))


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Runs main to its end on uvloop where it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)
