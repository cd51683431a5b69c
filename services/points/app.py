"""The points service process: its servicer, migrations, and the sweeper that lapses
offset holds past their deadline."""

from pathlib import Path

from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.runtime import holds
from huiyuan.database.idempotency import Idempotency
from huiyuan.runtime.server import ServiceContext, ServiceSpec
from services.points import spending, storage
from services.points.servicer import PointsServicer

metadata = storage.metadata


def register(server, ctx: ServiceContext) -> None:
    idempotency = Idempotency(ctx.database, storage.idempotency_keys, "points")
    points_pb2_grpc.add_PointsServiceServicer_to_server(PointsServicer(ctx, idempotency), server)


SPEC = ServiceSpec(
    name="points",
    service_names=[points_pb2.DESCRIPTOR.services_by_name["PointsService"].full_name],
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    background=[holds.sweeper(spending.lapsed_holds, spending.expire)],
)
