"""The gateway process: the clients' API in front of the services."""

from pathlib import Path

from huiyuan.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from huiyuan.runtime.idempotency import Idempotency
from huiyuan.runtime.server import ServiceContext, ServiceSpec
from gateway import storage
from gateway.servicer import GatewayServicer

metadata = storage.metadata


def register(server, ctx: ServiceContext) -> None:
    idempotency = Idempotency(ctx.engine, storage.idempotency_keys, "gateway")
    gateway_pb2_grpc.add_GatewayServiceServicer_to_server(GatewayServicer(ctx, idempotency), server)


SPEC = ServiceSpec(
    name="gateway",
    service_names=[gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name],
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
)
