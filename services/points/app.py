"""The points service process: its servicer, migrations, and the sweeper that lapses
offset holds past their deadline."""

from pathlib import Path

from huiyuan.database import Idempotency
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.runtime.server import ServiceContext, ServiceSpec
from huiyuan.runtime.sweeper import sweeper
from services.points.servicers.points import PointsServicer
from services.points.storage import tables
from services.points.use_cases import spending

metadata = tables.metadata


def register(server, ctx: ServiceContext) -> None:
    idempotency = Idempotency(ctx.database, tables.idempotency_keys, "points")
    points_pb2_grpc.add_PointsServiceServicer_to_server(PointsServicer(ctx, idempotency), server)


SPEC = ServiceSpec(
    name="points",
    service_names=[points_pb2.DESCRIPTOR.services_by_name["PointsService"].full_name],
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    background=[sweeper(spending.lapsed_holds, spending.expire)],
)
