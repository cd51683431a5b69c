"""The gateway process: the clients' API in front of the services."""

import os
import time
from pathlib import Path

from gateway.domain import limits
from gateway.servicers.auth import Authenticator
from gateway.servicers.benefit_jobs import BenefitJobServicer
from gateway.servicers.gateway import GatewayServicer
from gateway.servicers.passthrough import PassThrough
from gateway.storage import tables
from gateway.use_cases import benefit_grants, home_changes
from gateway.use_cases.recovery import recovery
from gateway.use_cases.relay import Services
from huiyuan.database import Idempotency
from huiyuan.gateway.v1 import benefit_jobs_pb2, benefit_jobs_pb2_grpc, gateway_pb2, gateway_pb2_grpc
from huiyuan.runtime.config import IDENTITY_KEY
from huiyuan.runtime.rollup_service import folder
from huiyuan.runtime.server import ServiceContext, ServiceSpec

metadata = tables.metadata
# How many member lookups (and PIN tries) a key makes at once, and more each second (domain/limits.py).
LOOKUP_BURST = int(os.environ.get("HUIYUAN_LOOKUP_BURST", "20"))
LOOKUP_PER_S = float(os.environ.get("HUIYUAN_LOOKUP_PER_S", "0.5"))


def services_of(ctx: ServiceContext) -> Services:
    return Services(ctx.settings.call_timeout_s, ctx.identity)


def register(server, ctx: ServiceContext) -> None:
    idempotency = Idempotency(ctx.database, tables.idempotency_keys, "gateway")
    services = services_of(ctx)
    lookups = limits.TokenBuckets(LOOKUP_BURST, LOOKUP_PER_S, time.monotonic)  # member lookups and PIN tries, per key
    gateway_pb2_grpc.add_GatewayServiceServicer_to_server(GatewayServicer(ctx, idempotency, services, lookups), server)
    # The services' configuration calls, within the caller's scope (servicers/passthrough.py).
    server.add_generic_rpc_handlers((PassThrough(Authenticator(ctx.database), services, lookups, ctx.database),))
    benefit_jobs_pb2_grpc.add_BenefitJobServiceServicer_to_server(
        BenefitJobServicer(Authenticator(ctx.database), services), server
    )


SPEC = ServiceSpec(
    name="gateway",
    service_names=[
        gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name,
        benefit_jobs_pb2.DESCRIPTOR.services_by_name["BenefitJobService"].full_name,
    ],
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    # finishes sagas a crash or an outage left PENDING; folds the sales into the reports' rollups;
    # issues the benefits due; tells the wallet where members are homed
    background=[
        recovery(services_of),
        folder(tables.ROLLUPS),
        benefit_grants.daily(services_of),
        home_changes.every_few_seconds(services_of),  # members' homes to the wallet (stored value by home)
    ],
    # Its port faces terminals and back offices, whose API keys it checks (servicers/auth.py);
    # it signs its own calls to the services.
    secrets=(IDENTITY_KEY,),
    max_receive_bytes=limits.MAX_UPLOAD_BYTES,
    max_request_bytes=limits.max_request_bytes,
)
